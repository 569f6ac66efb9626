//! Backends that specs forward client events to (`BACKENDS_FILE`): a name each, which a spec's
//! `forward: { to: NAME }` uses, and where and how the gateway calls it (URL, signing secret,
//! headers, timeout, calls in flight, queue). Specs name backends, never URLs: a spec ships
//! embedded in the binary, while where a team's backend runs is deployment configuration.
//!
//! The file is checked as the bridges file is: every unknown field and bad value is refused with
//! its path named (`backends.users.timeout: ...`). `secret` and the values of `headers` are kept
//! as [`SecretString`]s so no `Debug` or log line prints them.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::{env::Env, file::FileConfig};
use crate::{parse_errors::suggest::unknown_field, spec::STREAM_DESTINATION};

const FIELDS: &[&str] = &["url", "secret", "headers", "timeout", "concurrency", "queue", "queue_bytes"];
/// Longest timeout a backend may be given.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// One backend.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// What specs call it.
    pub name: String,
    /// Where calls are POSTed (`http://`; checked against `BRIDGE_ALLOWED_HOSTS` at each call).
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
    let count = |field: &str, default: usize, max: usize| match fields.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("{at}.{field}: must be a whole number from 1 to {max}")),
        },
        Some(_) => Err(format!("{at}.{field}: must be a whole number from 1 to {max}")),
    };
    Ok(BackendConfig {
        name,
        url,
        secret,
        headers,
        timeout,
        concurrency: count("concurrency", 16, 1024)?,
        queue: count("queue", 256, 100_000)?,
        queue_bytes: count("queue_bytes", 4 * 1024 * 1024, 1024 * 1024 * 1024)?,
    })
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
        let config = parse_backends_file(FILE).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("backend-token-123") && !shown.contains("a-long-enough-signing-key"), "{shown}");
    }
}
