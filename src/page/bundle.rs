//! socket.io-client's browser bundle at `{SOCKETIO_PATH}/socket.io.js`, `socket.io.min.js` and
//! their source maps, as Node's socket.io serves them (`serveClient`), so pages that load the
//! client from the server they talk to keep working.
//!
//! `build.rs` fetches the pinned npm release (checked against its sha512) and embeds it. A build
//! that could not fetch it still runs: these paths then answer 404 with the reason, and the rest
//! of the gateway is unaffected. Socket.IO owns everything under its path, so this runs as a
//! layer in front of it, taking these exact paths and passing every other request on.

use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderValue, Method, StatusCode, header};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/socketio_client.rs"));
}

/// The socket.io-client release this build serves (or should have).
pub const VERSION: &str = embedded::VERSION;

/// Whether this build has the bundle.
pub fn available() -> bool {
    embedded::FILES.is_ok()
}

/// The bundle's paths under the Socket.IO path, for the layer.
#[derive(Clone)]
pub struct BundlePaths {
    /// `SOCKETIO_PATH` with a trailing `/`, such as `/socket.io/`.
    prefix: String,
}

impl BundlePaths {
    /// The files under `socketio_path`.
    pub fn new(socketio_path: &str) -> Self {
        Self { prefix: format!("{}/", socketio_path.trim_end_matches('/')) }
    }
}

/// Same ETag for every file of a release, as Node's socket.io does: they change together.
fn etag() -> HeaderValue {
    HeaderValue::from_str(&format!("\"socket.io-client-{VERSION}\"")).expect("a version is a valid header")
}

/// The middleware: serves a bundle file, or hands the request on.
pub async fn serve(State(paths): State<BundlePaths>, request: Request, next: Next) -> Response {
    let Some(name) = request.uri().path().strip_prefix(paths.prefix.as_str()).filter(|n| is_bundle_file(n)) else {
        return next.run(request).await;
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return next.run(request).await;
    }
    let files = match embedded::FILES {
        Ok(files) => files,
        Err(reason) => {
            let message = format!(
                "socket.io-client {VERSION}'s browser bundle is not built into this gateway: {reason}. \
                 Rebuild it with access to the npm registry (or with NPM_TARBALL_DIR); see the README.\n"
            );
            return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], message).into_response();
        }
    };
    let Some((_, bytes)) = files.iter().find(|(file, _)| *file == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let tag = etag();
    let fresh = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim().trim_start_matches("W/") == tag);
    let content_type = if name.ends_with(".map") {
        "application/json; charset=utf-8"
    } else {
        "application/javascript; charset=utf-8"
    };
    let mut response = if fresh {
        Response::builder().status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        Response::builder().header(header::CONTENT_TYPE, content_type).body(Body::from(*bytes))
    }
    .expect("static headers are valid");
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag);
    // Revalidate every time (cheap: a 304), so a gateway upgrade serves its own client at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=0"));
    response
}

fn is_bundle_file(name: &str) -> bool {
    matches!(name, "socket.io.js" | "socket.io.min.js" | "socket.io.js.map" | "socket.io.min.js.map")
}
