//! The environment variables the gateway reads, and the ones that are none of them but look like
//! one: a misspelt name is a warning, or a start-up error when it looks like an auth setting (see
//! `auth`), never a setting silently ignored.

/// Every environment variable the gateway reads, as the README's configuration table lists
/// them. A variable that is none of these but looks like one is taken for a misspelling.
pub const VARIABLES: &[&str] = &[
    "PORT",
    "HOST",
    "CORS_ORIGINS",
    "ALLOWED_ORIGINS",
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY",
    "API_KEYS",
    "TENANT_API_KEYS",
    "AUTH_COOKIE_NAME",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_PREFIX",
    "REDIS_BROADCAST_CHANNEL",
    "REDIS_EMITTER_KEY",
    "REDIS_BUS_SHARDS",
    "TRUSTED_PROXIES",
    "WS_PING_INTERVAL",
    "WS_PING_TIMEOUT",
    "WS_UPGRADE_TIMEOUT",
    "WS_MAX_HTTP_BUFFER_SIZE",
    "WS_MAX_EVENT_SIZE",
    "WS_MAX_BUFFER_SIZE",
    "WS_MAX_BUFFER_BYTES",
    "WS_WRITE_TIMEOUT",
    "WS_CONNECT_TIMEOUT",
    "WS_HANDSHAKE_RATE_LIMIT",
    "WS_BIND_SESSION_TO_IP",
    "SOCKETIO_PATH",
    "ALLOW_EIO3",
    "HTTP_HEADER_TIMEOUT",
    "HTTP_MAX_HEADER_SIZE",
    "MAX_CONNECTIONS_PER_IP",
    "WS_MAX_ROOMS_PER_SOCKET",
    "WS_MAX_EVENTS_PER_SECOND",
    "WS_CLEANUP_INTERVAL",
    "WS_METRICS_INTERVAL",
    "WS_NATIVE_PING_INTERVAL",
    "WS_NATIVE_PONG_WAIT",
    "WS_NATIVE_SEND_BUFFER",
    "WS_NATIVE_SEND_BUFFER_BYTES",
    "WS_NATIVE_MAX_MESSAGE_SIZE",
    "API_MAX_BODY_SIZE",
    "API_MAX_BATCH",
    "STATE_MAX_BYTES_PER_TENANT",
    "STATE_MAX_BYTES",
    "HISTORY_MAX_BYTES",
    "IDEMPOTENCY_WINDOW",
    "NAMESPACES_DIR",
    "ADMIN_USERNAME",
    "ADMIN_PASSWORD_HASH",
    "ADMIN_READONLY",
    "ADMIN_MODE",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "SHUTDOWN_TIMEOUT",
    "SHUTDOWN_DELAY",
    "CONFIG_FILE",
    "BRIDGES_FILE",
    "BRIDGE_ALLOWED_HOSTS",
    "BRIDGE_CA_FILE",
    "BACKENDS_FILE",
    "DATABASE_URL",
    "KAFKA_BROKERS",
    "BRIDGE_TENANT_CONFIG",
];

/// Settings about client tokens and API keys: a gateway given any of them is meant to verify
/// real credentials, so it never falls back to dev mode's random secret and demo key.
pub(super) const AUTH_VARIABLES: &[&str] = &[
    "JWT_SECRET",
    "JWT_PUBLIC_KEY",
    "JWT_PUBLIC_KEY_FILE",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "JWT_LEEWAY",
    "API_KEYS",
    "TENANT_API_KEYS",
];

/// The environment variables in `present` that are no setting but look like one: each with the
/// setting it probably meant.
pub(super) fn misspelt(present: &[String]) -> Vec<(&str, &'static str)> {
    let mut misspelt: Vec<(&str, &'static str)> = present
        .iter()
        .filter_map(|name| Some((name.as_str(), crate::parse_errors::suggest::closest_variable(name, VARIABLES)?)))
        .collect();
    misspelt.sort();
    misspelt
}

/// What the operator hears about the misspelt variables, once logging is up.
pub(super) fn warnings(misspelt: &[(&str, &'static str)]) -> Vec<String> {
    misspelt
        .iter()
        .map(|(name, meant)| format!("{name} is not a setting of the gateway and is ignored (did you mean {meant}?)"))
        .collect()
}
