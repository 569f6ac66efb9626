//! Who is calling: client tokens (where to find them in a handshake, how they are verified, what
//! identity they carry), the HS256 signer behind dev mode and the `token` subcommand, and the API
//! keys of the HTTP API.
//!
//! The algorithm is pinned by the configured key: a token whose header names any other algorithm
//! is refused before its signature is looked at. Verification failures are logged with their
//! cause; clients only ever learn "invalid" or "expired".

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

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

/// Where a handshake token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The handshake's `auth.token`, the `?token=` query parameter or `Authorization: Bearer`:
    /// things a page's script sends on purpose.
    Explicit,
    /// A cookie, which a browser attaches to any request to this host, whoever's page makes it.
    Cookie,
}

/// Finds the token of a Socket.IO handshake, in the seed's order: the `auth` payload's `token`,
/// the `?token=` query parameter, `Authorization: Bearer`, then (when `cookie` names one) a
/// cookie. The first place that has one decides; an empty value counts as absent. A `Bearer `
/// prefix is tolerated everywhere.
pub fn handshake_token(
    auth: Option<&Value>,
    parts: &http::request::Parts,
    cookie: Option<&str>,
) -> Option<(String, TokenSource)> {
    let from_auth = auth.and_then(|a| a.get("token")).and_then(Value::as_str).map(str::to_string);
    let from_query = parts.uri.query().and_then(|q| query_param(q, "token"));
    let from_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_bearer(v).map(str::to_string));
    let clean = |t: String| Some(strip_bearer(&t).unwrap_or(&t).trim().to_string()).filter(|t| !t.is_empty());
    [from_auth, from_query, from_header]
        .into_iter()
        .flatten()
        .find_map(clean)
        .map(|t| (t, TokenSource::Explicit))
        .or_else(|| cookie_value(&parts.headers, cookie?).and_then(clean).map(|t| (t, TokenSource::Cookie)))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| percent_decode_query(v.trim().trim_matches('"')))
        },
    )
}

fn strip_bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The percent-decoded value of `name` in a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode_query(v))
    })
}

fn percent_decode_query(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(decoded) => {
                    out.push(decoded);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::template::Root;

    fn config(secret: &str) -> JwtConfig {
        JwtConfig {
            key: JwtKey::Hs256(SecretString::from(secret.to_string())),
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
        }
    }

    #[test]
    fn templates_see_the_fields_specs_are_checked_against() {
        let id = Identity { user_id: Some("u1".into()), tenant_id: None, roles: Arc::from([]), expires_at: Some(1) };
        let json = id.to_json();
        let fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(fields, Root::User.fields().unwrap());
    }

    #[test]
    fn minted_tokens_verify_and_carry_claims() {
        let c = config("secret");
        let token =
            TokenSigner::new(&c).unwrap().mint(&c, "u1", Some("t1"), &["admin".into()], Duration::from_secs(60));
        let id = TokenVerifier::new(&c).unwrap().verify(&token).unwrap();
        assert_eq!(id.user_id.as_deref(), Some("u1"));
        assert_eq!(id.tenant_id.as_deref(), Some("t1"));
        assert!(id.has_any_role(&["admin".into()]));
    }

    #[test]
    fn other_secrets_and_garbage_are_invalid() {
        let c = config("secret");
        let token = TokenSigner::new(&config("other")).unwrap().mint(&c, "u1", None, &[], Duration::from_secs(60));
        let v = TokenVerifier::new(&c).unwrap();
        assert_eq!(v.verify(&token), Err(TokenError::Invalid));
        assert_eq!(v.verify("not.a.token"), Err(TokenError::Invalid));
        assert_eq!(v.verify(""), Err(TokenError::Invalid));
        assert_eq!(v.verify("a.b"), Err(TokenError::Invalid));
    }

    #[test]
    fn the_bearer_header_and_query_are_sources_after_auth_and_cookies_come_last() {
        let parts = |uri: &str, headers: &[(&str, &str)]| {
            let mut b = http::Request::builder().uri(uri);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            b.body(()).unwrap().into_parts().0
        };
        let token = |auth: Option<&Value>, p: &http::request::Parts, cookie: Option<&str>| {
            handshake_token(auth, p, cookie).map(|(t, source)| (t, source == TokenSource::Cookie))
        };
        let bearer = [("authorization", "Bearer h")];
        let auth = json!({ "token": "from-auth" });
        assert_eq!(token(Some(&auth), &parts("/?token=q", &bearer), None), Some(("from-auth".into(), false)));
        assert_eq!(token(None, &parts("/?EIO=4&token=a%2Eb", &bearer), None), Some(("a.b".into(), false)));
        let lower = parts("/", &[("authorization", "bearer  h ")]);
        assert_eq!(token(Some(&json!({ "token": "" })), &lower, None), Some(("h".into(), false)));
        assert_eq!(token(None, &parts("/", &[("authorization", "Basic x")]), None), None);

        let cookies = [("cookie", "theme=dark; sid=c%2E1"), ("cookie", "other=1")];
        assert_eq!(token(None, &parts("/", &cookies), Some("sid")), Some(("c.1".into(), true)));
        assert_eq!(token(None, &parts("/", &cookies), None), None, "cookies only where the spec allows them");
        assert_eq!(token(None, &parts("/?token=q", &cookies), Some("sid")), Some(("q".into(), false)));
        assert_eq!(token(None, &parts("/", &cookies), Some("missing")), None);
    }

    #[test]
    fn api_keys_match_exactly() {
        let keys = ApiKeys::new(vec![SecretString::from("k1".to_string())]);
        let mut h = http::HeaderMap::new();
        assert!(!keys.authorize(&h));
        h.insert("x-api-key", "k1".parse().unwrap());
        assert!(keys.authorize(&h));
        h.insert("x-api-key", "k1x".parse().unwrap());
        assert!(!keys.authorize(&h));
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer k1".parse().unwrap());
        assert!(keys.authorize(&h));
        h.insert("x-api-key", "".parse().unwrap());
        assert!(keys.authorize(&h), "an empty X-API-Key does not hide a valid Bearer key");
    }

    fn signed(claims: Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(b"secret")).unwrap()
    }

    #[test]
    fn fractional_time_claims_are_accepted_and_exp_is_enforced() {
        let v = TokenVerifier::new(&config("secret")).unwrap();
        let now = now_secs() as f64;
        let id = v.verify(&signed(json!({ "sub": "u1", "exp": now + 60.5, "nbf": now - 0.25 }))).unwrap();
        assert_eq!(id.expires_at, Some((now + 60.5).floor() as u64), "rounded down");
        assert_eq!(v.verify(&signed(json!({ "sub": "u1", "exp": now - 0.5 }))), Err(TokenError::Expired));
        assert_eq!(v.verify(&signed(json!({ "sub": "u1" }))), Err(TokenError::Invalid), "exp is required");
        assert_eq!(v.verify(&signed(json!({ "sub": "u1", "exp": "soon" }))), Err(TokenError::Invalid));
        assert_eq!(
            v.verify(&signed(json!({ "sub": "u1", "exp": now + 60.0, "nbf": now + 30.0 }))),
            Err(TokenError::Invalid)
        );
        let exp = id.expires_at.unwrap();
        assert!(!v.is_expired(&id, exp * 1000 - 1));
        assert!(v.is_expired(&id, exp * 1000), "from the instant exp on");
    }

    fn with_leeway(secs: u64) -> TokenVerifier {
        TokenVerifier::new(&JwtConfig { leeway: Duration::from_secs(secs), ..config("secret") }).unwrap()
    }

    #[test]
    fn the_leeway_moves_the_expiry_instant_and_the_queue_cutoff_alike() {
        let v = with_leeway(5);
        let id = |exp| Identity { expires_at: Some(exp), ..Identity::anonymous() };
        assert_eq!(v.expiry_instant_ms(100), 105_000);
        assert!(!v.is_expired(&id(100), 104_999));
        assert!(v.is_expired(&id(100), 105_000));
        assert_eq!(v.expired_up_to(104_999), Some(99));
        assert_eq!(v.expired_up_to(105_000), Some(100));
        assert_eq!(v.expired_up_to(4_999), None, "nothing has expired before the leeway has passed");
        assert!(!v.is_expired(&Identity::anonymous(), u64::MAX), "no exp, no expiry");
    }

    #[test]
    fn an_exp_beyond_u64_is_never_reached_and_overflows_nothing() {
        let v = with_leeway(5);
        let now = now_secs() as f64;
        // 1e300, u64::MAX itself, and just below it (which f64 rounds to 2^64).
        let huge = [json!(1e300), json!(u64::MAX), json!(u64::MAX - 1000), json!(1.8446744073709552e19)];
        for exp in huge {
            let id = v.verify(&signed(json!({ "sub": "u1", "exp": exp, "nbf": now }))).unwrap();
            assert_eq!(id.expires_at, Some(u64::MAX), "{exp}");
            assert_eq!(v.expiry_instant_ms(u64::MAX), u64::MAX);
            assert!(!v.is_expired(&id, now as u64 * 1000));
            assert!(!v.is_expired(&id, u64::MAX - 1));
            assert!(v.expired_up_to(u64::MAX).unwrap() < u64::MAX, "the queue never takes it");
        }
        // Far, but within u64: rounded down as usual.
        let id = v.verify(&signed(json!({ "sub": "u1", "exp": 1e18 }))).unwrap();
        assert_eq!(id.expires_at, Some(1_000_000_000_000_000_000));
        assert_eq!(v.expiry_instant_ms(1_000_000_000_000_000_000), u64::MAX, "milliseconds saturate");
    }
}
