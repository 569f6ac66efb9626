//! Where a Socket.IO handshake's token is: the `auth` payload, the `?token=` query parameter,
//! `Authorization: Bearer`, or a cookie, in the seed's order.

use serde_json::Value;

/// Where a handshake token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The handshake's `auth.token`, the `?token=` query parameter or `Authorization: Bearer`:
    /// things a page's script sends on purpose.
    Explicit,
    /// A cookie, which a browser attaches to any request to this host, whoever's page makes it.
    Cookie,
}

/// Finds the token of a Socket.IO handshake, in the seed's order: the `auth` payload's `token`,
/// the `?token=` query parameter, `Authorization: Bearer`, then (when `cookie` names one) a
/// cookie. The first place that has one decides; an empty value counts as absent. A `Bearer `
/// prefix is tolerated everywhere.
pub fn handshake_token(
    auth: Option<&Value>,
    parts: &http::request::Parts,
    cookie: Option<&str>,
) -> Option<(String, TokenSource)> {
    let from_auth = auth.and_then(|a| a.get("token")).and_then(Value::as_str).map(str::to_string);
    let from_query = parts.uri.query().and_then(|q| query_param(q, "token"));
    let from_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_bearer(v).map(str::to_string));
    let clean = |t: String| Some(strip_bearer(&t).unwrap_or(&t).trim().to_string()).filter(|t| !t.is_empty());
    [from_auth, from_query, from_header]
        .into_iter()
        .flatten()
        .find_map(clean)
        .map(|t| (t, TokenSource::Explicit))
        .or_else(|| cookie_value(&parts.headers, cookie?).and_then(clean).map(|t| (t, TokenSource::Cookie)))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(
        |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| percent_decode_query(v.trim().trim_matches('"')))
        },
    )
}

pub(super) fn strip_bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The percent-decoded value of `name` in a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode_query(v))
    })
}

fn percent_decode_query(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(decoded) => {
                    out.push(decoded);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
