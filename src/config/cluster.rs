//! Cluster membership over Redis (`REDIS_URL`, or the seed's `REDIS_HOST` and `REDIS_PORT`):
//! where Redis is and what it is (one server, a Redis Cluster, or a master behind Sentinels),
//! kept secret since the URL may hold a password; the names of the gateway's channels and keys
//! there; how many streams the bus is split over. Not configured, the node runs alone, in memory.
//!
//! The URL forms are fred's (the client underneath), plus the comma lists most Redis clients
//! take: `redis-cluster://h1:p1,h2:p2` is read as fred's `redis-cluster://h1:p1?node=h2:p2`, and
//! `redis+sentinel://` as `redis-sentinel://`.

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
    /// What `url` names.
    pub mode: RedisMode,
    /// How many streams the bus is split over, by tenant (`REDIS_BUS_SHARDS`; 1 on one server or
    /// Sentinel, 8 on a Redis Cluster). Every node of one prefix must agree; the cluster checks.
    pub bus_shards: usize,
}

/// What a `REDIS_URL` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One Redis server.
    Single,
    /// A Redis Cluster: keys and sharded channels spread over its masters by hash slot.
    Cluster,
    /// A master found through Sentinels, followed across failovers.
    Sentinel,
}

/// The most streams the bus may be split over.
const MAX_BUS_SHARDS: usize = 256;
/// The bus's streams on a Redis Cluster unless told: enough to spread over a few masters.
const CLUSTER_BUS_SHARDS: usize = 8;

/// `url` as fred reads it, what it names, and where it points without credentials.
fn read_url(url: &str) -> anyhow::Result<(String, RedisMode, String)> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("REDIS_URL must start with redis://, rediss://, redis-cluster:// or redis-sentinel://");
    };
    let (mode, tls, fred_scheme) = match scheme {
        "redis" | "rediss" => (RedisMode::Single, scheme == "rediss", scheme.to_string()),
        "redis-cluster" | "rediss-cluster" => (RedisMode::Cluster, scheme == "rediss-cluster", scheme.to_string()),
        "redis-sentinel" | "rediss-sentinel" | "redis+sentinel" | "rediss+sentinel" => {
            let tls = scheme.starts_with("rediss");
            (RedisMode::Sentinel, tls, if tls { "rediss-sentinel" } else { "redis-sentinel" }.to_string())
        }
        other => bail!(
            "REDIS_URL: unknown scheme `{other}://` (known: redis://, rediss://, redis-cluster://, \
             redis-sentinel:// or redis+sentinel://)"
        ),
    };
    let (credentials, after) = match rest.rsplit_once('@') {
        Some((c, a)) => (Some(c), a),
        None => (None, rest),
    };
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (hosts, tail) = after.split_at(end);
    let hosts: Vec<&str> = hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    let Some((first, others)) = hosts.split_first() else { bail!("REDIS_URL has no host") };
    if mode == RedisMode::Single && !others.is_empty() {
        bail!(
            "REDIS_URL names several hosts: use redis-cluster:// for a Redis Cluster or redis-sentinel:// for Sentinels"
        );
    }
    // A plain URL with fred's `sentinelServiceName` names a master behind Sentinels too.
    let mode =
        if mode == RedisMode::Single && tail.contains("sentinelServiceName=") { RedisMode::Sentinel } else { mode };
    if mode == RedisMode::Sentinel && !tail.contains("sentinelServiceName=") {
        bail!("REDIS_URL: a Sentinel URL needs the master's name, `?sentinelServiceName=<name>`");
    }
    let (path, query) = tail.split_once('?').map_or((tail, ""), |(p, q)| (p, q));
    let mut params: Vec<String> = query.split('&').filter(|p| !p.is_empty()).map(str::to_string).collect();
    params.extend(others.iter().map(|h| format!("node={h}")));
    let credentials = credentials.map(|c| format!("{c}@")).unwrap_or_default();
    let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
    let fred_url = format!("{fred_scheme}://{credentials}{first}{path}{query}");
    let shown = match mode {
        RedisMode::Single => {
            if tls {
                "rediss"
            } else {
                "redis"
            }
        }
        RedisMode::Cluster => {
            if tls {
                "rediss-cluster"
            } else {
                "redis-cluster"
            }
        }
        RedisMode::Sentinel => {
            if tls {
                "rediss-sentinel"
            } else {
                "redis-sentinel"
            }
        }
    };
    Ok((fred_url, mode, format!("{shown}://{}", hosts.join(","))))
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
        let (url, mode, display) = read_url(&url)?;
        let prefix =
            env.get("REDIS_PREFIX").or_else(|| file.redis_prefix.clone()).unwrap_or_else(|| "rtgw".to_string());
        // Braces would be read as a hash tag by a Redis Cluster, and the keys' own tags decide
        // which of them share a slot.
        if prefix.is_empty() || prefix.contains(['#', '{', '}']) || prefix.contains(char::is_whitespace) {
            bail!("REDIS_PREFIX: `{prefix}` must be non-empty, without `#`, braces or spaces");
        }
        let default_shards = if mode == RedisMode::Cluster { CLUSTER_BUS_SHARDS } else { 1 };
        let bus_shards = env.number("REDIS_BUS_SHARDS", file.redis_bus_shards, default_shards)?;
        if !(1..=MAX_BUS_SHARDS).contains(&bus_shards) {
            bail!("REDIS_BUS_SHARDS: {bus_shards} is not between 1 and {MAX_BUS_SHARDS}");
        }
        Ok(Some(RedisConfig {
            display,
            url: SecretString::from(url),
            mode,
            bus_shards,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_take_a_comma_list_of_seed_nodes() {
        let (url, mode, display) = read_url("redis-cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002").unwrap();
        assert_eq!(mode, RedisMode::Cluster);
        assert_eq!(url, "redis-cluster://:pw@10.0.0.1:7000?node=10.0.0.2:7001&node=10.0.0.3:7002");
        assert_eq!(display, "redis-cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002");
        // fred's own form passes through.
        let (url, ..) = read_url("redis-cluster://h:1?node=h:2").unwrap();
        assert_eq!(url, "redis-cluster://h:1?node=h:2");
    }

    #[test]
    fn sentinel_urls_need_the_master_name() {
        let (url, mode, display) =
            read_url("redis+sentinel://s1:26379,s2:26380/2?sentinelServiceName=mymaster").unwrap();
        assert_eq!(mode, RedisMode::Sentinel);
        assert_eq!(url, "redis-sentinel://s1:26379/2?sentinelServiceName=mymaster&node=s2:26380");
        assert_eq!(display, "redis-sentinel://s1:26379,s2:26380");
        let (_, mode, _) = read_url("redis://s1:26379?sentinelServiceName=m").unwrap();
        assert_eq!(mode, RedisMode::Sentinel);
        let error = read_url("redis-sentinel://s1:26379").unwrap_err().to_string();
        assert!(error.contains("sentinelServiceName"), "{error}");
    }

    #[test]
    fn plain_urls_are_one_server() {
        let (url, mode, display) = read_url("rediss://user:secret@cache:6380/1").unwrap();
        assert_eq!((url.as_str(), mode), ("rediss://user:secret@cache:6380/1", RedisMode::Single));
        assert_eq!(display, "rediss://cache:6380");
        let error = read_url("redis://a:1,b:2").unwrap_err().to_string();
        assert!(error.contains("redis-cluster://"), "{error}");
        assert!(read_url("http://x").unwrap_err().to_string().contains("unknown scheme"));
        assert!(read_url("redis://").is_err());
    }
}
