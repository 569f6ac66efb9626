//! The optional config file: its shape (every setting optional, named after its environment
//! variable in lower case, unknown fields refused), how it is read, and how a file that does not
//! parse is reported (`file:line:column`, the line, a caret).

use std::{
    collections::BTreeMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use serde::Deserialize;

use super::{AdminMode, LogFormat};
use crate::spec::{RateLimit, durations::deserialize_duration};

/// The optional config file, every field optional. Environment variables win over it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) host: Option<IpAddr>,
    pub(super) port: Option<u16>,
    pub(super) cors_origins: Option<StringList>,
    pub(super) jwt_secret: Option<String>,
    pub(super) jwt_algorithm: Option<String>,
    pub(super) jwt_public_key: Option<String>,
    pub(super) jwt_public_key_file: Option<PathBuf>,
    pub(super) jwt_issuer: Option<String>,
    pub(super) jwt_audience: Option<String>,
    pub(super) jwt_leeway: Option<DurationSetting>,
    pub(super) api_keys: Option<StringList>,
    pub(super) tenant_api_keys: Option<TenantKeysSetting>,
    pub(super) trusted_proxies: Option<StringList>,
    pub(super) redis_url: Option<String>,
    pub(super) redis_host: Option<String>,
    pub(super) redis_port: Option<u16>,
    pub(super) redis_password: Option<String>,
    pub(super) redis_db: Option<u32>,
    pub(super) redis_prefix: Option<String>,
    pub(super) redis_emitter_key: Option<String>,
    pub(super) redis_broadcast_channel: Option<String>,
    pub(super) redis_bus_shards: Option<usize>,
    pub(super) auth_cookie_name: Option<String>,
    pub(super) ws_ping_interval: Option<DurationSetting>,
    pub(super) ws_ping_timeout: Option<DurationSetting>,
    pub(super) ws_upgrade_timeout: Option<DurationSetting>,
    pub(super) ws_max_http_buffer_size: Option<u64>,
    pub(super) ws_max_buffer_size: Option<usize>,
    pub(super) ws_max_buffer_bytes: Option<u64>,
    pub(super) socketio_path: Option<String>,
    pub(super) allow_eio3: Option<bool>,
    pub(super) ws_connect_timeout: Option<DurationSetting>,
    pub(super) ws_handshake_rate_limit: Option<String>,
    pub(super) ws_bind_session_to_ip: Option<bool>,
    pub(super) ws_write_timeout: Option<DurationSetting>,
    pub(super) http_header_timeout: Option<DurationSetting>,
    pub(super) http_max_header_size: Option<usize>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) shutdown_delay: Option<DurationSetting>,
    pub(super) ws_native_ping_interval: Option<DurationSetting>,
    pub(super) ws_native_pong_wait: Option<DurationSetting>,
    pub(super) ws_native_send_buffer: Option<usize>,
    pub(super) ws_native_send_buffer_bytes: Option<usize>,
    pub(super) ws_native_max_message_size: Option<usize>,
    pub(super) ws_max_rooms_per_socket: Option<usize>,
    pub(super) ws_max_event_size: Option<usize>,
    pub(super) ws_max_events_per_second: Option<u32>,
    pub(super) ws_cleanup_interval: Option<DurationSetting>,
    pub(super) ws_metrics_interval: Option<DurationSetting>,
    pub(super) api_max_body_size: Option<usize>,
    pub(super) api_max_batch: Option<usize>,
    pub(super) state_max_bytes_per_tenant: Option<usize>,
    pub(super) state_max_bytes: Option<usize>,
    pub(super) history_max_bytes: Option<usize>,
    pub(super) idempotency_window: Option<DurationSetting>,
    pub(super) namespaces_dir: Option<PathBuf>,
    pub(super) rate_limits: Option<BTreeMap<String, BTreeMap<String, RateLimit>>>,
    pub(super) admin_username: Option<String>,
    pub(super) admin_password_hash: Option<String>,
    pub(super) admin_readonly: Option<bool>,
    pub(super) admin_mode: Option<AdminMode>,
    pub(super) log_level: Option<String>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) shutdown_timeout: Option<DurationSetting>,
    pub(super) bridges_file: Option<PathBuf>,
    pub(super) bridge_allowed_hosts: Option<StringList>,
    pub(super) bridge_ca_file: Option<PathBuf>,
    pub(super) backends_file: Option<PathBuf>,
    pub(super) database_url: Option<String>,
    pub(super) kafka_brokers: Option<StringList>,
    pub(super) bridge_tenant_config: Option<bool>,
}

/// A list in the config file, written as YAML (`[a, b]`) or as the environment variable's
/// comma-separated text (`a,b`), so a file can mirror the env names and values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum StringList {
    List(Vec<String>),
    Text(String),
}

impl StringList {
    pub(super) fn into_vec(self, split: impl Fn(String) -> Vec<String>) -> Vec<String> {
        match self {
            StringList::List(items) => items,
            StringList::Text(text) => split(text),
        }
    }
}

/// `tenant_api_keys` in the config file: a map of tenant to its keys (`{t1: [k1, k2], t2: k3}`),
/// or `tenant:key` entries written as the environment variable is (a list, or comma-separated).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum TenantKeysSetting {
    ByTenant(BTreeMap<String, StringList>),
    Entries(StringList),
}

/// A duration written as milliseconds (`60000`, the seeds' style) or with a unit (`60s`, `1m`).
#[derive(Debug, Clone, Copy)]
pub(super) struct DurationSetting(pub(super) Duration);

impl<'de> Deserialize<'de> for DurationSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_duration(d).map(Self)
    }
}

/// Reads and parses the config file at `path`.
pub(super) fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    serde_saphyr::from_str::<FileConfig>(&text).map_err(|e| file_error(path, &text, &e))
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
