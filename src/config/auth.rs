//! How callers prove who they are: the key client tokens are verified with (and with it dev
//! mode, when none is given), the API keys of the HTTP API (platform-wide `API_KEYS`, and
//! `TENANT_API_KEYS`, each confined to one tenant), and the cookie a token may come in.
//!
//! Dev mode's random secret and demo key are for a gateway given no auth setting at all: any
//! token setting, or a variable that looks like a misspelt one, without a key is a start-up
//! error instead.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    env::{Env, list},
    file::{FileConfig, TenantKeysSetting},
    random_hex,
    variables::AUTH_VARIABLES,
};
use crate::spec::durations::parse_duration;

/// Token verification settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The key, and with it the one algorithm accepted.
    pub key: JwtKey,
    /// Required `iss` claim, when set (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud` claim, when set (`JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf` (`JWT_LEEWAY`), default none, as the seeds' `jsonwebtoken`.
    pub leeway: Duration,
}

/// The verification key. The algorithm is pinned by the key: a token signed any other way is refused.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 with a shared secret (`JWT_SECRET`, or a random one in dev mode).
    Hs256(SecretString),
    /// RS256 or ES256 with a PEM public key (`JWT_PUBLIC_KEY` or `JWT_PUBLIC_KEY_FILE`).
    Public {
        /// RS256 or ES256.
        algorithm: PublicKeyAlgorithm,
        /// The PEM-encoded public key.
        pem: String,
    },
}

/// Asymmetric algorithms the gateway verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PublicKeyAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// A key of `TENANT_API_KEYS`: the HTTP API takes it for calls of `tenant` only.
#[derive(Debug, Clone)]
pub struct TenantApiKey {
    /// The tenant the key acts for.
    pub tenant: String,
    /// The key; never printed.
    pub key: SecretString,
}

/// The credentials part of a [`super::Config`].
pub(super) struct Credentials {
    pub(super) jwt: JwtConfig,
    /// No signing key was configured: tokens are verified with a random secret.
    pub(super) dev_mode: bool,
    pub(super) api_keys: Vec<SecretString>,
    /// `api_keys` holds a random demo key made because dev mode had none.
    pub(super) api_key_generated: bool,
    pub(super) tenant_api_keys: Vec<TenantApiKey>,
}

impl Credentials {
    /// The token key and settings (`JWT_*`), then the API keys (`API_KEYS`). `misspelt` are the
    /// environment's misspelt variables, which keep a gateway out of dev mode when they look like
    /// an auth setting.
    pub(super) fn from_sources(
        env: &Env,
        file: &FileConfig,
        misspelt: &[(&str, &'static str)],
    ) -> anyhow::Result<Self> {
        let (key, dev_mode) = token_key(env, file, misspelt)?;
        let jwt = JwtConfig {
            key,
            issuer: env.get("JWT_ISSUER").or_else(|| file.jwt_issuer.clone()),
            audience: env.get("JWT_AUDIENCE").or_else(|| file.jwt_audience.clone()),
            leeway: match env.get("JWT_LEEWAY") {
                // Seconds, as jsonwebtoken's clockTolerance, unless a unit is given.
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(secs) => Duration::from_secs(secs),
                    Err(_) => parse_duration(&v).map_err(|e| anyhow::anyhow!("JWT_LEEWAY: {e}"))?,
                },
                None => file.jwt_leeway.map(|d| d.0).unwrap_or(Duration::ZERO),
            },
        };

        let api_keys_given =
            env.get("API_KEYS").map(list).or_else(|| file.api_keys.clone().map(|keys| keys.into_vec(list)));
        if api_keys_given.as_ref().is_some_and(Vec::is_empty) {
            bail!("API_KEYS is set but holds no key: list the keys, separated by commas");
        }
        let mut api_keys: Vec<SecretString> =
            api_keys_given.unwrap_or_default().into_iter().map(SecretString::from).collect();
        // Dev mode should be usable end to end with nothing configured, publish API included.
        let api_key_generated = dev_mode && api_keys.is_empty();
        if api_key_generated {
            api_keys.push(SecretString::from(format!("dev-{}", random_hex(16))));
        }
        let tenant_api_keys = tenant_api_keys(env, file, &api_keys)?;
        Ok(Self { jwt, dev_mode, api_keys, api_key_generated, tenant_api_keys })
    }
}

/// `TENANT_API_KEYS` (`tenant-a:key1,tenant-b:key2`; in the file the same text, a list of such
/// entries, or a map of tenant to keys). A key is one tenant's only: the same key for two
/// tenants, or also in `API_KEYS`, would make who is calling ambiguous, so it stops the start
/// (the message names the tenants, never the key).
fn tenant_api_keys(env: &Env, file: &FileConfig, platform: &[SecretString]) -> anyhow::Result<Vec<TenantApiKey>> {
    let entries: Vec<(String, String)> = match (env.get("TENANT_API_KEYS"), file.tenant_api_keys.clone()) {
        (Some(text), _) => entries_of(list(text))?,
        (None, Some(TenantKeysSetting::Entries(entries))) => entries_of(entries.into_vec(list))?,
        (None, Some(TenantKeysSetting::ByTenant(map))) => by_tenant(map)?,
        (None, None) => return Ok(Vec::new()),
    };
    if entries.is_empty() {
        bail!("TENANT_API_KEYS is set but holds no key: list `tenant:key` entries, separated by commas");
    }
    let mut keys: Vec<TenantApiKey> = Vec::with_capacity(entries.len());
    for (tenant, key) in entries {
        if platform.iter().any(|k| k.expose_secret() == key) {
            bail!(
                "TENANT_API_KEYS: a key of tenant `{tenant}` is also one of API_KEYS: a key is either platform-wide or one tenant's"
            );
        }
        if let Some(other) = keys.iter().find(|k| k.key.expose_secret() == key) {
            if other.tenant == tenant {
                bail!("TENANT_API_KEYS: tenant `{tenant}` has the same key twice");
            }
            bail!(
                "TENANT_API_KEYS: tenants `{}` and `{tenant}` have the same key: give each tenant its own",
                other.tenant
            );
        }
        keys.push(TenantApiKey { tenant, key: SecretString::from(key) });
    }
    Ok(keys)
}

/// `tenant:key` entries as (tenant, key); the tenant ends at the first `:`, so a key may hold one.
fn entries_of(entries: Vec<String>) -> anyhow::Result<Vec<(String, String)>> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let n = i + 1;
            let Some((tenant, key)) = entry.split_once(':') else {
                bail!("TENANT_API_KEYS: entry {n} has no `:`: write each entry as tenant:key");
            };
            let (tenant, key) = (tenant.trim(), key.trim());
            if tenant.is_empty() {
                bail!("TENANT_API_KEYS: entry {n} has no tenant before its `:` (tenant:key)");
            }
            if key.is_empty() {
                bail!("TENANT_API_KEYS: entry {n} (tenant `{tenant}`) has no key after its `:` (tenant:key)");
            }
            Ok((tenant.to_string(), key.to_string()))
        })
        .collect()
}

/// The file's map form, `{tenant-a: [key1, key2], tenant-b: key3}`, as (tenant, key).
fn by_tenant(map: BTreeMap<String, super::file::StringList>) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (tenant, keys) in map {
        let tenant = tenant.trim().to_string();
        if tenant.is_empty() {
            bail!("tenant_api_keys: a tenant id is empty");
        }
        let keys = keys.into_vec(list);
        if keys.is_empty() {
            bail!("tenant_api_keys: tenant `{tenant}` has no key");
        }
        out.extend(keys.into_iter().map(|key| (tenant.clone(), key)));
    }
    Ok(out)
}

/// The key tokens are verified with, and whether it is dev mode's random one.
fn token_key(env: &Env, file: &FileConfig, misspelt: &[(&str, &'static str)]) -> anyhow::Result<(JwtKey, bool)> {
    let secret = env.get("JWT_SECRET").or_else(|| file.jwt_secret.clone());
    let public_pem = match (
        env.get("JWT_PUBLIC_KEY").or_else(|| file.jwt_public_key.clone()),
        env.get("JWT_PUBLIC_KEY_FILE").map(PathBuf::from).or_else(|| file.jwt_public_key_file.clone()),
    ) {
        (Some(pem), _) => Some(pem.replace("\\n", "\n")),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("JWT_PUBLIC_KEY_FILE: cannot read {}", path.display()))?,
        ),
        (None, None) => None,
    };
    let algorithm = env.get("JWT_ALGORITHM").or_else(|| file.jwt_algorithm.clone());
    // The first token setting given, for when no key is.
    let token_setting = [
        ("JWT_ISSUER", file.jwt_issuer.is_some()),
        ("JWT_AUDIENCE", file.jwt_audience.is_some()),
        ("JWT_LEEWAY", file.jwt_leeway.is_some()),
    ]
    .into_iter()
    .find(|(name, in_file)| *in_file || env.get(name).is_some())
    .map(|(name, _)| name);
    Ok(match (secret, public_pem) {
        (Some(_), Some(_)) => bail!("set either JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256/ES256), not both"),
        (Some(secret), None) => {
            if let Some(alg) = algorithm.as_deref().filter(|a| !a.eq_ignore_ascii_case("HS256")) {
                bail!("JWT_ALGORITHM is {alg}, but JWT_SECRET is an HS256 secret; set JWT_PUBLIC_KEY for {alg}");
            }
            (JwtKey::Hs256(SecretString::from(secret)), false)
        }
        (None, Some(pem)) => {
            let algorithm = match algorithm.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("RS256") => PublicKeyAlgorithm::RS256,
                Some("ES256") => PublicKeyAlgorithm::ES256,
                Some(other) => bail!("JWT_ALGORITHM: `{other}` is not supported with a public key (RS256, ES256)"),
                None => {
                    bail!(
                        "JWT_PUBLIC_KEY is set: set JWT_ALGORITHM to RS256 or ES256 as well, so the algorithm is pinned"
                    )
                }
            };
            (JwtKey::Public { algorithm, pem }, false)
        }
        (None, None) => {
            no_auth_settings(algorithm.as_deref(), token_setting, misspelt)?;
            (JwtKey::Hs256(SecretString::from(random_hex(32))), true)
        }
    })
}

/// Dev mode's random secret and demo key are for a gateway given no auth setting at all. A token
/// setting without a key to verify with, or a variable that looks like a misspelt auth setting,
/// means someone meant real credentials and one is missing: that is a start-up error, not a
/// production node quietly on a random secret and a demo key.
fn no_auth_settings(
    algorithm: Option<&str>,
    token_setting: Option<&str>,
    misspelt: &[(&str, &'static str)],
) -> anyhow::Result<()> {
    let missing_key = "there is no key to verify tokens with";
    match algorithm.map(str::to_ascii_uppercase).as_deref() {
        Some(alg @ ("RS256" | "ES256")) => {
            bail!("JWT_ALGORITHM is {alg}, but JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is not set: {missing_key}")
        }
        Some("HS256") => bail!("JWT_ALGORITHM is HS256, but JWT_SECRET is not set: {missing_key}"),
        Some(other) => bail!("JWT_ALGORITHM: `{other}` is not HS256, RS256 or ES256, and no key is set"),
        None => {}
    }
    if let Some(name) = token_setting {
        bail!(
            "{name} is set, but neither JWT_SECRET (HS256) nor JWT_PUBLIC_KEY (RS256, ES256) is: {missing_key} \
             (dev mode, on a random secret, starts only when no JWT_ setting is given)"
        );
    }
    if let Some((name, meant)) = misspelt.iter().find(|(_, meant)| AUTH_VARIABLES.contains(meant)) {
        bail!(
            "{name} is not a setting of the gateway (did you mean {meant}?): without JWT_SECRET or JWT_PUBLIC_KEY \
             the gateway would start in dev mode, on a random secret and a demo API key. Correct the name, or \
             remove it to try dev mode"
        );
    }
    Ok(())
}

/// `AUTH_COOKIE_NAME`: the cookie a token is read from where a spec allows cookies.
pub(super) fn cookie_name(env: &Env, file: &FileConfig) -> anyhow::Result<String> {
    let name = env
        .get("AUTH_COOKIE_NAME")
        .or_else(|| file.auth_cookie_name.clone())
        .unwrap_or_else(|| "access_token".to_string());
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        bail!("AUTH_COOKIE_NAME: `{name}` is not a cookie name (letters, digits, `-`, `_`, `.`)");
    }
    Ok(name)
}
