//! The command line: `serve` (the default), `check [DIR]` and `token`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A self-hosted, Socket.IO-compatible realtime gateway.
#[derive(Debug, Parser)]
#[command(name = "realtime-gateway", version, about)]
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
}
