//! What an admin sees of the request that opened a socket (the UI's "initial request": headers
//! and query parameters, and the URL), with every credential replaced by [`REDACTED`]: tokens in
//! `Authorization`, `?token=` or any header or parameter named like a credential, cookies (the
//! gateway's token cookie, a load balancer's session cookie), API keys, and the Engine.IO session
//! id (`sid`). A value that looks like a JWT is redacted whatever its name.
//!
//! The handshake's `auth` payload is never shown at all, as the official server does.

use http::request::Parts;
use serde_json::{Map, Value};

use crate::auth::query_param;

/// What a redacted value reads as.
pub(crate) const REDACTED: &str = "[redacted]";

/// Parts of a header or parameter name that mark it as a credential.
const SECRET_NAME_PARTS: &[&str] =
    &["auth", "token", "cookie", "key", "secret", "password", "passwd", "session", "sid", "signature", "credential"];

/// Whether a header or parameter named `name` may hold a credential.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// Whether `value` looks like a JWT (`eyJ...` header, three base64url parts), wherever it is:
/// words end at every character a JWT cannot hold, so one inside a URL (`/verify/eyJ...`) or
/// after a scheme (`Bearer:eyJ...`) is found too (fuzzing found it missed; docs/fuzzing.md).
fn looks_like_jwt(value: &str) -> bool {
    value.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).any(|word| {
        // Three parts or more: a JWT followed by a dot (the end of a sentence, `.json`) too.
        let parts: Vec<&str> = word.split('.').collect();
        word.starts_with("eyJ")
            && parts.len() >= 3
            && parts[..2]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    })
}

fn shown(name: &str, value: &str) -> String {
    if is_secret_name(name) || looks_like_jwt(value) { REDACTED.to_string() } else { value.to_string() }
}

/// A parameter name as shown: a token sent as a name (`?eyJ...` with no `=`) is a credential too
/// (fuzzing found it shown; docs/fuzzing.md). Header names need not be: they arrive lowercased,
/// which no JWT survives.
fn shown_name(name: &str) -> String {
    if looks_like_jwt(name) { REDACTED.to_string() } else { name.to_string() }
}

/// The headers, redacted; a header sent several times reads as its values joined by `, `.
pub(super) fn headers(parts: &Parts) -> Map<String, Value> {
    let mut out = Map::new();
    for name in parts.headers.keys() {
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        out.insert(name.as_str().to_string(), Value::String(shown(name.as_str(), &joined)));
    }
    out
}

/// The query parameters, decoded and redacted, in order.
pub(super) fn query(parts: &Parts) -> Vec<(String, String)> {
    let query = parts.uri.query().unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(k, _)| k);
            let value = query_param(query, name).unwrap_or_default();
            (shown_name(name), shown(name, &value))
        })
        .collect()
}

/// The request's path and redacted query, as a URL to show.
pub(super) fn url(parts: &Parts, query: &[(String, String)]) -> String {
    let mut url = parts.uri.path().to_string();
    for (i, (name, value)) in query.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(name);
        url.push('=');
        url.push_str(value);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl";

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn credentials_in_headers_query_and_cookies_never_show() {
        let p = parts(
            &format!("/socket.io/?EIO=4&transport=polling&token={JWT}&sid=AAAAAAAAAAAAAAAA&t=abc"),
            &[
                ("authorization", &format!("Bearer {JWT}")),
                ("cookie", "access_token=abc; io=AAAAAAAAAAAAAAAA"),
                ("x-api-key", "k1"),
                ("x-custom", &format!("prefix {JWT}")),
                ("user-agent", "node"),
                ("accept", "a"),
                ("accept", "b"),
            ],
        );
        let headers = Value::Object(headers(&p)).to_string();
        let query = query(&p);
        let url = url(&p, &query);
        for shown in [&headers, &format!("{query:?}"), &url] {
            assert!(!shown.contains("eyJ") && !shown.contains("AAAAAAAAAAAAAAAA") && !shown.contains("k1"), "{shown}");
            assert!(!shown.contains("access_token=abc"), "{shown}");
        }
        assert!(headers.contains(r#""user-agent":"node""#) && headers.contains(r#""accept":"a, b""#), "{headers}");
        assert_eq!(query[0], ("EIO".to_string(), "4".to_string()));
        assert_eq!(query[2], ("token".to_string(), REDACTED.to_string()));
        assert_eq!(url, "/socket.io/?EIO=4&transport=polling&token=[redacted]&sid=[redacted]&t=abc");
    }

    #[test]
    fn a_jwt_inside_a_url_or_after_any_separator_never_shows() {
        let p = parts(
            &format!("/socket.io/?EIO=4&next=%2Fverify%2F{JWT}%3Fx%3D1&t=abc"),
            &[("referer", &format!("https://app.example.com/magic/{JWT}")), ("x-forwarded-p", &format!("a:/{JWT}"))],
        );
        let headers = Value::Object(headers(&p)).to_string();
        let query = query(&p);
        let url = url(&p, &query);
        for shown in [&headers, &format!("{query:?}"), &url] {
            assert!(!shown.contains("eyJ"), "{shown}");
        }
        assert_eq!(query[2], ("t".to_string(), "abc".to_string()));
    }

    #[test]
    fn a_jwt_sent_as_a_name_never_shows() {
        let p = parts(&format!("/socket.io/?EIO=4&{JWT}&t=1"), &[]);
        let headers = Value::Object(headers(&p)).to_string();
        let query = query(&p);
        let url = url(&p, &query);
        for shown in [&headers, &format!("{query:?}"), &url] {
            assert!(!shown.contains("eyJ"), "{shown}");
        }
        assert_eq!(query[1], (REDACTED.to_string(), String::new()));
        assert_eq!(query[2], ("t".to_string(), "1".to_string()));
    }

    #[test]
    fn a_jwt_followed_by_a_dot_never_shows() {
        let p =
            parts(&format!("/socket.io/?EIO=4&note=sent+{JWT}.&file={JWT}.json"), &[("x-note", &format!("{JWT}."))]);
        let headers = Value::Object(headers(&p)).to_string();
        let query = query(&p);
        assert!(!headers.contains("eyJ") && !format!("{query:?}").contains("eyJ"), "{headers} {query:?}");
        assert_eq!(query[1], ("note".to_string(), REDACTED.to_string()));
    }
}
