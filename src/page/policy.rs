//! The example page's Content-Security-Policy. The page shares its origin with the admin UI
//! (whose login the browser keeps there) and with dev mode's credentials, so what runs on it is
//! held to the page's own code: its one inline script and stylesheet, allowed by hash, and files
//! of this origin (socket.io-client's bundle). It may connect to any gateway its user types in,
//! since no script comes from there. Nothing else: no plugins, no `<base>`, no form targets, no
//! framing, and DOM injection sinks only through the page's one Trusted Types policy.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

/// The name of the page's Trusted Types policy (`trustedTypes.createPolicy` in the page).
const TRUSTED_TYPES_POLICY: &str = "gateway-page";

/// The policy for `html`: its inline `<script>` and `<style>` elements by hash.
pub(super) fn for_page(html: &str) -> String {
    let hashes = |tag| {
        let sources: Vec<String> = inline_elements(html, tag).map(source_hash).collect();
        if sources.is_empty() { "'none'".to_owned() } else { sources.join(" ") }
    };
    format!(
        "default-src 'none'; script-src 'self' {scripts}; style-src {styles}; img-src data:; \
         connect-src 'self' http: https: ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types {TRUSTED_TYPES_POLICY}",
        scripts = hashes("script"),
        styles = hashes("style"),
    )
}

/// The text of each `<tag>...</tag>` written without attributes, as the browser hashes it
/// (outside comments, which may mention the tags).
fn inline_elements<'a>(html: &'a str, tag: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let element = rest.find(&open)?;
            match rest.find("<!--") {
                Some(comment) if comment < element => {
                    let end = rest[comment..].find("-->")? + comment + "-->".len();
                    rest = &rest[end..];
                }
                _ => {
                    let start = element + open.len();
                    let end = start + rest[start..].find(&close)?;
                    let text = &rest[start..end];
                    rest = &rest[end + close.len()..];
                    return Some(text);
                }
            }
        }
    })
}

/// A CSP hash source: `'sha256-<base64 of the text's UTF-8 bytes>'`.
fn source_hash(text: &str) -> String {
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_is_allowed_by_hash_and_nothing_else_inline() {
        let html =
            "<!-- a <script> and a <style> --><style>p{}</style><script>one()</script><p>x</p><script>two()</script>";
        let policy = for_page(html);
        assert!(
            policy.contains(&format!("script-src 'self' {} {};", source_hash("one()"), source_hash("two()"))),
            "{policy}"
        );
        assert!(policy.contains(&format!("style-src {};", source_hash("p{}"))), "{policy}");
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(for_page("<p>no style</p>").contains("style-src 'none';"));
        // The digest browsers compute for `alert(1)`, as CSP's examples give it.
        assert_eq!(source_hash("alert(1)"), "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='");
    }

    #[test]
    fn the_shipped_page_has_one_inline_script_and_stylesheet_and_loads_no_script_by_markup() {
        let html = super::super::INDEX_HTML;
        assert_eq!(inline_elements(html, "script").count(), 1);
        assert_eq!(inline_elements(html, "style").count(), 1);
        // Anything else inline would be refused by the policy: say so here rather than in a browser.
        for refused in ["<script ", " style=", " onclick=", " onload=", " onerror=", "javascript:"] {
            assert!(!html.contains(refused), "the page holds {refused:?}");
        }
        assert!(for_page(html).contains(&format!("trusted-types {TRUSTED_TYPES_POLICY}")));
        assert!(
            html.contains(&format!("createPolicy('{TRUSTED_TYPES_POLICY}'")),
            "the page names its Trusted Types policy"
        );
    }
}
