//! Typed configuration: defaults in code, overridden by an optional YAML file, overridden by
//! environment variables (the names the seed gateways already used).
//!
//! This is the only module that reads the process environment. Everything else receives a
//! [`Config`]; tests build one in code with [`Config::for_tests`] and never touch the environment.
//! Secrets are [`SecretString`]s so that no `Debug` or log line can print them.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::Deserialize;

use crate::{client_ip::TrustedProxies, spec::RateLimit};

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
    /// Keys accepted by the HTTP API (`API_KEYS`).
    pub api_keys: Vec<SecretString>,
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

/// Every environment variable the gateway reads, as the README's configuration table lists
/// them. A variable that is none of these but looks like one is taken for a misspelling.
pub const VARIABLES: &[&str] = &[
    "PORT",
    "HOST",
    "CORS_ORIGINS",
    "ALLOWED_ORIGINS",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY",
    "API_KEYS",
    "AUTH_COOKIE_NAME",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_PREFIX",
    "REDIS_BROADCAST_CHANNEL",
    "REDIS_EMITTER_KEY",
    "TRUSTED_PROXIES",
    "WS_PING_INTERVAL",
    "WS_PING_TIMEOUT",
    "WS_UPGRADE_TIMEOUT",
    "WS_MAX_HTTP_BUFFER_SIZE",
    "WS_MAX_EVENT_SIZE",
    "WS_MAX_BUFFER_SIZE",
    "WS_MAX_BUFFER_BYTES",
    "WS_WRITE_TIMEOUT",
    "WS_CONNECT_TIMEOUT",
    "WS_HANDSHAKE_RATE_LIMIT",
    "WS_BIND_SESSION_TO_IP",
    "SOCKETIO_PATH",
    "ALLOW_EIO3",
    "HTTP_HEADER_TIMEOUT",
    "HTTP_MAX_HEADER_SIZE",
    "MAX_CONNECTIONS_PER_IP",
    "WS_MAX_ROOMS_PER_SOCKET",
    "WS_MAX_EVENTS_PER_SECOND",
    "WS_CLEANUP_INTERVAL",
    "WS_METRICS_INTERVAL",
    "WS_NATIVE_PING_INTERVAL",
    "WS_NATIVE_PONG_WAIT",
    "WS_NATIVE_SEND_BUFFER",
    "WS_NATIVE_SEND_BUFFER_BYTES",
    "WS_NATIVE_MAX_MESSAGE_SIZE",
    "API_MAX_BODY_SIZE",
    "API_MAX_BATCH",
    "STATE_MAX_BYTES_PER_TENANT",
    "STATE_MAX_BYTES",
    "NAMESPACES_DIR",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD_HASH",
    "ADMIN_READONLY",
    "ADMIN_MODE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "SHUTDOWN_TIMEOUT",
    "SHUTDOWN_DELAY",
    "CONFIG_FILE",
];

/// Settings about client tokens and API keys: a gateway given any of them is meant to verify
/// real credentials, so it never falls back to dev mode's random secret and demo key.
const AUTH_VARIABLES: &[&str] = &[
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY",
    "API_KEYS",
];

/// The environment variables in `present` that are no setting but look like one: each with the
/// setting it probably meant.
fn misspelt_variables(present: &[String]) -> Vec<(&str, &'static str)> {
    let mut misspelt: Vec<(&str, &'static str)> = present
        .iter()
        .filter_map(|name| Some((name.as_str(), crate::spec::suggest::closest_variable(name, VARIABLES)?)))
        .collect();
    misspelt.sort();
    misspelt
}

/// How this node joins a cluster through Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`; a secret, since it may hold a password.
    pub url: SecretString,
    /// Where it points, without credentials, for logs and `/readyz` (`redis://host:port`).
    pub display: String,
    /// Prefix of the gateway's own channels and keys (`REDIS_PREFIX`), so several gateway clusters
    /// (or test runs) can share one Redis.
    pub prefix: String,
    /// The key of `@socket.io/redis-emitter` publishers to listen to (`REDIS_EMITTER_KEY`, default
    /// `socket.io`); empty turns that input off.
    pub emitter_key: String,
    /// The Go hub's broadcast channel (`REDIS_BROADCAST_CHANNEL`, default `ws:broadcast:all`);
    /// empty turns that input off.
    pub broadcast_channel: String,
}

/// The admin view: the official Socket.IO Admin UI's protocol on namespace `/admin`, and the UI
/// itself at `/admin/`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `ADMIN_USERNAME`.
    pub username: String,
    /// `ADMIN_PASSWORD_HASH`: the password's bcrypt hash, as the official server takes it.
    pub password_hash: SecretString,
    /// `ADMIN_READONLY`: the UI shows, and cannot disconnect anyone.
    pub readonly: bool,
    /// `ADMIN_MODE`.
    pub mode: AdminMode,
}

/// How much the admin view shows, in the official server's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminMode {
    /// Every socket with its rooms, live, plus the counts (the default).
    Development,
    /// Counts only (servers, clients, namespaces, connections per second): nothing per socket is
    /// sent, for nodes with too many sockets to list.
    Production,
}

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The key, and with it the one algorithm accepted.
    pub key: JwtKey,
    /// Required `iss` claim, when set (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud` claim, when set (`JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` (`JWT_LEEWAY`), default none, as the seeds' `jsonwebtoken`.
    pub leeway: Duration,
}

/// The verification key. The algorithm is pinned by the key: a token signed any other way is refused.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 with a shared secret (`JWT_SECRET`, or a random one in dev mode).
    Hs256(SecretString),
    /// RS256 or ES256 with a PEM public key (`JWT_PUBLIC_KEY` or `JWT_PUBLIC_KEY_FILE`).
    Public {
        /// RS256 or ES256.
        algorithm: PublicKeyAlgorithm,
        /// The PEM-encoded public key.
        pem: String,
    },
}

/// Asymmetric algorithms the gateway verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PublicKeyAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// Engine.IO settings, named after the seed's `@WebSocketGateway` options.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// `WS_PING_INTERVAL`.
    pub ping_interval: Duration,
    /// `WS_PING_TIMEOUT`.
    pub ping_timeout: Duration,
    /// `WS_UPGRADE_TIMEOUT`.
    pub upgrade_timeout: Duration,
    /// `WS_MAX_HTTP_BUFFER_SIZE`: the largest message or polling body, in bytes. Beyond it the
    /// transport closes the connection, as socket.io does.
    pub max_http_buffer_size: u64,
    /// `WS_MAX_BUFFER_SIZE`: packets queued per session beyond which emits to it are dropped and
    /// it is ended (by default eight full publish batches).
    pub max_buffer_size: usize,
    /// `WS_MAX_BUFFER_BYTES`: bytes queued per session and not yet written beyond which it is
    /// ended as a slow consumer (by default four full publish bodies).
    pub max_buffer_bytes: u64,
    /// `SOCKETIO_PATH`: where Socket.IO is served (socket.io-client's `path` option).
    pub path: String,
    /// `ALLOW_EIO3`: whether socket.io-client 2.x (Engine.IO protocol 3) may connect.
    pub allow_eio3: bool,
    /// `WS_CONNECT_TIMEOUT`: how long an Engine.IO session may stay without a namespace.
    pub connect_timeout: Duration,
    /// `WS_HANDSHAKE_RATE_LIMIT` (`max/per`, `0` turns it off): new Engine.IO sessions per client
    /// address.
    pub handshake_limit: Option<RateLimit>,
    /// `WS_BIND_SESSION_TO_IP`: requests naming a session (`sid`) must come from the address
    /// that opened it.
    pub bind_sessions_to_ip: bool,
}

/// Protection of the listener and its connections, whatever they carry.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `HTTP_HEADER_TIMEOUT`: time a client has to send a request's headers; an idle keep-alive
    /// connection is closed after it too.
    pub header_timeout: Duration,
    /// `HTTP_MAX_HEADER_SIZE`: the largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// `MAX_CONNECTIONS_PER_IP` (0: no cap): open connections one peer address may hold;
    /// trusted proxies are not capped.
    pub max_connections_per_ip: usize,
    /// `WS_WRITE_TIMEOUT`: a write to a client must complete within it, or the connection is cut.
    pub write_timeout: Duration,
}

/// Settings of plain WebSocket endpoints (specs with `transport: websocket`), named after the Go
/// hub's.
#[derive(Debug, Clone)]
pub struct NativeConfig {
    /// `WS_NATIVE_PING_INTERVAL`: how often a ping frame is sent.
    pub ping_interval: Duration,
    /// `WS_NATIVE_PONG_WAIT`: how long a connection may stay silent (no pong, no message).
    pub pong_wait: Duration,
    /// `WS_NATIVE_SEND_BUFFER`: messages queued or being written per connection; beyond, it is
    /// closed. At least `API_MAX_BATCH`.
    pub send_buffer: usize,
    /// `WS_NATIVE_SEND_BUFFER_BYTES`: the same in bytes. At least `API_MAX_BODY_SIZE`.
    pub send_buffer_bytes: usize,
    /// `WS_NATIVE_MAX_MESSAGE_SIZE`: the largest client message; beyond, close 1009.
    pub max_message_bytes: usize,
}

/// Publish calls of the largest size the API accepts that a connection's queue holds by default
/// (`WS_MAX_BUFFER_SIZE` and `WS_MAX_BUFFER_BYTES` on Socket.IO, `WS_NATIVE_SEND_BUFFER` and
/// `WS_NATIVE_SEND_BUFFER_BYTES` on the plain endpoint): several publishers may burst at once,
/// and a client that keeps reading must get every event.
pub const PUBLISH_CALLS_BUFFERED: usize = 4;

/// The smallest head limit hyper accepts (its read buffer cannot be smaller).
pub const MIN_HEADER_BYTES: usize = 8192;

/// Limits the engine applies to every socket, whatever its namespace.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Rooms one socket may be in (`WS_MAX_ROOMS_PER_SOCKET`).
    pub max_rooms_per_socket: usize,
    /// Default largest client event payload in bytes (`WS_MAX_EVENT_SIZE`); a spec may lower or
    /// raise it per event. Larger events get a validation error; the connection stays.
    pub max_event_bytes: usize,
    /// Client events per second per socket, all events together (`WS_MAX_EVENTS_PER_SECOND`).
    pub events_per_second: u32,
    /// Largest HTTP API body in bytes (`API_MAX_BODY_SIZE`).
    pub api_max_body_bytes: usize,
    /// Most events in one publish call (`API_MAX_BATCH`).
    pub api_max_batch: usize,
    /// Last-known state one tenant may hold in one store, in bytes (`STATE_MAX_BYTES_PER_TENANT`).
    pub state_bytes_per_tenant: usize,
    /// Last-known state of all stores together, in bytes (`STATE_MAX_BYTES`).
    pub state_bytes: usize,
}

/// Where namespace specs are loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceSource {
    /// The specs compiled into the binary (`namespaces/` at build time).
    Embedded,
    /// Every `*.yaml`/`*.yml` file in a folder (`NAMESPACES_DIR`).
    Dir(PathBuf),
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// The optional config file, every field optional. Environment variables win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<IpAddr>,
    port: Option<u16>,
    cors_origins: Option<StringList>,
    jwt_secret: Option<String>,
    jwt_algorithm: Option<String>,
    jwt_public_key: Option<String>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_leeway: Option<DurationSetting>,
    api_keys: Option<StringList>,
    trusted_proxies: Option<StringList>,
    redis_url: Option<String>,
    redis_host: Option<String>,
    redis_port: Option<u16>,
    redis_password: Option<String>,
    redis_db: Option<u32>,
    redis_prefix: Option<String>,
    redis_emitter_key: Option<String>,
    redis_broadcast_channel: Option<String>,
    auth_cookie_name: Option<String>,
    ws_ping_interval: Option<DurationSetting>,
    ws_ping_timeout: Option<DurationSetting>,
    ws_upgrade_timeout: Option<DurationSetting>,
    ws_max_http_buffer_size: Option<u64>,
    ws_max_buffer_size: Option<usize>,
    ws_max_buffer_bytes: Option<u64>,
    socketio_path: Option<String>,
    allow_eio3: Option<bool>,
    ws_connect_timeout: Option<DurationSetting>,
    ws_handshake_rate_limit: Option<String>,
    ws_bind_session_to_ip: Option<bool>,
    ws_write_timeout: Option<DurationSetting>,
    http_header_timeout: Option<DurationSetting>,
    http_max_header_size: Option<usize>,
    max_connections_per_ip: Option<usize>,
    shutdown_delay: Option<DurationSetting>,
    ws_native_ping_interval: Option<DurationSetting>,
    ws_native_pong_wait: Option<DurationSetting>,
    ws_native_send_buffer: Option<usize>,
    ws_native_send_buffer_bytes: Option<usize>,
    ws_native_max_message_size: Option<usize>,
    ws_max_rooms_per_socket: Option<usize>,
    ws_max_event_size: Option<usize>,
    ws_max_events_per_second: Option<u32>,
    ws_cleanup_interval: Option<DurationSetting>,
    ws_metrics_interval: Option<DurationSetting>,
    api_max_body_size: Option<usize>,
    api_max_batch: Option<usize>,
    state_max_bytes_per_tenant: Option<usize>,
    state_max_bytes: Option<usize>,
    namespaces_dir: Option<PathBuf>,
    rate_limits: Option<BTreeMap<String, BTreeMap<String, RateLimit>>>,
    admin_username: Option<String>,
    admin_password_hash: Option<String>,
    admin_readonly: Option<bool>,
    admin_mode: Option<AdminMode>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    shutdown_timeout: Option<DurationSetting>,
}

/// A list in the config file, written as YAML (`[a, b]`) or as the environment variable's
/// comma-separated text (`a,b`), so a file can mirror the env names and values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StringList {
    List(Vec<String>),
    Text(String),
}

impl StringList {
    fn into_vec(self, split: impl Fn(String) -> Vec<String>) -> Vec<String> {
        match self {
            StringList::List(items) => items,
            StringList::Text(text) => split(text),
        }
    }
}

/// A duration written as milliseconds (`60000`, the seeds' style) or with a unit (`60s`, `1m`).
#[derive(Debug, Clone, Copy)]
struct DurationSetting(Duration);

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_duration(d).map(Self)
    }
}

/// Deserializes a duration written as milliseconds (`60000`) or with a unit (`60s`), for config
/// files and specs alike.
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// Parses `60000` (milliseconds) or a humantime duration such as `60s`, `1m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s).map_err(|e| crate::parse_errors::duration(s, &e))
}

/// Parses a rate such as `600/1m` (600 per minute, burst 600); `0` or `off` turns it off.
pub fn parse_rate(s: &str) -> Result<Option<RateLimit>, String> {
    let s = s.trim();
    if s == "0" || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (max, per) = s.split_once('/').ok_or_else(|| format!("`{s}` is not a rate such as 600/1m (or 0 for none)"))?;
    let max: u32 = max.trim().parse().map_err(|_| format!("`{max}` in `{s}` is not a count"))?;
    let per = parse_duration(per)?;
    if max == 0 || per.is_zero() {
        return Err(format!("`{s}` needs a count and a period above zero (or 0 for none)"));
    }
    Ok(Some(RateLimit { max, per }))
}

/// `LOG_LEVEL`, checked: a level (`error`..`trace`, `off`, or the Node/NestJS names `log`,
/// `verbose`, `warning`, `fatal`), or `tracing` directives such as `info,realtime_gateway=debug`.
/// A bare word that is not a level would be read by `tracing` as a module name, turning every
/// other log off: that is refused.
pub fn log_filter(value: &str) -> Result<String, String> {
    let mut directives = Vec::new();
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.contains('=') {
            directives.push(directive.to_string());
            continue;
        }
        let level = match directive.to_ascii_lowercase().as_str() {
            "log" => "info",
            "verbose" => "trace",
            "warning" => "warn",
            "fatal" | "critical" => "error",
            level @ ("error" | "warn" | "info" | "debug" | "trace" | "off") => level,
            _ => {
                return Err(format!(
                    "`{directive}` is not a level (error, warn, info, debug, trace, off); to set a module's level write module=level"
                ));
            }
        }
        .to_string();
        directives.push(level);
    }
    if directives.is_empty() {
        return Err("empty: set a level such as info".into());
    }
    let filter = directives.join(",");
    tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| format!("`{value}` is not a log filter: {e}"))?;
    Ok(filter)
}

/// `SOCKETIO_PATH`: a path starting with `/`, without a trailing one (`/socket.io`).
fn socketio_path(value: Option<String>) -> anyhow::Result<String> {
    let path = value.unwrap_or_else(|| "/socket.io".to_string());
    let trimmed = path.trim().trim_end_matches('/');
    if !trimmed.starts_with('/') || trimmed.len() < 2 || trimmed.contains(['?', '#', ' ']) {
        bail!("SOCKETIO_PATH: `{path}` must be a path such as /socket.io");
    }
    Ok(trimmed.to_string())
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
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                serde_saphyr::from_str::<FileConfig>(&text).map_err(|e| file_error(path, &text, &e))?
            }
            None => FileConfig::default(),
        };
        Self::from_sources(file, &present, env)
    }

    /// Builds a config from a parsed file and an environment lookup; `env` wins over `file`.
    /// `present` names the variables the environment has, to find misspelt ones.
    fn from_sources(
        file: FileConfig,
        present: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let misspelt = misspelt_variables(present);
        let duration = |name: &str, file: Option<DurationSetting>, default_ms: u64| -> anyhow::Result<Duration> {
            match env(name) {
                Some(v) => parse_duration(&v).map_err(|e| anyhow::anyhow!("{name}: {e}")),
                None => Ok(file.map(|d| d.0).unwrap_or(Duration::from_millis(default_ms))),
            }
        };
        fn number<T: std::str::FromStr>(
            env: &impl Fn(&str) -> Option<String>,
            name: &str,
            file: Option<T>,
            default: T,
        ) -> anyhow::Result<T> {
            match env(name) {
                Some(v) => v.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{name}: `{v}` is not {}",
                        crate::parse_errors::expected(std::any::type_name::<T>())
                    )
                }),
                None => Ok(file.unwrap_or(default)),
            }
        }
        fn boolean(
            env: &impl Fn(&str) -> Option<String>,
            name: &str,
            file: Option<bool>,
            default: bool,
        ) -> anyhow::Result<bool> {
            match env(name).map(|v| v.trim().to_ascii_lowercase()) {
                Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => bail!("{name}: `{v}` is not true or false"),
                None => Ok(file.unwrap_or(default)),
            }
        }
        let list = |v: String| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };

        let host: IpAddr = match env("HOST") {
            Some(h) => h.parse().map_err(|_| anyhow::anyhow!("HOST: `{h}` is not an IP address"))?,
            None => file.host.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        };
        let port = number(&env, "PORT", file.port, 3000u16)?;
        let redis = redis_config(&file, &env)?;

        let cors_origins = env("CORS_ORIGINS")
            .or_else(|| env("ALLOWED_ORIGINS"))
            .map(list)
            .or(file.cors_origins.map(|origins| origins.into_vec(list)))
            .unwrap_or_else(|| vec!["http://localhost:3000".to_string()]);
        if cors_origins.iter().any(|o| o == "*") {
            bail!("CORS_ORIGINS: `*` is not allowed, because credentials are allowed; list the origins instead");
        }

        let secret = env("JWT_SECRET").or(file.jwt_secret);
        let public_pem = match (
            env("JWT_PUBLIC_KEY").or(file.jwt_public_key),
            env("JWT_PUBLIC_KEY_FILE").map(PathBuf::from).or(file.jwt_public_key_file),
        ) {
            (Some(pem), _) => Some(pem.replace("\\n", "\n")),
            (None, Some(path)) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("JWT_PUBLIC_KEY_FILE: cannot read {}", path.display()))?,
            ),
            (None, None) => None,
        };
        let algorithm = env("JWT_ALGORITHM").or(file.jwt_algorithm);
        // The first token setting given, for when no key is.
        let token_setting = [
            ("JWT_ISSUER", file.jwt_issuer.is_some()),
            ("JWT_AUDIENCE", file.jwt_audience.is_some()),
            ("JWT_LEEWAY", file.jwt_leeway.is_some()),
        ]
        .into_iter()
        .find(|(name, in_file)| *in_file || env(name).is_some())
        .map(|(name, _)| name);
        let (key, dev_mode) = match (secret, public_pem) {
            (Some(_), Some(_)) => bail!("set either JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256/ES256), not both"),
            (Some(secret), None) => {
                if let Some(alg) = algorithm.as_deref().filter(|a| !a.eq_ignore_ascii_case("HS256")) {
                    bail!("JWT_ALGORITHM is {alg}, but JWT_SECRET is an HS256 secret; set JWT_PUBLIC_KEY for {alg}");
                }
                (JwtKey::Hs256(SecretString::from(secret)), false)
            }
            (None, Some(pem)) => {
                let algorithm = match algorithm.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    Some("RS256") => PublicKeyAlgorithm::RS256,
                    Some("ES256") => PublicKeyAlgorithm::ES256,
                    Some(other) => bail!("JWT_ALGORITHM: `{other}` is not supported with a public key (RS256, ES256)"),
                    None => bail!(
                        "JWT_PUBLIC_KEY is set: set JWT_ALGORITHM to RS256 or ES256 as well, so the algorithm is pinned"
                    ),
                };
                (JwtKey::Public { algorithm, pem }, false)
            }
            (None, None) => {
                no_auth_settings(algorithm.as_deref(), token_setting, &misspelt)?;
                (JwtKey::Hs256(SecretString::from(random_hex(32))), true)
            }
        };
        let jwt = JwtConfig {
            key,
            issuer: env("JWT_ISSUER").or(file.jwt_issuer),
            audience: env("JWT_AUDIENCE").or(file.jwt_audience),
            leeway: match env("JWT_LEEWAY") {
                // Seconds, as jsonwebtoken's clockTolerance, unless a unit is given.
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(secs) => Duration::from_secs(secs),
                    Err(_) => parse_duration(&v).map_err(|e| anyhow::anyhow!("JWT_LEEWAY: {e}"))?,
                },
                None => file.jwt_leeway.map(|d| d.0).unwrap_or(Duration::ZERO),
            },
        };

        let api_keys_given = env("API_KEYS").map(list).or(file.api_keys.map(|keys| keys.into_vec(list)));
        if api_keys_given.as_ref().is_some_and(Vec::is_empty) {
            bail!("API_KEYS is set but holds no key: list the keys, separated by commas");
        }
        let mut api_keys: Vec<SecretString> =
            api_keys_given.unwrap_or_default().into_iter().map(SecretString::from).collect();
        // Dev mode should be usable end to end with nothing configured, publish API included.
        let api_key_generated = dev_mode && api_keys.is_empty();
        if api_key_generated {
            api_keys.push(SecretString::from(format!("dev-{}", random_hex(16))));
        }

        let trusted_proxies =
            match env("TRUSTED_PROXIES").or_else(|| file.trusted_proxies.clone().map(|l| l.into_vec(list).join(","))) {
                Some(list) => TrustedProxies::parse(&list).map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))?,
                None => TrustedProxies::default(),
            };
        let auth_cookie_name =
            env("AUTH_COOKIE_NAME").or(file.auth_cookie_name.clone()).unwrap_or_else(|| "access_token".to_string());
        if !auth_cookie_name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("AUTH_COOKIE_NAME: `{auth_cookie_name}` is not a cookie name (letters, digits, `-`, `_`, `.`)");
        }

        let admin = match (
            env("ADMIN_USERNAME").or(file.admin_username.clone()),
            env("ADMIN_PASSWORD_HASH").or(file.admin_password_hash.clone()),
        ) {
            (None, None) => None,
            (Some(username), Some(hash)) => Some(AdminConfig {
                username,
                password_hash: admin_password_hash(hash)?,
                readonly: boolean(&env, "ADMIN_READONLY", file.admin_readonly, false)?,
                mode: match env("ADMIN_MODE").map(|m| m.trim().to_ascii_lowercase()) {
                    Some(m) if m == "development" => AdminMode::Development,
                    Some(m) if m == "production" => AdminMode::Production,
                    Some(m) => bail!("ADMIN_MODE: `{m}` is not development or production"),
                    None => file.admin_mode.unwrap_or(AdminMode::Development),
                },
            }),
            (Some(_), None) => bail!("ADMIN_USERNAME is set without ADMIN_PASSWORD_HASH: set both, or neither"),
            (None, Some(_)) => bail!("ADMIN_PASSWORD_HASH is set without ADMIN_USERNAME: set both, or neither"),
        };

        let mut transport = TransportConfig {
            ping_interval: duration("WS_PING_INTERVAL", file.ws_ping_interval, 25_000)?,
            ping_timeout: duration("WS_PING_TIMEOUT", file.ws_ping_timeout, 60_000)?,
            upgrade_timeout: duration("WS_UPGRADE_TIMEOUT", file.ws_upgrade_timeout, 10_000)?,
            max_http_buffer_size: number(&env, "WS_MAX_HTTP_BUFFER_SIZE", file.ws_max_http_buffer_size, 1_000_000u64)?,
            // Sized from the API's limits below.
            max_buffer_size: 0,
            max_buffer_bytes: 0,
            path: socketio_path(env("SOCKETIO_PATH").or(file.socketio_path))?,
            allow_eio3: boolean(&env, "ALLOW_EIO3", file.allow_eio3, true)?,
            connect_timeout: duration("WS_CONNECT_TIMEOUT", file.ws_connect_timeout, 10_000)?,
            handshake_limit: match env("WS_HANDSHAKE_RATE_LIMIT").or(file.ws_handshake_rate_limit) {
                Some(v) => parse_rate(&v).map_err(|e| anyhow::anyhow!("WS_HANDSHAKE_RATE_LIMIT: {e}"))?,
                None => Some(RateLimit { max: 600, per: Duration::from_secs(60) }),
            },
            bind_sessions_to_ip: boolean(&env, "WS_BIND_SESSION_TO_IP", file.ws_bind_session_to_ip, true)?,
        };
        let http = HttpConfig {
            header_timeout: duration("HTTP_HEADER_TIMEOUT", file.http_header_timeout, 10_000)?,
            max_header_bytes: number(&env, "HTTP_MAX_HEADER_SIZE", file.http_max_header_size, 16 * 1024usize)?,
            max_connections_per_ip: number(&env, "MAX_CONNECTIONS_PER_IP", file.max_connections_per_ip, 1000usize)?,
            write_timeout: duration("WS_WRITE_TIMEOUT", file.ws_write_timeout, 10_000)?,
        };
        if http.max_header_bytes < MIN_HEADER_BYTES {
            bail!("HTTP_MAX_HEADER_SIZE must be at least {MIN_HEADER_BYTES} bytes");
        }
        if http.header_timeout.is_zero() || http.write_timeout.is_zero() {
            bail!("HTTP_HEADER_TIMEOUT and WS_WRITE_TIMEOUT must be longer than zero");
        }
        let limits = LimitsConfig {
            max_rooms_per_socket: number(&env, "WS_MAX_ROOMS_PER_SOCKET", file.ws_max_rooms_per_socket, 100usize)?,
            max_event_bytes: number(&env, "WS_MAX_EVENT_SIZE", file.ws_max_event_size, 64 * 1024usize)?,
            events_per_second: number(&env, "WS_MAX_EVENTS_PER_SECOND", file.ws_max_events_per_second, 50u32)?,
            api_max_body_bytes: number(&env, "API_MAX_BODY_SIZE", file.api_max_body_size, 1_000_000usize)?,
            api_max_batch: number(&env, "API_MAX_BATCH", file.api_max_batch, 1000usize)?,
            state_bytes_per_tenant: number(
                &env,
                "STATE_MAX_BYTES_PER_TENANT",
                file.state_max_bytes_per_tenant,
                4 * 1024 * 1024usize,
            )?,
            state_bytes: number(&env, "STATE_MAX_BYTES", file.state_max_bytes, 256 * 1024 * 1024usize)?,
        };
        if limits.events_per_second == 0 {
            bail!("WS_MAX_EVENTS_PER_SECOND must be at least 1");
        }
        // A Socket.IO session's queue holds the bursts the API accepts, several publishers at
        // once included: a client that reads is never cut for a burst (README, slow consumers).
        // In packets twice that, for the replies and pings that share the queue.
        transport.max_buffer_size = number(
            &env,
            "WS_MAX_BUFFER_SIZE",
            file.ws_max_buffer_size,
            (2 * PUBLISH_CALLS_BUFFERED).saturating_mul(limits.api_max_batch),
        )?;
        transport.max_buffer_bytes = number(
            &env,
            "WS_MAX_BUFFER_BYTES",
            file.ws_max_buffer_bytes,
            PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_body_bytes) as u64,
        )?;
        if transport.max_buffer_size == 0 || transport.max_buffer_bytes == 0 {
            bail!("WS_MAX_BUFFER_SIZE and WS_MAX_BUFFER_BYTES must be at least 1");
        }
        let native = NativeConfig {
            ping_interval: duration("WS_NATIVE_PING_INTERVAL", file.ws_native_ping_interval, 54_000)?,
            pong_wait: duration("WS_NATIVE_PONG_WAIT", file.ws_native_pong_wait, 60_000)?,
            send_buffer: number(
                &env,
                "WS_NATIVE_SEND_BUFFER",
                file.ws_native_send_buffer,
                PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_batch),
            )?,
            send_buffer_bytes: number(
                &env,
                "WS_NATIVE_SEND_BUFFER_BYTES",
                file.ws_native_send_buffer_bytes,
                PUBLISH_CALLS_BUFFERED.saturating_mul(limits.api_max_body_bytes),
            )?,
            max_message_bytes: number(
                &env,
                "WS_NATIVE_MAX_MESSAGE_SIZE",
                file.ws_native_max_message_size,
                64 * 1024usize,
            )?,
        };
        if native.send_buffer == 0 || native.send_buffer_bytes == 0 || native.max_message_bytes == 0 {
            bail!(
                "WS_NATIVE_SEND_BUFFER, WS_NATIVE_SEND_BUFFER_BYTES and WS_NATIVE_MAX_MESSAGE_SIZE must be at least 1"
            );
        }
        if native.send_buffer < limits.api_max_batch || native.send_buffer_bytes < limits.api_max_body_bytes {
            bail!(
                "WS_NATIVE_SEND_BUFFER ({}) and WS_NATIVE_SEND_BUFFER_BYTES ({}) must hold at least one publish call \
                 (API_MAX_BATCH, {}; API_MAX_BODY_SIZE, {}): one batch would otherwise cut a client that reads as fast as it can",
                native.send_buffer,
                native.send_buffer_bytes,
                limits.api_max_batch,
                limits.api_max_body_bytes
            );
        }
        if native.ping_interval.is_zero() || native.pong_wait <= native.ping_interval {
            bail!("WS_NATIVE_PONG_WAIT must be longer than WS_NATIVE_PING_INTERVAL, which must be above zero");
        }

        let namespaces = match env("NAMESPACES_DIR").map(PathBuf::from).or(file.namespaces_dir) {
            Some(dir) => NamespaceSource::Dir(dir),
            None => NamespaceSource::Embedded,
        };
        // Checked here, like every other value: a bad filter would otherwise silence all output,
        // dev mode's token included.
        let log_level = log_filter(&env("LOG_LEVEL").or(file.log_level).unwrap_or_else(|| "info".to_string()))
            .map_err(|e| anyhow::anyhow!("LOG_LEVEL: {e}"))?;
        let log_format = match env("LOG_FORMAT") {
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "pretty" | "text" => LogFormat::Pretty,
                "auto" => LogFormat::Auto,
                other => bail!("LOG_FORMAT: `{other}` is not one of json, pretty, auto"),
            },
            None => file.log_format.unwrap_or(LogFormat::Auto),
        };

        Ok(Config {
            listen: SocketAddr::new(host, port),
            cors_origins,
            jwt,
            trusted_proxies,
            auth_cookie_name,
            api_keys,
            redis,
            api_key_generated,
            dev_mode,
            transport,
            http,
            native,
            limits,
            cleanup_interval: duration("WS_CLEANUP_INTERVAL", file.ws_cleanup_interval, 300_000)?,
            metrics_interval: duration("WS_METRICS_INTERVAL", file.ws_metrics_interval, 60_000)?,
            namespaces,
            rate_limit_overrides: file.rate_limits.unwrap_or_default(),
            admin,
            log_level,
            log_format,
            shutdown_timeout: duration("SHUTDOWN_TIMEOUT", file.shutdown_timeout, 10_000)?,
            shutdown_delay: duration("SHUTDOWN_DELAY", file.shutdown_delay, 0)?,
            warnings: misspelt
                .iter()
                .map(|(name, meant)| {
                    format!("{name} is not a setting of the gateway and is ignored (did you mean {meant}?)")
                })
                .collect(),
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

/// Dev mode's random secret and demo key are for a gateway given no auth setting at all. A token
/// setting without a key to verify with, or a variable that looks like a misspelt auth setting,
/// means someone meant real credentials and one is missing: that is a start-up error, not a
/// production node quietly on a random secret and a demo key.
fn no_auth_settings(
    algorithm: Option<&str>,
    token_setting: Option<&str>,
    misspelt: &[(&str, &'static str)],
) -> anyhow::Result<()> {
    let missing_key = "there is no key to verify tokens with";
    match algorithm.map(str::to_ascii_uppercase).as_deref() {
        Some(alg @ ("RS256" | "ES256")) => {
            bail!("JWT_ALGORITHM is {alg}, but JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is not set: {missing_key}")
        }
        Some("HS256") => bail!("JWT_ALGORITHM is HS256, but JWT_SECRET is not set: {missing_key}"),
        Some(other) => bail!("JWT_ALGORITHM: `{other}` is not HS256, RS256 or ES256, and no key is set"),
        None => {}
    }
    if let Some(name) = token_setting {
        bail!(
            "{name} is set, but neither JWT_SECRET (HS256) nor JWT_PUBLIC_KEY (RS256, ES256) is: {missing_key} \
             (dev mode, on a random secret, starts only when no JWT_ setting is given)"
        );
    }
    if let Some((name, meant)) = misspelt.iter().find(|(_, meant)| AUTH_VARIABLES.contains(meant)) {
        bail!(
            "{name} is not a setting of the gateway (did you mean {meant}?): without JWT_SECRET or JWT_PUBLIC_KEY \
             the gateway would start in dev mode, on a random secret and a demo API key. Correct the name, or \
             remove it to try dev mode"
        );
    }
    Ok(())
}

/// A config file that does not parse: `file:line:column: what was expected`, then the line
/// with a caret under the value, as `check` shows spec errors.
fn file_error(path: &Path, text: &str, e: &serde_saphyr::Error) -> anyhow::Error {
    let message = crate::parse_errors::yaml(e);
    let Some(at) = e.location().filter(|at| at.line() > 0) else {
        return anyhow::anyhow!("{}: {message}", path.display());
    };
    let (line, column) = (at.line(), at.column());
    let source = text.lines().nth(line as usize - 1).unwrap_or_default();
    let caret = format!("{}^", " ".repeat(column.saturating_sub(1) as usize));
    anyhow::anyhow!("{}:{line}:{column}: {message}\n    | {source}\n    | {caret}", path.display())
}

/// `ADMIN_PASSWORD_HASH`, checked to be a bcrypt hash (`$2a$`, `$2b$` or `$2y$`), which is what
/// the official Admin UI server takes. The error never repeats the value.
fn admin_password_hash(hash: String) -> anyhow::Result<SecretString> {
    let hash = hash.trim().to_string();
    if hash.parse::<bcrypt::HashParts>().is_err() {
        bail!(
            "ADMIN_PASSWORD_HASH is not a bcrypt hash ($2b$10$ then 53 characters): \
             `realtime-gateway hash-password` makes one"
        );
    }
    Ok(SecretString::from(hash))
}

/// `REDIS_URL`, or the seed's `REDIS_HOST` / `REDIS_PORT` (with `REDIS_PASSWORD`, `REDIS_DB`).
fn redis_config(file: &FileConfig, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<RedisConfig>> {
    let url = match env("REDIS_URL").or_else(|| file.redis_url.clone()) {
        Some(url) => url,
        None => {
            let Some(host) = env("REDIS_HOST").or_else(|| file.redis_host.clone()) else { return Ok(None) };
            let port = match env("REDIS_PORT") {
                Some(p) => p.trim().parse::<u16>().map_err(|_| anyhow::anyhow!("REDIS_PORT: `{p}` is not a port"))?,
                None => file.redis_port.unwrap_or(6379),
            };
            let password = env("REDIS_PASSWORD").or_else(|| file.redis_password.clone());
            let db = match env("REDIS_DB") {
                Some(d) => {
                    Some(d.trim().parse::<u32>().map_err(|_| anyhow::anyhow!("REDIS_DB: `{d}` is not a number"))?)
                }
                None => file.redis_db,
            };
            let auth = password.map(|p| format!(":{}@", percent_encode_userinfo(&p))).unwrap_or_default();
            let db = db.map(|d| format!("/{d}")).unwrap_or_default();
            format!("redis://{auth}{host}:{port}{db}")
        }
    };
    let Some(rest) = url.strip_prefix("redis://").or_else(|| url.strip_prefix("rediss://")) else {
        bail!("REDIS_URL must start with redis:// or rediss://");
    };
    let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_part = host_part.split('/').next().unwrap_or_default();
    if host_part.is_empty() {
        bail!("REDIS_URL has no host");
    }
    let scheme = if url.starts_with("rediss://") { "rediss" } else { "redis" };
    let prefix = env("REDIS_PREFIX").or_else(|| file.redis_prefix.clone()).unwrap_or_else(|| "rtgw".to_string());
    if prefix.is_empty() || prefix.contains('#') || prefix.contains(char::is_whitespace) {
        bail!("REDIS_PREFIX: `{prefix}` must be non-empty, without `#` or spaces");
    }
    Ok(Some(RedisConfig {
        display: format!("{scheme}://{host_part}"),
        url: SecretString::from(url),
        prefix,
        emitter_key: env("REDIS_EMITTER_KEY")
            .or_else(|| file.redis_emitter_key.clone())
            .unwrap_or_else(|| "socket.io".to_string()),
        broadcast_channel: env("REDIS_BROADCAST_CHANNEL")
            .or_else(|| file.redis_broadcast_channel.clone())
            .unwrap_or_else(|| "ws:broadcast:all".to_string()),
    }))
}

fn percent_encode_userinfo(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn from_env(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let present: Vec<String> = map.keys().cloned().collect();
        Config::from_sources(FileConfig::default(), &present, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = from_env(&[]).unwrap();
        assert_eq!(c.listen.port(), 3000);
        assert_eq!(c.transport.ping_interval, Duration::from_millis(25_000));
        assert_eq!(c.transport.ping_timeout, Duration::from_millis(60_000));
        assert_eq!(c.transport.upgrade_timeout, Duration::from_millis(10_000));
        assert_eq!(c.transport.max_http_buffer_size, 1_000_000);
        assert_eq!(c.cleanup_interval, Duration::from_millis(300_000));
        assert_eq!(c.metrics_interval, Duration::from_millis(60_000));
        assert_eq!(c.cors_origins, vec!["http://localhost:3000"]);
        assert!(c.dev_mode, "no key configured means dev mode");
    }

    #[test]
    fn env_values_are_read_in_milliseconds_or_with_units() {
        let c = from_env(&[("WS_PING_INTERVAL", "1000"), ("WS_METRICS_INTERVAL", "5s"), ("PORT", "8080")]).unwrap();
        assert_eq!(c.transport.ping_interval, Duration::from_secs(1));
        assert_eq!(c.metrics_interval, Duration::from_secs(5));
        assert_eq!(c.listen.port(), 8080);
    }

    #[test]
    fn allowed_origins_is_an_alias_and_wildcards_are_refused() {
        let c = from_env(&[("ALLOWED_ORIGINS", "https://a.example, https://b.example")]).unwrap();
        assert_eq!(c.cors_origins, vec!["https://a.example", "https://b.example"]);
        let err = from_env(&[("CORS_ORIGINS", "*")]).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn a_public_key_needs_a_pinned_algorithm() {
        let err = from_env(&[("JWT_PUBLIC_KEY", "pem")]).unwrap_err();
        assert!(err.to_string().contains("JWT_ALGORITHM"), "{err}");
        let c = from_env(&[("JWT_PUBLIC_KEY", "pem"), ("JWT_ALGORITHM", "es256")]).unwrap();
        assert!(matches!(c.jwt.key, JwtKey::Public { algorithm: PublicKeyAlgorithm::ES256, .. }));
        assert!(!c.dev_mode);
    }

    #[test]
    fn a_secret_leaves_dev_mode_and_never_prints() {
        let c = from_env(&[("JWT_SECRET", "s3cr3t-value"), ("API_KEYS", "k1,k2")]).unwrap();
        assert!(!c.dev_mode);
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[1].expose_secret(), "k2");
        let printed = format!("{c:?}");
        assert!(!printed.contains("s3cr3t-value") && !printed.contains("k1"), "{printed}");
    }

    #[test]
    fn trusted_proxies_and_the_cookie_name_are_checked() {
        let c = from_env(&[("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")]).unwrap();
        assert!(c.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
        assert_eq!(c.auth_cookie_name, "access_token");
        let err = from_env(&[("TRUSTED_PROXIES", "lb.internal")]).unwrap_err();
        assert!(err.to_string().contains("TRUSTED_PROXIES"), "{err}");
        let err = from_env(&[("AUTH_COOKIE_NAME", "a b")]).unwrap_err();
        assert!(err.to_string().contains("AUTH_COOKIE_NAME"), "{err}");
    }

    #[test]
    fn redis_comes_from_a_url_or_the_seed_host_and_port_and_never_prints_its_password() {
        assert!(from_env(&[]).unwrap().redis.is_none(), "no Redis: one node, in memory");
        let c = from_env(&[("REDIS_HOST", "cache"), ("REDIS_PORT", "6380"), ("REDIS_PASSWORD", "p@ss")]).unwrap();
        let redis = c.redis.unwrap();
        assert_eq!(redis.url.expose_secret(), "redis://:p%40ss@cache:6380");
        assert_eq!(redis.display, "redis://cache:6380");
        assert_eq!((redis.prefix.as_str(), redis.emitter_key.as_str()), ("rtgw", "socket.io"));
        assert_eq!(redis.broadcast_channel, "ws:broadcast:all");
        let c = from_env(&[("REDIS_URL", "redis://:hunter2@10.0.0.5:6379/2"), ("REDIS_PREFIX", "t1")]).unwrap();
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert_eq!(c.redis.unwrap().display, "redis://10.0.0.5:6379");
        assert!(from_env(&[("REDIS_URL", "http://x")]).is_err());
        assert!(from_env(&[("REDIS_URL", "redis://x"), ("REDIS_PREFIX", "a#b")]).is_err());
    }

    #[test]
    fn log_levels_are_checked_and_node_names_understood() {
        assert_eq!(from_env(&[("LOG_LEVEL", "verbose")]).unwrap().log_level, "trace");
        assert_eq!(from_env(&[("LOG_LEVEL", "WARNING,hyper=info")]).unwrap().log_level, "warn,hyper=info");
        let err = from_env(&[("LOG_LEVEL", "loud")]).unwrap_err().to_string();
        assert!(err.contains("LOG_LEVEL") && err.contains("`loud` is not a level"), "{err}");
        assert!(from_env(&[("LOG_LEVEL", "info,a=[")]).is_err());
    }

    #[test]
    fn file_lists_may_be_written_like_the_environment() {
        let file: FileConfig =
            serde_saphyr::from_str("api_keys: k1,k2\ncors_origins: [\"https://a.example\"]\n").unwrap();
        let c = Config::from_sources(file, &[], |_| None).unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.cors_origins, vec!["https://a.example"]);
    }

    #[test]
    fn rates_paths_and_protection_settings_are_checked() {
        assert_eq!(parse_rate("600/1m").unwrap(), Some(RateLimit { max: 600, per: Duration::from_secs(60) }));
        assert_eq!(parse_rate("off").unwrap(), None);
        assert!(parse_rate("600").is_err() && parse_rate("0/1s").is_err());
        let c = from_env(&[("SOCKETIO_PATH", "/rt/"), ("WS_HANDSHAKE_RATE_LIMIT", "0")]).unwrap();
        assert_eq!(c.transport.path, "/rt");
        assert_eq!(c.transport.handshake_limit, None);
        assert!(from_env(&[("SOCKETIO_PATH", "rt")]).is_err());
        assert!(from_env(&[("HTTP_MAX_HEADER_SIZE", "1024")]).unwrap_err().to_string().contains("8192"));
        assert!(from_env(&[("ALLOW_EIO3", "maybe")]).is_err());
        assert!(!from_env(&[("ALLOW_EIO3", "false")]).unwrap().transport.allow_eio3);
    }

    #[test]
    fn the_admin_view_needs_a_username_and_a_bcrypt_hash_that_never_prints() {
        assert!(from_env(&[]).unwrap().admin.is_none(), "not mounted unless configured");
        let hash = "$2b$04$S2tRZKnsgKDUd5F0ZMX1mOyHpyfE7eQ6Mc71ek3xsB4q9d5pCngZ2";
        let c = from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash)]).unwrap();
        let admin = c.admin.clone().unwrap();
        assert_eq!((admin.username.as_str(), admin.readonly, admin.mode), ("root", false, AdminMode::Development));
        assert_eq!(admin.password_hash.expose_secret(), hash);
        assert!(!format!("{c:?}").contains("S2tRZKns"), "the hash never prints");
        let c = from_env(&[
            ("ADMIN_USERNAME", "root"),
            ("ADMIN_PASSWORD_HASH", hash),
            ("ADMIN_READONLY", "true"),
            ("ADMIN_MODE", "Production"),
        ])
        .unwrap();
        assert_eq!(c.admin.map(|a| (a.readonly, a.mode)), Some((true, AdminMode::Production)));
        let err = from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", "hunter2")]).unwrap_err();
        assert!(err.to_string().contains("not a bcrypt hash") && !err.to_string().contains("hunter2"), "{err}");
        assert!(from_env(&[("ADMIN_USERNAME", "root")]).is_err());
        assert!(from_env(&[("ADMIN_PASSWORD_HASH", hash)]).is_err());
        assert!(from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash), ("ADMIN_MODE", "x")]).is_err());
    }

    #[test]
    fn a_plain_websocket_send_buffer_holds_several_publish_calls_and_never_less_than_one() {
        let native = from_env(&[]).unwrap().native;
        assert_eq!((native.send_buffer, native.send_buffer_bytes), (4000, 4_000_000));
        let native = from_env(&[("API_MAX_BATCH", "50"), ("API_MAX_BODY_SIZE", "100000")]).unwrap().native;
        assert_eq!((native.send_buffer, native.send_buffer_bytes), (200, 400_000), "sized from the API's limits");
        let err = from_env(&[("WS_NATIVE_SEND_BUFFER", "256")]).unwrap_err().to_string();
        assert!(err.contains("must hold at least one publish call (API_MAX_BATCH, 1000"), "{err}");
        assert!(from_env(&[("WS_NATIVE_SEND_BUFFER_BYTES", "999999")]).is_err());
        assert!(from_env(&[("WS_NATIVE_SEND_BUFFER", "256"), ("API_MAX_BATCH", "256")]).is_ok());
    }

    #[test]
    fn bad_numbers_name_the_variable_and_say_what_was_expected() {
        let err = from_env(&[("WS_MAX_HTTP_BUFFER_SIZE", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "WS_MAX_HTTP_BUFFER_SIZE: `lots` is not a whole number, 0 or more");
        let err = from_env(&[("WS_MAX_EVENTS_PER_SECOND", "-1")]).unwrap_err();
        assert_eq!(err.to_string(), "WS_MAX_EVENTS_PER_SECOND: `-1` is not a whole number from 0 to 4294967295");
        let err = from_env(&[("WS_PING_INTERVAL", "soon")]).unwrap_err().to_string();
        assert!(err.starts_with("WS_PING_INTERVAL: `soon` is not a duration: write milliseconds"), "{err}");
    }

    #[test]
    fn config_file_values_say_what_was_expected_and_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.yaml");
        std::fs::write(&path, "port: 3000\nws_max_events_per_second: many\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        let at = format!("{}:2:27: expected a whole number from 0 to 4294967295", path.display());
        assert!(err.starts_with(&at), "{err}");
        assert!(err.contains("| ws_max_events_per_second: many\n    |                           ^"), "{err}");
        std::fs::write(&path, "api_key: k1\n").unwrap();
        let err = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("unknown field `api_key`") && err.contains("(did you mean `api_keys`?)"), "{err}");
    }

    #[test]
    fn a_token_setting_without_a_key_refuses_to_start_instead_of_dev_mode() {
        let refused = |vars: &[(&str, &str)]| from_env(vars).unwrap_err().to_string();
        let err = refused(&[("JWT_ALGORITHM", "RS256")]);
        assert!(
            err.contains("JWT_ALGORITHM is RS256, but JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is not set"),
            "{err}"
        );
        assert!(refused(&[("JWT_ALGORITHM", "es256")]).contains("JWT_PUBLIC_KEY"));
        assert!(refused(&[("JWT_ALGORITHM", "HS256")]).contains("but JWT_SECRET is not set"));
        for setting in ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_LEEWAY"] {
            let err = refused(&[(setting, "5")]);
            assert!(err.starts_with(&format!("{setting} is set, but neither JWT_SECRET")), "{err}");
        }
        let file: FileConfig = serde_saphyr::from_str("jwt_issuer: https://auth.example\n").unwrap();
        assert!(Config::from_sources(file, &[], |_| None).is_err(), "from the file too");
        let with_key = from_env(&[("JWT_SECRET", "s"), ("JWT_ALGORITHM", "HS256"), ("JWT_ISSUER", "i")]).unwrap();
        assert!(!with_key.dev_mode);
        let err = refused(&[("JWT_SECRET", "s"), ("API_KEYS", " , ")]);
        assert!(err.contains("API_KEYS is set but holds no key"), "{err}");
    }

    #[test]
    fn a_misspelt_auth_variable_never_starts_dev_mode() {
        for (name, meant) in
            [("API_KEY", "API_KEYS"), ("JWT_SECRETS", "JWT_SECRET"), ("JWT_PUBLICKEY", "JWT_PUBLIC_KEY")]
        {
            let err = from_env(&[(name, "x")]).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{name} is not a setting of the gateway (did you mean {meant}?)")),
                "{err}"
            );
            assert!(err.contains("dev mode"), "{err}");
        }
        assert!(from_env(&[("LOGLEVEL", "debug")]).unwrap().dev_mode, "other misspellings are warnings");
    }

    #[test]
    fn misspelt_variables_are_warned_about_with_the_right_name() {
        let c = from_env(&[
            ("JWT_SECRET", "s"),
            ("API_KEY", "k1"),
            ("REDIS_URI", "redis://cache"),
            ("PING_INTERVAL", "5s"),
            ("PATH", "/usr/bin"),
            ("HOSTNAME", "gw-1"),
            ("ADMIN_ROLES", "x"),
        ])
        .unwrap();
        assert_eq!(
            c.warnings,
            [
                "API_KEY is not a setting of the gateway and is ignored (did you mean API_KEYS?)",
                "PING_INTERVAL is not a setting of the gateway and is ignored (did you mean WS_PING_INTERVAL?)",
                "REDIS_URI is not a setting of the gateway and is ignored (did you mean REDIS_URL?)",
            ]
        );
        assert!(c.api_keys.is_empty(), "a misspelt name is not read");
        assert!(from_env(&[("JWT_SECRET", "s"), ("API_KEYS", "k")]).unwrap().warnings.is_empty());
    }

    #[test]
    fn every_variable_read_is_a_listed_setting_and_every_setting_is_read() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::from(["CONFIG_FILE".to_string()]));
        let hash = "$2b$04$S2tRZKnsgKDUd5F0ZMX1mOyHpyfE7eQ6Mc71ek3xsB4q9d5pCngZ2";
        // Some settings are read only beside others (REDIS_PORT with REDIS_HOST, ADMIN_MODE with
        // the admin's credentials): these two environments read them all.
        let environments: [&[(&str, &str)]; 2] =
            [&[], &[("REDIS_HOST", "cache"), ("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash)]];
        for vars in environments {
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            Config::from_sources(FileConfig::default(), &[], |k| {
                asked.borrow_mut().insert(k.to_string());
                map.get(k).map(|v| v.to_string())
            })
            .unwrap();
        }
        let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
        assert_eq!(asked.into_inner(), listed, "config::VARIABLES is every variable read, and only those");
    }
}
