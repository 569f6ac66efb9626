//! Namespace specs: the declarative description of one Socket.IO namespace (its auth policy,
//! rooms and their access rules, client events, state, routes for published events and timers).
//!
//! This module owns the format and its checks; it knows nothing of sockets. `load` reads files
//! (or the specs embedded in the binary) into the shapes of `raw` through `tolerant`, which
//! collects unknown fields instead of stopping at the first; `compile` checks them into the model
//! below, which the engine (`crate::engine`) serves; both report through `error`; `suggest`
//! finds the name a misspelt one was meant to be. The format is documented in
//! `docs/namespace-spec.md`.

mod compile;
pub mod describe;
pub(crate) mod durations;
mod error;
mod load;
mod raw;
pub mod schema;
pub mod template;
mod tolerant;

use std::{collections::HashMap, time::Duration};

use serde::Deserialize;

pub use error::{SpecError, SpecErrors};
pub use load::{load_dir, load_embedded, load_sources};

use crate::rooms::{RoomPattern, RoomScope};
use schema::PayloadSchema;
use template::{StrTemplate, ValueTemplate};

/// Events a client may not declare: Socket.IO's reserved names, and `error`, which the gateway
/// itself sends.
pub const RESERVED_EVENTS: &[&str] =
    &["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", "error"];

/// The `forward` destination that is the backend event stream (`forward: { to: stream }`): no
/// backend may take the name.
pub const STREAM_DESTINATION: &str = "stream";

/// The default name of the event a client sends to replace its token before it expires.
pub const DEFAULT_REFRESH_EVENT: &str = "auth:refresh";

/// How a spec's clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A Socket.IO namespace (under the Socket.IO path).
    SocketIo,
    /// A plain RFC 6455 WebSocket at HTTP path `path`, messages in the `{type, timestamp, data}`
    /// envelope (the Go hub's protocol).
    WebSocket,
}

impl Transport {
    /// The name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Transport::SocketIo => "socketio",
            Transport::WebSocket => "websocket",
        }
    }
}

/// A checked namespace spec, ready to serve.
#[derive(Debug)]
pub struct NamespaceSpec {
    /// The Socket.IO namespace, such as `/workflow`, or the HTTP path of a plain WebSocket
    /// endpoint, such as `/ws`.
    pub path: String,
    /// How its clients connect.
    pub transport: Transport,
    /// The file it came from, for messages.
    pub file: String,
    /// Who may connect.
    pub auth: AuthPolicy,
    /// Room families, in file order (the order in which names are matched).
    pub rooms: Vec<RoomFamily>,
    /// What happens when a socket connects.
    pub on_connect: Vec<Action>,
    /// Client events by name.
    pub events: HashMap<String, EventSpec>,
    /// Last-known state kept from published events.
    pub stores: Vec<StoreSpec>,
    /// How published events reach sockets.
    pub routes: Vec<Route>,
    /// Periodic emits.
    pub timers: Vec<TimerSpec>,
    /// Event names this spec itself sends (literal names of emits, replies, routes and timers):
    /// a relay may not use them, so a client cannot impersonate the server.
    pub server_events: Vec<String>,
}

impl NamespaceSpec {
    /// The spec as people are told of it: its path, marked when it is a plain WebSocket endpoint
    /// (`/ws (plain WebSocket)`), since the Socket.IO namespace `/ws` is another.
    pub fn served_as(&self) -> String {
        match self.transport {
            Transport::SocketIo => self.path.clone(),
            Transport::WebSocket => format!("{} (plain WebSocket)", self.path),
        }
    }

    /// The room family called `name`.
    pub fn room_id(&self, name: &str) -> Option<RoomId> {
        self.rooms.iter().position(|r| r.name == name)
    }

    /// The family a visible room name belongs to: the first, in file order, whose pattern parses
    /// it, so every name has exactly one family (and one set of access rules).
    pub fn family_of(&self, visible: &str) -> Option<(RoomId, Vec<Option<String>>)> {
        self.rooms.iter().enumerate().find_map(|(id, f)| f.pattern.parse_name(visible).map(|values| (id, values)))
    }

    /// Whether the one name of family `id`, whose pattern has no parameters, is taken by another
    /// family that is server-only (routing then reaches neither). False for a pattern with
    /// parameters: which name an event reaches there depends on its values.
    pub fn is_shadowed(&self, id: RoomId) -> bool {
        let family = &self.rooms[id];
        if !family.pattern.params().is_empty() {
            return false;
        }
        let Some(name) = family.pattern.render(&[]) else { return false };
        self.family_of(&name).is_some_and(|(owner, _)| owner != id && self.rooms[owner].server_only)
    }

    /// Whether `visible`, a name family `id` rendered, belongs to another family that is
    /// server-only ([`family_of`](Self::family_of) would name it): routing then does not reach
    /// it. Parses nothing when no other family is server-only.
    pub fn is_shadowed_name(&self, id: RoomId, visible: &str) -> bool {
        if !self.rooms.iter().enumerate().any(|(other, f)| other != id && f.server_only) {
            return false;
        }
        let owner = self.rooms.iter().position(|f| f.pattern.matches_name(visible));
        owner.is_some_and(|owner| owner != id && self.rooms[owner].server_only)
    }

    /// The room names clients may name, as patterns (`executions:{execution_id}`), for errors
    /// that tell a client what is valid.
    pub fn client_room_patterns(&self) -> String {
        let patterns: Vec<String> = self.rooms.iter().filter(|f| !f.server_only).map(|f| f.pattern.source()).collect();
        if patterns.is_empty() { "none".to_string() } else { patterns.join(", ") }
    }

    /// The room families clients may name (`execution`), for errors that tell a client what is
    /// valid.
    pub fn client_room_types(&self) -> String {
        let names: Vec<&str> = self.rooms.iter().filter(|f| !f.server_only).map(|f| f.name.as_str()).collect();
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    }

    /// Whether a client may relay an event under this name.
    pub fn relayable(&self, event: &str, deny: Option<&TypeMatcher>) -> bool {
        !(event.is_empty()
            || RESERVED_EVENTS.contains(&event)
            || event == self.auth.refresh_event
            || event == "auth:refreshed"
            || self.server_events.iter().any(|e| e == event)
            // Routes that emit published events under their own type (`{event.type}`).
            || self.routes.iter().any(|r| r.emit.event.as_literal().is_none() && r.types.matches(event))
            || deny.is_some_and(|d| d.matches(event)))
    }

    /// The store called `name`.
    pub fn store_id(&self, name: &str) -> Option<StoreId> {
        self.stores.iter().position(|s| s.name == name)
    }

    /// Whether some route of this namespace takes events of this type.
    pub fn routes_type(&self, event_type: &str) -> bool {
        self.routes.iter().any(|r| r.types.matches(event_type))
            || self
                .stores
                .iter()
                .any(|s| s.rules.iter().any(|r| r.types.matches(event_type) && !r.types.is_catch_all()))
    }
}

/// Who may connect, and how a token is refreshed.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    /// Refuse sockets without a valid token (`false`: anonymous sockets connect, with only the
    /// access their rooms' rules give anonymous users).
    pub required: bool,
    /// Refuse tokens without a `tenantId` claim.
    pub require_tenant: bool,
    /// The client event that replaces the socket's token.
    pub refresh_event: String,
    /// Also accept a token from the configured cookie (`AUTH_COOKIE_NAME`), after the other
    /// sources; only from allowed origins.
    pub cookie: bool,
    /// Connections per client IP per window; the excess is turned away.
    pub connections_per_ip: Option<RateLimit>,
    /// Plain WebSocket endpoints only: a connection may present one of `API_KEYS` (as
    /// `X-API-Key`) instead of a token, as a service of the tenant it names in `?tenantId=`.
    pub api_keys: bool,
}

/// Index of a room family in [`NamespaceSpec::rooms`].
pub type RoomId = usize;
/// Index of a store in [`NamespaceSpec::stores`].
pub type StoreId = usize;

/// A family of rooms sharing a name pattern and access rules.
#[derive(Debug)]
pub struct RoomFamily {
    /// The family's name in the spec.
    pub name: String,
    /// The visible-name pattern.
    pub pattern: RoomPattern,
    /// Per tenant, or global.
    pub scope: RoomScope,
    /// Joined only by `on_connect`, never by a client event.
    pub server_only: bool,
    /// Who may join; empty means any authenticated socket.
    pub access: Vec<AccessRule>,
    /// What a new member is given (`room.snapshot`).
    pub snapshot: Option<SnapshotSpec>,
    /// Subscription filters: hidden dimensions whose values a join chooses (see
    /// `crate::rooms::with_filters`), in order.
    pub filters: Vec<String>,
    /// The recent events each of its rooms keeps, for clients that reconnect (`None`: none).
    pub history: Option<HistorySpec>,
    /// Join and leave events, when the spec asks for them (`presence:`).
    pub presence: Option<PresenceSpec>,
}

/// How much history each room of a family keeps: its last `size` events no older than `ttl`
/// (and, node-wide, no more than `HISTORY_MAX_BYTES` for all rooms together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    /// Most events a room keeps.
    pub size: usize,
    /// How long an event is kept.
    pub ttl: std::time::Duration,
}

/// A room family's presence events: sent to the room when a user's first connection joins it
/// (`online`) and when its last one leaves (`offline`), coalesced and capped
/// (`crate::engine::presence`).
#[derive(Debug, Clone)]
pub struct PresenceSpec {
    /// The event sent when a user comes (none: not announced).
    pub online: Option<String>,
    /// The event sent when a user goes.
    pub offline: Option<String>,
    /// Most events of this family sent per second by one node; changes beyond are dropped and
    /// counted.
    pub max_per_second: u32,
}

/// One way to be allowed into a room: every condition must hold.
#[derive(Debug)]
pub struct AccessRule {
    /// Anonymous sockets match too.
    pub anonymous: bool,
    /// The user has at least one of these roles (empty: any role).
    pub roles: Vec<String>,
    /// Room parameter `i` must equal the rendered template.
    pub params: Vec<(usize, StrTemplate)>,
}

/// The data a room hands a new member: one record, or a listing.
#[derive(Debug)]
pub struct SnapshotSpec {
    /// The store read.
    pub store: StoreId,
    /// The record or list key; unset means the whole store (most recent first).
    pub key: Option<StrTemplate>,
    /// For list stores: keep entries whose field equals the rendered value (unset: no filter).
    pub matches: Vec<(String, StrTemplate)>,
    /// Most entries or records returned.
    pub limit: usize,
}

/// One step of `on_connect` or of a client event.
#[derive(Debug)]
pub enum Action {
    /// Join a room; afterwards `room.*` describes it.
    Join {
        /// The room.
        target: RoomTarget,
        /// When the access rules refuse, skip silently instead of failing.
        optional: bool,
        /// Filter name and the values chosen (a list, one value, or unset for any). Filters the
        /// family does not have are ignored, as params are.
        filters: Vec<(String, StrTemplate)>,
        /// What the join reads from the room's history (rooms of families with `history`).
        history: JoinHistory,
    },
    /// Leave a room.
    Leave {
        /// The room.
        target: RoomTarget,
    },
    /// Emit an event to this socket.
    Emit(EmitSpec),
    /// Emit an event to this socket (unless `event` is unset) and answer the client's ack with
    /// the data.
    Reply(ReplySpec),
    /// Send a client-chosen event to rooms the socket is in, except to itself.
    Relay(RelaySpec),
    /// Send the client's event, with the socket's identity, to a backend (or the backend event
    /// stream); with `reply`, the backend's answer is the ack.
    Forward(ForwardSpec),
}

/// A client event forwarded to a backend (`forward:`).
#[derive(Debug)]
pub struct ForwardSpec {
    /// The destination: a backend's name (from `BACKENDS_FILE`), or `stream` (the backend event
    /// stream). Which backends exist is configuration: [`check_destinations`] checks the names
    /// once it is known.
    pub to: String,
    /// Where `to` is written, for the error when no backend has that name.
    pub to_at: SpecPlace,
    /// The backend's JSON answer is the client's ack (and the `event`, when given); without,
    /// the call is fire-and-forget and the ack is answered at once.
    pub reply: bool,
    /// How long the answer may take (at most the backend's own timeout, which applies when unset).
    pub timeout: Option<Duration>,
    /// Also emitted to the socket with the answer (plain WebSocket endpoints have no acks).
    pub event: Option<StrTemplate>,
    /// What is sent as `data`: the rendered template, or the payload when unset.
    pub data: Option<ValueTemplate>,
}

/// Where in a spec file something is, for errors found after the file was checked.
#[derive(Debug, Clone)]
pub struct SpecPlace {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// The line's text, for display (set by the loader).
    pub source_line: Option<String>,
}

/// Checks every `forward` destination of `specs` against the names configuration knows
/// (`destinations`: the backends of `BACKENDS_FILE`, and `stream`); an unknown one is an error
/// at its `to`, with the closest known name when one is close. So is a forward that waits for
/// an answer (`reply`, the default) from one of `fire_and_forget` (database and Kafka
/// destinations, which never answer).
pub fn check_destinations(
    specs: &[NamespaceSpec],
    destinations: &[String],
    fire_and_forget: &[String],
) -> Result<(), SpecErrors> {
    let mut errors = Vec::new();
    for spec in specs {
        let events = spec.events.values().map(|e| &e.actions);
        for action in events.chain([&spec.on_connect]).flatten() {
            let Action::Forward(forward) = action else { continue };
            if destinations.iter().all(|d| *d != forward.to) {
                let hint = crate::parse_errors::suggest::did_you_mean(crate::parse_errors::suggest::closest(
                    &forward.to,
                    destinations.iter().map(String::as_str),
                ));
                let message = format!(
                    "unknown backend `{}` (known: {}: backends come from BACKENDS_FILE){hint}",
                    forward.to,
                    destinations.join(", ")
                );
                let mut error = SpecError::at(&spec.file, forward.to_at.line, forward.to_at.column, message);
                error.source_line = forward.to_at.source_line.clone();
                errors.push(error);
            } else if forward.reply && fire_and_forget.contains(&forward.to) {
                let message = format!(
                    "backend `{}` is a database or Kafka destination, which does not answer: add `reply: false`",
                    forward.to
                );
                let mut error = SpecError::at(&spec.file, forward.to_at.line, forward.to_at.column, message);
                error.source_line = forward.to_at.source_line.clone();
                errors.push(error);
            }
        }
    }
    errors.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
}

/// What a join reads from its room's history, sent after the event's answer: the events after a
/// position the client gives (`since`), all or nothing, or else the room's last `replay` events.
#[derive(Debug, Default)]
pub struct JoinHistory {
    /// Renders the client's last position, `{offset, epoch}` (unset or null: none given).
    pub since: Option<StrTemplate>,
    /// Without a `since`, the room's last this many events (0: none).
    pub replay: usize,
}

impl JoinHistory {
    /// Whether the join reads history at all.
    pub fn reads(&self) -> bool {
        self.since.is_some() || self.replay > 0
    }
}

/// What a client event answers: the ack, and optionally an event with the same data.
#[derive(Debug)]
pub struct ReplySpec {
    /// The event also emitted; `None` answers the ack only.
    pub event: Option<StrTemplate>,
    /// The data.
    pub data: Option<ValueTemplate>,
}

/// A relay of a client's event to other members of rooms it is in.
#[derive(Debug)]
pub struct RelaySpec {
    /// The event name (usually from the payload).
    pub event: StrTemplate,
    /// The visible room names: a string or an array of strings.
    pub rooms: StrTemplate,
    /// The data: the rendered objects laid over each other in order, a later top-level field
    /// replacing an earlier one whole (so the gateway's own fields, such as the sender, replace
    /// whatever the client put there).
    pub data: Vec<ValueTemplate>,
    /// Event names that may not be relayed, besides the reserved ones and those this spec emits.
    pub deny: Option<TypeMatcher>,
}

/// Which room an action means.
#[derive(Debug)]
pub enum RoomTarget {
    /// A family (fixed, or named by a template) and its parameters. Parameters the family does not
    /// have are ignored, so one action can serve several families.
    Family {
        /// The family.
        family: FamilyRef,
        /// Parameter name and value template.
        params: Vec<(String, StrTemplate)>,
    },
    /// A visible name, parsed against the families in file order.
    Name(StrTemplate),
}

/// A room family, fixed in the spec or chosen at run time.
#[derive(Debug)]
pub enum FamilyRef {
    /// Known when the spec loads.
    Fixed(RoomId),
    /// Rendered per event; must name a family.
    Dynamic(StrTemplate),
}

/// An event to send: its name and data.
#[derive(Debug)]
pub struct EmitSpec {
    /// The event name.
    pub event: StrTemplate,
    /// The payload; `None` sends the event without arguments.
    pub data: Option<ValueTemplate>,
}

/// A client event.
#[derive(Debug)]
pub struct EventSpec {
    /// The event name.
    pub name: String,
    /// Requests per socket per window.
    pub rate_limit: Option<RateLimit>,
    /// JSON Schema of the first argument (a missing argument is `null`).
    pub schema: Option<PayloadSchema>,
    /// Largest payload in bytes; `None` uses the engine default.
    pub max_bytes: Option<usize>,
    /// What the event does.
    pub actions: Vec<Action>,
}

impl EventSpec {
    /// Whether one of its joins reads room history (`since` or `replay`): a front then holds the
    /// history's lock while it handles the event.
    pub fn reads_history(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Join { history, .. } if history.reads()))
    }
}

/// A rate limit: `max` requests per `per`, refilled smoothly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed in one window (also the burst).
    pub max: u32,
    /// The window.
    #[serde(deserialize_with = "durations::deserialize_duration")]
    pub per: Duration,
}

/// Event-type patterns: exact names, `prefix.*`, or `*`.
#[derive(Debug, Clone)]
pub struct TypeMatcher {
    patterns: Vec<TypePattern>,
}

#[derive(Debug, Clone)]
enum TypePattern {
    Exact(String),
    Prefix(String),
    Any,
}

impl TypePattern {
    fn parse(p: &str) -> Result<Self, String> {
        if p == "*" {
            Ok(TypePattern::Any)
        } else if let Some(prefix) = p.strip_suffix(".*") {
            if prefix.is_empty() || prefix.contains('*') {
                Err(format!("`{p}` is not a type pattern (`name`, `prefix.*` or `*`)"))
            } else {
                Ok(TypePattern::Prefix(format!("{prefix}.")))
            }
        } else if p.is_empty() || p.contains('*') {
            Err(format!("`{p}` is not a type pattern (`name`, `prefix.*` or `*`)"))
        } else {
            Ok(TypePattern::Exact(p.to_string()))
        }
    }
}

impl TypeMatcher {
    /// Parses `["workflow.*", "log.created"]`.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        if patterns.is_empty() {
            return Err("`types` needs at least one event type".into());
        }
        let patterns = patterns.iter().map(|p| TypePattern::parse(p)).collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// Checks one pattern, so that an error can point at it.
    pub fn check_pattern(pattern: &str) -> Result<(), String> {
        TypePattern::parse(pattern).map(drop)
    }

    /// The patterns as written in the spec (`workflow.*`), for descriptions.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| match p {
                TypePattern::Exact(e) => e.clone(),
                TypePattern::Prefix(prefix) => format!("{prefix}*"),
                TypePattern::Any => "*".to_string(),
            })
            .collect()
    }

    /// Whether `event_type` matches.
    pub fn matches(&self, event_type: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            TypePattern::Exact(e) => e == event_type,
            TypePattern::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
            TypePattern::Any => true,
        })
    }

    /// Whether this matcher takes every type (`*`): such a rule alone does not make a type known.
    pub fn is_catch_all(&self) -> bool {
        self.patterns.iter().any(|p| matches!(p, TypePattern::Any))
    }
}

/// State kept per tenant from published events.
#[derive(Debug)]
pub struct StoreSpec {
    /// The store's name.
    pub name: String,
    /// Records or lists.
    pub kind: StoreKind,
    /// How events change it.
    pub rules: Vec<StoreRule>,
}

/// The two shapes of state.
#[derive(Debug, Clone, Copy)]
pub enum StoreKind {
    /// Keyed records, changed by merge, replace and delete; the least recently updated go first.
    Records {
        /// Records kept per tenant.
        max_per_tenant: usize,
    },
    /// Keyed lists of the last `keep` entries.
    Lists {
        /// Entries kept per list.
        keep: usize,
        /// Lists kept per tenant.
        max_keys_per_tenant: usize,
    },
}

/// One way published events change a store.
#[derive(Debug)]
pub struct StoreRule {
    /// The event types this rule applies to.
    pub types: TypeMatcher,
    /// The record or list key; an event without it is skipped.
    pub key: StrTemplate,
    /// The change.
    pub op: StoreOp,
}

/// A change to a store.
#[derive(Debug)]
pub enum StoreOp {
    /// Deep-merge each rendered object, in order, into the record.
    Merge(Vec<ValueTemplate>),
    /// Replace the record.
    Replace(ValueTemplate),
    /// Remove the record.
    Delete,
    /// Append one entry, merged from the rendered objects in order.
    Append(Vec<ValueTemplate>),
}

/// Where published events of some types go.
#[derive(Debug)]
pub struct Route {
    /// The event types routed.
    pub types: TypeMatcher,
    /// Fields of `data` that must be present (the API answers 400 otherwise).
    pub require: Vec<String>,
    /// Rooms reached.
    pub targets: Vec<RouteTarget>,
    /// What is emitted to them.
    pub emit: EmitSpec,
}

/// A room family a route reaches, and its parameters taken from the event.
#[derive(Debug)]
pub struct RouteTarget {
    /// The family.
    pub room: RoomId,
    /// One template per pattern parameter (`None`: not given, so only `*` subscribers).
    pub params: Vec<Option<StrTemplate>>,
    /// Reach only the room with every parameter set, not the `*` rooms.
    pub exact: bool,
    /// One template per filter of the family: the event's value for it (`None`: no value, so
    /// only subscribers that did not filter on it).
    pub filters: Vec<Option<StrTemplate>>,
}

/// A periodic emit into every live instance of a room family.
#[derive(Debug)]
pub struct TimerSpec {
    /// How often.
    pub interval: TimerInterval,
    /// Into which family.
    pub room: RoomId,
    /// What.
    pub emit: EmitSpec,
}

/// A timer's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerInterval {
    /// Written in the spec.
    Fixed(Duration),
    /// `metrics_interval`: the configured `WS_METRICS_INTERVAL`.
    Metrics,
}
