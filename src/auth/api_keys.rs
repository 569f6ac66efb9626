//! The API keys of the HTTP API, compared in constant time.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::handshake::strip_bearer;

/// The API keys of the HTTP API, compared in constant time.
#[derive(Clone)]
pub struct ApiKeys {
    keys: Arc<[SecretString]>,
}

impl ApiKeys {
    /// Wraps the configured keys.
    pub fn new(keys: Vec<SecretString>) -> Self {
        Self { keys: Arc::from(keys) }
    }

    /// Whether no key is configured (the API then refuses everything).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the request carries a configured key in `X-API-Key` or `Authorization: Bearer`.
    pub fn authorize(&self, headers: &http::HeaderMap) -> bool {
        // An empty `X-API-Key:` (a proxy or a client library adding the header blank) is absent.
        let presented =
            headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty()).or_else(
                || headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(strip_bearer),
            );
        let Some(presented) = presented.filter(|p| !p.is_empty()) else {
            return false;
        };
        // Every key is compared, so timing does not tell which (or whether one) nearly matched.
        self.keys
            .iter()
            .fold(false, |found, key| found | bool::from(key.expose_secret().as_bytes().ct_eq(presented.as_bytes())))
    }
}
