//! Published domain events: what a backend sends (`{type, tenantId, data, timestamp, id}`), how a
//! batch is checked against the specs, and how one event reaches sockets.
//!
//! A batch is checked whole before anything is delivered, so a 400 means nothing was published.
//! Delivery, per namespace that routes the type: the state rules update the last-known state,
//! then, when the namespace has sockets on this node, the first matching route finds its rooms,
//! renders its event once and emits it to the union of the rooms (each socket once, however many
//! of the rooms it is in).

use std::{
    borrow::Cow,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};
use smallvec::SmallVec;

use super::{
    history::{Given, Position},
    runtime::SpecRuntime,
};
use crate::clock::iso_now;
use crate::{
    rooms::{self, FilterReach, RoomScope},
    spec::{
        HistorySpec, RESERVED_EVENTS, Route,
        template::{Rendered, Root, Scope, ValueTemplate},
    },
};

/// Longest accepted event type (the API's document says so too).
pub(crate) const MAX_TYPE_LEN: usize = 200;
/// Longest accepted event id, in characters (as `Idempotency-Key`).
pub(crate) const MAX_ID_LEN: usize = 255;

/// One published event. Its fields are kept apart, so routing reads them without a lookup in a
/// JSON map; the object templates see as `event` is built only when one asks for it whole.
#[derive(Debug, Clone)]
pub(crate) struct PublishedEvent {
    /// The type, a JSON string: templates borrow it (`{event.type}`) rather than copy it.
    event_type: Value,
    /// The tenant, a JSON string or `null`, for the same reason.
    tenant: Value,
    /// The publisher's id for it (`id`), by which the API recognises a repeat.
    id: Option<String>,
    /// As published, or as stamped on receipt: a JSON string.
    timestamp: Value,
    /// `data` exactly as published (`{event.data}`).
    data: Value,
    /// `data` with the camelCase names of its snake_case fields added (`execution_id` also as
    /// `executionId`), which specs route on (`{data}`), so a Go backend's events route like a
    /// NestJS backend's. `None`: no field needed one.
    routing_data: Option<Value>,
    /// `{type, tenantId, data, timestamp}`, built on first use.
    json: OnceLock<Value>,
    /// When this node got it: the API call, the bus read or the Redis input that brought it
    /// (never sent between nodes; the bus carries its own timestamp).
    received: Instant,
    /// Its positions in rooms with history, as the cluster numbered them (beside the event on the
    /// bus, not in its JSON); `None`: this node numbers them.
    given: Option<Arc<[Given]>>,
}

impl PublishedEvent {
    /// Checks one element of a publish body; `at` names it in errors (`events[2]`).
    pub(crate) fn from_json(value: Value, at: &str) -> Result<Self, String> {
        let Value::Object(mut obj) = value else {
            return Err(format!(
                "{at} must be an object like {{\"type\": \"execution.started\", \"tenantId\": \"t1\", \"data\": {{}}}}"
            ));
        };
        let event_type = match obj.remove("type") {
            Some(Value::String(t)) if t.len() > MAX_TYPE_LEN => {
                return Err(format!("{at}.type is longer than {MAX_TYPE_LEN} characters"));
            }
            // Types become event names clients listen to and log fields: no control characters.
            Some(Value::String(t)) if t.chars().any(char::is_control) => {
                return Err(format!("{at}.type contains a control character"));
            }
            Some(Value::String(t)) if !t.trim().is_empty() => t,
            Some(_) | None => {
                return Err(format!("{at}.type must be a non-empty string, such as \"execution.started\""));
            }
        };
        let tenant = match obj.remove("tenantId") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if !t.is_empty() => Some(t),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(format!("{at}.tenantId must be a non-empty string")),
        };
        let data = match obj.remove("data") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(Value::Object(d)) => Value::Object(d),
            Some(_) => return Err(format!("{at}.data must be an object")),
        };
        let timestamp = match obj.remove("timestamp") {
            None | Some(Value::Null) => iso_now(),
            Some(Value::String(t)) if !t.is_empty() => t,
            Some(_) => return Err(format!("{at}.timestamp must be a string (ISO 8601)")),
        };
        let id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_ID_LEN => Some(id),
            Some(_) => return Err(format!("{at}.id must be a string of 1 to {MAX_ID_LEN} characters")),
        };
        if let Some(unknown) = obj.keys().next() {
            return Err(format!("{at} has an unknown field `{unknown}` (known: type, tenantId, data, timestamp, id)"));
        }
        let aliases = match &data {
            Value::Object(fields) => camel_case_aliases(fields),
            _ => Map::new(),
        };
        Ok(Self {
            event_type: Value::String(event_type),
            tenant: tenant.map_or(Value::Null, Value::String),
            id,
            timestamp: Value::String(timestamp),
            data,
            routing_data: None,
            json: OnceLock::new(),
            received: Instant::now(),
            given: None,
        }
        .with_aliases(aliases))
    }

    /// The event as `{type, tenantId, data, timestamp}` (and `id` when it has one), as
    /// [`Self::from_json`] reads it.
    pub(crate) fn to_json(&self) -> Value {
        self.json().clone()
    }

    /// The event as templates see it (`{event}`).
    fn json(&self) -> &Value {
        self.json.get_or_init(|| {
            let mut json = json!({
                "type": self.event_type, "tenantId": self.tenant, "data": self.data, "timestamp": self.timestamp,
            });
            if let Some(id) = &self.id {
                json["id"] = Value::String(id.clone());
            }
            json
        })
    }

    /// The same event, received at `at` (when the request that carried it arrived, before its
    /// body was read).
    pub(crate) fn received_at(mut self, at: Instant) -> Self {
        self.received = at;
        self
    }

    /// The same event with the positions the cluster gave it in rooms with history.
    pub(crate) fn with_given(mut self, given: Vec<Given>) -> Self {
        self.given = (!given.is_empty()).then(|| given.into());
        self
    }

    /// The position the cluster gave it in `room` (internal name, without filter values) of the
    /// spec at `path`; `None`: this node numbers it.
    pub(crate) fn given_position(&self, path: &str, room: &str) -> Option<&Position> {
        self.given.as_deref()?.iter().find(|g| &*g.path == path && &*g.room == room).map(|g| &g.position)
    }

    /// Time since this node received it.
    pub(crate) fn since_received(&self) -> Duration {
        self.received.elapsed()
    }

    /// The event type.
    pub(crate) fn event_type(&self) -> &str {
        self.event_type.as_str().unwrap_or_default()
    }

    /// The tenant, if any.
    pub(crate) fn tenant_id(&self) -> Option<&str> {
        self.tenant.as_str()
    }

    /// The same event, of `tenant` (the tenant a tenant-scoped API key implies).
    pub(crate) fn with_tenant(mut self, tenant: String) -> Self {
        self.tenant = Value::String(tenant);
        self.json = OnceLock::new();
        self
    }

    /// The id its publisher gave it, if any: the same id for the same tenant within the
    /// idempotency window is the same event, delivered once.
    pub(crate) fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event data as routed (always an object): as published, plus any aliases.
    pub(crate) fn data(&self) -> &Value {
        self.routing_data.as_ref().unwrap_or(&self.data)
    }

    /// The event data exactly as published (without routing aliases).
    pub(crate) fn published_data(&self) -> &Value {
        &self.data
    }

    /// The event's timestamp, as published (or as stamped on receipt).
    pub(crate) fn timestamp(&self) -> &str {
        self.timestamp.as_str().unwrap_or_default()
    }

    /// Adds `aliases` (names not already in the data) to the data specs route on, leaving the
    /// published data as it is.
    fn with_aliases(mut self, aliases: Map<String, Value>) -> Self {
        if aliases.is_empty() {
            return self;
        }
        let mut routed = self.data.clone();
        if let Value::Object(fields) = &mut routed {
            for (name, value) in aliases {
                fields.entry(name).or_insert(value);
            }
        }
        self.routing_data = Some(routed);
        self
    }
}

/// `camelCase` names for `snake_case` fields that lack one.
fn camel_case_aliases(data: &Map<String, Value>) -> Map<String, Value> {
    data.iter()
        .filter(|(k, _)| k.contains('_'))
        .filter_map(|(k, v)| {
            let mut camel = String::with_capacity(k.len());
            let mut upper = false;
            for c in k.chars() {
                match c {
                    '_' => upper = true,
                    c if upper => {
                        camel.extend(c.to_uppercase());
                        upper = false;
                    }
                    c => camel.push(c),
                }
            }
            (!data.contains_key(&camel)).then(|| (camel, v.clone()))
        })
        .collect()
}

/// The scope of templates rendered for a published event.
struct EventScope<'a> {
    event: &'a PublishedEvent,
    /// `{now}`, formatted on first use.
    now: OnceLock<String>,
}

impl<'a> EventScope<'a> {
    fn new(event: &'a PublishedEvent) -> Self {
        Self { event, now: OnceLock::new() }
    }
}

impl Scope for EventScope<'_> {
    fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
        match root {
            Root::Event => Some(Cow::Borrowed(self.event.json())),
            Root::Data => Some(Cow::Borrowed(self.event.data())),
            Root::Now => Some(Cow::Owned(Value::String(self.now.get_or_init(iso_now).clone()))),
            _ => None,
        }
    }

    /// `event.type`, `event.tenantId`, `event.timestamp` and `event.data` (lent) without building
    /// `{event}`, which holds a copy of the data.
    fn computed(&self, root: Root, field: &str) -> Option<Cow<'_, Value>> {
        let event = self.event;
        match (root, field) {
            (Root::Event, "type") => Some(Cow::Borrowed(&event.event_type)),
            (Root::Event, "tenantId") => Some(Cow::Borrowed(&event.tenant)),
            (Root::Event, "timestamp") => Some(Cow::Borrowed(&event.timestamp)),
            (Root::Event, "data") => Some(Cow::Borrowed(&event.data)),
            _ => None,
        }
    }
}

impl SpecRuntime {
    /// Whether this spec takes events of this type.
    pub(crate) fn accepts(&self, event: &PublishedEvent) -> bool {
        self.spec.routes_type(event.event_type())
    }

    /// Checks what this namespace's route needs of the event, the `index`-th of its batch (the
    /// error names it: `events[2]`).
    pub(crate) fn check(&self, event: &PublishedEvent, index: usize) -> Result<(), String> {
        let at = Batched(index);
        let Some(route) = self.spec.routes.iter().find(|r| r.types.matches(event.event_type())) else {
            return Ok(());
        };
        for field in &route.require {
            match event.data().get(field) {
                None | Some(Value::Null) => {
                    return Err(format!("{at}.data.{field} is required for `{}` events", event.event_type()));
                }
                Some(Value::String(s)) if s.is_empty() => {
                    return Err(format!("{at}.data.{field} must not be empty"));
                }
                Some(Value::String(_) | Value::Number(_)) => {}
                Some(_) => return Err(format!("{at}.data.{field} must be a string or a number (an id)")),
            }
        }
        // An id that is an object or a list names no room: the event would reach no one, silently.
        let scope = EventScope::new(event);
        for target in &route.targets {
            for value in target.params.iter().flatten().filter_map(|p| p.render_lent(&scope)) {
                if value.is_object() || value.is_array() {
                    return Err(format!(
                        "{at}: `{}` events are routed to `{}` rooms by an id, and the id given is {}; ids must be strings or numbers",
                        event.event_type(),
                        self.spec.rooms[target.room].name,
                        if value.is_object() { "an object" } else { "a list" },
                    ));
                }
            }
        }
        if route.emit.event.as_literal().is_none() {
            let name = route.emit.event.render_text(&scope);
            if name.is_empty() || RESERVED_EVENTS.contains(&name.as_str()) {
                return Err(format!("{at}.type: `{name}` cannot be emitted to clients (it is reserved by Socket.IO)"));
            }
        }
        let needs_tenant = route.targets.iter().any(|t| self.spec.rooms[t.room].scope == RoomScope::Tenant);
        if needs_tenant && event.tenant_id().is_none() {
            return Err(format!(
                "{at}.tenantId is required: `{}` events go to tenant rooms of {}",
                event.event_type(),
                self.spec.path
            ));
        }
        Ok(())
    }

    /// The first platform-wide (`scope: global`) room family this namespace routes the event
    /// to, if any: one room shared by every tenant.
    pub(crate) fn platform_room(&self, event: &PublishedEvent) -> Option<&str> {
        let route = self.spec.routes.iter().find(|r| r.types.matches(event.event_type()))?;
        route
            .targets
            .iter()
            .map(|t| &self.spec.rooms[t.room])
            .find(|family| family.scope == RoomScope::Global)
            .map(|family| family.name.as_str())
    }

    /// Applies the event to this namespace's last-known state and counters: on every node,
    /// whether or not any socket here will receive it.
    pub(crate) fn record(&self, event: &PublishedEvent) {
        let tenant = event.tenant_id();
        if !self.spec.stores.is_empty() {
            let scope = EventScope::new(event);
            self.stores.apply(&self.spec.stores, event.event_type(), tenant.unwrap_or_default(), &scope);
        }
        if let Some(t) = tenant {
            let mut counts = self.tenant_events.lock().unwrap_or_else(|e| e.into_inner());
            match counts.get_mut(t) {
                Some(n) => *n += 1,
                None => {
                    counts.push(t.to_string(), 1);
                }
            }
        }
    }

    /// Whether a route of this namespace takes the event (state rules aside).
    pub(crate) fn routes(&self, event: &PublishedEvent) -> bool {
        self.spec.routes.iter().any(|r| r.types.matches(event.event_type()))
    }

    /// The rooms with history the event is kept in on this spec (internal names without filter
    /// values, in the route's order) and what each keeps: what a cluster numbers as the event goes
    /// on the bus, so every node keeps it at the same positions. Empty for a spec without history.
    pub(crate) fn history_rooms(&self, event: &PublishedEvent) -> Vec<(String, HistorySpec)> {
        if !self.spec.rooms.iter().any(|f| f.history.is_some()) || !self.accepts(event) {
            return Vec::new();
        }
        self.route_reached(event).map(|r| r.history.into_iter().map(|h| (h.room, h.spec)).collect()).unwrap_or_default()
    }

    /// Finds the rooms the event's route sends it to (`None` when no route takes it or it names
    /// no room), every filtered variant it reaches named. What it sends is rendered only when
    /// asked ([`Routed::render`]).
    pub(crate) fn route<'a>(&'a self, event: &'a PublishedEvent) -> Option<Routed<'a>> {
        self.route_naming(event, true)
    }

    /// [`route`](Self::route) for a front that finds the members of filtered variants itself:
    /// no variant is named (a hub event reaches 16 variants of three rooms, most with no member);
    /// each room of a family with filters is in [`Routed::filtered`] with the event's reach.
    pub(crate) fn route_reached<'a>(&'a self, event: &'a PublishedEvent) -> Option<Routed<'a>> {
        self.route_naming(event, false)
    }

    fn route_naming<'a>(&'a self, event: &'a PublishedEvent, name_variants: bool) -> Option<Routed<'a>> {
        let route = self.spec.routes.iter().find(|r| r.types.matches(event.event_type()))?;
        let scope = EventScope::new(event);
        let tenant = event.tenant_id();
        let mut rooms: Vec<String> = Vec::new();
        let mut filtered: Vec<(String, FilterReach)> = Vec::new();
        let mut history: Vec<HistoryRoom> = Vec::new();
        for target in &route.targets {
            let family = &self.spec.rooms[target.room];
            // On the stack: a target has a few parameters and at most `MAX_FILTERS` filters.
            let values: Lent<'_> =
                target.params.iter().map(|p| p.as_ref().and_then(|t| t.render_key_lent(&scope))).collect();
            let refs: SmallVec<[Option<&str>; 4]> = values.iter().map(|v| v.as_deref()).collect();
            let filter_values: Lent<'_> =
                target.filters.iter().map(|f| f.as_ref().and_then(|t| t.render_key_lent(&scope))).collect();
            // Filter values are escaped once, and each variant's name is its room's plus a suffix
            // (made once, for the first room whose variants are named).
            let reach = if family.filters.is_empty() {
                FilterReach::default()
            } else {
                let refs: SmallVec<[Option<&str>; 4]> = filter_values.iter().map(|v| v.as_deref()).collect();
                FilterReach::new(&refs)
            };
            let mut suffixes: Option<Vec<String>> = None;
            for visible in family.pattern.fanout(&refs, target.exact) {
                // A value that spells the name of another family's server-only room (a channel
                // called `user:bob`) does not reach that room.
                let shadowed = if family.pattern.params().is_empty() {
                    self.shadowed[target.room]
                } else {
                    self.spec.is_shadowed_name(target.room, &visible)
                };
                if shadowed {
                    continue;
                }
                let Some(room) = rooms::internal_name(family.scope, tenant, &visible) else { continue };
                if family.filters.is_empty() {
                    rooms.push(room.clone());
                } else if name_variants {
                    let suffixes = suffixes.get_or_insert_with(|| reach.suffixes());
                    rooms.extend(suffixes.iter().map(|suffix| format!("{room}{suffix}")));
                } else {
                    filtered.push((room.clone(), reach.clone()));
                }
                if let Some(spec) = family.history {
                    match history.iter_mut().find(|h| h.room == room) {
                        Some(same) => same.reach = same.reach.and(&reach),
                        None => history.push(HistoryRoom { room, visible, spec, reach: reach.clone() }),
                    }
                }
            }
        }
        rooms.sort_unstable();
        rooms.dedup();
        if rooms.is_empty() && filtered.is_empty() && history.is_empty() {
            return None;
        }
        Some(Routed { rooms, filtered, history, route, scope })
    }
}

/// Where an event is in its batch, as errors name it (`events[2]`): formatted only for an error.
struct Batched(usize);

impl std::fmt::Display for Batched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "events[{}]", self.0)
    }
}

/// A target's parameter or filter values as rendered, lent by the event where it holds them.
type Lent<'a> = SmallVec<[Option<Cow<'a, str>>; 4]>;

/// A room with history that a published event reaches: every filtered variant of it the event
/// reaches is one of the routed rooms.
#[derive(Debug)]
pub(crate) struct HistoryRoom {
    /// Its internal name, without filter values.
    pub room: String,
    /// Its visible name (the channel clients named).
    pub visible: String,
    /// What its history keeps.
    pub spec: HistorySpec,
    /// Which of its filtered variants the event reaches (empty for a family without filters);
    /// shared with the history that keeps the event there.
    pub reach: FilterReach,
}

/// A published event routed on one namespace, not rendered yet.
pub(crate) struct Routed<'a> {
    /// Internal room names.
    pub rooms: Vec<String>,
    /// Rooms of families with filters (internal names, without filter values) with what the
    /// event reaches of them, when their variants are not named in `rooms`
    /// ([`SpecRuntime::route_reached`]).
    pub filtered: Vec<(String, FilterReach)>,
    /// The rooms with history it reaches, in the route's order.
    pub history: Vec<HistoryRoom>,
    route: &'a Route,
    scope: EventScope<'a>,
}

impl<'a> Routed<'a> {
    /// Renders what the route emits: its event's name now, its data when asked
    /// ([`Delivery::data`]).
    pub(crate) fn render(self) -> Delivery<'a> {
        let event = self.route.emit.event.render_text(&self.scope);
        Delivery {
            rooms: self.rooms,
            filtered: self.filtered,
            history: self.history,
            event,
            data: self.route.emit.data.as_ref(),
            scope: self.scope,
        }
    }
}

/// What one published event sends on one namespace.
pub(crate) struct Delivery<'a> {
    /// Internal room names.
    pub rooms: Vec<String>,
    /// Rooms of families with filters, and what the event reaches of them (see [`Routed`]).
    pub filtered: Vec<(String, FilterReach)>,
    /// The rooms with history among them.
    pub history: Vec<HistoryRoom>,
    /// The event name clients receive.
    pub event: String,
    data: Option<&'a ValueTemplate>,
    scope: EventScope<'a>,
}

impl Delivery<'_> {
    /// Its data (`None`: no argument), lent from the event where the route sends the event's
    /// data as it is (`{event.data}`): serialized without a copy made first.
    pub(crate) fn data(&self) -> Option<Cow<'_, Value>> {
        self.data.and_then(|d| d.render_lent(&self.scope))
    }

    /// Its data as an object to serialize as it renders, when the route emits an object whose
    /// keys are literal, `except` not among them (`/workflow`'s `{type, payload: "{data}",
    /// timestamp}`): the event's data is written where it is, not copied into a new value.
    pub(crate) fn data_object(&self, except: &str) -> Option<Rendered<'_>> {
        let template = self.data?;
        (!template.literal_keys()?.contains(&except)).then(|| template.rendered(&self.scope))
    }
}

/// How many sockets an event reached, and how many acknowledged it in time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckReport {
    /// Sockets the event was sent to.
    pub sockets: usize,
    /// Sockets that called the event's callback before the timeout.
    pub acknowledged: usize,
}

impl std::ops::AddAssign for AckReport {
    fn add_assign(&mut self, other: Self) {
        self.sockets += other.sockets;
        self.acknowledged += other.acknowledged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_see_the_fields_specs_are_checked_against() {
        let event = PublishedEvent::from_json(json!({ "type": "a.b", "tenantId": "t1" }), "event").unwrap();
        let fields: Vec<String> = event.to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(fields, Root::Event.fields().unwrap());
    }
}
