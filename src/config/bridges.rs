//! Outbound bridges' settings: seed 003's provider configuration (its JSON, field for field), the
//! bridges file that lists one per tenant (`BRIDGES_FILE`), where bridges may connect to
//! (`BRIDGE_ALLOWED_HOSTS`), the CAs their TLS trusts besides the compiled-in roots
//! (`BRIDGE_CA_FILE`), and whether a tenant's own key may change its provider at run time
//! (`BRIDGE_TENANT_CONFIG`).
//!
//! A provider configuration is checked as specs are: every unknown field and every bad value is
//! refused with its path named (`bridges[0].reconnectionAttempts: ...`), and a misspelt field is
//! told the one probably meant. Credentials (`authToken`, `password`, `authQuery`'s and
//! `authHeaders`' values) are kept as [`SecretString`]s so no `Debug` or log line prints them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{
    SinksConfig,
    env::{Env, list},
    file::FileConfig,
};
use crate::{
    net::{outbound::AllowedHosts, tls::OutboundTls},
    parse_errors::suggest::unknown_field,
};

/// Every field of seed 003's provider configuration.
const PROVIDER_FIELDS: &[&str] = &[
    "providerType",
    "channel",
    "mode",
    "protocol",
    "url",
    "authType",
    "authToken",
    "username",
    "password",
    "authQuery",
    "authHeaders",
    "reconnection",
    "reconnectionAttempts",
    "reconnectionDelay",
    "timeout",
    "enableCompression",
    "enableAcknowledgments",
    "customEvents",
    "defaultChannels",
    "supportChannelBroadcast",
    "enableReceiving",
    "subscribeToEvents",
    "messageHandling",
    "enableRequestResponse",
    "requestTimeout",
    "transports",
    "path",
    "enabled",
];
const CUSTOM_EVENT_FIELDS: &[&str] = &["notification", "channelBroadcast", "incomingMessage"];
const HANDLING_FIELDS: &[&str] = &["strategy", "callbackUrl", "storeInDatabase", "publishToKafka", "kafkaTopic"];
/// Longest duration a provider setting may hold (ten minutes), in milliseconds.
const MAX_MS: u64 = 600_000;
/// Most channels, subscribed events or auth entries one configuration may list.
const MAX_ITEMS: usize = 100;

/// Internal: the gateway's own sockets. External: a bridge to another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMode {
    /// Notifications go to the gateway's own clients (today's behaviour).
    Internal,
    /// Notifications go through a bridge to another server.
    External,
}

/// The peer's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeProtocol {
    /// A plain WebSocket carrying JSON `{event, data}` messages.
    Ws,
    /// Socket.IO v5 (Engine.IO 4).
    SocketIo,
}

impl BridgeProtocol {
    /// As the seed writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            BridgeProtocol::Ws => "ws",
            BridgeProtocol::SocketIo => "socketio",
        }
    }
}

/// How the bridge authenticates to its peer, as the seed describes each.
#[derive(Debug, Clone)]
pub enum BridgeAuth {
    /// No credentials.
    None,
    /// `Authorization: Bearer <authToken>`.
    Bearer(SecretString),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// `username`.
        username: String,
        /// `password`.
        password: SecretString,
    },
    /// `authQuery`'s entries appended to the URL's query.
    Query(Vec<(String, SecretString)>),
    /// `authHeaders`' entries sent as headers of the handshake.
    Custom(Vec<(String, SecretString)>),
}

/// What incoming events are handed to (`messageHandling.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlingStrategy {
    /// POST to `callbackUrl`.
    Callback,
    /// A row in PostgreSQL (`DATABASE_URL`).
    Database,
    /// A record on `kafkaTopic` (`KAFKA_BROKERS`).
    Kafka,
    /// Each part its fields name (`callbackUrl`, `storeInDatabase`, `publishToKafka`), at once.
    All,
}

impl HandlingStrategy {
    /// As the seed writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlingStrategy::Callback => "callback",
            HandlingStrategy::Database => "database",
            HandlingStrategy::Kafka => "kafka",
            HandlingStrategy::All => "all",
        }
    }
}

/// `messageHandling`.
#[derive(Debug, Clone)]
pub struct MessageHandling {
    /// `strategy`.
    pub strategy: HandlingStrategy,
    /// `callbackUrl`: required by `callback`.
    pub callback_url: Option<String>,
    /// `storeInDatabase`.
    pub store_in_database: bool,
    /// `publishToKafka`.
    pub publish_to_kafka: bool,
    /// `kafkaTopic`: required by `kafka`.
    pub kafka_topic: Option<String>,
}

/// `customEvents`: the event names used on the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomEvents {
    /// A notification to one user (default `notification:new`, the seed's client event).
    pub notification: String,
    /// A notification to a channel (default `channel:broadcast`).
    pub channel_broadcast: String,
    /// The event name of incoming messages (default `message:received`).
    pub incoming_message: String,
}

impl Default for CustomEvents {
    fn default() -> Self {
        Self {
            notification: "notification:new".into(),
            channel_broadcast: "channel:broadcast".into(),
            incoming_message: "message:received".into(),
        }
    }
}

/// Seed 003's provider configuration, checked.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `mode`.
    pub mode: ProviderMode,
    /// `protocol` (external mode; `ws` when absent in internal mode, unused there).
    pub protocol: BridgeProtocol,
    /// `url` (external mode).
    pub url: Option<String>,
    /// `authType` and its fields.
    pub auth: BridgeAuth,
    /// `reconnection` (default true).
    pub reconnection: bool,
    /// `reconnectionAttempts` (default 5).
    pub reconnection_attempts: u32,
    /// `reconnectionDelay` (default 1000 ms): the first backoff, doubled each attempt.
    pub reconnection_delay: Duration,
    /// `timeout` (default 20000 ms): connecting, handshake included.
    pub timeout: Duration,
    /// `enableCompression`.
    pub enable_compression: bool,
    /// `enableAcknowledgments`.
    pub enable_acknowledgments: bool,
    /// `customEvents`.
    pub custom_events: CustomEvents,
    /// `defaultChannels`, joined on every connect.
    pub default_channels: Vec<String>,
    /// `supportChannelBroadcast` (default false).
    pub support_channel_broadcast: bool,
    /// `enableReceiving`.
    pub enable_receiving: bool,
    /// `subscribeToEvents`.
    pub subscribe_to_events: Vec<String>,
    /// `messageHandling`.
    pub message_handling: Option<MessageHandling>,
    /// `enableRequestResponse`.
    pub enable_request_response: bool,
    /// `requestTimeout` (default 5000 ms).
    pub request_timeout: Duration,
    /// `transports` (default `["websocket"]`).
    pub transports: Vec<String>,
    /// `path`: the Socket.IO path (default `/socket.io`).
    pub path: String,
    /// `enabled` (default true).
    pub enabled: bool,
}

/// One entry of the bridges file (or of a run-time change): a tenant's provider, named.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The tenant whose notifications go through it.
    pub tenant_id: String,
    /// Its name, unique, in `GET /api/v1/bridges` and logs.
    pub name: String,
    /// The provider configuration.
    pub provider: ProviderConfig,
    /// The provider configuration as written (the seed's JSON), kept to show it redacted and, in
    /// a cluster, to store a run-time change for the other nodes.
    pub json: ProviderJson,
}

impl BridgeConfig {
    /// A tenant's provider from its JSON (`PUT /api/v1/tenants/{tenantId}/providers/websocket`
    /// or a change another node stored); `at` names the object in errors.
    pub fn from_provider_json(tenant_id: &str, name: &str, json: &Value, at: &str) -> Result<Self, String> {
        let Value::Object(fields) = json else {
            return Err(format!("{at}: must be an object, the seed's provider configuration"));
        };
        if !is_bridge_name(name) {
            return Err(format!("{at}: `{name}` is not a bridge name (1 to 100 letters, digits, `-`, `_` or `.`)"));
        }
        let provider = ProviderConfig::from_json(fields, at)?;
        Ok(Self {
            tenant_id: tenant_id.to_string(),
            name: name.to_string(),
            provider,
            json: ProviderJson(fields.clone()),
        })
    }

    /// Whether it runs a bridge: external mode and enabled.
    pub fn runs_bridge(&self) -> bool {
        self.provider.mode == ProviderMode::External && self.provider.enabled
    }
}

/// A provider configuration's JSON as written. It holds credentials: its `Debug` shows none, and
/// [`ProviderJson::redacted`] is the only view of it an answer or a log may carry.
#[derive(Clone, PartialEq)]
pub struct ProviderJson(Map<String, Value>);

/// What a redacted credential reads as.
pub const REDACTED: &str = "[redacted]";

impl ProviderJson {
    /// The JSON with every credential replaced by [`REDACTED`]: `authToken`, `password`, the
    /// values of `authQuery` and `authHeaders`, and the URL's query (which may carry a token).
    pub fn redacted(&self) -> Value {
        let mut fields = self.0.clone();
        for field in ["authToken", "password"] {
            if let Some(v) = fields.get_mut(field).filter(|v| !v.is_null()) {
                *v = Value::String(REDACTED.into());
            }
        }
        for field in ["authQuery", "authHeaders"] {
            if let Some(Value::Object(entries)) = fields.get_mut(field) {
                entries.values_mut().for_each(|v| *v = Value::String(REDACTED.into()));
            }
        }
        if let Some(Value::String(url)) = fields.get_mut("url")
            && let Some(at) = url.find('?')
        {
            url.truncate(at);
            url.push('?');
            url.push_str(REDACTED);
        }
        Value::Object(fields)
    }

    /// The JSON itself, credentials included: only to store it where the other nodes read it.
    pub fn expose(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

impl std::fmt::Debug for ProviderJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderJson(..)")
    }
}

/// The bridges' settings.
#[derive(Debug, Clone, Default)]
pub struct BridgesConfig {
    /// `BRIDGES_FILE`'s entries.
    pub bridges: Vec<BridgeConfig>,
    /// `BRIDGE_ALLOWED_HOSTS`.
    pub allowed_hosts: AllowedHosts,
    /// TLS for bridges and webhooks: the compiled-in roots plus `BRIDGE_CA_FILE`'s.
    pub tls: OutboundTls,
    /// `DATABASE_URL`, `KAFKA_BROKERS`: where the sinks deliver.
    pub sinks: SinksConfig,
    /// `BRIDGE_TENANT_CONFIG`: a tenant's own key (`TENANT_API_KEYS`) may change its provider at
    /// run time; off by default, when only platform keys (`API_KEYS`) may.
    pub tenant_config: bool,
}

impl BridgesConfig {
    /// `BRIDGES_FILE` (read and checked here), `BRIDGE_ALLOWED_HOSTS` and `BRIDGE_CA_FILE`.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        let hosts = match env.get("BRIDGE_ALLOWED_HOSTS") {
            Some(v) => list(v),
            None => file.bridge_allowed_hosts.clone().map(|l| l.into_vec(list)).unwrap_or_default(),
        };
        let allowed_hosts = AllowedHosts::parse(&hosts).map_err(|e| anyhow::anyhow!("BRIDGE_ALLOWED_HOSTS: {e}"))?;
        let path = env.get("BRIDGES_FILE").map(PathBuf::from).or_else(|| file.bridges_file.clone());
        let bridges = match path {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("BRIDGES_FILE: cannot read {}", path.display()))?;
                parse_bridges_file(&text).map_err(|e| anyhow::anyhow!("BRIDGES_FILE {}: {e}", path.display()))?
            }
        };
        let ca_file = env.get("BRIDGE_CA_FILE").map(PathBuf::from).or_else(|| file.bridge_ca_file.clone());
        let tls = match ca_file {
            None => OutboundTls::default(),
            Some(path) => {
                let pem =
                    std::fs::read(&path).with_context(|| format!("BRIDGE_CA_FILE: cannot read {}", path.display()))?;
                OutboundTls::new(Some(&pem)).map_err(|e| anyhow::anyhow!("BRIDGE_CA_FILE {}: {e}", path.display()))?
            }
        };
        let sinks = SinksConfig::from_sources(env, file)?;
        sinks.check_bridges(&bridges)?;
        let tenant_config = env.boolean("BRIDGE_TENANT_CONFIG", file.bridge_tenant_config, false)?;
        Ok(Self { bridges, allowed_hosts, tls, sinks, tenant_config })
    }
}

/// The bridges file's text, JSON or YAML: a list of `{tenantId, name, ...provider config}`.
pub fn parse_bridges_file(text: &str) -> Result<Vec<BridgeConfig>, String> {
    let value: Value = if text.trim_start().starts_with(['[', '{']) {
        serde_json::from_str(text).map_err(|e| crate::parse_errors::json(text.as_bytes(), &e))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| crate::parse_errors::yaml(&e))?
    };
    let Value::Array(items) = value else {
        return Err("must be a list of {tenantId, name, ...provider configuration}".into());
    };
    let mut bridges: Vec<BridgeConfig> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("bridges[{i}]");
        let Value::Object(mut fields) = item else {
            return Err(format!("{at}: must be an object {{tenantId, name, ...provider configuration}}"));
        };
        let tenant_id = match fields.remove("tenantId") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 200 => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(format!("{at}.tenantId: required, a non-empty string or a number")),
        };
        let name = match fields.remove("name") {
            Some(Value::String(s)) if is_bridge_name(&s) => s,
            _ => {
                return Err(format!(
                    "{at}.name: required, 1 to 100 letters, digits, `-`, `_` or `.` (it names the bridge in the API)"
                ));
            }
        };
        if bridges.iter().any(|b| b.name == name) {
            return Err(format!("{at}.name: `{name}` is already another bridge's"));
        }
        if bridges.iter().any(|b| b.tenant_id == tenant_id) {
            return Err(format!("{at}.tenantId: tenant `{tenant_id}` already has a provider (one per tenant)"));
        }
        let provider = ProviderConfig::from_json(&fields, &at)?;
        bridges.push(BridgeConfig { tenant_id, name, provider, json: ProviderJson(fields) });
    }
    Ok(bridges)
}

/// Kafka's own rule for a topic's name.
fn is_topic_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether `s` may name a bridge: 1 to 100 letters, digits, `-`, `_` or `.`.
pub fn is_bridge_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl ProviderConfig {
    /// Checks a provider configuration object; `at` is its path in errors.
    pub fn from_json(fields: &Map<String, Value>, at: &str) -> Result<Self, String> {
        let mut known = PROVIDER_FIELDS.to_vec();
        if at.starts_with("bridges[") {
            known.extend(["tenantId", "name"]);
        }
        if let Some(unknown) = fields.keys().find(|k| !PROVIDER_FIELDS.contains(&k.as_str())) {
            return Err(format!("{at}: {}", unknown_field(unknown, &known)));
        }
        let r = Reader { fields, at };
        for field in ["providerType", "channel"] {
            if let Some(v) = r.string(field)?
                && v != "websocket"
            {
                return Err(format!("{at}.{field}: must be \"websocket\", got \"{v}\""));
            }
        }
        let mode = match r.string("mode")?.as_deref() {
            Some("internal") => ProviderMode::Internal,
            Some("external") => ProviderMode::External,
            other => return Err(r.bad("mode", "required, \"internal\" or \"external\"", other)),
        };
        let protocol = match r.string("protocol")?.as_deref() {
            Some("ws") => BridgeProtocol::Ws,
            Some("socketio") => BridgeProtocol::SocketIo,
            None if mode == ProviderMode::Internal => BridgeProtocol::Ws,
            other => return Err(r.bad("protocol", "\"ws\" or \"socketio\" (required in external mode)", other)),
        };
        let url = r.string("url")?;
        match &url {
            Some(u) => check_url(u, &["ws", "wss", "http", "https"]).map_err(|e| format!("{at}.url: {e}"))?,
            None if mode == ProviderMode::External => {
                return Err(format!("{at}.url: required in external mode (ws://, wss://, http:// or https://)"));
            }
            None => {}
        }
        let auth = r.auth()?;
        let custom_events = match fields.get("customEvents") {
            None | Some(Value::Null) => CustomEvents::default(),
            Some(Value::Object(events)) => {
                if let Some(unknown) = events.keys().find(|k| !CUSTOM_EVENT_FIELDS.contains(&k.as_str())) {
                    return Err(format!("{at}.customEvents: {}", unknown_field(unknown, CUSTOM_EVENT_FIELDS)));
                }
                let events_at = format!("{at}.customEvents");
                let inner = Reader { fields: events, at: &events_at };
                let defaults = CustomEvents::default();
                CustomEvents {
                    notification: inner.event_name("notification")?.unwrap_or(defaults.notification),
                    channel_broadcast: inner.event_name("channelBroadcast")?.unwrap_or(defaults.channel_broadcast),
                    incoming_message: inner.event_name("incomingMessage")?.unwrap_or(defaults.incoming_message),
                }
            }
            Some(_) => return Err(format!("{at}.customEvents: must be an object of event names")),
        };
        let message_handling = match fields.get("messageHandling") {
            None | Some(Value::Null) => None,
            Some(Value::Object(handling)) => Some(message_handling(handling, &format!("{at}.messageHandling"))?),
            Some(_) => return Err(format!("{at}.messageHandling: must be an object {{strategy, ...}}")),
        };
        let enable_receiving = r.boolean("enableReceiving")?.unwrap_or(false);
        if enable_receiving && mode == ProviderMode::External && message_handling.is_none() {
            return Err(format!("{at}.messageHandling: required with enableReceiving (where incoming events go)"));
        }
        let transports = r.strings("transports")?.unwrap_or_else(|| vec!["websocket".into()]);
        if let Some(t) = transports.iter().find(|t| !["websocket", "polling"].contains(&t.as_str())) {
            return Err(format!("{at}.transports: `{t}` is neither \"websocket\" nor \"polling\""));
        }
        let path = r.string("path")?.unwrap_or_else(|| "/socket.io".into());
        if !path.starts_with('/')
            || path.len() > 200
            || path.bytes().any(|b| b.is_ascii_whitespace() || b == b'?' || b == b'#')
        {
            return Err(format!("{at}.path: must be an HTTP path such as \"/socket.io\", got \"{path}\""));
        }
        Ok(Self {
            mode,
            protocol,
            url,
            auth,
            reconnection: r.boolean("reconnection")?.unwrap_or(true),
            reconnection_attempts: r.count("reconnectionAttempts", 1000)?.unwrap_or(5),
            reconnection_delay: r.millis("reconnectionDelay", 0)?.unwrap_or(Duration::from_millis(1000)),
            timeout: r.millis("timeout", 1)?.unwrap_or(Duration::from_millis(20_000)),
            enable_compression: r.boolean("enableCompression")?.unwrap_or(false),
            enable_acknowledgments: r.boolean("enableAcknowledgments")?.unwrap_or(false),
            custom_events,
            default_channels: r.strings("defaultChannels")?.unwrap_or_default(),
            support_channel_broadcast: r.boolean("supportChannelBroadcast")?.unwrap_or(false),
            enable_receiving,
            subscribe_to_events: r.strings("subscribeToEvents")?.unwrap_or_default(),
            message_handling,
            enable_request_response: r.boolean("enableRequestResponse")?.unwrap_or(false),
            request_timeout: r.millis("requestTimeout", 1)?.unwrap_or(Duration::from_millis(5000)),
            transports,
            path,
            enabled: r.boolean("enabled")?.unwrap_or(true),
        })
    }
}

/// `messageHandling`, checked.
fn message_handling(fields: &Map<String, Value>, at: &str) -> Result<MessageHandling, String> {
    if let Some(unknown) = fields.keys().find(|k| !HANDLING_FIELDS.contains(&k.as_str())) {
        return Err(format!("{at}: {}", unknown_field(unknown, HANDLING_FIELDS)));
    }
    let r = Reader { fields, at };
    let strategy = match r.string("strategy")?.as_deref() {
        Some("callback") => HandlingStrategy::Callback,
        Some("database") => HandlingStrategy::Database,
        Some("kafka") => HandlingStrategy::Kafka,
        Some("all") => HandlingStrategy::All,
        other => return Err(r.bad("strategy", "required, \"callback\", \"database\", \"kafka\" or \"all\"", other)),
    };
    let callback_url = r.string("callbackUrl")?;
    if let Some(url) = &callback_url {
        check_url(url, &["http", "https"]).map_err(|e| format!("{at}.callbackUrl: {e}"))?;
    }
    if strategy == HandlingStrategy::Callback && callback_url.is_none() {
        return Err(format!("{at}.callbackUrl: required by the callback strategy"));
    }
    let kafka_topic = r.string("kafkaTopic")?;
    if let Some(topic) = &kafka_topic
        && !is_topic_name(topic)
    {
        return Err(format!(
            "{at}.kafkaTopic: `{topic}` is not a Kafka topic name (1 to 249 letters, digits, `.`, `_` or `-`)"
        ));
    }
    let handling = MessageHandling {
        strategy,
        callback_url,
        store_in_database: r.boolean("storeInDatabase")?.unwrap_or(false),
        publish_to_kafka: r.boolean("publishToKafka")?.unwrap_or(false),
        kafka_topic,
    };
    if handling.publishes_to_kafka() && handling.kafka_topic.is_none() {
        return Err(format!("{at}.kafkaTopic: required to publish to Kafka (strategy \"{}\")", strategy.as_str()));
    }
    if strategy == HandlingStrategy::All
        && !(handling.calls_back() || handling.stores_in_database() || handling.publishes_to_kafka())
    {
        return Err(format!(
            "{at}: the all strategy delivers to the parts it names: give callbackUrl, storeInDatabase: true or publishToKafka: true"
        ));
    }
    Ok(handling)
}

/// A URL with one of `schemes`, a host, and no credentials in it (they belong in `authType`'s
/// fields, which are kept secret; a URL is shown by `GET /api/v1/bridges`).
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("`{url}` is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if !schemes.contains(&scheme) {
        return Err(format!("`{url}`: the scheme must be one of {}", schemes.join(", ")));
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err("credentials in the URL are refused: use authType and its fields".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

/// Typed reads of one object's fields; errors name `at.field`.
#[derive(Clone, Copy)]
struct Reader<'a> {
    fields: &'a Map<String, Value>,
    at: &'a str,
}

impl Reader<'_> {
    fn bad(&self, field: &str, expected: &str, got: Option<&str>) -> String {
        match got {
            Some(v) => format!("{}.{field}: must be {expected}, got \"{v}\"", self.at),
            None => format!("{}.{field}: {expected}", self.at),
        }
    }

    fn wrong(&self, field: &str, expected: &str) -> String {
        let got = self.fields.get(field).map(|v| v.to_string()).unwrap_or_default();
        let got: String = got.chars().take(60).collect();
        format!("{}.{field}: must be {expected}, got {got}", self.at)
    }

    fn string(&self, field: &str) -> Result<Option<String>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 2048 => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(field, "a non-empty string")),
        }
    }

    fn boolean(&self, field: &str) -> Result<Option<bool>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(field, "true or false")),
        }
    }

    fn count(&self, field: &str, max: u32) -> Result<Option<u32>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= u64::from(max) => Ok(Some(n as u32)),
                _ => Err(self.wrong(field, &format!("a whole number from 0 to {max}"))),
            },
        }
    }

    fn millis(&self, field: &str, min: u64) -> Result<Option<Duration>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(ms) if (min..=MAX_MS).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
                _ => Err(self.wrong(field, &format!("a number of milliseconds from {min} to {MAX_MS}"))),
            },
        }
    }

    fn strings(&self, field: &str) -> Result<Option<Vec<String>>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items))
                if items.len() <= MAX_ITEMS
                    && items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 200)) =>
            {
                Ok(Some(items.iter().filter_map(|i| i.as_str().map(String::from)).collect()))
            }
            Some(_) => Err(self.wrong(field, &format!("a list of at most {MAX_ITEMS} non-empty strings"))),
        }
    }

    /// An object of names to values (strings, numbers or booleans), the values secret.
    fn secret_map(&self, field: &str, header_names: bool) -> Result<Option<Vec<(String, SecretString)>>, String> {
        let Some(value) = self.fields.get(field).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let Value::Object(entries) = value else {
            return Err(format!("{}.{field}: must be an object of names to values", self.at));
        };
        if entries.is_empty() || entries.len() > MAX_ITEMS {
            return Err(format!("{}.{field}: must hold 1 to {MAX_ITEMS} entries", self.at));
        }
        let mut out = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if header_names && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("{}.{field}: `{name}` is not a header name", self.at));
            }
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                // The value is a credential: say what is wrong, not what it is.
                _ => return Err(format!("{}.{field}.{name}: must be a string, a number or a boolean", self.at)),
            };
            if header_names && http::HeaderValue::from_str(&text).is_err() {
                return Err(format!("{}.{field}.{name}: is not a valid header value", self.at));
            }
            out.push((name.clone(), SecretString::from(text)));
        }
        Ok(Some(out))
    }

    /// `authType` and the fields it needs; a field of another type is refused (it would be sent
    /// nowhere, which is a mistake worth hearing about).
    fn auth(&self) -> Result<BridgeAuth, String> {
        let kind = self.string("authType")?;
        let token = match self.fields.get("authToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(SecretString::from(s.clone())),
            Some(_) => return Err(format!("{}.authToken: must be a non-empty string", self.at)),
        };
        let password = match self.fields.get("password") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(SecretString::from(s.clone())),
            Some(_) => return Err(format!("{}.password: must be a string", self.at)),
        };
        let username = self.string("username")?;
        let query = self.secret_map("authQuery", false)?;
        let headers = self.secret_map("authHeaders", true)?;
        let needs = |field: &str, present: bool| {
            if present {
                Ok(())
            } else {
                Err(format!("{}.{field}: required by authType \"{}\"", self.at, kind.as_deref().unwrap_or_default()))
            }
        };
        let auth = match kind.as_deref() {
            None | Some("none") => BridgeAuth::None,
            Some("bearer") => {
                needs("authToken", token.is_some())?;
                BridgeAuth::Bearer(token.clone().unwrap_or_else(|| SecretString::from(String::new())))
            }
            Some("basic") => {
                needs("username", username.is_some())?;
                needs("password", password.is_some())?;
                BridgeAuth::Basic {
                    username: username.clone().unwrap_or_default(),
                    password: password.clone().unwrap_or_else(|| SecretString::from(String::new())),
                }
            }
            Some("query") => {
                needs("authQuery", query.is_some())?;
                BridgeAuth::Query(query.clone().unwrap_or_default())
            }
            Some("custom") => {
                needs("authHeaders", headers.is_some())?;
                BridgeAuth::Custom(headers.clone().unwrap_or_default())
            }
            other => return Err(self.bad("authType", "\"bearer\", \"basic\", \"query\" or \"custom\"", other)),
        };
        let used = match &auth {
            BridgeAuth::None => &[][..],
            BridgeAuth::Bearer(_) => &["authToken"][..],
            BridgeAuth::Basic { .. } => &["username", "password"][..],
            BridgeAuth::Query(_) => &["authQuery"][..],
            BridgeAuth::Custom(_) => &["authHeaders"][..],
        };
        for (field, present) in [
            ("authToken", token.is_some()),
            ("username", username.is_some()),
            ("password", password.is_some()),
            ("authQuery", query.is_some()),
            ("authHeaders", headers.is_some()),
        ] {
            if present && !used.contains(&field) {
                return Err(format!(
                    "{}.{field}: not used by authType \"{}\"",
                    self.at,
                    kind.as_deref().unwrap_or("none")
                ));
            }
        }
        Ok(auth)
    }
}

impl Reader<'_> {
    fn event_name(&self, field: &str) -> Result<Option<String>, String> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 200 => Ok(Some(s.clone())),
            Some(_) => Err(format!("{}.{field}: must be a non-empty event name", self.at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEED_SOCKETIO: &str = r#"[{"tenantId": 1, "name": "notify-io",
      "providerType": "websocket", "channel": "websocket", "mode": "external", "protocol": "socketio",
      "url": "https://notifications.example.com", "authType": "bearer", "authToken": "your-api-token",
      "supportChannelBroadcast": true, "defaultChannels": ["notifications", "alerts", "system"],
      "reconnection": true, "reconnectionAttempts": 5, "reconnectionDelay": 1000, "timeout": 20000,
      "enableCompression": true, "enableAcknowledgments": true,
      "customEvents": {"notification": "notify", "channelBroadcast": "channel:broadcast", "incomingMessage": "message:received"},
      "enableReceiving": true, "subscribeToEvents": ["message:received", "status:update", "data:sync"],
      "messageHandling": {"strategy": "all", "callbackUrl": "https://your-app.com/webhooks/websocket",
        "storeInDatabase": true, "publishToKafka": true, "kafkaTopic": "websocket.incoming.messages"},
      "enableRequestResponse": true, "requestTimeout": 10000, "transports": ["websocket", "polling"],
      "path": "/socket.io", "enabled": true}]"#;

    const SEED_WS_YAML: &str = "
- tenantId: acme
  name: api-ws
  providerType: websocket
  channel: websocket
  mode: external
  protocol: ws
  url: wss://api.example.com/ws
  authType: query
  authQuery: {token: your-api-token, client: notification-system}
  reconnection: true
  reconnectionAttempts: 3
  reconnectionDelay: 2000
  enableCompression: true
  enableAcknowledgments: true
  enableReceiving: true
  subscribeToEvents: [notification, status, error]
  messageHandling: {strategy: kafka, publishToKafka: true, kafkaTopic: external.websocket.messages}
  enabled: true
";

    #[test]
    fn the_seeds_examples_are_accepted_as_written() {
        let io = &parse_bridges_file(SEED_SOCKETIO).unwrap()[0];
        assert_eq!((io.tenant_id.as_str(), io.name.as_str()), ("1", "notify-io"));
        assert_eq!(io.provider.protocol, BridgeProtocol::SocketIo);
        assert_eq!(io.provider.custom_events.notification, "notify");
        assert!(matches!(io.provider.auth, BridgeAuth::Bearer(_)));
        let ws = &parse_bridges_file(SEED_WS_YAML).unwrap()[0];
        assert_eq!(ws.provider.reconnection_attempts, 3);
        assert!(matches!(&ws.provider.auth, BridgeAuth::Query(q) if q.len() == 2));
        assert_eq!(ws.provider.message_handling.as_ref().unwrap().strategy, HandlingStrategy::Kafka);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = |patch: &str| {
            let text = SEED_SOCKETIO.replacen("\"enabled\": true}", &format!("\"enabled\": true, {patch}}}"), 1);
            parse_bridges_file(&text).unwrap_err()
        };
        let e = err("\"timout\": 5");
        assert!(e.contains("bridges[0]: unknown field `timout`") && e.contains("did you mean `timeout`"), "{e}");
        let e = err("\"reconnectionAttempts\": \"five\"").replace("\"five\"", "five");
        assert!(e.starts_with("bridges[0].reconnectionAttempts: must be a whole number"), "{e}");
        let text = SEED_SOCKETIO.replace("\"https://notifications.example.com\"", "\"ftp://x\"");
        assert!(parse_bridges_file(&text).unwrap_err().starts_with("bridges[0].url:"));
        let text = SEED_SOCKETIO.replace("\"notify\"", "3");
        assert!(parse_bridges_file(&text).unwrap_err().starts_with("bridges[0].customEvents.notification:"));
        let text = SEED_SOCKETIO.replace("\"strategy\": \"all\"", "\"strategy\": \"fax\"");
        assert!(parse_bridges_file(&text).unwrap_err().starts_with("bridges[0].messageHandling.strategy:"));
    }

    #[test]
    fn a_redacted_provider_shows_no_credential() {
        let io = &parse_bridges_file(SEED_SOCKETIO).unwrap()[0];
        let shown = io.json.redacted().to_string();
        assert!(!shown.contains("your-api-token") && shown.contains(REDACTED), "{shown}");
        let ws = &parse_bridges_file(&SEED_WS_YAML.replace("/ws\n", "/ws?key=in-url\n")).unwrap()[0];
        let shown = ws.json.redacted();
        assert_eq!(shown["authQuery"]["token"], REDACTED);
        assert_eq!(shown["url"], format!("wss://api.example.com/ws?{REDACTED}"));
        assert!(!format!("{ws:?}").contains("your-api-token"));
        let put = BridgeConfig::from_provider_json("7", "tenant-7", &io.json.expose(), "body").unwrap();
        assert_eq!(put.json, io.json);
        let e =
            BridgeConfig::from_provider_json("7", "x", &json!({"mode": "external", "url": "ws://a.example"}), "body");
        assert!(e.unwrap_err().starts_with("body.protocol:"));
    }

    #[test]
    fn credentials_never_appear_in_errors_or_debug() {
        let io = &parse_bridges_file(SEED_SOCKETIO).unwrap()[0];
        assert!(!format!("{io:?}").contains("your-api-token"));
        let text = SEED_WS_YAML.replace("client: notification-system", "client: [secret-value]");
        let e = parse_bridges_file(&text).unwrap_err();
        assert!(e.contains("authQuery.client") && !e.contains("secret-value"), "{e}");
    }
}
