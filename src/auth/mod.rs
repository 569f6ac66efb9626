//! Who is calling: client tokens (where to find them in a handshake, how they are verified, what
//! identity they carry), the HS256 signer behind dev mode and the `token` subcommand, and the API
//! keys of the HTTP API.
//!
//! The algorithm is pinned by the configured key: a token whose header names any other algorithm
//! is refused before its signature is looked at. Verification failures are logged with their
//! cause; clients only ever learn "invalid" or "expired".
//!
//! Here: `token` (verification and [`Identity`]), `handshake` (where a token is found), `signer`
//! (minting) and `api_keys` (who an API key speaks for: the platform, or one tenant).

mod api_keys;
mod handshake;
mod signer;
#[cfg(test)]
mod tests;
mod token;

use std::time::{SystemTime, UNIX_EPOCH};

pub use api_keys::{ApiCaller, ApiKeys};
pub use handshake::{TokenSource, handshake_token, query_param};
pub use signer::TokenSigner;
pub use token::{Identity, TokenError, TokenVerifier};

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}
