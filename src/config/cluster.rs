//! Cluster membership over Redis (`REDIS_URL`, or the seed's `REDIS_HOST` and `REDIS_PORT`):
//! where Redis is, kept secret since the URL may hold a password, and the names of the
//! gateway's channels and keys there. Not configured, the node runs alone, in memory.

use anyhow::bail;
use secrecy::SecretString;

use super::{env::Env, file::FileConfig};

/// How this node joins a cluster through Redis.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`; a secret, since it may hold a password.
    pub url: SecretString,
    /// Where it points, without credentials, for logs and `/readyz` (`redis://host:port`).
    pub display: String,
    /// Prefix of the gateway's own channels and keys (`REDIS_PREFIX`), so several gateway clusters
    /// (or test runs) can share one Redis.
    pub prefix: String,
    /// The key of `@socket.io/redis-emitter` publishers to listen to (`REDIS_EMITTER_KEY`, default
    /// `socket.io`); empty turns that input off.
    pub emitter_key: String,
    /// The Go hub's broadcast channel (`REDIS_BROADCAST_CHANNEL`, default `ws:broadcast:all`);
    /// empty turns that input off.
    pub broadcast_channel: String,
}

impl RedisConfig {
    /// `REDIS_URL`, or the seed's `REDIS_HOST` / `REDIS_PORT` (with `REDIS_PASSWORD`, `REDIS_DB`).
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Option<Self>> {
        let url = match env.get("REDIS_URL").or_else(|| file.redis_url.clone()) {
            Some(url) => url,
            None => {
                let Some(host) = env.get("REDIS_HOST").or_else(|| file.redis_host.clone()) else { return Ok(None) };
                let port = match env.get("REDIS_PORT") {
                    Some(p) => {
                        p.trim().parse::<u16>().map_err(|_| anyhow::anyhow!("REDIS_PORT: `{p}` is not a port"))?
                    }
                    None => file.redis_port.unwrap_or(6379),
                };
                let password = env.get("REDIS_PASSWORD").or_else(|| file.redis_password.clone());
                let db = match env.get("REDIS_DB") {
                    Some(d) => {
                        Some(d.trim().parse::<u32>().map_err(|_| anyhow::anyhow!("REDIS_DB: `{d}` is not a number"))?)
                    }
                    None => file.redis_db,
                };
                let auth = password.map(|p| format!(":{}@", crate::net::percent_encode(&p))).unwrap_or_default();
                let db = db.map(|d| format!("/{d}")).unwrap_or_default();
                format!("redis://{auth}{host}:{port}{db}")
            }
        };
        let Some(rest) = url.strip_prefix("redis://").or_else(|| url.strip_prefix("rediss://")) else {
            bail!("REDIS_URL must start with redis:// or rediss://");
        };
        let host_part = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        let host_part = host_part.split('/').next().unwrap_or_default();
        if host_part.is_empty() {
            bail!("REDIS_URL has no host");
        }
        let scheme = if url.starts_with("rediss://") { "rediss" } else { "redis" };
        let prefix =
            env.get("REDIS_PREFIX").or_else(|| file.redis_prefix.clone()).unwrap_or_else(|| "rtgw".to_string());
        if prefix.is_empty() || prefix.contains('#') || prefix.contains(char::is_whitespace) {
            bail!("REDIS_PREFIX: `{prefix}` must be non-empty, without `#` or spaces");
        }
        Ok(Some(RedisConfig {
            display: format!("{scheme}://{host_part}"),
            url: SecretString::from(url),
            prefix,
            emitter_key: env
                .get("REDIS_EMITTER_KEY")
                .or_else(|| file.redis_emitter_key.clone())
                .unwrap_or_else(|| "socket.io".to_string()),
            broadcast_channel: env
                .get("REDIS_BROADCAST_CHANNEL")
                .or_else(|| file.redis_broadcast_channel.clone())
                .unwrap_or_else(|| "ws:broadcast:all".to_string()),
        }))
    }
}
