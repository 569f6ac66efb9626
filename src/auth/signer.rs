//! The HS256 signer behind dev mode's demo token and the `token` subcommand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{JwtConfig, JwtKey};

/// Signs HS256 tokens: the dev-mode demo token and `realtime-gateway token`.
pub struct TokenSigner {
    key: EncodingKey,
}

/// The claims of a minted token.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(rename = "tenantId", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<&'a str>,
    roles: &'a [String],
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

impl TokenSigner {
    /// A signer for the configured key; only HS256 secrets can sign here.
    pub fn new(config: &JwtConfig) -> anyhow::Result<Self> {
        match &config.key {
            JwtKey::Hs256(secret) => Ok(Self { key: EncodingKey::from_secret(secret.expose_secret().as_bytes()) }),
            JwtKey::Public { .. } => anyhow::bail!(
                "the gateway only holds a public key (JWT_PUBLIC_KEY); mint tokens with the private key where your tokens are issued"
            ),
        }
    }

    /// Mints a token for `sub` valid for `ttl`, with the configured issuer and audience.
    pub fn mint(&self, config: &JwtConfig, sub: &str, tenant: Option<&str>, roles: &[String], ttl: Duration) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = MintedClaims {
            sub,
            tenant_id: tenant,
            roles,
            iat: now,
            exp: now.saturating_add(ttl.as_secs().max(1)),
            iss: config.issuer.as_deref(),
            aud: config.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing with a secret cannot fail")
    }
}
