//! What the gateway serves to browsers itself, beside Socket.IO and the API:
//!
//! - `GET /`: the example page (`client-example/index.html`, embedded): connect to any served
//!   namespace, emit, watch events, publish. One self-contained file that makes no request
//!   beyond the gateway, so it works offline and also when opened from disk. Served with a
//!   Content-Security-Policy that runs no code but its own (`policy`).
//! - `{SOCKETIO_PATH}/socket.io.js` and friends: socket.io-client's browser bundle (`bundle`).
//! - `GET /api/v1/namespaces`: what each served spec lets a client send and receive
//!   (`spec::describe`), from which the page builds its forms. Public, like the specs' contract
//!   itself; readable from any origin, so the page works from disk too.
//! - `GET /api/v1/dev`: dev mode's demo credentials for the page to prefill (`dev`).
//!
//! None of these needs an API key.

pub mod bundle;
pub mod dev;
mod policy;

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use bytes::Bytes;
use serde_json::json;

use crate::{
    http::openapi::{Routes, operations},
    net::client_ip::TrustedProxies,
    spec::{NamespaceSpec, describe::describe},
};
use dev::DevCredentials;

/// The page, as shipped in `client-example/`.
const INDEX_HTML: &str = include_str!("../../client-example/index.html");

/// What the page's routes need.
#[derive(Clone)]
pub struct PageState {
    /// `GET /api/v1/namespaces`, rendered once: specs do not change while the gateway runs.
    catalog: Bytes,
    /// Dev mode's credentials; `None` outside dev mode.
    dev: Option<Arc<DevCredentials>>,
    /// To tell a browser on this machine from one elsewhere.
    trusted_proxies: TrustedProxies,
    /// The page's Content-Security-Policy, made once from the page it covers.
    policy: HeaderValue,
}

impl PageState {
    /// The state for these specs, served under `socketio_path`.
    pub fn new(
        specs: &[NamespaceSpec],
        socketio_path: &str,
        dev: Option<DevCredentials>,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        let catalog = json!({
            "socketio": {
                "path": socketio_path,
                "client": { "version": bundle::VERSION, "served": bundle::available() },
            },
            "namespaces": specs.iter().map(describe).collect::<Vec<_>>(),
        });
        Self {
            catalog: Bytes::from(serde_json::to_vec(&catalog).expect("a JSON value serializes")),
            dev: dev.map(Arc::new),
            trusted_proxies,
            policy: HeaderValue::from_str(&policy::for_page(INDEX_HTML)).expect("a policy is a valid header"),
        }
    }
}

/// The page's routes: the page itself, and the two of the API it reads (in the API's document).
pub(crate) fn router(state: PageState) -> Routes {
    Routes::new()
        .outside_api("/", get(index))
        .get("/api/v1/namespaces", namespaces, operations::namespaces())
        .get("/api/v1/dev", dev_credentials, operations::dev_credentials())
        .map_router(|router| router.with_state(state))
}

async fn index(State(state): State<PageState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            // Served from the binary: revalidate so an upgraded gateway shows its own page.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CONTENT_SECURITY_POLICY, state.policy),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn namespaces(State(state): State<PageState>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], state.catalog.clone()).into_response();
    // The contract is public: a page opened from disk (origin `null`) may read it too. No
    // credentials are involved, so a wildcard is safe here, unlike on the API.
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `{devMode: false}`; in dev mode `{devMode: true, userId, tenantId, token, apiKey}` for a
/// browser on this machine, or `{devMode: true, withheld: "<why>"}` for one elsewhere.
async fn dev_credentials(
    State(state): State<PageState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let body = match &state.dev {
        None => json!({ "devMode": false }),
        Some(dev) if dev::is_local_request(peer.ip(), &headers, &state.trusted_proxies) => json!({
            "devMode": true,
            "userId": dev::DEMO_USER,
            "tenantId": dev::DEMO_TENANT,
            "token": dev.token(),
            "apiKey": dev.api_key(),
        }),
        Some(_) => json!({
            "devMode": true,
            "withheld": "dev mode's demo token and key are offered only to a browser on the gateway's own machine \
                         (open the page at http://localhost:PORT/); copy them from the gateway's log instead",
        }),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
