//! Backends that specs forward client events to (`BACKENDS_FILE`): a name each, which a spec's
//! `forward: { to: NAME }` uses, and where and how the gateway calls it (URL, signing secret,
//! headers, timeout, calls in flight, queue). Specs name backends, never URLs: a spec ships
//! embedded in the binary, while where a team's backend runs is deployment configuration.
//!
//! A destination has a `kind`: `http` (the default: a backend called over HTTP, `url` required),
//! `database` (rows of `client_events` in the PostgreSQL of `DATABASE_URL`) or `kafka` (records
//! of its `topic` on the cluster of `KAFKA_BROKERS`). The last two take `queue` and `queue_bytes`
//! only: they never answer, so specs forward to them with `reply: false`
//! ([`BackendsConfig::fire_and_forget`]), and the start is refused when the variable they need
//! is unset ([`BackendsConfig::check_sinks`]).
//!
//! The file is checked as the bridges file is: every unknown field and bad value is refused with
//! its path named (`backends.users.timeout: ...`). `secret` and the values of `headers` are kept
//! as [`SecretString`]s so no `Debug` or log line prints them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{SinksConfig, env::Env, file::FileConfig};
use crate::{parse_errors::suggest::unknown_field, spec::STREAM_DESTINATION};

const FIELDS: &[&str] = &["kind", "url", "secret", "headers", "timeout", "concurrency", "queue", "queue_bytes"];
/// The fields of a `database` destination, and of a `kafka` one.
const DATABASE_FIELDS: &[&str] = &["kind", "queue", "queue_bytes"];
const KAFKA_FIELDS: &[&str] = &["kind", "topic", "queue", "queue_bytes"];
const KINDS: &[&str] = &["http", "database", "kafka"];
/// Longest timeout a backend may be given.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a destination's calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// POSTed to `url` (answers; `reply: true` is possible).
    Http,
    /// Rows of `client_events` in the PostgreSQL of `DATABASE_URL` (fire-and-forget).
    Database,
    /// Records of `topic` on the cluster of `KAFKA_BROKERS`, keyed by tenant (fire-and-forget).
    Kafka {
        /// The topic (which must exist).
        topic: String,
    },
}

/// One backend.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// What specs call it.
    pub name: String,
    /// HTTP, database or Kafka.
    pub kind: BackendKind,
    /// Where calls are POSTed (`http://`; checked against `BRIDGE_ALLOWED_HOSTS` at each call);
    /// empty for the other kinds.
    pub url: String,
    /// The HMAC-SHA256 key the gateway signs each call's body with (`X-Gateway-Signature`).
    pub secret: Option<SecretString>,
    /// Headers sent with every call (a static `Authorization`, for example).
    pub headers: Vec<(String, SecretString)>,
    /// How long a call may take, connect to answer (default 5s); a spec may ask for less.
    pub timeout: Duration,
    /// Calls in flight at once (default 16).
    pub concurrency: usize,
    /// Calls waiting for a place (default 256); beyond, a call is refused as busy at once.
    pub queue: usize,
    /// Bytes of the calls waiting (default 4 MiB); beyond, a call is refused as busy.
    pub queue_bytes: usize,
}

/// Every backend of `BACKENDS_FILE`, in file order.
#[derive(Debug, Clone, Default)]
pub struct BackendsConfig {
    /// The backends.
    pub backends: Vec<BackendConfig>,
}

impl BackendsConfig {
    /// The names specs may use: every backend's, and the event stream's.
    pub fn destinations(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.name.clone()).chain([STREAM_DESTINATION.to_string()]).collect()
    }

    /// The destinations that never answer (`database`, `kafka`): specs forward to them with
    /// `reply: false`. (The event stream is refused `reply: true` where the spec is compiled.)
    pub fn fire_and_forget(&self) -> Vec<String> {
        self.backends.iter().filter(|b| b.kind != BackendKind::Http).map(|b| b.name.clone()).collect()
    }

    /// Refuses a destination whose kind needs a variable `sinks` lacks (`DATABASE_URL`,
    /// `KAFKA_BROKERS`), naming both: better than a start that drops every event sent there.
    pub fn check_sinks(&self, sinks: &SinksConfig) -> anyhow::Result<()> {
        for backend in &self.backends {
            match backend.kind {
                BackendKind::Database if sinks.database_url.is_none() => {
                    anyhow::bail!("BACKENDS_FILE: destination `{}` is of kind database: set DATABASE_URL", backend.name)
                }
                BackendKind::Kafka { .. } if sinks.kafka_brokers.is_empty() => {
                    anyhow::bail!("BACKENDS_FILE: destination `{}` is of kind kafka: set KAFKA_BROKERS", backend.name)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `BACKENDS_FILE` (or the config file's `backends_file`), read and checked.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        let Some(path) = env.get("BACKENDS_FILE").map(PathBuf::from).or_else(|| file.backends_file.clone()) else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("BACKENDS_FILE: cannot read {}", path.display()))?;
        parse_backends_file(&text).map_err(|e| anyhow::anyhow!("BACKENDS_FILE {}: {e}", path.display()))
    }
}

/// The backends file's text, YAML or JSON: a mapping of name to `{url, secret?, headers?,
/// timeout?, concurrency?, queue?, queue_bytes?}`.
pub fn parse_backends_file(text: &str) -> Result<BackendsConfig, String> {
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| crate::parse_errors::json(text.as_bytes(), &e))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| crate::parse_errors::yaml(&e))?
    };
    let Value::Object(entries) = value else {
        return Err("must be a mapping of backend names to {url, ...}".into());
    };
    let mut backends = Vec::with_capacity(entries.len());
    for (name, settings) in entries {
        let at = format!("backends.{name}");
        if !is_backend_name(&name) {
            return Err(format!("{at}: a name is 1 to 100 letters, digits, `-`, `_` or `.`"));
        }
        if name == STREAM_DESTINATION {
            return Err(format!("{at}: `{STREAM_DESTINATION}` is the backend event stream's name in specs"));
        }
        let Value::Object(fields) = settings else {
            return Err(format!("{at}: must be an object {{url, ...}}"));
        };
        backends.push(backend(name, &fields, &at)?);
    }
    Ok(BackendsConfig { backends })
}

fn backend(name: String, fields: &Map<String, Value>, at: &str) -> Result<BackendConfig, String> {
    let kind = match fields.get("kind") {
        None | Some(Value::Null) => "http",
        Some(Value::String(k)) if KINDS.contains(&k.as_str()) => k.as_str(),
        Some(_) => return Err(format!("{at}.kind: must be one of {}", KINDS.join(", "))),
    };
    if kind != "http" {
        return sink(name, kind, fields, at);
    }
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("{at}: {}", unknown_field(unknown, FIELDS)));
    }
    let url = match fields.get("url") {
        Some(Value::String(url)) => url.clone(),
        _ => return Err(format!("{at}.url: required, an http:// URL")),
    };
    check_url(&url).map_err(|e| format!("{at}.url: {e}"))?;
    let secret = match fields.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() >= 16 => Some(SecretString::from(s.clone())),
        // The value is never repeated: it is a credential.
        Some(_) => return Err(format!("{at}.secret: must be a string of at least 16 characters")),
    };
    let headers = match fields.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(header, value)| {
                let valid = http::HeaderName::from_bytes(header.as_bytes()).is_ok()
                    && !["content-type", "content-length", "host"].contains(&header.to_ascii_lowercase().as_str())
                    && !header.to_ascii_lowercase().starts_with("x-gateway-");
                if !valid {
                    return Err(format!(
                        "{at}.headers: `{header}` is not a header name the gateway may send (nor Content-Type, Content-Length, Host or X-Gateway-*)"
                    ));
                }
                match value {
                    Value::String(v) if http::HeaderValue::from_str(v).is_ok() => {
                        Ok((header.clone(), SecretString::from(v.clone())))
                    }
                    _ => Err(format!("{at}.headers.{header}: must be a string a header can carry")),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(format!("{at}.headers: must be an object of header names and values")),
    };
    let timeout = match fields.get("timeout") {
        None | Some(Value::Null) => Duration::from_secs(5),
        Some(v) => {
            let parsed = match v {
                Value::Number(n) => n.as_u64().map(Duration::from_millis).ok_or_else(|| "not a whole number".into()),
                Value::String(s) => crate::spec::durations::parse_duration(s),
                _ => Err("not a duration".into()),
            };
            match parsed {
                Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => d,
                _ => return Err(format!("{at}.timeout: must be a duration from 1ms to 2m (`5s`, or milliseconds)")),
            }
        }
    };
    let count = |field: &str, default: usize, max: usize| count(fields, at, field, default, max);
    Ok(BackendConfig {
        name,
        kind: BackendKind::Http,
        url,
        secret,
        headers,
        timeout,
        concurrency: count("concurrency", 16, 1024)?,
        queue: count("queue", 256, 100_000)?,
        queue_bytes: count("queue_bytes", 4 * 1024 * 1024, 1024 * 1024 * 1024)?,
    })
}

/// A `database` or `kafka` destination: a queue, and Kafka's topic.
fn sink(name: String, kind: &str, fields: &Map<String, Value>, at: &str) -> Result<BackendConfig, String> {
    let allowed = if kind == "kafka" { KAFKA_FIELDS } else { DATABASE_FIELDS };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        let e = unknown_field(unknown, allowed);
        return Err(format!("{at}: {e} (a {kind} destination takes {})", allowed.join(", ")));
    }
    let kind = if kind == "kafka" {
        match fields.get("topic") {
            Some(Value::String(t)) if is_topic(t) => BackendKind::Kafka { topic: t.clone() },
            _ => return Err(format!("{at}.topic: required, 1 to 249 letters, digits, `.`, `_` or `-`")),
        }
    } else {
        BackendKind::Database
    };
    Ok(BackendConfig {
        name,
        kind,
        url: String::new(),
        secret: None,
        headers: Vec::new(),
        // Unused: nothing waits for these destinations (the queue is their only bound).
        timeout: Duration::from_secs(5),
        // One writer each, which keeps the events' order.
        concurrency: 1,
        queue: count(fields, at, "queue", 1000, 100_000)?,
        queue_bytes: count(fields, at, "queue_bytes", 4 * 1024 * 1024, 1024 * 1024 * 1024)?,
    })
}

/// A whole number from 1 to `max` at `field`, `default` when unset.
fn count(fields: &Map<String, Value>, at: &str, field: &str, default: usize, max: usize) -> Result<usize, String> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("{at}.{field}: must be a whole number from 1 to {max}")),
        },
        Some(_) => Err(format!("{at}.{field}: must be a whole number from 1 to {max}")),
    }
}

/// A name Kafka takes for a topic.
fn is_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_backend_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// An `http://` or `https://` URL with a host and no credentials in it (they go in `headers` or
/// `secret`, which are kept secret). `https://` is verified with the bridges' roots
/// (`BRIDGE_CA_FILE`).
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must be an http:// or https:// URL".into()),
    }
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority.contains('@') {
        return Err("credentials in the URL are refused: use `headers` or `secret`".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const FILE: &str = "
users:
  url: http://users.internal:8080/gateway/events
  secret: a-long-enough-signing-key
  headers: { Authorization: Bearer backend-token-123 }
  timeout: 3s
  concurrency: 4
audit: { url: 'http://10.0.0.5/audit' }
";

    #[test]
    fn a_file_is_read_with_defaults() {
        let config = parse_backends_file(FILE).unwrap();
        let users = &config.backends[0];
        assert_eq!((users.name.as_str(), users.timeout, users.concurrency), ("users", Duration::from_secs(3), 4));
        assert_eq!(users.headers[0].1.expose_secret(), "Bearer backend-token-123");
        let audit = &config.backends[1];
        assert_eq!((audit.timeout, audit.concurrency, audit.queue), (Duration::from_secs(5), 16, 256));
        assert_eq!(config.destinations(), ["users", "audit", "stream"]);
        assert!(config.fire_and_forget().is_empty());
    }

    #[test]
    fn database_and_kafka_destinations_need_their_variable() {
        let config = parse_backends_file(
            "users: { url: 'http://x' }\naudit-db: { kind: database, queue: 10 }\naudit-kafka: { kind: kafka, topic: client.events, queue_bytes: 2048 }",
        )
        .unwrap();
        let [_, db, kafka] = config.backends.as_slice() else { panic!("{config:?}") };
        assert_eq!((&db.kind, db.queue, db.queue_bytes), (&BackendKind::Database, 10, 4 * 1024 * 1024));
        assert_eq!(kafka.kind, BackendKind::Kafka { topic: "client.events".into() });
        assert_eq!((kafka.queue, kafka.queue_bytes), (1000, 2048));
        assert_eq!(config.fire_and_forget(), ["audit-db", "audit-kafka"]);
        assert_eq!(config.destinations(), ["users", "audit-db", "audit-kafka", "stream"]);

        let mut sinks = SinksConfig::default();
        let e = config.check_sinks(&sinks).unwrap_err().to_string();
        assert!(e.contains("`audit-db`") && e.contains("DATABASE_URL"), "{e}");
        sinks.database_url = Some(SecretString::from("postgres://u:hidden-pw@db/x"));
        let e = config.check_sinks(&sinks).unwrap_err().to_string();
        assert!(e.contains("`audit-kafka`") && e.contains("KAFKA_BROKERS") && !e.contains("hidden-pw"), "{e}");
        sinks.kafka_brokers = vec!["k:9092".into()];
        assert!(config.check_sinks(&sinks).is_ok());
    }

    #[test]
    fn mistakes_are_named_and_secrets_never_shown() {
        let err = |text: &str| parse_backends_file(text).unwrap_err();
        let e = err("users: { url: 'http://x', timout: 3s }");
        assert!(e.starts_with("backends.users: unknown field `timout`") && e.contains("did you mean `timeout`"), "{e}");
        assert!(err("users: { url: 'ftp://x' }").starts_with("backends.users.url: must be an http:// or https:// URL"));
        assert!(parse_backends_file("users: { url: 'https://x' }").is_ok());
        assert!(err("users: { url: 'http://u:p@x' }").contains("credentials"));
        assert!(err("stream: { url: 'http://x' }").contains("event stream"));
        assert!(err("users: { url: 'http://x', concurrency: 0 }").starts_with("backends.users.concurrency"));
        let e = err("users: { url: 'http://x', secret: short-key-9 }");
        assert!(e.starts_with("backends.users.secret") && !e.contains("short-key-9"), "{e}");
        let e = err("users: { url: 'http://x', headers: { X-Token: [hidden-value-1] } }");
        assert!(e.contains("headers.X-Token") && !e.contains("hidden-value-1"), "{e}");
        assert!(err("a: { kind: ftp }").starts_with("backends.a.kind: must be one of http, database, kafka"));
        let e = err("a: { kind: database, url: 'http://x' }");
        assert!(e.starts_with("backends.a: unknown field `url`") && e.contains("kind, queue, queue_bytes"), "{e}");
        assert!(err("a: { kind: kafka }").starts_with("backends.a.topic: required"));
        assert!(err("a: { kind: kafka, topic: 'no spaces' }").starts_with("backends.a.topic"));
        assert!(err("a: { kind: kafka, topic: t, queue: 0 }").starts_with("backends.a.queue"));
        let config = parse_backends_file(FILE).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("backend-token-123") && !shown.contains("a-long-enough-signing-key"), "{shown}");
    }
}
