//! The configuration read end to end: environments and files through `Config::from_sources`, as
//! the process reads them, each section's defaults, checks and errors, and that no secret prints.

use super::*;
use secrecy::ExposeSecret;
use std::collections::HashMap;

fn from_env(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let present: Vec<String> = map.keys().cloned().collect();
    Config::from_sources(FileConfig::default(), &present, |k| map.get(k).cloned())
}

#[test]
fn defaults_follow_the_seed() {
    let c = from_env(&[]).unwrap();
    assert_eq!(c.listen.port(), 3000);
    assert_eq!(c.transport.ping_interval, Duration::from_millis(25_000));
    assert_eq!(c.transport.ping_timeout, Duration::from_millis(60_000));
    assert_eq!(c.transport.upgrade_timeout, Duration::from_millis(10_000));
    assert_eq!(c.transport.max_http_buffer_size, 1_000_000);
    assert_eq!(c.cleanup_interval, Duration::from_millis(300_000));
    assert_eq!(c.metrics_interval, Duration::from_millis(60_000));
    assert_eq!(c.cors_origins, vec!["http://localhost:3000"]);
    assert!(c.dev_mode, "no key configured means dev mode");
}

#[test]
fn env_values_are_read_in_milliseconds_or_with_units() {
    let c = from_env(&[("WS_PING_INTERVAL", "1000"), ("WS_METRICS_INTERVAL", "5s"), ("PORT", "8080")]).unwrap();
    assert_eq!(c.transport.ping_interval, Duration::from_secs(1));
    assert_eq!(c.metrics_interval, Duration::from_secs(5));
    assert_eq!(c.listen.port(), 8080);
}

#[test]
fn allowed_origins_is_an_alias_and_wildcards_are_refused() {
    let c = from_env(&[("ALLOWED_ORIGINS", "https://a.example, https://b.example")]).unwrap();
    assert_eq!(c.cors_origins, vec!["https://a.example", "https://b.example"]);
    let err = from_env(&[("CORS_ORIGINS", "*")]).unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[test]
fn a_public_key_needs_a_pinned_algorithm() {
    let err = from_env(&[("JWT_PUBLIC_KEY", "pem")]).unwrap_err();
    assert!(err.to_string().contains("JWT_ALGORITHM"), "{err}");
    let c = from_env(&[("JWT_PUBLIC_KEY", "pem"), ("JWT_ALGORITHM", "es256")]).unwrap();
    assert!(matches!(c.jwt.key, JwtKey::Public { algorithm: PublicKeyAlgorithm::ES256, .. }));
    assert!(!c.dev_mode);
}

#[test]
fn a_secret_leaves_dev_mode_and_never_prints() {
    let c = from_env(&[("JWT_SECRET", "s3cr3t-value"), ("API_KEYS", "k1,k2")]).unwrap();
    assert!(!c.dev_mode);
    assert_eq!(c.api_keys.len(), 2);
    assert_eq!(c.api_keys[1].expose_secret(), "k2");
    let printed = format!("{c:?}");
    assert!(!printed.contains("s3cr3t-value") && !printed.contains("k1"), "{printed}");
}

#[test]
fn trusted_proxies_and_the_cookie_name_are_checked() {
    let c = from_env(&[("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")]).unwrap();
    assert!(c.trusted_proxies.contains("10.2.3.4".parse().unwrap()));
    assert_eq!(c.auth_cookie_name, "access_token");
    let err = from_env(&[("TRUSTED_PROXIES", "lb.internal")]).unwrap_err();
    assert!(err.to_string().contains("TRUSTED_PROXIES"), "{err}");
    let err = from_env(&[("AUTH_COOKIE_NAME", "a b")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_COOKIE_NAME"), "{err}");
}

#[test]
fn redis_comes_from_a_url_or_the_seed_host_and_port_and_never_prints_its_password() {
    assert!(from_env(&[]).unwrap().redis.is_none(), "no Redis: one node, in memory");
    let c = from_env(&[("REDIS_HOST", "cache"), ("REDIS_PORT", "6380"), ("REDIS_PASSWORD", "p@ss")]).unwrap();
    let redis = c.redis.unwrap();
    assert_eq!(redis.url.expose_secret(), "redis://:p%40ss@cache:6380");
    assert_eq!(redis.display, "redis://cache:6380");
    assert_eq!((redis.prefix.as_str(), redis.emitter_key.as_str()), ("rtgw", "socket.io"));
    assert_eq!(redis.broadcast_channel, "ws:broadcast:all");
    let c = from_env(&[("REDIS_URL", "redis://:hunter2@10.0.0.5:6379/2"), ("REDIS_PREFIX", "t1")]).unwrap();
    let printed = format!("{c:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert_eq!(c.redis.unwrap().display, "redis://10.0.0.5:6379");
    assert!(from_env(&[("REDIS_URL", "http://x")]).is_err());
    assert!(from_env(&[("REDIS_URL", "redis://x"), ("REDIS_PREFIX", "a#b")]).is_err());
}

#[test]
fn log_levels_are_checked_and_node_names_understood() {
    assert_eq!(from_env(&[("LOG_LEVEL", "verbose")]).unwrap().log_level, "trace");
    assert_eq!(from_env(&[("LOG_LEVEL", "WARNING,hyper=info")]).unwrap().log_level, "warn,hyper=info");
    let err = from_env(&[("LOG_LEVEL", "loud")]).unwrap_err().to_string();
    assert!(err.contains("LOG_LEVEL") && err.contains("`loud` is not a level"), "{err}");
    assert!(from_env(&[("LOG_LEVEL", "info,a=[")]).is_err());
}

#[test]
fn file_lists_may_be_written_like_the_environment() {
    let file: FileConfig = serde_saphyr::from_str("api_keys: k1,k2\ncors_origins: [\"https://a.example\"]\n").unwrap();
    let c = Config::from_sources(file, &[], |_| None).unwrap();
    assert_eq!(c.api_keys.len(), 2);
    assert_eq!(c.cors_origins, vec!["https://a.example"]);
}

#[test]
fn rates_paths_and_protection_settings_are_checked() {
    assert_eq!(parse_rate("600/1m").unwrap(), Some(RateLimit { max: 600, per: Duration::from_secs(60) }));
    assert_eq!(parse_rate("off").unwrap(), None);
    assert!(parse_rate("600").is_err() && parse_rate("0/1s").is_err());
    let c = from_env(&[("SOCKETIO_PATH", "/rt/"), ("WS_HANDSHAKE_RATE_LIMIT", "0")]).unwrap();
    assert_eq!(c.transport.path, "/rt");
    assert_eq!(c.transport.handshake_limit, None);
    assert!(from_env(&[("SOCKETIO_PATH", "rt")]).is_err());
    assert!(from_env(&[("HTTP_MAX_HEADER_SIZE", "1024")]).unwrap_err().to_string().contains("8192"));
    assert!(from_env(&[("ALLOW_EIO3", "maybe")]).is_err());
    assert!(!from_env(&[("ALLOW_EIO3", "false")]).unwrap().transport.allow_eio3);
}

#[test]
fn the_admin_view_needs_a_username_and_a_bcrypt_hash_that_never_prints() {
    assert!(from_env(&[]).unwrap().admin.is_none(), "not mounted unless configured");
    let hash = "$2b$04$S2tRZKnsgKDUd5F0ZMX1mOyHpyfE7eQ6Mc71ek3xsB4q9d5pCngZ2";
    let c = from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash)]).unwrap();
    let admin = c.admin.clone().unwrap();
    assert_eq!((admin.username.as_str(), admin.readonly, admin.mode), ("root", false, AdminMode::Development));
    assert_eq!(admin.password_hash.expose_secret(), hash);
    assert!(!format!("{c:?}").contains("S2tRZKns"), "the hash never prints");
    let c = from_env(&[
        ("ADMIN_USERNAME", "root"),
        ("ADMIN_PASSWORD_HASH", hash),
        ("ADMIN_READONLY", "true"),
        ("ADMIN_MODE", "Production"),
    ])
    .unwrap();
    assert_eq!(c.admin.map(|a| (a.readonly, a.mode)), Some((true, AdminMode::Production)));
    let err = from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", "hunter2")]).unwrap_err();
    assert!(err.to_string().contains("not a bcrypt hash") && !err.to_string().contains("hunter2"), "{err}");
    assert!(from_env(&[("ADMIN_USERNAME", "root")]).is_err());
    assert!(from_env(&[("ADMIN_PASSWORD_HASH", hash)]).is_err());
    assert!(from_env(&[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash), ("ADMIN_MODE", "x")]).is_err());
}

#[test]
fn a_plain_websocket_send_buffer_holds_several_publish_calls_and_never_less_than_one() {
    let native = from_env(&[]).unwrap().native;
    assert_eq!((native.send_buffer, native.send_buffer_bytes), (4000, 4_000_000));
    let native = from_env(&[("API_MAX_BATCH", "50"), ("API_MAX_BODY_SIZE", "100000")]).unwrap().native;
    assert_eq!((native.send_buffer, native.send_buffer_bytes), (200, 400_000), "sized from the API's limits");
    let err = from_env(&[("WS_NATIVE_SEND_BUFFER", "256")]).unwrap_err().to_string();
    assert!(err.contains("must hold at least one publish call (API_MAX_BATCH, 1000"), "{err}");
    assert!(from_env(&[("WS_NATIVE_SEND_BUFFER_BYTES", "999999")]).is_err());
    assert!(from_env(&[("WS_NATIVE_SEND_BUFFER", "256"), ("API_MAX_BATCH", "256")]).is_ok());
}

#[test]
fn bad_numbers_name_the_variable_and_say_what_was_expected() {
    let err = from_env(&[("WS_MAX_HTTP_BUFFER_SIZE", "lots")]).unwrap_err();
    assert_eq!(err.to_string(), "WS_MAX_HTTP_BUFFER_SIZE: `lots` is not a whole number, 0 or more");
    let err = from_env(&[("WS_MAX_EVENTS_PER_SECOND", "-1")]).unwrap_err();
    assert_eq!(err.to_string(), "WS_MAX_EVENTS_PER_SECOND: `-1` is not a whole number from 0 to 4294967295");
    let err = from_env(&[("WS_PING_INTERVAL", "soon")]).unwrap_err().to_string();
    assert!(err.starts_with("WS_PING_INTERVAL: `soon` is not a duration: write milliseconds"), "{err}");
}

#[test]
fn config_file_values_say_what_was_expected_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, "port: 3000\nws_max_events_per_second: many\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    let at = format!("{}:2:27: expected a whole number from 0 to 4294967295", path.display());
    assert!(err.starts_with(&at), "{err}");
    assert!(err.contains("| ws_max_events_per_second: many\n    |                           ^"), "{err}");
    std::fs::write(&path, "api_key: k1\n").unwrap();
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("unknown field `api_key`") && err.contains("(did you mean `api_keys`?)"), "{err}");
}

#[test]
fn a_token_setting_without_a_key_refuses_to_start_instead_of_dev_mode() {
    let refused = |vars: &[(&str, &str)]| from_env(vars).unwrap_err().to_string();
    let err = refused(&[("JWT_ALGORITHM", "RS256")]);
    assert!(err.contains("JWT_ALGORITHM is RS256, but JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is not set"), "{err}");
    assert!(refused(&[("JWT_ALGORITHM", "es256")]).contains("JWT_PUBLIC_KEY"));
    assert!(refused(&[("JWT_ALGORITHM", "HS256")]).contains("but JWT_SECRET is not set"));
    for setting in ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_LEEWAY"] {
        let err = refused(&[(setting, "5")]);
        assert!(err.starts_with(&format!("{setting} is set, but neither JWT_SECRET")), "{err}");
    }
    let file: FileConfig = serde_saphyr::from_str("jwt_issuer: https://auth.example\n").unwrap();
    assert!(Config::from_sources(file, &[], |_| None).is_err(), "from the file too");
    let with_key = from_env(&[("JWT_SECRET", "s"), ("JWT_ALGORITHM", "HS256"), ("JWT_ISSUER", "i")]).unwrap();
    assert!(!with_key.dev_mode);
    let err = refused(&[("JWT_SECRET", "s"), ("API_KEYS", " , ")]);
    assert!(err.contains("API_KEYS is set but holds no key"), "{err}");
}

#[test]
fn a_misspelt_auth_variable_never_starts_dev_mode() {
    for (name, meant) in [("API_KEY", "API_KEYS"), ("JWT_SECRETS", "JWT_SECRET"), ("JWT_PUBLICKEY", "JWT_PUBLIC_KEY")] {
        let err = from_env(&[(name, "x")]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{name} is not a setting of the gateway (did you mean {meant}?)")), "{err}");
        assert!(err.contains("dev mode"), "{err}");
    }
    assert!(from_env(&[("LOGLEVEL", "debug")]).unwrap().dev_mode, "other misspellings are warnings");
}

#[test]
fn misspelt_variables_are_warned_about_with_the_right_name() {
    let c = from_env(&[
        ("JWT_SECRET", "s"),
        ("API_KEY", "k1"),
        ("REDIS_URI", "redis://cache"),
        ("PING_INTERVAL", "5s"),
        ("PATH", "/usr/bin"),
        ("HOSTNAME", "gw-1"),
        ("ADMIN_ROLES", "x"),
    ])
    .unwrap();
    assert_eq!(
        c.warnings,
        [
            "API_KEY is not a setting of the gateway and is ignored (did you mean API_KEYS?)",
            "PING_INTERVAL is not a setting of the gateway and is ignored (did you mean WS_PING_INTERVAL?)",
            "REDIS_URI is not a setting of the gateway and is ignored (did you mean REDIS_URL?)",
        ]
    );
    assert!(c.api_keys.is_empty(), "a misspelt name is not read");
    assert!(from_env(&[("JWT_SECRET", "s"), ("API_KEYS", "k")]).unwrap().warnings.is_empty());
}

#[test]
fn every_variable_read_is_a_listed_setting_and_every_setting_is_read() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::from(["CONFIG_FILE".to_string()]));
    let hash = "$2b$04$S2tRZKnsgKDUd5F0ZMX1mOyHpyfE7eQ6Mc71ek3xsB4q9d5pCngZ2";
    // Some settings are read only beside others (REDIS_PORT with REDIS_HOST, ADMIN_MODE with
    // the admin's credentials): these two environments read them all.
    let environments: [&[(&str, &str)]; 2] =
        [&[], &[("REDIS_HOST", "cache"), ("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD_HASH", hash)]];
    for vars in environments {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_sources(FileConfig::default(), &[], |k| {
            asked.borrow_mut().insert(k.to_string());
            map.get(k).map(|v| v.to_string())
        })
        .unwrap();
    }
    let listed: std::collections::BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
    assert_eq!(asked.into_inner(), listed, "config::VARIABLES is every variable read, and only those");
}

#[test]
fn tenant_api_keys_name_their_tenant_and_never_print() {
    let c = from_env(&[
        ("JWT_SECRET", "s"),
        ("API_KEYS", "platform-key"),
        ("TENANT_API_KEYS", "tenant-a:key-a1, tenant-b:key-b, tenant-a:key:a2"),
    ])
    .unwrap();
    let keys: Vec<(&str, &str)> =
        c.tenant_api_keys.iter().map(|k| (k.tenant.as_str(), k.key.expose_secret())).collect();
    assert_eq!(
        keys,
        [("tenant-a", "key-a1"), ("tenant-b", "key-b"), ("tenant-a", "key:a2")],
        "the tenant ends at the first `:`"
    );
    let printed = format!("{c:?}");
    assert!(printed.contains("tenant-a"), "{printed}");
    assert!(!printed.contains("key-a1") && !printed.contains("key-b") && !printed.contains("key:a2"), "{printed}");
}

#[test]
fn a_malformed_or_shared_tenant_key_stops_the_start() {
    let err = |value: &str| {
        from_env(&[("JWT_SECRET", "s"), ("API_KEYS", "platform-key"), ("TENANT_API_KEYS", value)])
            .unwrap_err()
            .to_string()
    };
    for (value, expected) in [
        ("tenant-a", "entry 1 has no `:`"),
        ("tenant-a:k1,:k2", "entry 2 has no tenant"),
        ("tenant-a:k1,tenant-b: ", "entry 2 (tenant `tenant-b`) has no key"),
        (",", "holds no key"),
        ("tenant-a:k1,tenant-b:k1", "tenants `tenant-a` and `tenant-b` have the same key"),
        ("tenant-a:k1,tenant-a:k1", "tenant `tenant-a` has the same key twice"),
        ("tenant-a:platform-key", "a key of tenant `tenant-a` is also one of API_KEYS"),
    ] {
        let message = err(value);
        assert!(message.starts_with("TENANT_API_KEYS") && message.contains(expected), "{value}: {message}");
        for secret in ["k1", "k2", "platform-key"] {
            assert!(!message.contains(secret), "{value}: the message shows a key: {message}");
        }
    }
}

#[test]
fn tenant_api_keys_in_a_file_are_a_map_or_entries() {
    let read = |yaml: &str| {
        let file: FileConfig = serde_saphyr::from_str(yaml).unwrap();
        let c = Config::from_sources(file, &[], |_| None)?;
        anyhow::Ok(
            c.tenant_api_keys.iter().map(|k| format!("{}={}", k.tenant, k.key.expose_secret())).collect::<Vec<_>>(),
        )
    };
    assert_eq!(read("tenant_api_keys: {t1: [k1, k2], t2: k3}\n").unwrap(), ["t1=k1", "t1=k2", "t2=k3"]);
    assert_eq!(read("tenant_api_keys: [\"t1:k1\", \"t2:k2\"]\n").unwrap(), ["t1=k1", "t2=k2"]);
    assert_eq!(read("tenant_api_keys: t1:k1,t2:k2\n").unwrap(), ["t1=k1", "t2=k2"]);
    let err = read("tenant_api_keys: {t1: [k1], t2: [k1]}\n").unwrap_err().to_string();
    assert!(err.contains("tenants `t1` and `t2` have the same key"), "{err}");
    let err = read("tenant_api_keys: {t1: []}\n").unwrap_err().to_string();
    assert!(err.contains("tenant `t1` has no key"), "{err}");
}

#[test]
fn the_idempotency_window_is_a_duration_of_at_least_a_second() {
    assert_eq!(from_env(&[]).unwrap().limits.idempotency_window, Duration::from_secs(300));
    assert_eq!(from_env(&[("IDEMPOTENCY_WINDOW", "10m")]).unwrap().limits.idempotency_window, Duration::from_secs(600));
    assert_eq!(from_env(&[("IDEMPOTENCY_WINDOW", "2000")]).unwrap().limits.idempotency_window, Duration::from_secs(2));
    let file: FileConfig = serde_saphyr::from_str("idempotency_window: 90s\n").unwrap();
    assert_eq!(Config::from_sources(file, &[], |_| None).unwrap().limits.idempotency_window, Duration::from_secs(90));
    let err = from_env(&[("IDEMPOTENCY_WINDOW", "500ms")]).unwrap_err().to_string();
    assert!(err.starts_with("IDEMPOTENCY_WINDOW must be at least 1s"), "{err}");
    let err = from_env(&[("IDEMPOTENCY_WINDOW", "soon")]).unwrap_err().to_string();
    assert!(err.starts_with("IDEMPOTENCY_WINDOW: `soon` is not a duration"), "{err}");
}

#[test]
fn bridge_ca_file_must_hold_pem_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = from_env(&[("BRIDGE_CA_FILE", missing.to_str().unwrap())]).unwrap_err();
    assert!(format!("{err:#}").contains("BRIDGE_CA_FILE: cannot read"), "{err:#}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = from_env(&[("BRIDGE_CA_FILE", empty.to_str().unwrap())]).unwrap_err();
    assert!(format!("{err:#}").contains("no certificate in it"), "{err:#}");
    assert_eq!(from_env(&[]).unwrap().bridges.tls.extra_roots(), 0);
}
