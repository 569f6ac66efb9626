//! Tokens end to end: minted, found in a handshake, verified (secrets, garbage, fractional
//! times, leeway, far expiries), and API keys.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::{
    config::{JwtConfig, JwtKey},
    spec::template::Root,
};

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
    let token = TokenSigner::new(&c).unwrap().mint(&c, "u1", Some("t1"), &["admin".into()], Duration::from_secs(60));
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
    let keys = ApiKeys::new(vec![SecretString::from("k1".to_string())], vec![]);
    let mut h = http::HeaderMap::new();
    assert_eq!(keys.caller(&h), None);
    h.insert("x-api-key", "k1".parse().unwrap());
    assert_eq!(keys.caller(&h), Some(ApiCaller::Platform));
    h.insert("x-api-key", "k1x".parse().unwrap());
    assert_eq!(keys.caller(&h), None);
    h.insert("x-api-key", "k".parse().unwrap());
    assert_eq!(keys.caller(&h), None);
    let mut h = http::HeaderMap::new();
    h.insert("authorization", "Bearer k1".parse().unwrap());
    assert_eq!(keys.caller(&h), Some(ApiCaller::Platform));
    h.insert("x-api-key", "".parse().unwrap());
    assert_eq!(keys.caller(&h), Some(ApiCaller::Platform), "an empty X-API-Key does not hide a valid Bearer key");
}

#[test]
fn a_tenant_key_speaks_for_its_tenant_only() {
    let secret = |k: &str| SecretString::from(k.to_string());
    let keys = ApiKeys::new(
        vec![secret("p1")],
        vec![("tenant-a".into(), secret("ka1")), ("tenant-b".into(), secret("kb")), ("tenant-a".into(), secret("ka2"))],
    );
    let caller = |key: &str| {
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", key.parse().unwrap());
        keys.caller(&h)
    };
    assert_eq!(caller("p1"), Some(ApiCaller::Platform));
    let a = caller("ka1").unwrap();
    assert_eq!(a.tenant(), Some("tenant-a"));
    assert_eq!(caller("ka2"), Some(a.clone()), "a tenant may have several keys");
    assert_eq!(caller("kb").unwrap().tenant(), Some("tenant-b"));
    assert_eq!(caller("tenant-a"), None);
    assert_eq!(caller("ka"), None);

    assert_eq!(a.acting_for(None), Ok(Some("tenant-a".into())), "no tenant named: its own");
    assert_eq!(a.acting_for(Some("tenant-a".into())), Ok(Some("tenant-a".into())));
    assert_eq!(a.acting_for(Some("tenant-b".into())), Err("tenant-b".into()));
    assert_eq!(ApiCaller::Platform.acting_for(None), Ok(None));
    assert_eq!(ApiCaller::Platform.acting_for(Some("t9".into())), Ok(Some("t9".into())));
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
