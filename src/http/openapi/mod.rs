//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/v1/openapi.json`, made from the
//! same calls that register the routes, so the two cannot drift.
//!
//! A route of the API is registered only through [`Routes`]: `.get(path, handler, operation)`
//! puts the handler in axum's router and the operation (what it takes and answers,
//! `operations`) in the document under the same method and path. [`Routes::into_router`] adds
//! the document's own route and hands axum the router. Routes that are not API (the example page
//! at `/`) go through [`Routes::outside_api`], so every registration of `http` and `page` passes
//! here; `tests/it/openapi.rs` fails on a `.route(` elsewhere for a path of the API, and on a
//! documented operation the router does not answer.
//!
//! Here: [`Routes`] and the document's frame; `operation` (the builder of one operation);
//! `operations` (each route's description); `schemas` (bodies and security schemes).

mod operation;
pub(crate) mod operations;
mod schemas;

use axum::{
    Router,
    handler::Handler,
    http::{HeaderValue, Method, header},
    response::IntoResponse,
    routing::{self, MethodRouter},
};
use bytes::Bytes;
use serde_json::{Map, Value, json};

pub(crate) use operation::Operation;

/// Where the document is served.
pub(crate) const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

/// Routes being registered, each API route with its operation.
pub(crate) struct Routes<S = ()> {
    router: Router<S>,
    operations: Vec<Documented>,
}

/// One operation, filed under its method and path.
struct Documented {
    method: Method,
    path: String,
    operation: Operation,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet.
    pub(crate) fn new() -> Self {
        Self { router: Router::new(), operations: Vec::new() }
    }

    /// `GET path`, answered by `handler` as `operation` says.
    pub(crate) fn get<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H, operation: Operation) -> Self {
        self.add(Method::GET, path, routing::get(handler), operation)
    }

    /// `POST path`, answered by `handler` as `operation` says.
    pub(crate) fn post<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H, operation: Operation) -> Self {
        self.add(Method::POST, path, routing::post(handler), operation)
    }

    /// `PUT path`, answered by `handler` as `operation` says.
    pub(crate) fn put<H: Handler<T, S>, T: 'static>(self, path: &str, handler: H, operation: Operation) -> Self {
        self.add(Method::PUT, path, routing::put(handler), operation)
    }

    /// A route that is not part of the API (a page for browsers), left out of the document.
    pub(crate) fn outside_api(mut self, path: &str, route: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, route);
        self
    }

    fn add(mut self, method: Method, path: &str, route: MethodRouter<S>, operation: Operation) -> Self {
        self.router = self.router.route(path, route);
        self.operations.push(Documented { method, path: path.to_string(), operation });
        self
    }

    /// The same routes, their router changed by `f` (a layer, the state).
    pub(crate) fn map_router<T>(self, f: impl FnOnce(Router<S>) -> Router<T>) -> Routes<T> {
        Routes { router: f(self.router), operations: self.operations }
    }

    /// Both sets of routes.
    pub(crate) fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.operations.extend(other.operations);
        self
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes<()> {
    /// The router, with `GET /api/v1/openapi.json` serving the document of every route;
    /// `max_batch` is `API_MAX_BATCH`, which the document states.
    pub(crate) fn into_router(mut self, max_batch: usize) -> Router {
        self.operations.push(Documented {
            method: Method::GET,
            path: DOCUMENT_PATH.to_string(),
            operation: operations::openapi(),
        });
        // Rendered once: the routes do not change while the gateway runs.
        let document = Bytes::from(serde_json::to_vec(&self.document(max_batch)).expect("a JSON value serializes"));
        let serve = move || async move {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document).into_response()
        };
        self.router.route(DOCUMENT_PATH, routing::get(serve))
    }
}

impl<S> Routes<S> {
    /// The document: every operation under its path and method, in registration order.
    fn document(&self, max_batch: usize) -> Value {
        let mut paths = Map::new();
        for Documented { method, path, operation } in &self.operations {
            let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
            let previous = item
                .as_object_mut()
                .expect("a path item is an object")
                .insert(method.as_str().to_ascii_lowercase(), operation.clone().into_json());
            assert!(previous.is_none(), "{method} {path} is registered twice");
        }
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "realtime-gateway HTTP API",
                "version": env!("CARGO_PKG_VERSION"),
                "description": "Publish events to Socket.IO and plain WebSocket clients, emit to rooms, notify users, \
                                and read statistics, health and metrics. Errors are `{\"error\": {\"type\", \"message\"}}`.",
            },
            "paths": paths,
            "components": schemas::components(max_batch),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.insert(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_lists_what_was_registered_and_nothing_else() {
        let routes = Routes::<()>::new()
            .get("/healthz", || async {}, operations::healthz())
            .post("/api/v1/events", || async {}, operations::publish_events())
            .outside_api("/", routing::get(|| async {}));
        let document = routes.document(10);
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert_eq!(paths, ["/healthz", "/api/v1/events"]);
        assert!(document["paths"]["/api/v1/events"]["post"]["responses"]["202"].is_object());
        assert_eq!(document["components"]["schemas"]["PublishBody"]["oneOf"][1]["maxItems"], json!(10));
    }

    #[test]
    fn every_reference_and_security_scheme_is_defined_and_every_schema_compiles() {
        let routes = Routes::<()>::new()
            .post("/a", || async {}, operations::publish_events())
            .post("/b", || async {}, operations::emit())
            .post("/c", || async {}, operations::notify())
            .get("/d", || async {}, operations::stats())
            .get("/ws", || async {}, operations::native_upgrade("/ws"))
            .get("/ws/stats", || async {}, operations::native_stats("/ws"))
            .get("/e", || async {}, operations::readyz())
            .get("/f", || async {}, operations::metrics())
            .get("/g", || async {}, operations::namespaces())
            .get("/h", || async {}, operations::dev_credentials())
            .get("/i", || async {}, operations::healthz())
            .get("/j", || async {}, operations::openapi());
        let document = routes.document(10);
        let mut found = BTreeSet::new();
        refs(&document, &mut found);
        for r in &found {
            let name = r.strip_prefix("#/components/schemas/").expect("a schema reference");
            assert!(document["components"]["schemas"][name].is_object(), "{r} is not defined");
        }
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for (name, schema) in schemas {
            // Resolved against the whole document, as OpenAPI 3.1's dialect (JSON Schema 2020-12).
            let mut root = document.clone();
            root["$ref"] = json!(format!("#/components/schemas/{name}"));
            assert!(jsonschema::draft202012::new(&root).is_ok(), "{name} does not compile: {schema}");
        }
        let schemes = &document["components"]["securitySchemes"];
        let mut ids = BTreeSet::new();
        for item in document["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_string()), "{} twice", op["operationId"]);
                for alternative in op["security"].as_array().unwrap() {
                    for scheme in alternative.as_object().unwrap().keys() {
                        assert!(schemes[scheme].is_object(), "{scheme} is not a security scheme");
                    }
                }
            }
        }
    }
}
