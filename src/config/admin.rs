//! The admin view's settings (`ADMIN_*`): who may log in, and how much the view shows. Not
//! configured, the view is not mounted.

use anyhow::bail;
use secrecy::SecretString;
use serde::Deserialize;

use super::{env::Env, file::FileConfig};

/// The admin view: the official Socket.IO Admin UI's protocol on namespace `/admin`, and the UI
/// itself at `/admin/`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// `ADMIN_USERNAME`.
    pub username: String,
    /// `ADMIN_PASSWORD_HASH`: the password's bcrypt hash, as the official server takes it.
    pub password_hash: SecretString,
    /// `ADMIN_READONLY`: the UI shows, and cannot disconnect anyone.
    pub readonly: bool,
    /// `ADMIN_MODE`.
    pub mode: AdminMode,
}

/// How much the admin view shows, in the official server's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminMode {
    /// Every socket with its rooms, live, plus the counts (the default).
    Development,
    /// Counts only (servers, clients, namespaces, connections per second): nothing per socket is
    /// sent, for nodes with too many sockets to list.
    Production,
}

impl AdminConfig {
    /// `ADMIN_USERNAME` and `ADMIN_PASSWORD_HASH` (both or neither), `ADMIN_READONLY`, `ADMIN_MODE`.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Option<Self>> {
        Ok(
            match (
                env.get("ADMIN_USERNAME").or_else(|| file.admin_username.clone()),
                env.get("ADMIN_PASSWORD_HASH").or_else(|| file.admin_password_hash.clone()),
            ) {
                (None, None) => None,
                (Some(username), Some(hash)) => Some(AdminConfig {
                    username,
                    password_hash: admin_password_hash(hash)?,
                    readonly: env.boolean("ADMIN_READONLY", file.admin_readonly, false)?,
                    mode: match env.get("ADMIN_MODE").map(|m| m.trim().to_ascii_lowercase()) {
                        Some(m) if m == "development" => AdminMode::Development,
                        Some(m) if m == "production" => AdminMode::Production,
                        Some(m) => bail!("ADMIN_MODE: `{m}` is not development or production"),
                        None => file.admin_mode.unwrap_or(AdminMode::Development),
                    },
                }),
                (Some(_), None) => bail!("ADMIN_USERNAME is set without ADMIN_PASSWORD_HASH: set both, or neither"),
                (None, Some(_)) => bail!("ADMIN_PASSWORD_HASH is set without ADMIN_USERNAME: set both, or neither"),
            },
        )
    }
}

/// `ADMIN_PASSWORD_HASH`, checked to be a bcrypt hash (`$2a$`, `$2b$` or `$2y$`), which is what
/// the official Admin UI server takes. The error never repeats the value.
fn admin_password_hash(hash: String) -> anyhow::Result<SecretString> {
    let hash = hash.trim().to_string();
    if hash.parse::<bcrypt::HashParts>().is_err() {
        bail!(
            "ADMIN_PASSWORD_HASH is not a bcrypt hash ($2b$10$ then 53 characters): \
             `realtime-gateway hash-password` makes one"
        );
    }
    Ok(SecretString::from(hash))
}
