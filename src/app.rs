//! Building and running the gateway: load the specs, join the cluster when Redis is configured,
//! bind the listener, assemble Socket.IO (on the in-memory or the Redis adapter), the HTTP routes
//! and CORS on one port, serve until told to stop, then drain.
//!
//! [`App::build`] binds before returning, so callers (tests, `main`) learn the real port, even
//! when they asked for port 0.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use axum::http::{HeaderValue, Method, header};
use socketioxide::{
    SocketIo, SocketIoBuilder, TransportType,
    adapter::{Adapter, Emitter},
    layer::SocketIoLayer,
};
use socketioxide_redis::FredAdapter;
use tokio::{net::TcpListener, task::JoinHandle};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    admin::{self, Admin},
    auth::{ApiKeys, TokenVerifier},
    bridge::Bridges,
    cluster::Cluster,
    config::{Config, IDEMPOTENCY_MAX_BYTES, IDEMPOTENCY_MAX_ENTRIES, NamespaceSource},
    front::socketio::engineio::{Sessions, SessionsOptions},
    http::{self, HttpState},
    idempotency::{IdempotencyStore, MemoryStore},
    lifecycle::Readiness,
    metrics::Metrics,
    net::server::{self, ServeOptions},
    node::{Node, NodeSettings},
    page::{self, PageState, bundle::BundlePaths, dev::DevCredentials},
    sink::backends::{BackendCalls, StreamHook},
    spec::{self, NamespaceSpec, SpecErrors, Transport},
};

/// Bytes reserved for reading each WebSocket. Clients mostly send small events; larger messages
/// still arrive whole (the buffer grows for them), and an idle socket holds 256 B, not 4 KiB
/// (docs/benchmarks.md).
const WS_READ_BUFFER_SIZE: usize = 256;

/// A bound, ready-to-run gateway.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    served: Box<dyn Served>,
    readiness: Arc<Readiness>,
    serve_options: ServeOptions,
    shutdown_timeout: Duration,
    shutdown_delay: Duration,
}

/// What the engine and the HTTP side share, made before either.
struct Parts {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    sessions: Arc<Sessions>,
    page: PageState,
    /// What the API's writes remember: this node's memory, replaced by Redis's in a cluster.
    idempotency: Arc<dyn IdempotencyStore>,
    /// The cluster this node joined, if any (bridges run under its leases).
    cluster: Option<Arc<Cluster>>,
}

/// This node's idempotency entries, bounded as `config` says.
fn local_idempotency(config: &Config, metrics: &Metrics) -> MemoryStore {
    MemoryStore::new(
        config.limits.idempotency_window,
        IDEMPOTENCY_MAX_ENTRIES,
        IDEMPOTENCY_MAX_BYTES,
        metrics.idempotency.clone(),
    )
}

/// What running and draining need of the Socket.IO side, whatever its adapter.
trait Served: Send + Sync {
    /// The namespaces, for the start-up log.
    fn namespaces(&self) -> Vec<String>;
    /// Starts the engine's background work; hands over the cluster's, started at build.
    fn spawn_tasks(&self) -> Vec<JoinHandle<()>>;
    /// Closes every socket.
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

struct ServedBy<A: Adapter> {
    io: SocketIo<A>,
    engine: Node<A>,
    admin: Option<Admin<A>>,
    /// Outbound bridges, started with the other background work.
    bridges: Bridges,
    /// Where `forward` actions call; its workers start with the other background work.
    backends: Arc<BackendCalls>,
    cluster_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl<A: Adapter> Served for ServedBy<A> {
    fn namespaces(&self) -> Vec<String> {
        self.engine.specs().map(|s| s.served_as()).collect()
    }

    fn spawn_tasks(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = self.engine.spawn_tasks();
        tasks.extend(self.admin.as_ref().map(Admin::spawn));
        tasks.extend(self.bridges.spawn());
        tasks.extend(self.backends.spawn());
        tasks.append(&mut self.cluster_tasks.lock().unwrap_or_else(|e| e.into_inner()));
        tasks
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {
            // Event stream consumers reconnect, with their last id, to another node.
            self.engine.feed().close();
            // In a cluster, bridges are handed over so another node takes them at once.
            tokio::join!(
                self.io.close(),
                self.engine.close_endpoints(Duration::from_secs(5)),
                self.bridges.stop(Duration::from_secs(3))
            );
        })
    }
}

/// Loads the specs named by the config, with the config's rate-limit overrides applied.
pub fn load_specs(config: &Config) -> anyhow::Result<Vec<NamespaceSpec>> {
    let mut specs = match &config.namespaces {
        NamespaceSource::Embedded => spec::load_embedded(),
        NamespaceSource::Dir(dir) => spec::load_dir(dir),
    }
    .and_then(|specs| {
        spec::check_destinations(&specs, &config.backends.destinations(), &config.backends.fire_and_forget())
            .map(|()| specs)
    })
    .map_err(|e: SpecErrors| anyhow::anyhow!("the namespace specs have errors:\n{e}"))?;
    let admin = config.admin.is_some();
    for spec in specs.iter().filter(|s| s.transport == Transport::WebSocket) {
        check_endpoint_path(&spec.path, &config.transport.path, admin)
            .with_context(|| format!("{}: the plain WebSocket endpoint `{}`", spec.file, spec.path))?;
    }
    // Each endpoint also serves `{path}/stats`: a second endpoint there would be a route
    // registered twice, which axum refuses with a panic.
    let endpoints: Vec<&NamespaceSpec> = specs.iter().filter(|s| s.transport == Transport::WebSocket).collect();
    for spec in &endpoints {
        if let Some(other) = endpoints.iter().find(|other| spec.path == format!("{}/stats", other.path)) {
            anyhow::bail!(
                "{}: the plain WebSocket endpoint `{}` is where `{}` ({}) serves its statistics; give it another path",
                spec.file,
                spec.path,
                other.path,
                other.file
            );
        }
    }
    if let Some(spec) = specs.iter().find(|s| admin && s.transport == Transport::SocketIo && s.path == admin::NAMESPACE)
    {
        anyhow::bail!(
            "{}: namespace `{}` is the admin view's while ADMIN_USERNAME is set; rename it or turn the admin view off",
            spec.file,
            spec.path
        );
    }
    for (path, events) in &config.rate_limit_overrides {
        let spec = specs
            .iter_mut()
            .find(|s| &s.path == path)
            .with_context(|| format!("rate_limits: no namespace `{path}` is loaded"))?;
        for (event, limit) in events {
            if limit.max == 0 || limit.per.is_zero() {
                anyhow::bail!("rate_limits: `{path}` `{event}` needs max >= 1 and a non-zero `per`");
            }
            // `connect` (a name no client event can have) is the per-IP connection limit.
            if event == "connect" {
                spec.auth.connections_per_ip = Some(*limit);
                continue;
            }
            let e =
                spec.events.get_mut(event).with_context(|| format!("rate_limits: `{path}` has no event `{event}`"))?;
            e.rate_limit = Some(*limit);
        }
    }
    Ok(specs)
}

/// A plain WebSocket endpoint's HTTP path must not shadow Socket.IO or the gateway's own routes
/// (`/admin` among them when the admin view is on).
fn check_endpoint_path(path: &str, socketio_path: &str, admin: bool) -> anyhow::Result<()> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if path == "/" || path.ends_with('/') || under(socketio_path) {
        anyhow::bail!("must be a path of its own, outside SOCKETIO_PATH ({socketio_path})");
    }
    let admin = admin.then_some("/admin");
    if let Some(taken) = ["/api", "/healthz", "/readyz", "/metrics"].into_iter().chain(admin).find(|p| under(p)) {
        anyhow::bail!("`{taken}` is the gateway's own");
    }
    Ok(())
}

impl App {
    /// Loads the specs, joins the cluster when Redis is configured, binds `config.listen` and
    /// assembles the gateway.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let specs = load_specs(config)?;
        let page = PageState::new(
            &specs,
            &config.transport.path,
            DevCredentials::from_config(config)?,
            config.trusted_proxies.clone(),
        );
        let verifier = TokenVerifier::new(&config.jwt)?;
        let metrics = Arc::new(Metrics::new(config.redis.is_some()));
        let readiness = Arc::new(Readiness::default());
        let sessions = Sessions::new(SessionsOptions::from_config(config), readiness.clone(), metrics.clone());
        let idempotency = Arc::new(local_idempotency(config, &metrics));
        let parts = Parts { metrics, readiness, sessions, page, idempotency, cluster: None };
        let settings = NodeSettings::from_config(config);
        match &config.redis {
            None => {
                let (layer, io) = socket_io(SocketIo::builder(), config).build_layer();
                let engine =
                    Node::new(specs, io.clone(), verifier, settings, parts.metrics.clone(), parts.sessions.clone());
                engine.mount(&io);
                let admin = config.admin.as_ref().map(|admin| {
                    let metrics = parts.metrics.admin.clone();
                    Admin::mount(&io, Arc::new(engine.clone()), admin, config.trusted_proxies.clone(), metrics).0
                });
                Self::assemble(config, layer, io, engine, admin, parts, Vec::new()).await
            }
            Some(redis) => {
                let cluster_metrics =
                    parts.metrics.cluster.clone().context("the metrics were made for a single node")?;
                let (cluster, adapter) = Cluster::connect(redis, cluster_metrics).await?;
                let (layer, io) =
                    socket_io(SocketIo::builder(), config).with_adapter::<FredAdapter<Emitter>>(adapter).build_layer();
                let engine =
                    Node::new(specs, io.clone(), verifier, settings, parts.metrics.clone(), parts.sessions.clone());
                for namespace in engine.mount(&io) {
                    namespace.await.context("subscribing a namespace to Redis")?;
                }
                let admin = match &config.admin {
                    Some(admin) => {
                        let metrics = parts.metrics.admin.clone();
                        let (admin, subscribed) =
                            Admin::mount(&io, Arc::new(engine.clone()), admin, config.trusted_proxies.clone(), metrics);
                        subscribed.await.context("subscribing the admin namespace to Redis")?;
                        Some(admin)
                    }
                    None => None,
                };
                let tasks = cluster.start(engine.clone()).await?;
                let mut parts = parts;
                parts.cluster = Some(cluster.clone());
                parts.idempotency = cluster.idempotency(
                    config.limits.idempotency_window,
                    local_idempotency(config, &parts.metrics),
                    parts.metrics.idempotency.clone(),
                );
                Self::assemble(config, layer, io, engine, admin, parts, tasks).await
            }
        }
    }

    async fn assemble<A: Adapter>(
        config: &Config,
        layer: SocketIoLayer<A>,
        io: SocketIo<A>,
        engine: Node<A>,
        admin: Option<Admin<A>>,
        parts: Parts,
        cluster_tasks: Vec<JoinHandle<()>>,
    ) -> anyhow::Result<Self> {
        let Parts { metrics, readiness, sessions, page, idempotency, cluster } = parts;
        let bridges = Bridges::new(&config.bridges, &metrics.bridges);
        let mut cluster_tasks = cluster_tasks;
        if let Some(cluster) = &cluster {
            // Each bridge runs on the node holding its lease (docs/bridges.md#clusters).
            cluster_tasks.push(cluster.run_bridges(&bridges));
        }
        sessions.attach(Arc::new(engine.clone()));
        let streamer = engine.clone();
        let stream: StreamHook = Arc::new(move |event| streamer.stream_client_event(event));
        let backends = Arc::new(BackendCalls::new(
            &config.backends,
            &config.bridges.allowed_hosts,
            &config.bridges.tls,
            &config.bridges.sinks,
            stream,
            metrics.forward.clone(),
        ));
        engine.attach_backends(backends.clone());
        let state = HttpState {
            engine: engine.clone(),
            api_keys: ApiKeys::new(
                config.api_keys.clone(),
                config.tenant_api_keys.iter().map(|k| (k.tenant.clone(), k.key.clone())).collect(),
            ),
            readiness: readiness.clone(),
            metrics: metrics.clone(),
            max_batch: config.limits.api_max_batch,
            max_body_bytes: config.limits.api_max_body_bytes,
            idempotency,
            bridges: bridges.clone(),
            bridge_tenant_config: config.bridges.tenant_config,
        };
        let mut router = http::router(state).merge(page::router(page)).into_router(config.limits.api_max_batch);
        match &admin {
            Some(admin) => {
                tracing::info!("admin view on: {}", admin.describe());
                router = router.merge(admin::ui::router());
            }
            None => tracing::info!("admin view off: set ADMIN_USERNAME and ADMIN_PASSWORD_HASH to serve it at /admin/"),
        }
        // Outermost first: CORS, then socket.io-client's bundle (static files under the
        // Socket.IO path, which must not count as handshakes), then the session front, then
        // Socket.IO (which takes its own path and passes everything else to the routes).
        let bundle =
            axum::middleware::from_fn_with_state(BundlePaths::new(&config.transport.path), page::bundle::serve);
        let router = router.layer(layer).layer(sessions.layer()).layer(bundle).layer(cors(&config.cors_origins)?);
        sessions.serve_through(router.clone());
        let listener = server::listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let served =
            Box::new(ServedBy { io, engine, admin, bridges, backends, cluster_tasks: Mutex::new(cluster_tasks) });
        let serve_options =
            ServeOptions { http: config.http.clone(), trusted_proxies: config.trusted_proxies.clone(), metrics };
        Ok(Self {
            listener,
            router,
            served,
            readiness,
            serve_options,
            shutdown_timeout: config.shutdown_timeout,
            shutdown_delay: config.shutdown_delay,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains: `/readyz` and new Socket.IO sessions turn
    /// 503 while the node keeps answering for `SHUTDOWN_DELAY` (so a load balancer notices), then
    /// every socket is closed so its client reconnects elsewhere, the listener stops accepting,
    /// and in-flight HTTP requests get up to the shutdown timeout to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr = self.local_addr();
        let tasks: Vec<JoinHandle<()>> = self.served.spawn_tasks();
        let (stop_accepting, accepting_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(server::serve(self.listener, self.router, self.serve_options, async move {
            let _ = accepting_stopped.await;
        }));
        tracing::info!(%addr, namespaces = ?self.served.namespaces(), "listening");

        tokio::select! {
            () = shutdown => {}
            result = &mut server => {
                tasks.iter().for_each(JoinHandle::abort);
                result.context("the server task failed")?;
                anyhow::bail!("the server stopped on its own");
            }
        }

        tracing::info!(delay_ms = self.shutdown_delay.as_millis() as u64, "shutting down: draining connections");
        self.readiness.start_draining();
        tokio::time::sleep(self.shutdown_delay).await;
        if tokio::time::timeout(self.shutdown_timeout, self.served.close()).await.is_err() {
            tracing::warn!("closing sockets took longer than the shutdown timeout");
        }
        let _ = stop_accepting.send(());
        // Requests still in flight (a publish waiting for the bus) finish before the background
        // tasks (the bus among them) stop: what the API accepted has been sent on.
        let served = tokio::time::timeout(self.shutdown_timeout, &mut server).await;
        tasks.iter().for_each(JoinHandle::abort);
        match served {
            Ok(result) => result.context("the server task failed")?,
            Err(_) => {
                tracing::warn!("in-flight requests outlived the shutdown timeout; stopping anyway");
                server.abort();
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The Engine.IO settings of the config, on a builder of any adapter.
fn socket_io<A: Adapter>(builder: SocketIoBuilder<A>, config: &Config) -> SocketIoBuilder<A> {
    let transport = &config.transport;
    builder
        .req_path(transport.path.clone())
        .connect_timeout(transport.connect_timeout)
        .ping_interval(transport.ping_interval)
        .ping_timeout(transport.ping_timeout)
        .upgrade_timeout(transport.upgrade_timeout)
        .max_payload(transport.max_http_buffer_size)
        .ws_max_message_size(usize::try_from(transport.max_http_buffer_size).unwrap_or(usize::MAX))
        .max_buffer_size(transport.max_buffer_size)
        .ws_read_buffer_size(WS_READ_BUFFER_SIZE)
        .transports([TransportType::Polling, TransportType::Websocket])
}

/// CORS for the polling transport and the API: the listed origins, with credentials (cookies),
/// never a wildcard.
fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("CORS_ORIGINS: `{o}` is not a valid origin")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::HeaderName::from_static("x-api-key")]))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::spec::RateLimit;

    fn with_override(path: &str, event: &str, max: u32, per: Duration) -> anyhow::Result<Vec<NamespaceSpec>> {
        let mut config = Config::for_tests("s", "k");
        config.rate_limit_overrides.entry(path.into()).or_default().insert(event.into(), RateLimit { max, per });
        load_specs(&config)
    }

    #[test]
    fn a_plain_endpoint_may_not_take_the_statistics_path_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = |path: &str| format!("namespace: {path}\ntransport: websocket\nauth: {{ required: false }}\n");
        std::fs::write(dir.path().join("feed.yaml"), endpoint("/feed")).unwrap();
        std::fs::write(dir.path().join("feed-stats.yaml"), endpoint("/feed/stats")).unwrap();
        let mut config = Config::for_tests("s", "k");
        config.namespaces = NamespaceSource::Dir(dir.path().to_path_buf());
        let err = load_specs(&config).unwrap_err().to_string();
        assert!(err.contains("`/feed/stats` is where `/feed`"), "{err}");
        std::fs::remove_file(dir.path().join("feed.yaml")).unwrap();
        assert!(load_specs(&config).is_ok(), "alone, `/feed/stats` is a path like any other");
    }

    #[test]
    fn the_admin_view_reserves_its_namespace_and_path_when_it_is_on() {
        assert!(check_endpoint_path("/admin", "/socket.io", false).is_ok());
        assert!(check_endpoint_path("/admin/feed", "/socket.io", true).is_err());
        assert!(check_endpoint_path("/administration", "/socket.io", true).is_ok());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin.yaml"), "namespace: /admin\nrooms:\n  a: { pattern: a }\n").unwrap();
        let mut config = Config::for_tests("s", "k");
        config.namespaces = NamespaceSource::Dir(dir.path().to_path_buf());
        assert!(load_specs(&config).is_ok(), "`/admin` is a namespace like any other while the view is off");
        config.admin = Some(crate::config::AdminConfig {
            username: "a".into(),
            password_hash: secrecy::SecretString::from("$2b$04$S2tRZKnsgKDUd5F0ZMX1mOyHpyfE7eQ6Mc71ek3xsB4q9d5pCngZ2"),
            readonly: false,
            mode: crate::config::AdminMode::Development,
        });
        let err = load_specs(&config).unwrap_err().to_string();
        assert!(err.contains("admin.yaml") && err.contains("the admin view's"), "{err}");
    }

    #[test]
    fn rate_limit_overrides_replace_the_specs_and_are_checked() {
        let specs = with_override("/workflow", "ping", 3, Duration::from_secs(60)).unwrap();
        let workflow = specs.iter().find(|s| s.path == "/workflow").unwrap();
        let ping = workflow.events["ping"].rate_limit.unwrap();
        assert_eq!((ping.max, ping.per), (3, Duration::from_secs(60)));
        let specs = with_override("/realtime", "connect", 50, Duration::from_secs(10)).unwrap();
        let realtime = specs.iter().find(|s| s.path == "/realtime").unwrap();
        assert_eq!(realtime.auth.connections_per_ip, Some(RateLimit { max: 50, per: Duration::from_secs(10) }));
        let err = with_override("/workflow", "pong", 3, Duration::from_secs(60)).unwrap_err().to_string();
        assert!(err.contains("has no event `pong`"), "{err}");
        let err = with_override("/nope", "ping", 3, Duration::from_secs(60)).unwrap_err().to_string();
        assert!(err.contains("no namespace `/nope`"), "{err}");
        let err = with_override("/workflow", "ping", 0, Duration::from_secs(60)).unwrap_err().to_string();
        assert!(err.contains("max >= 1"), "{err}");
    }
}
