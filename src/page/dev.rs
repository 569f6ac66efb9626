//! Dev mode's demo credentials: a token for user `demo-user` of tenant `demo-tenant` (role
//! `admin`) and, when `API_KEYS` is not set, the random API key dev mode made. The binary prints
//! them at start-up; the example page prefills them (`GET /api/v1/dev`).
//!
//! They are the only secrets the gateway ever shows, and only in dev mode, whose signing secret
//! is random and dies with the process. The page gets them only when asked by a browser on the
//! gateway's own machine (a loopback client, naming a loopback host: a site that rebinds its
//! name to 127.0.0.1 still sends its own name as `Host`), so a dev gateway reachable on a network
//! does not hand them to everyone who can reach it. A key set in `API_KEYS` is never shown.

use std::{net::IpAddr, time::Duration};

use http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    auth::TokenSigner,
    config::{Config, JwtConfig},
    net::client_ip::TrustedProxies,
};

/// The demo user's id, tenant and roles.
pub const DEMO_USER: &str = "demo-user";
/// The demo user's tenant.
pub const DEMO_TENANT: &str = "demo-tenant";
const DEMO_ROLES: &[&str] = &["admin"];
/// How long a demo token is valid.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// What dev mode hands out.
pub struct DevCredentials {
    signer: TokenSigner,
    jwt: JwtConfig,
    /// Dev mode's own random key; `None` when `API_KEYS` is set (a real key: never shown).
    api_key: Option<SecretString>,
}

impl DevCredentials {
    /// The credentials of a config in dev mode; `None` otherwise.
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Self>> {
        if !config.dev_mode {
            return Ok(None);
        }
        let api_key = config.api_key_generated.then(|| config.api_keys[0].clone());
        Ok(Some(Self { signer: TokenSigner::new(&config.jwt)?, jwt: config.jwt.clone(), api_key }))
    }

    /// A fresh demo token, valid [`DEMO_TOKEN_TTL`].
    pub fn token(&self) -> String {
        let roles: Vec<String> = DEMO_ROLES.iter().map(|r| r.to_string()).collect();
        self.signer.mint(&self.jwt, DEMO_USER, Some(DEMO_TENANT), &roles, DEMO_TOKEN_TTL)
    }

    /// Dev mode's generated API key, when it made one.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(|k| k.expose_secret())
    }
}

/// Whether a request comes from a browser on this machine: the client (through trusted
/// proxies) is a loopback address and `Host` names a loopback host.
pub fn is_local_request(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> bool {
    let client = proxies.client_ip(peer, headers);
    let client_is_loopback = match client {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    client_is_loopback && headers.get(header::HOST).and_then(|h| h.to_str().ok()).is_some_and(is_loopback_host)
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host.parse().unwrap());
        headers
    }

    #[test]
    fn only_loopback_clients_naming_a_loopback_host_are_local() {
        let none = TrustedProxies::default();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        for host in ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "LOCALHOST", "127.0.0.2"] {
            assert!(is_local_request(lo, &headers(host), &none), "{host}");
        }
        assert!(is_local_request("::1".parse().unwrap(), &headers("[::1]:80"), &none));
        // DNS rebinding: a loopback connection naming another site.
        assert!(!is_local_request(lo, &headers("evil.example:3000"), &none));
        assert!(!is_local_request(lo, &HeaderMap::new(), &none));
        // A remote client, whatever it names.
        assert!(!is_local_request("192.0.2.7".parse().unwrap(), &headers("localhost:3000"), &none));
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_client_decides() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        let mut forwarded = headers("localhost:3000");
        forwarded.insert("x-forwarded-for", "192.0.2.7".parse().unwrap());
        assert!(!is_local_request("127.0.0.1".parse().unwrap(), &forwarded, &proxies));
    }
}
