//! Typed configuration: defaults in code, overridden by an optional YAML file, overridden by
//! environment variables (the names the seed gateways already used).
//!
//! This is the only module that reads the process environment. Everything else receives a
//! [`Config`]; tests build one in code with [`Config::for_tests`] and never touch the environment.
//! Secrets are [`SecretString`]s so that no `Debug` or log line can print them.
//!
//! `Config::from_sources` reads the sections in turn, each from its own submodule, which owns
//! the section's type, its variables, defaults and checks: `http` (the listener, CORS, proxies,
//! connection caps), `cluster` (Redis), `auth` (token key, dev mode, API keys, cookie), `admin`,
//! `transport` (Engine.IO), `limits`, `native` (the plain WebSocket front), `logging`, `bridges`
//! (outbound bridges: seed 003's provider configurations, where they may connect), `sinks`
//! (where bridges' received messages go: PostgreSQL, Kafka), `backends` (where specs' `forward`
//! actions call: `BACKENDS_FILE`), and
//! `events` (the backend event stream's bounds, fixed values). Around them: `variables` (every
//! variable read, and misspellings), `file` (the config file), `env` (typed lookups of one
//! variable); durations and rates are parsed by `crate::spec::durations`,
//! the syntax specs share.

mod admin;
mod auth;
mod backends;
mod bridges;
mod cluster;
mod env;
mod events;
mod file;
mod http;
mod limits;
mod logging;
mod native;
mod sinks;
#[cfg(test)]
mod tests;
mod transport;
mod variables;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use secrecy::SecretString;

pub use crate::net::outbound::AllowedHosts;
pub use crate::net::server::{HttpConfig, MIN_HEADER_BYTES};
pub use crate::net::tls::OutboundTls;
pub use crate::telemetry::LogFormat;
pub use admin::{AdminConfig, AdminMode};
pub use auth::{JwtConfig, JwtKey, PublicKeyAlgorithm, TenantApiKey};
pub use backends::{BackendConfig, BackendKind, BackendsConfig, parse_backends_file};
pub use bridges::{
    BridgeAuth, BridgeConfig, BridgeProtocol, BridgesConfig, CustomEvents, HandlingStrategy, MessageHandling,
    ProviderConfig, ProviderJson, ProviderMode, REDACTED, is_bridge_name, parse_bridges_file,
};
pub use cluster::{RedisConfig, RedisMode};
pub use events::EventStreamConfig;
pub use limits::{IDEMPOTENCY_MAX_BYTES, IDEMPOTENCY_MAX_ENTRIES, LimitsConfig, PUBLISH_CALLS_BUFFERED};
pub use logging::log_filter;
pub use native::NativeConfig;
pub use sinks::SinksConfig;
pub use transport::TransportConfig;
pub use variables::VARIABLES;

/// Durations and rates, written the same in specs and settings (they live in `spec`).
pub use crate::spec::durations::{deserialize_duration, parse_duration, parse_rate};

use crate::{net::client_ip::TrustedProxies, spec::RateLimit};
use env::Env;
use file::FileConfig;

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP listener binds (`HOST`, `PORT`).
    pub listen: SocketAddr,
    /// Browser origins allowed by CORS (`CORS_ORIGINS`, alias `ALLOWED_ORIGINS`), exact matches.
    pub cors_origins: Vec<String>,
    /// How client tokens are verified.
    pub jwt: JwtConfig,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The cookie a token is read from, in namespaces whose spec allows cookies
    /// (`AUTH_COOKIE_NAME`).
    pub auth_cookie_name: String,
    /// Keys accepted by the HTTP API for every tenant (`API_KEYS`).
    pub api_keys: Vec<SecretString>,
    /// Keys accepted by the HTTP API and the plain WebSocket endpoints for one tenant each
    /// (`TENANT_API_KEYS`); none is also in `api_keys` or another tenant's.
    pub tenant_api_keys: Vec<TenantApiKey>,
    /// Cluster membership over Redis (`REDIS_URL`, or `REDIS_HOST`/`REDIS_PORT`); `None` runs one
    /// node on the in-memory adapter.
    pub redis: Option<RedisConfig>,
    /// True when `api_keys` holds a random demo key made because dev mode had none.
    pub api_key_generated: bool,
    /// True when no signing key was configured: the gateway runs on a random secret and says so.
    pub dev_mode: bool,
    /// Engine.IO transport settings.
    pub transport: TransportConfig,
    /// Connection-level protection: timeouts and caps that apply before a request is understood.
    pub http: HttpConfig,
    /// The plain WebSocket front (seed 001's hub protocol).
    pub native: NativeConfig,
    /// Per-socket limits the engine enforces for every namespace.
    pub limits: LimitsConfig,
    /// Outbound bridges (`BRIDGES_FILE`), where they may connect (`BRIDGE_ALLOWED_HOSTS`) and
    /// the CAs they trust besides the compiled-in ones (`BRIDGE_CA_FILE`).
    pub bridges: BridgesConfig,
    /// Backends specs forward client events to (`BACKENDS_FILE`); they connect out under
    /// `bridges.allowed_hosts` (`BRIDGE_ALLOWED_HOSTS`) too.
    pub backends: BackendsConfig,
    /// The backend event stream's history and per-consumer bounds (fixed; tests shrink them).
    pub event_stream: EventStreamConfig,
    /// How often idle rate-limiter entries are dropped (`WS_CLEANUP_INTERVAL`).
    pub cleanup_interval: Duration,
    /// Period of `tenant_stats` and other `metrics_interval` timers (`WS_METRICS_INTERVAL`).
    pub metrics_interval: Duration,
    /// Where the namespace specs come from.
    pub namespaces: NamespaceSource,
    /// Per-namespace, per-event rate limits that replace the spec's (config file only).
    pub rate_limit_overrides: BTreeMap<String, BTreeMap<String, RateLimit>>,
    /// The admin view on `/admin` (`ADMIN_USERNAME`, `ADMIN_PASSWORD_HASH`); `None`: not mounted.
    pub admin: Option<AdminConfig>,
    /// Log filter (`LOG_LEVEL`), in `tracing_subscriber::EnvFilter` syntax.
    pub log_level: String,
    /// Log line format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Upper bound on a graceful shutdown (`SHUTDOWN_TIMEOUT`).
    pub shutdown_timeout: Duration,
    /// How long a draining node keeps answering (readiness 503) before it closes its sockets
    /// (`SHUTDOWN_DELAY`), so a load balancer can take it out of rotation first.
    pub shutdown_delay: Duration,
    /// What the operator should hear about the configuration (environment variables that look
    /// misspelt), said once logging is up.
    pub warnings: Vec<String>,
}

/// Where namespace specs are loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceSource {
    /// The specs compiled into the binary (`namespaces/` at build time).
    Embedded,
    /// Every `*.yaml`/`*.yml` file in a folder (`NAMESPACES_DIR`).
    Dir(PathBuf),
}

impl Config {
    /// Reads the configuration of a real process: the file named by `--config` or `CONFIG_FILE`
    /// (if any), then the environment.
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let present: Vec<String> = std::env::vars_os()
            .filter_map(|(name, value)| Some(name.into_string().ok()?).filter(|_| !value.is_empty()))
            .collect();
        let file_path = config_file.map(Path::to_path_buf).or_else(|| env("CONFIG_FILE").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => file::read(path)?,
            None => FileConfig::default(),
        };
        Self::from_sources(file, &present, env)
    }

    /// Builds a config from a parsed file and an environment lookup; `env` wins over `file`.
    /// `present` names the variables the environment has, to find misspelt ones.
    ///
    /// The sections are read in a fixed order, and the first error found is the one reported.
    fn from_sources(
        file: FileConfig,
        present: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let env = Env(&env);
        let misspelt = variables::misspelt(present);
        let listen = http::listen(&env, &file)?;
        let redis = RedisConfig::from_sources(&env, &file)?;
        let cors_origins = http::cors_origins(&env, &file)?;
        let auth::Credentials { jwt, dev_mode, api_keys, api_key_generated, tenant_api_keys } =
            auth::Credentials::from_sources(&env, &file, &misspelt)?;
        let trusted_proxies = http::trusted_proxies(&env, &file)?;
        let auth_cookie_name = auth::cookie_name(&env, &file)?;
        let admin = AdminConfig::from_sources(&env, &file)?;
        let mut transport = TransportConfig::from_sources(&env, &file)?;
        let http = HttpConfig::from_sources(&env, &file)?;
        let limits = LimitsConfig::from_sources(&env, &file)?;
        transport.size_queues(&env, &file, &limits)?;
        let native = NativeConfig::from_sources(&env, &file, &limits)?;
        let namespaces = match env.get("NAMESPACES_DIR").map(PathBuf::from).or_else(|| file.namespaces_dir.clone()) {
            Some(dir) => NamespaceSource::Dir(dir),
            None => NamespaceSource::Embedded,
        };
        let (log_level, log_format) = logging::from_sources(&env, &file)?;
        let bridges = BridgesConfig::from_sources(&env, &file)?;
        let backends = BackendsConfig::from_sources(&env, &file)?;
        backends.check_sinks(&bridges.sinks)?;

        Ok(Config {
            listen,
            cors_origins,
            jwt,
            trusted_proxies,
            auth_cookie_name,
            api_keys,
            tenant_api_keys,
            redis,
            api_key_generated,
            dev_mode,
            transport,
            http,
            native,
            limits,
            bridges,
            backends,
            event_stream: EventStreamConfig::default(),
            cleanup_interval: env.duration("WS_CLEANUP_INTERVAL", file.ws_cleanup_interval, 300_000)?,
            metrics_interval: env.duration("WS_METRICS_INTERVAL", file.ws_metrics_interval, 60_000)?,
            namespaces,
            admin,
            log_level,
            log_format,
            shutdown_timeout: env.duration("SHUTDOWN_TIMEOUT", file.shutdown_timeout, 10_000)?,
            shutdown_delay: env.duration("SHUTDOWN_DELAY", file.shutdown_delay, 0)?,
            rate_limit_overrides: file.rate_limits.unwrap_or_default(),
            warnings: variables::warnings(&misspelt),
        })
    }

    /// A config for tests: loopback, port 0, a known secret and API key, fast timers.
    pub fn for_tests(jwt_secret: &str, api_key: &str) -> Self {
        let mut config =
            Self::from_sources(FileConfig::default(), &[], |_| None).expect("the defaults are a valid config");
        config.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        config.jwt.key = JwtKey::Hs256(SecretString::from(jwt_secret.to_string()));
        config.dev_mode = false;
        config.api_keys = vec![SecretString::from(api_key.to_string())];
        config.api_key_generated = false;
        config.transport.ping_interval = Duration::from_millis(300);
        config.transport.ping_timeout = Duration::from_millis(1000);
        config.shutdown_timeout = Duration::from_secs(2);
        config
    }
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
