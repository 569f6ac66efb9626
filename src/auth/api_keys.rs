//! The API keys and who each one speaks for: a platform key (`API_KEYS`) acts for any tenant, a
//! tenant key (`TENANT_API_KEYS`) for its own tenant only. What a caller may then do with that
//! tenant is the HTTP side's and the WebSocket front's to decide ([`ApiCaller::acting_for`]).
//!
//! Keys are compared in constant time: the presented key and every configured one are hashed
//! (SHA-256) and all digests compared, so neither whether a key nearly matched, nor its length,
//! nor which tenant's (or whether a platform one) it is shows in the time an answer takes.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::handshake::strip_bearer;

/// Who a valid API key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCaller {
    /// A key of `API_KEYS`: any tenant, or none.
    Platform,
    /// A key of `TENANT_API_KEYS`: this tenant only.
    Tenant(Arc<str>),
}

impl ApiCaller {
    /// The tenant a call acts for, given the one it names (`None`: it names none). A platform
    /// key acts for whatever the call names; a tenant key for its own tenant, whether the call
    /// names it or nothing. `Err` holds the other tenant a tenant key named.
    pub fn acting_for(&self, named: Option<String>) -> Result<Option<String>, String> {
        match (self, named) {
            (ApiCaller::Platform, named) => Ok(named),
            (ApiCaller::Tenant(own), None) => Ok(Some(own.to_string())),
            (ApiCaller::Tenant(own), Some(named)) if named == **own => Ok(Some(named)),
            (ApiCaller::Tenant(_), Some(other)) => Err(other),
        }
    }

    /// The tenant of a tenant key; `None` for a platform key.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            ApiCaller::Platform => None,
            ApiCaller::Tenant(tenant) => Some(tenant),
        }
    }
}

/// One configured key: its digest and whom it speaks for.
struct Key {
    digest: [u8; 32],
    caller: ApiCaller,
}

/// The API keys of the HTTP API and the plain WebSocket endpoints.
#[derive(Clone)]
pub struct ApiKeys {
    keys: Arc<[Key]>,
}

impl ApiKeys {
    /// Wraps the configured keys: platform-wide ones, and (tenant, key) pairs. Configuration
    /// has made sure no key is both, or two tenants'.
    pub fn new(platform: Vec<SecretString>, tenants: Vec<(String, SecretString)>) -> Self {
        let platform =
            platform.into_iter().map(|key| Key { digest: digest(key.expose_secret()), caller: ApiCaller::Platform });
        let tenants = tenants.into_iter().map(|(tenant, key)| Key {
            digest: digest(key.expose_secret()),
            caller: ApiCaller::Tenant(Arc::from(tenant)),
        });
        Self { keys: platform.chain(tenants).collect() }
    }

    /// Whether no key is configured (the API then refuses everything).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Who the request's key (`X-API-Key`, else `Authorization: Bearer`) speaks for; `None`
    /// when it carries none or an unknown one.
    pub fn caller(&self, headers: &http::HeaderMap) -> Option<ApiCaller> {
        // An empty `X-API-Key:` (a proxy or a client library adding the header blank) is absent.
        let presented =
            headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim).filter(|k| !k.is_empty()).or_else(
                || headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(strip_bearer),
            );
        let presented = digest(presented.filter(|p| !p.is_empty())?);
        // Every key is compared and the match picked without a branch, so timing does not tell
        // which key (or whether one) nearly matched, nor whose it is.
        let (mut found, mut index) = (subtle::Choice::from(0), 0u32);
        for (i, key) in self.keys.iter().enumerate() {
            let equal = key.digest.ct_eq(&presented);
            found |= equal;
            index.conditional_assign(&(i as u32), equal);
        }
        bool::from(found).then(|| self.keys[index as usize].caller.clone())
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}
