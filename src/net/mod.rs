//! The network layer, under both fronts and the HTTP routes: the accept loop, what guards each TCP
//! connection (header and write deadlines, cuts, the bytes it writes), who a connection comes
//! from, and the byte accounting of what a connection has queued and not written.
//!
//! - [`server`]: the accept loop and per-address connection limits;
//! - [`connection`]: the guarded connection;
//! - [`client_ip`]: the client's address behind trusted proxies;
//! - [`backlog`]: how far behind a Socket.IO session's transport is;
//! - [`outbound`]: where the gateway may connect out to (`BRIDGE_ALLOWED_HOSTS`);
//! - [`tls`]: the TLS it connects out with (`BRIDGE_CA_FILE`);
//! - [`v3_connect`]: socket.io-client 2.x's CONNECT queries dropped from its WebSocket frames.

pub(crate) mod backlog;
pub(crate) mod client_ip;
pub(crate) mod connection;
pub(crate) mod outbound;
pub(crate) mod server;
pub(crate) mod tls;
pub(crate) mod v3_connect;

/// `s` percent-encoded but for RFC 3986's unreserved characters: safe in a URL's query and in
/// its user-info (a password with `@` or `:` in it).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
