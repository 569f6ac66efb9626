//! The listener and what it lets in: the address it binds, the browser origins (CORS) and
//! proxies (`X-Forwarded-For`) it trusts, and the timeouts and caps every connection gets before
//! a request is understood.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::bail;

use super::{
    env::{Env, list},
    file::FileConfig,
};
use crate::net::{
    client_ip::TrustedProxies,
    server::{HttpConfig, MIN_HEADER_BYTES},
};

impl HttpConfig {
    /// `HTTP_HEADER_TIMEOUT`, `HTTP_MAX_HEADER_SIZE`, `MAX_CONNECTIONS_PER_IP`, `WS_WRITE_TIMEOUT`.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        let http = HttpConfig {
            header_timeout: env.duration("HTTP_HEADER_TIMEOUT", file.http_header_timeout, 10_000)?,
            max_header_bytes: env.number("HTTP_MAX_HEADER_SIZE", file.http_max_header_size, 16 * 1024usize)?,
            max_connections_per_ip: env.number("MAX_CONNECTIONS_PER_IP", file.max_connections_per_ip, 1000usize)?,
            write_timeout: env.duration("WS_WRITE_TIMEOUT", file.ws_write_timeout, 10_000)?,
        };
        if http.max_header_bytes < MIN_HEADER_BYTES {
            bail!("HTTP_MAX_HEADER_SIZE must be at least {MIN_HEADER_BYTES} bytes");
        }
        if http.header_timeout.is_zero() || http.write_timeout.is_zero() {
            bail!("HTTP_HEADER_TIMEOUT and WS_WRITE_TIMEOUT must be longer than zero");
        }
        Ok(http)
    }
}

/// `HOST` and `PORT`: every interface, port 3000, unless told otherwise.
pub(super) fn listen(env: &Env, file: &FileConfig) -> anyhow::Result<SocketAddr> {
    let host: IpAddr = match env.get("HOST") {
        Some(h) => h.parse().map_err(|_| anyhow::anyhow!("HOST: `{h}` is not an IP address"))?,
        None => file.host.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
    };
    let port = env.number("PORT", file.port, 3000u16)?;
    Ok(SocketAddr::new(host, port))
}

/// `CORS_ORIGINS` (alias `ALLOWED_ORIGINS`): exact origins, never `*`, since credentials are
/// allowed.
pub(super) fn cors_origins(env: &Env, file: &FileConfig) -> anyhow::Result<Vec<String>> {
    let cors_origins = env
        .get("CORS_ORIGINS")
        .or_else(|| env.get("ALLOWED_ORIGINS"))
        .map(list)
        .or_else(|| file.cors_origins.clone().map(|origins| origins.into_vec(list)))
        .unwrap_or_else(|| vec!["http://localhost:3000".to_string()]);
    if cors_origins.iter().any(|o| o == "*") {
        bail!("CORS_ORIGINS: `*` is not allowed, because credentials are allowed; list the origins instead");
    }
    Ok(cors_origins)
}

/// `TRUSTED_PROXIES`: addresses and networks whose `X-Forwarded-For` names the client; none by
/// default.
pub(super) fn trusted_proxies(env: &Env, file: &FileConfig) -> anyhow::Result<TrustedProxies> {
    Ok(match env.get("TRUSTED_PROXIES").or_else(|| file.trusted_proxies.clone().map(|l| l.into_vec(list).join(","))) {
        Some(list) => TrustedProxies::parse(&list).map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))?,
        None => TrustedProxies::default(),
    })
}
