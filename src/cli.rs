//! The command line: `serve` (the default), `check [DIR]`, `token`, `healthcheck` and
//! `hash-password`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The environment variables, listed after `--help` (the README's table says more of each).
const ENVIRONMENT: &str = "\
Configuration comes from environment variables (over an optional YAML file of the same names in
lower case); the README's configuration table describes each one:
  Listening      HOST, PORT, CORS_ORIGINS (ALLOWED_ORIGINS), TRUSTED_PROXIES, SOCKETIO_PATH
  Tokens         JWT_SECRET, JWT_PUBLIC_KEY, JWT_PUBLIC_KEY_FILE, JWT_ALGORITHM, JWT_ISSUER,
                 JWT_AUDIENCE, JWT_LEEWAY, AUTH_COOKIE_NAME
  HTTP API       API_KEYS, TENANT_API_KEYS, API_MAX_BODY_SIZE, API_MAX_BATCH, IDEMPOTENCY_WINDOW
  Cluster        REDIS_URL (or REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB), REDIS_PREFIX,
                 REDIS_BROADCAST_CHANNEL, REDIS_EMITTER_KEY, REDIS_BUS_SHARDS
  Transport      WS_PING_INTERVAL, WS_PING_TIMEOUT, WS_UPGRADE_TIMEOUT, WS_CONNECT_TIMEOUT,
                 WS_MAX_HTTP_BUFFER_SIZE, WS_MAX_BUFFER_SIZE, WS_MAX_BUFFER_BYTES, WS_WRITE_TIMEOUT,
                 ALLOW_EIO3
  Plain ws       WS_NATIVE_PING_INTERVAL, WS_NATIVE_PONG_WAIT, WS_NATIVE_SEND_BUFFER,
                 WS_NATIVE_SEND_BUFFER_BYTES, WS_NATIVE_MAX_MESSAGE_SIZE
  Protection     HTTP_HEADER_TIMEOUT, HTTP_MAX_HEADER_SIZE, MAX_CONNECTIONS_PER_IP,
                 WS_HANDSHAKE_RATE_LIMIT, WS_BIND_SESSION_TO_IP
  Limits         WS_MAX_EVENT_SIZE, WS_MAX_EVENTS_PER_SECOND, WS_MAX_ROOMS_PER_SOCKET,
                 STATE_MAX_BYTES, STATE_MAX_BYTES_PER_TENANT, HISTORY_MAX_BYTES
  Timers         WS_CLEANUP_INTERVAL, WS_METRICS_INTERVAL
  Admin view     ADMIN_USERNAME, ADMIN_PASSWORD_HASH (bcrypt: see hash-password), ADMIN_READONLY,
                 ADMIN_MODE
  Bridges        BRIDGES_FILE, BRIDGE_ALLOWED_HOSTS, BRIDGE_CA_FILE, BRIDGE_TENANT_CONFIG,
                 DATABASE_URL, KAFKA_BROKERS
  Backends       BACKENDS_FILE (where specs' `forward` actions call)
  Operations     NAMESPACES_DIR, LOG_LEVEL, LOG_FORMAT, SHUTDOWN_TIMEOUT, SHUTDOWN_DELAY, CONFIG_FILE
With no JWT_ setting at all the gateway runs in dev mode and prints a demo token; a JWT_ setting
without a key (JWT_SECRET, JWT_PUBLIC_KEY) is an error. A variable that looks like a misspelt one
of these is warned about.";

/// A self-hosted, Socket.IO-compatible realtime gateway.
#[derive(Debug, Parser)]
#[command(name = "realtime-gateway", version, about, after_help = ENVIRONMENT)]
pub struct Cli {
    /// A YAML config file; environment variables override it (also `CONFIG_FILE`).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do; without one, the gateway serves.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Check namespace specs and report every error with its file and line.
    Check {
        /// A folder of specs; without it, the configured ones (`NAMESPACES_DIR`, or the built-in specs).
        dir: Option<PathBuf>,
    },
    /// Generate code from the served namespace specs.
    Codegen {
        /// What to generate.
        #[command(subcommand)]
        target: CodegenTarget,
    },
    /// Mint a token signed with the configured `JWT_SECRET`.
    Token {
        /// The user id (`sub`).
        #[arg(long)]
        sub: String,
        /// The tenant (`tenantId`).
        #[arg(long)]
        tenant: Option<String>,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Validity, such as `1h`, `30m`, `7d`.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Probe a running gateway: exit 0 if its `/healthz` answers 200, else 1.
    ///
    /// The container's health check, in an image with no HTTP client. The gateway is the one this
    /// configuration describes: `PORT`, on `HOST` (loopback when `HOST` is 0.0.0.0 or ::).
    Healthcheck {
        /// How long connecting, and then reading the answer, may each take (`3s`, `500ms`).
        #[arg(long, default_value = "3s")]
        timeout: String,
    },
    /// Read a password from standard input and print its bcrypt hash, for ADMIN_PASSWORD_HASH.
    ///
    /// On a terminal the password is asked for without echo; otherwise the first line of the
    /// input is the password. It is never an argument, so it stays out of shell history.
    HashPassword {
        /// bcrypt's cost: each check takes 2^cost rounds (10 is the usual choice).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=16))]
        cost: u32,
    },
}

/// What `codegen` writes.
#[derive(Debug, Subcommand)]
pub enum CodegenTarget {
    /// TypeScript types for what the specs define: published events and their data, each
    /// Socket.IO namespace's events both ways (for socket.io-client's `Socket<ServerToClientEvents,
    /// ClientToServerEvents>`), each plain WebSocket endpoint's messages.
    Typescript {
        /// The folder to write into (created if needed); generated files it holds that the specs
        /// no longer give are removed, other files are left alone.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A folder of specs; without it, the configured ones (`NAMESPACES_DIR`, or the built-in specs).
        #[arg(long, value_name = "DIR")]
        specs: Option<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_readme_mention_every_setting() {
        let readme = include_str!("../README.md");
        for name in crate::config::VARIABLES {
            assert!(ENVIRONMENT.contains(name), "--help does not mention {name}");
            assert!(readme.contains(&format!("`{name}`")), "the README does not mention `{name}`");
        }
    }
}
