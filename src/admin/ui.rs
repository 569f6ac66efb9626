//! The official Admin UI's files, served at `/admin/` from the binary (`build/admin_ui.rs` takes
//! them from npm at a pinned version and integrity, and puts the icon font beside them in place
//! of the CDN the page used).
//!
//! Every answer carries a Content-Security-Policy that allows this origin only, so the page
//! cannot load anything from, or send anything to, another host: it talks to the gateway that
//! served it (`connect-src 'self'`), which is the server URL to type in its login form.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/admin_ui_assets.rs"));
}

pub(crate) use assets::VERSION;

/// This origin only, and only files: the UI has no inline script. Vuetify sets styles at run
/// time (`'unsafe-inline'` for styles, never for scripts); the page needs nothing else: no
/// plugins, no `<base>`, no form targets, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The routes: `/admin` redirects to `/admin/`, which is the page; its files are below it.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(|| async { asset("index.html") }))
        .route("/admin/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

fn asset(path: &str) -> Response {
    if let Some(reason) = assets::MISSING {
        let message = format!(
            "The Admin UI {VERSION} is not built into this gateway: {reason}. Rebuild it with access to the npm \
             registry (or NPM_TARBALL_DIR; see the README), or point the hosted UI at this gateway.\n"
        );
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], message).into_response();
    }
    let Some((_, kind, bytes)) = assets::ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The page is small and names its scripts by content hash; it is always asked again.
    let cache = if path == "index.html" { "no-cache" } else { "public, max-age=86400" };
    let mut response = (*bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_embedded_and_name_no_other_host() {
        let page = assets::ASSETS.iter().find(|(p, _, _)| *p == "index.html").expect("index.html");
        let html = std::str::from_utf8(page.2).unwrap();
        assert!(!html.contains("http:") && !html.contains("https:"), "{html}");
        for (path, _, _) in assets::ASSETS {
            assert!(!path.ends_with(".map") && !path.starts_with('/'), "{path}");
        }
        assert!(assets::ASSETS.iter().any(|(p, _, _)| p.ends_with(".woff2")), "the icon font is served");
        assert_eq!(asset("nope.js").status(), StatusCode::NOT_FOUND);
        let css = asset("mdi/css/materialdesignicons.min.css");
        assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert!(css.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("connect-src 'self'"));
    }
}
