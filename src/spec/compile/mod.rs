//! Checks a parsed spec file and builds the model the engine serves. Every mistake found is
//! reported at the value it is about, all at once, so a spec author fixes a file in one pass.
//! Names that do not exist (rooms, stores, room parameters, template variables and their fields)
//! are reported with the closest existing name when one is close.
//!
//! The checks are split by what they are about, each an `impl Checker` of its own: `settings`
//! (transport, auth), `stores`, `rooms`, `actions` (client events and `on_connect`), `routes`
//! (publish routes and timers), and `templates`, which every other part uses to check the
//! variables a template names in its `place`.

mod actions;
mod place;
mod rooms;
mod routes;
mod settings;
mod stores;
mod templates;
#[cfg(test)]
mod tests;

use serde_saphyr::{Location, Spanned};

use super::{
    NamespaceSpec, RateLimit, RoomFamily, RoomId, StoreSpec, TimerSpec, Transport, TypeMatcher, error::SpecError,
    raw::RawSpec,
};
use crate::parse_errors::suggest;
use place::Ctx;

/// One spec file's check under way: the errors found so far, and the names every part looks up.
struct Checker<'a> {
    file: &'a str,
    errors: Vec<SpecError>,
    store_names: Vec<String>,
    room_names: Vec<String>,
    /// Literal names of the events the spec sends, collected as emits are checked.
    server_events: Vec<String>,
}

impl Checker<'_> {
    /// Records an error; the same error twice (a default emit checked for each route that uses
    /// it) is recorded once.
    fn error(&mut self, at: Location, message: impl Into<String>) {
        let error = SpecError::at(self.file, at.line(), at.column(), message);
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// The family called `name`; an unknown name is reported.
    fn room_id(&mut self, name: &Spanned<String>, rooms: &[RoomFamily]) -> Option<RoomId> {
        let id = rooms.iter().position(|r| r.name == name.value);
        if id.is_none() {
            self.error(name.referenced, unknown("room", &name.value, &self.room_names));
        }
        id
    }

    /// Event-type patterns (`what`: `types` or `deny`), each error at its own pattern.
    fn types(&mut self, patterns: &[Spanned<String>], at: Location, what: &str) -> Option<TypeMatcher> {
        let mut valid = true;
        for p in patterns {
            if let Err(e) = TypeMatcher::check_pattern(&p.value) {
                self.error(p.referenced, format!("{what}: {e}"));
                valid = false;
            }
        }
        if !valid {
            return None;
        }
        let patterns: Vec<String> = patterns.iter().map(|p| p.value.clone()).collect();
        // Only an empty list is left to refuse.
        TypeMatcher::parse(&patterns).map_err(|e| self.error(at, format!("{what}: {e}"))).ok()
    }

    /// A rate limit, which must let something through.
    fn rate_limit(&mut self, raw: Option<&Spanned<RateLimit>>, what: &str) -> Option<RateLimit> {
        let limit = raw?;
        if limit.value.max == 0 || limit.value.per.is_zero() {
            self.error(limit.referenced, format!("{what} needs max >= 1 and a non-zero `per`"));
        }
        Some(limit.value)
    }
}

/// An optional part that was checked if given: `None` when it was given and is broken.
fn if_given<T>(checked: Option<Option<T>>) -> Option<Option<T>> {
    match checked {
        None => Some(None),
        Some(part) => part.map(Some),
    }
}

/// `unknown room `x` (known: a, b)`, and the suggestion if one is close.
fn unknown(what: &str, name: &str, known: &[String]) -> String {
    let hint = suggest::did_you_mean(suggest::closest(name, known.iter().map(String::as_str)));
    format!("unknown {what} `{name}` (known: {}){hint}", list_or_none(known))
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}

/// Checks `raw` (from `file`) and builds its model, or returns every error found.
pub(super) fn compile(raw: RawSpec, file: &str) -> Result<NamespaceSpec, Vec<SpecError>> {
    let mut c = Checker {
        file,
        errors: Vec::new(),
        store_names: raw.state.keys().map(|k| k.value.clone()).collect(),
        room_names: raw.rooms.keys().map(|k| k.value.clone()).collect(),
        server_events: Vec::new(),
    };

    let path = raw.namespace.value.clone();
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        c.error(
            raw.namespace.referenced,
            format!("namespace `{path}` must start with `/` and contain no spaces, like `/workflow`"),
        );
    }
    let auth = c.auth(raw.auth.as_ref());
    let transport = c.transport(raw.transport.as_ref());
    if transport == Transport::SocketIo
        && auth.api_keys
        && let Some(a) = &raw.auth
    {
        c.error(a.referenced, "`api_keys` is for plain WebSocket endpoints (`transport: websocket`)");
    }

    // Stores first: snapshots and templates refer to them.
    let stores: Vec<StoreSpec> = raw.state.iter().filter_map(|(name, store)| c.store(name, &store.value)).collect();
    let rooms: Vec<RoomFamily> =
        raw.rooms.iter().filter_map(|(name, room)| c.room_family(name, &room.value, &stores)).collect();
    if transport == Transport::WebSocket {
        // A plain endpoint takes `since` from any message's data, before the payload schema.
        let joins = raw.on_connect.iter().chain(raw.events.values().flat_map(|e| e.value.actions.iter()));
        for since in joins.filter_map(|a| a.value.join.as_ref()?.since.as_ref()) {
            c.error(
                since.referenced,
                "plain WebSocket endpoints read `since` from a message's `data` themselves: leave it out of the join",
            );
        }
    }
    if rooms.len() != raw.rooms.len() {
        // A broken pattern: references to it would only add noise.
        return Err(c.errors);
    }

    let on_connect = c.actions(&raw.on_connect, Ctx::OnConnect, &rooms, None);
    let events = raw
        .events
        .iter()
        .map(|(name, event)| (name.value.clone(), c.event(name, &event.value, &auth, &rooms)))
        .collect();
    let routes = match &raw.publish {
        Some(publish) => {
            let default_emit = publish.value.emit.as_ref();
            publish.value.routes.iter().filter_map(|route| c.route(route, default_emit, &rooms)).collect()
        }
        None => Vec::new(),
    };
    let timers: Vec<TimerSpec> = raw.every.iter().filter_map(|timer| c.timer(timer, &rooms)).collect();
    if transport == Transport::WebSocket {
        c.websocket_limits(&raw);
    }

    if c.errors.is_empty() {
        Ok(NamespaceSpec {
            path,
            transport,
            file: file.to_string(),
            auth,
            rooms,
            on_connect,
            events,
            stores,
            routes,
            timers,
            server_events: c.server_events,
        })
    } else {
        Err(c.errors)
    }
}
