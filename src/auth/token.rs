//! Client tokens: how they are verified ([`TokenVerifier`], the algorithm pinned by the key,
//! `exp` and `nbf` checked here since they may be fractional), what claims are read, and the
//! [`Identity`] they give a socket.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{JwtConfig, JwtKey, PublicKeyAlgorithm};

/// The identity a socket acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub` (or `userId`); `None` for an anonymous socket.
    pub user_id: Option<Arc<str>>,
    /// `tenantId`, when the token has one.
    pub tenant_id: Option<Arc<str>>,
    /// `roles`.
    pub roles: Arc<[Arc<str>]>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// A socket that connected without a token where the namespace allows it.
    pub fn anonymous() -> Self {
        Self { user_id: None, tenant_id: None, roles: Arc::from([]), expires_at: None }
    }

    /// A service connecting with an API key on behalf of `tenant` (plain WebSocket endpoints):
    /// user `service`, role `service`, no expiry.
    pub fn service(tenant: &str) -> Self {
        Self {
            user_id: Some(Arc::from("service")),
            tenant_id: Some(Arc::from(tenant)),
            roles: Arc::from([Arc::from("service")]),
            expires_at: None,
        }
    }

    /// Whether a token backs this identity.
    pub fn is_authenticated(&self) -> bool {
        self.user_id.is_some()
    }

    /// Whether the user has at least one of `roles`.
    pub fn has_any_role(&self, roles: &[String]) -> bool {
        roles.iter().any(|wanted| self.roles.iter().any(|r| **r == **wanted))
    }

    /// The `user` variable of spec templates.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.user_id.as_deref(),
            "tenantId": self.tenant_id.as_deref(),
            "roles": self.roles.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
            "authenticated": self.is_authenticated(),
            "expiresAt": self.expires_at,
        })
    }
}

/// Why a token was refused. `Display` is what the client is told.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// No token in any of the places looked at.
    #[error("Authentication token required")]
    Missing,
    /// Bad signature, wrong algorithm, malformed, wrong issuer or audience, no subject.
    #[error("Invalid authentication token")]
    Invalid,
    /// `exp` is in the past.
    #[error("Authentication token expired")]
    Expired,
    /// The namespace needs a tenant and the token has none.
    #[error("Authentication token has no tenantId")]
    MissingTenant,
    /// A cookie token on a handshake from a page of another origin (cross-site WebSocket
    /// hijacking): the cookie is not the page's to use.
    #[error("Cookie authentication is not accepted from this origin")]
    ForeignOrigin,
}

/// The claims the gateway reads; anything else in the token is ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<IdClaim>,
    #[serde(rename = "userId")]
    user_id: Option<IdClaim>,
    #[serde(rename = "tenantId")]
    tenant_id: Option<IdClaim>,
    #[serde(default)]
    roles: RolesClaim,
    exp: Option<NumericDate>,
    nbf: Option<NumericDate>,
}

/// A time claim: seconds since the epoch, which RFC 7519 allows to be fractional. jsonwebtoken
/// only reads whole numbers, so `exp` and `nbf` are checked here.
#[derive(Debug, Clone, Copy, Deserialize)]
struct NumericDate(f64);

/// Ids may be strings or numbers in the tokens of existing backends.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdClaim {
    Text(String),
    Number(serde_json::Number),
}

impl IdClaim {
    fn into_string(self) -> Option<String> {
        let s = match self {
            IdClaim::Text(s) => s,
            IdClaim::Number(n) => n.to_string(),
        };
        (!s.is_empty()).then_some(s)
    }
}

/// `roles` is an array of strings; a single string is accepted as one role.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum RolesClaim {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// Verifies client tokens.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// Builds a verifier for the configured key; fails on an unreadable public key.
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        let (key, algorithm) = match &config.key {
            JwtKey::Hs256(secret) => (DecodingKey::from_secret(secret.expose_secret().as_bytes()), Algorithm::HS256),
            JwtKey::Public { algorithm: PublicKeyAlgorithm::RS256, pem } => (
                DecodingKey::from_rsa_pem(pem.as_bytes())
                    .map_err(|e| anyhow::anyhow!("JWT_PUBLIC_KEY is not an RSA public key in PEM: {e}"))?,
                Algorithm::RS256,
            ),
            JwtKey::Public { algorithm: PublicKeyAlgorithm::ES256, pem } => (
                DecodingKey::from_ec_pem(pem.as_bytes())
                    .map_err(|e| anyhow::anyhow!("JWT_PUBLIC_KEY is not an EC public key in PEM: {e}"))?,
                Algorithm::ES256,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway.as_secs();
        // `exp` (required) and `nbf` are checked by `verify`, fractional values included.
        validation.set_required_spec_claims::<&str>(&[]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Self { key, validation })
    }

    /// Verifies `token` and returns the identity it carries.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            kind => {
                tracing::debug!(reason = ?kind, "token refused");
                TokenError::Invalid
            }
        })?;
        let claims = data.claims;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let leeway = self.validation.leeway as f64;
        let expires_at = match claims.exp {
            Some(NumericDate(exp)) if exp.is_finite() && exp >= 0.0 => exp,
            _ => {
                tracing::debug!("token refused: no numeric exp");
                return Err(TokenError::Invalid);
            }
        };
        if expires_at + leeway <= now {
            return Err(TokenError::Expired);
        }
        if let Some(NumericDate(nbf)) = claims.nbf
            && !(nbf.is_finite() && nbf - leeway <= now)
        {
            tracing::debug!("token refused: not valid yet (nbf)");
            return Err(TokenError::Invalid);
        }
        let user_id =
            claims.sub.and_then(IdClaim::into_string).or_else(|| claims.user_id.and_then(IdClaim::into_string));
        let Some(user_id) = user_id else {
            tracing::debug!("token refused: neither sub nor userId");
            return Err(TokenError::Invalid);
        };
        let roles: Vec<Arc<str>> = match claims.roles {
            RolesClaim::None => vec![],
            RolesClaim::One(r) => vec![Arc::from(r)],
            RolesClaim::Many(rs) => rs.into_iter().map(Arc::from).collect(),
        };
        Ok(Identity {
            user_id: Some(Arc::from(user_id)),
            tenant_id: claims.tenant_id.and_then(IdClaim::into_string).map(Arc::from),
            roles: Arc::from(roles),
            expires_at: Some(whole_seconds(expires_at)),
        })
    }

    /// Whether `identity`'s token has expired at `now_ms` (milliseconds since the epoch): from
    /// the instant `exp` plus the leeway on, nothing more is served to it.
    pub fn is_expired(&self, identity: &Identity, now_ms: u64) -> bool {
        identity.expires_at.is_some_and(|exp| self.expiry_instant_ms(exp) <= now_ms)
    }

    /// The instant, in milliseconds since the epoch, from which a token with this `exp` (in
    /// seconds) is expired: `exp` plus the leeway. Saturating: a token whose `exp` is beyond
    /// what a `u64` of milliseconds holds never expires, rather than wrapping to the past.
    pub fn expiry_instant_ms(&self, exp: u64) -> u64 {
        exp.saturating_add(self.validation.leeway).saturating_mul(1000)
    }

    /// The latest `exp` that has expired at `now_ms`, or `None` when none has yet: the same rule
    /// as [`Self::expiry_instant_ms`] (`exp` is expired iff `exp <= expired_up_to(now_ms)`),
    /// in the form the expiry queue takes.
    pub fn expired_up_to(&self, now_ms: u64) -> Option<u64> {
        (now_ms / 1000).checked_sub(self.validation.leeway)
    }
}

/// `exp` (finite, not negative) in whole seconds, rounded down so that a socket is never served
/// past it. A time past what a `u64` holds (`1e300`) is `u64::MAX`: never, in practice.
fn whole_seconds(exp: f64) -> u64 {
    // `u64::MAX as f64` rounds up to 2^64, which no u64 reaches.
    if exp >= u64::MAX as f64 { u64::MAX } else { exp.floor() as u64 }
}
