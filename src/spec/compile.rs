//! Checks a parsed spec file and builds the model the engine serves. Every mistake found is
//! reported at the value it is about, all at once, so a spec author fixes a file in one pass.
//! Names that do not exist (rooms, stores, room parameters, template variables and their fields)
//! are reported with the closest existing name when one is close.

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::{
    AccessRule, Action, AuthPolicy, DEFAULT_REFRESH_EVENT, EmitSpec, EventSpec, FamilyRef, NamespaceSpec,
    RESERVED_EVENTS, RateLimit, RelaySpec, ReplySpec, RoomFamily, RoomId, RoomTarget, Route, RouteTarget, SnapshotSpec,
    StoreKind, StoreOp, StoreRule, StoreSpec, TimerInterval, TimerSpec, Transport, TypeMatcher,
    load::SpecError,
    raw::{
        Named, RawAccess, RawAction, RawAuth, RawEmit, RawEvent, RawNode, RawRelay, RawRoom, RawRoomTarget, RawRoute,
        RawSnapshot, RawSpec, RawStore, RawStoreRule, RawTarget, RawTimer, RawValue,
    },
    schema::PayloadSchema,
    suggest,
    template::{Expr, Path, Root, Segment, StrTemplate, ValueTemplate},
};
use crate::rooms::{MAX_FILTERS, RoomPattern, RoomScope};

/// Default number of records or entries in a snapshot.
const DEFAULT_SNAPSHOT_LIMIT: usize = 100;

/// Where a template is, which decides the variables it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    OnConnect,
    ClientEvent,
    Access,
    Snapshot,
    StoreRule,
    Route,
    Timer,
}

impl Ctx {
    fn allows(self, root: Root) -> bool {
        use Root::*;
        match self {
            Ctx::OnConnect => matches!(root, Socket | User | Room | State | Now | Gateway),
            Ctx::ClientEvent => matches!(root, Socket | User | Payload | Room | State | Now | Gateway),
            Ctx::Access => matches!(root, Socket | User),
            Ctx::Snapshot => matches!(root, Room | Entry | Now),
            Ctx::StoreRule | Ctx::Route => matches!(root, Event | Data | Now),
            Ctx::Timer => matches!(root, Tenant | State | Now | Gateway),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Ctx::OnConnect => "on_connect",
            Ctx::ClientEvent => "a client event",
            Ctx::Access => "an access rule",
            Ctx::Snapshot => "a snapshot",
            Ctx::StoreRule => "a state rule",
            Ctx::Route => "a publish route",
            Ctx::Timer => "a timer",
        }
    }
}

/// What a template can ask of a room family through `room`.
#[derive(Debug, Clone)]
struct FamilyView {
    name: String,
    params: Vec<String>,
    has_snapshot: bool,
}

impl FamilyView {
    fn new(name: &str, pattern: &RoomPattern, has_snapshot: bool) -> Self {
        Self { name: name.to_string(), params: pattern.params().iter().map(|p| p.name.clone()).collect(), has_snapshot }
    }

    fn of(family: &RoomFamily) -> Self {
        Self::new(&family.name, &family.pattern, family.snapshot.is_some())
    }
}

/// What `room` is where a template is.
#[derive(Debug, Clone)]
enum RoomVar {
    /// Not set: no `join` or `leave` before the template (or no `room` there at all).
    Unset,
    /// The room joined or left last, of one of these families; empty when it could be of any.
    Joined(Vec<FamilyView>),
    /// The room whose snapshot the template helps build.
    Snapshotting(FamilyView),
}

impl RoomVar {
    /// After a join or leave whose family is not known when the spec loads.
    fn any() -> Self {
        RoomVar::Joined(Vec::new())
    }
}

/// Where a template is: which variables exist there, and what `room` is.
#[derive(Debug, Clone)]
struct Place {
    ctx: Ctx,
    room: RoomVar,
}

impl Place {
    fn new(ctx: Ctx) -> Self {
        Self { ctx, room: RoomVar::Unset }
    }
}

/// The one thing an action does.
#[derive(Clone, Copy)]
enum ActionKind<'r> {
    Join(&'r RawRoomTarget),
    Leave(&'r RawRoomTarget),
    Emit(&'r RawEmit),
    Reply(&'r RawEmit),
    Relay(&'r RawRelay),
}

impl<'r> ActionKind<'r> {
    /// The action's one key; the error says what is wrong when it has none or several.
    fn of(raw: &'r RawAction) -> Result<Self, &'static str> {
        let RawAction { join, leave, emit, reply, relay } = raw;
        let given: Vec<ActionKind> = [
            join.as_ref().map(ActionKind::Join),
            leave.as_ref().map(ActionKind::Leave),
            emit.as_ref().map(ActionKind::Emit),
            reply.as_ref().map(ActionKind::Reply),
            relay.as_ref().map(ActionKind::Relay),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.as_slice() {
            [one] => Ok(*one),
            [] => Err("an action needs one of `join`, `leave`, `emit`, `reply` or `relay`"),
            _ => Err("an action does one thing: give one of `join`, `leave`, `emit`, `reply` or `relay` per item"),
        }
    }
}

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

    /// Parses a template string found at `at` and checks the variables it uses.
    fn template(&mut self, text: &str, at: Location, place: &Place, what: &str) -> Option<StrTemplate> {
        match StrTemplate::parse(text) {
            Ok(t) => {
                let mut problems = Vec::new();
                t.for_each_path(&mut |p| problems.extend(self.path_problem(p, place)));
                for p in problems {
                    self.error(at, format!("{what}: {p}"));
                }
                Some(t)
            }
            Err(e) => {
                self.error(at, format!("{what}: {e}"));
                None
            }
        }
    }

    fn str_template(&mut self, text: &Spanned<String>, place: &Place, what: &str) -> Option<StrTemplate> {
        self.template(&text.value, text.referenced, place, what)
    }

    /// A JSON-shaped template, each string and key checked where it is. Every error is reported,
    /// not only the first.
    fn value_template(&mut self, raw: &RawValue, place: &Place, what: &str) -> Option<ValueTemplate> {
        match &raw.node {
            RawNode::Scalar(v) => Some(ValueTemplate::Const(v.clone())),
            RawNode::String(s) => self.template(s, raw.at, place, what).map(ValueTemplate::string),
            RawNode::Array(items) => {
                let items: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value_template(item, place, &format!("{what}[{i}]")))
                    .collect();
                items.into_iter().collect::<Option<_>>().map(ValueTemplate::array)
            }
            RawNode::Object(fields) => {
                let fields: Vec<_> = fields
                    .iter()
                    .map(|(k, v)| {
                        let key = self.str_template(k, place, &format!("{what}: key `{}`", k.value));
                        let value = self.value_template(v, place, &format!("{what}.{}", k.value));
                        key.zip(value)
                    })
                    .collect();
                fields.into_iter().collect::<Option<_>>().map(ValueTemplate::object)
            }
        }
    }

    /// Templates laid over each other: a list of them, or one.
    fn value_parts(&mut self, raw: &RawValue, place: &Place, what: &str) -> Vec<ValueTemplate> {
        match &raw.node {
            RawNode::Array(parts) => parts
                .iter()
                .enumerate()
                .filter_map(|(i, part)| self.value_template(part, place, &format!("{what}[{i}]")))
                .collect(),
            _ => self.value_template(raw, place, what).into_iter().collect(),
        }
    }

    /// Why a template may not use `path` here, if it may not.
    fn path_problem(&self, path: &Path, place: &Place) -> Option<String> {
        let root = path.root;
        if !place.ctx.allows(root) {
            return Some(format!("`{}` is not available in {}", root.name(), place.ctx.describe()));
        }
        if root == Root::Room && matches!(place.room, RoomVar::Unset) {
            return Some("`room` is only set after a `join` or `leave`".into());
        }
        if root == Root::State {
            return self.store_problem(path);
        }
        let (fields, Some(Segment::Field(field))) = (root.fields()?, path.segments.first()) else {
            return None;
        };
        if !fields.contains(&field.as_str()) {
            return Some(unknown_root_field(root, field, fields));
        }
        if root == Root::Room { room_field_problem(path, &place.room) } else { None }
    }

    /// `state` must be followed by one of the spec's stores.
    fn store_problem(&self, path: &Path) -> Option<String> {
        match path.segments.first() {
            Some(Segment::Field(store)) if self.store_names.contains(store) => None,
            Some(Segment::Field(store)) => Some(unknown("store", store, &self.store_names)),
            _ => Some("`state` must be followed by a store name, as in `state.executions[..]`".into()),
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

    fn transport(&mut self, raw: Option<&Spanned<String>>) -> Transport {
        match raw.map(|t| (t.value.as_str(), t.referenced)) {
            None | Some(("socketio", _)) => Transport::SocketIo,
            Some(("websocket", _)) => Transport::WebSocket,
            Some((other, at)) => {
                let hint = suggest::did_you_mean(suggest::closest(other, ["socketio", "websocket"]));
                self.error(at, format!("transport `{other}` is not `socketio` or `websocket`{hint}"));
                Transport::SocketIo
            }
        }
    }

    /// What a plain WebSocket endpoint cannot do: relay (its clients have no rooms of each other
    /// to speak to) and periodic emits.
    fn websocket_limits(&mut self, raw: &RawSpec) {
        let actions = raw.on_connect.iter().chain(raw.events.values().flat_map(|e| e.value.actions.iter()));
        for action in actions.filter(|a| a.value.relay.is_some()) {
            self.error(
                action.referenced,
                "`relay` is not available on plain WebSocket endpoints (`transport: websocket`)",
            );
        }
        if let Some(timer) = raw.every.first() {
            self.error(
                timer.referenced,
                "`every` is not available on plain WebSocket endpoints (`transport: websocket`)",
            );
        }
    }

    fn auth(&mut self, raw: Option<&Spanned<RawAuth>>) -> AuthPolicy {
        let Some(a) = raw.map(|a| &a.value) else {
            return AuthPolicy {
                required: true,
                require_tenant: false,
                refresh_event: DEFAULT_REFRESH_EVENT.to_string(),
                cookie: false,
                connections_per_ip: None,
                api_keys: false,
            };
        };
        let refresh_event = match &a.refresh_event {
            Some(event) => {
                if RESERVED_EVENTS.contains(&event.value.as_str()) || event.value.is_empty() {
                    self.error(event.referenced, format!("refresh_event `{}` is reserved", event.value));
                }
                event.value.clone()
            }
            None => DEFAULT_REFRESH_EVENT.to_string(),
        };
        AuthPolicy {
            required: a.required,
            require_tenant: a.require_tenant,
            refresh_event,
            cookie: a.cookie,
            connections_per_ip: self.rate_limit(a.connections_per_ip.as_ref(), "connections_per_ip"),
            api_keys: a.api_keys,
        }
    }

    fn store(&mut self, name: &Spanned<String>, raw: &RawStore) -> Option<StoreSpec> {
        let kind = match (&raw.records, &raw.lists) {
            (Some(r), None) if r.value.max_per_tenant > 0 => {
                StoreKind::Records { max_per_tenant: r.value.max_per_tenant }
            }
            (None, Some(l)) if l.value.keep > 0 && l.value.max_keys_per_tenant > 0 => {
                StoreKind::Lists { keep: l.value.keep, max_keys_per_tenant: l.value.max_keys_per_tenant }
            }
            (Some(_), Some(_)) | (None, None) => {
                self.error(
                    name.referenced,
                    format!("store `{}` needs exactly one of `records` or `lists`", name.value),
                );
                return None;
            }
            (Some(Spanned { referenced: at, .. }), None) | (None, Some(Spanned { referenced: at, .. })) => {
                self.error(*at, format!("store `{}`: limits must be at least 1", name.value));
                return None;
            }
        };
        let rules = raw.on.iter().filter_map(|rule| self.store_rule(&name.value, kind, rule)).collect();
        Some(StoreSpec { name: name.value.clone(), kind, rules })
    }

    fn store_rule(&mut self, store: &str, kind: StoreKind, rule: &Spanned<RawStoreRule>) -> Option<StoreRule> {
        let (at, r) = (rule.referenced, &rule.value);
        let place = Place::new(Ctx::StoreRule);
        let types = self.types(&r.types, at, "types");
        let Some(key) = &r.key else {
            self.error(at, "a state rule needs a `key`");
            return None;
        };
        let key = self.str_template(key, &place, "key");
        let ops = [r.merge.is_some(), r.replace.is_some(), r.append.is_some(), r.delete];
        if ops.iter().filter(|&&o| o).count() != 1 {
            self.error(at, "a state rule needs exactly one of `merge`, `replace`, `append` or `delete: true`");
            return None;
        }
        let op = match (kind, &r.merge, &r.replace, &r.append) {
            (StoreKind::Records { .. }, Some(merge), _, _) => StoreOp::Merge(self.value_parts(merge, &place, "merge")),
            (StoreKind::Records { .. }, _, Some(replace), _) => {
                StoreOp::Replace(self.value_template(replace, &place, "replace")?)
            }
            (StoreKind::Records { .. }, ..) if r.delete => StoreOp::Delete,
            (StoreKind::Lists { .. }, _, _, Some(append)) => {
                StoreOp::Append(self.value_parts(append, &place, "append"))
            }
            (StoreKind::Records { .. }, ..) => {
                self.error(at, format!("store `{store}` holds records: use `merge`, `replace` or `delete`"));
                return None;
            }
            (StoreKind::Lists { .. }, ..) => {
                self.error(at, format!("store `{store}` holds lists: use `append`"));
                return None;
            }
        };
        Some(StoreRule { types: types?, key: key?, op })
    }

    /// A room family; `None` when its pattern does not parse.
    fn room_family(&mut self, name: &Spanned<String>, raw: &RawRoom, stores: &[StoreSpec]) -> Option<RoomFamily> {
        let pattern = match RoomPattern::parse(&raw.pattern.value) {
            Ok(p) => p,
            Err(e) => {
                self.error(raw.pattern.referenced, e);
                return None;
            }
        };
        let scope = self.scope(raw.scope.as_ref());
        let access = raw.access.iter().map(|rule| self.access_rule(&name.value, &pattern, &rule.value)).collect();
        let snapshot = raw.snapshot.as_ref().and_then(|s| self.snapshot(s, &name.value, &pattern, stores));
        let filters = self.filter_names(&raw.filters, &pattern);
        Some(RoomFamily {
            name: name.value.clone(),
            pattern,
            scope,
            server_only: raw.server_only,
            access,
            snapshot,
            filters,
        })
    }

    /// A family's filter names: identifiers, each once, none a parameter's name, at most
    /// [`MAX_FILTERS`] (each doubles the rooms a published event is sent to).
    fn filter_names(&mut self, raw: &[Spanned<String>], pattern: &RoomPattern) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(extra) = raw.get(MAX_FILTERS) {
            self.error(
                extra.referenced,
                format!("a room has at most {MAX_FILTERS} filters (an event reaches 2^filters variants of it)"),
            );
        }
        for filter in raw.iter().take(MAX_FILTERS) {
            let name = &filter.value;
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                self.error(filter.referenced, format!("`{name}` is not a filter name (letters, digits, `_`)"));
            } else if names.contains(name) || pattern.param_index(name).is_some() {
                self.error(filter.referenced, format!("`{name}` is already a filter or a parameter of this room"));
            } else {
                names.push(name.clone());
            }
        }
        names
    }

    /// The filter templates of a join or a route target, checked against `family`'s filters
    /// when the family is known.
    fn filter_templates(
        &mut self,
        raw: &Named<Spanned<String>>,
        family: Option<&RoomFamily>,
        place: &Place,
    ) -> Vec<(String, StrTemplate)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            if let Some(family) = family
                && !family.filters.contains(&name.value)
            {
                let hint =
                    suggest::did_you_mean(suggest::closest(&name.value, family.filters.iter().map(String::as_str)));
                self.error(
                    name.referenced,
                    format!(
                        "room `{}` has no filter `{}` (filters: {}){hint}",
                        family.name,
                        name.value,
                        list_or_none(&family.filters)
                    ),
                );
                continue;
            }
            if let Some(t) = self.str_template(value, place, &format!("filters.{}", name.value)) {
                out.push((name.value.clone(), t));
            }
        }
        out
    }

    fn scope(&mut self, raw: Option<&Spanned<String>>) -> RoomScope {
        let Some(scope) = raw else { return RoomScope::Tenant };
        match scope.value.as_str() {
            "tenant" => RoomScope::Tenant,
            "global" => RoomScope::Global,
            other => {
                let hint = suggest::did_you_mean(suggest::closest(other, ["tenant", "global"]));
                self.error(scope.referenced, format!("scope `{other}` must be `tenant` or `global`{hint}"));
                RoomScope::Tenant
            }
        }
    }

    fn access_rule(&mut self, room: &str, pattern: &RoomPattern, rule: &RawAccess) -> AccessRule {
        let place = Place::new(Ctx::Access);
        let mut params = Vec::new();
        for (param, value) in &rule.params {
            let Some(i) = self.param_index(room, pattern, param) else { continue };
            if let Some(t) = self.str_template(value, &place, &format!("params.{}", param.value)) {
                params.push((i, t));
            }
        }
        AccessRule { anonymous: rule.anonymous, roles: rule.roles.clone(), params }
    }

    /// Where `param` is in the family's pattern; a parameter it does not have is reported.
    fn param_index(&mut self, room: &str, pattern: &RoomPattern, param: &Spanned<String>) -> Option<usize> {
        let index = pattern.param_index(&param.value);
        if index.is_none() {
            let hint = suggest::closest(&param.value, pattern.params().iter().map(|p| p.name.as_str()));
            self.error(
                param.referenced,
                format!("room `{room}` has no parameter `{}`{}", param.value, suggest::did_you_mean(hint)),
            );
        }
        index
    }

    fn snapshot(
        &mut self,
        raw: &Spanned<RawSnapshot>,
        room: &str,
        pattern: &RoomPattern,
        stores: &[StoreSpec],
    ) -> Option<SnapshotSpec> {
        let s = &raw.value;
        let Some(store) = stores.iter().position(|st| st.name == s.store.value) else {
            self.error(s.store.referenced, unknown("store", &s.store.value, &self.store_names));
            return None;
        };
        let place = Place { ctx: Ctx::Snapshot, room: RoomVar::Snapshotting(FamilyView::new(room, pattern, true)) };
        let key = s.key.as_ref().and_then(|k| self.str_template(k, &place, "key"));
        let matches: Vec<_> = s
            .matches
            .iter()
            .filter_map(|(field, v)| {
                self.str_template(v, &place, &format!("match.{}", field.value)).map(|t| (field.value.clone(), t))
            })
            .collect();
        if let Some((first, _)) = s.matches.first()
            && matches!(stores[store].kind, StoreKind::Records { .. })
        {
            self.error(first.referenced, "`match` filters list entries; this store holds records");
        }
        Some(SnapshotSpec { store, key, matches, limit: s.limit.unwrap_or(DEFAULT_SNAPSHOT_LIMIT).max(1) })
    }

    fn event(&mut self, name: &Spanned<String>, raw: &RawEvent, auth: &AuthPolicy, rooms: &[RoomFamily]) -> EventSpec {
        if RESERVED_EVENTS.contains(&name.value.as_str()) || name.value == auth.refresh_event {
            self.error(name.referenced, format!("`{}` is reserved and cannot be a client event", name.value));
        }
        let schema = raw.payload.as_ref().and_then(|payload| match PayloadSchema::compile(&payload.value) {
            Ok(s) => Some(s),
            Err(err) => {
                self.error(payload.referenced, format!("payload: {err}"));
                None
            }
        });
        let rate_limit = self.rate_limit(raw.rate_limit.as_ref(), "rate_limit");
        if raw.actions.is_empty() {
            self.error(name.referenced, format!("event `{}` does nothing: give it a `do` list", name.value));
        }
        let actions = self.actions(&raw.actions, Ctx::ClientEvent, rooms, schema.as_ref());
        EventSpec { name: name.value.clone(), rate_limit, schema, max_bytes: raw.max_size, actions }
    }

    fn actions(
        &mut self,
        raw: &[Spanned<RawAction>],
        ctx: Ctx,
        rooms: &[RoomFamily],
        schema: Option<&PayloadSchema>,
    ) -> Vec<Action> {
        let mut place = Place::new(ctx);
        let mut replied = false;
        let mut out = Vec::new();
        for action in raw {
            let at = action.referenced;
            let kind = match ActionKind::of(&action.value) {
                Ok(kind) => kind,
                Err(e) => {
                    self.error(at, e);
                    continue;
                }
            };
            let compiled = match kind {
                ActionKind::Join(t) => {
                    let (target, room) = self.room_target(t, &place, at, rooms, schema);
                    place.room = room;
                    let optional = t.optional.as_ref().is_some_and(|o| o.value);
                    let family = match &target {
                        Some(RoomTarget::Family { family: FamilyRef::Fixed(id), .. }) => rooms.get(*id),
                        _ => None,
                    };
                    let filters = self.filter_templates(&t.filters, family, &place);
                    target.map(|target| Action::Join { target, optional, filters })
                }
                ActionKind::Leave(t) => {
                    if let Some(optional) = t.optional.as_ref().filter(|o| o.value) {
                        self.error(optional.referenced, "`optional` only applies to `join`");
                    }
                    if let Some((filter, _)) = t.filters.first() {
                        self.error(
                            filter.referenced,
                            "`filters` only apply to `join`: a leave leaves every filtered variant",
                        );
                    }
                    let (target, room) = self.room_target(t, &place, at, rooms, schema);
                    place.room = room;
                    target.map(|target| Action::Leave { target })
                }
                ActionKind::Emit(e) => self.emit(e, &place, at).map(Action::Emit),
                ActionKind::Reply(e) => {
                    if ctx == Ctx::OnConnect {
                        self.error(at, "`reply` answers a client event; on_connect has none (use `emit`)");
                    } else if replied {
                        self.error(at, "only one `reply` per event: it is also the ack");
                    }
                    replied = true;
                    self.reply(e, &place).map(Action::Reply)
                }
                ActionKind::Relay(r) => self.relay(r, &place, at).map(Action::Relay),
            };
            out.extend(compiled);
        }
        out
    }

    fn emit(&mut self, raw: &RawEmit, place: &Place, at: Location) -> Option<EmitSpec> {
        let Some(event) = &raw.event else {
            self.error(at, "an emit needs an `event` name");
            return None;
        };
        let event = self.event_name(event, place);
        let data = raw.data.as_ref().map(|v| self.value_template(v, place, "data"));
        Some(EmitSpec { event: event?, data: if_given(data)? })
    }

    /// An event name the server sends: checked against the reserved names and remembered, so
    /// relays cannot use it.
    fn event_name(&mut self, text: &Spanned<String>, place: &Place) -> Option<StrTemplate> {
        let event = self.str_template(text, place, "event")?;
        if let Some(name) = event.as_literal() {
            if RESERVED_EVENTS.contains(&name) && name != "error" {
                self.error(text.referenced, format!("`{name}` is reserved by Socket.IO and cannot be emitted"));
            }
            if !self.server_events.iter().any(|e| e == name) {
                self.server_events.push(name.to_string());
            }
        }
        Some(event)
    }

    fn reply(&mut self, raw: &RawEmit, place: &Place) -> Option<ReplySpec> {
        let event = raw.event.as_ref().map(|e| self.event_name(e, place));
        let data = raw.data.as_ref().map(|v| self.value_template(v, place, "data"));
        Some(ReplySpec { event: if_given(event)?, data: if_given(data)? })
    }

    fn relay(&mut self, raw: &RawRelay, place: &Place, at: Location) -> Option<RelaySpec> {
        if place.ctx != Ctx::ClientEvent {
            self.error(at, "`relay` sends a client's event on; it belongs in a client event's `do`");
            return None;
        }
        let event = self.str_template(&raw.event, place, "event");
        let rooms = self.str_template(&raw.rooms, place, "rooms");
        let data = raw.data.as_ref().map(|d| self.value_parts(d, place, "data")).unwrap_or_default();
        let deny = if raw.deny.is_empty() { None } else { self.types(&raw.deny, at, "deny") };
        Some(RelaySpec { event: event?, rooms: rooms?, data, deny })
    }

    /// The room of a `join` or `leave`, and what `room` is after it.
    fn room_target(
        &mut self,
        raw: &RawRoomTarget,
        place: &Place,
        at: Location,
        rooms: &[RoomFamily],
        schema: Option<&PayloadSchema>,
    ) -> (Option<RoomTarget>, RoomVar) {
        match (&raw.room, &raw.name) {
            (Some(_), Some(_)) => {
                self.error(at, "give either `room` (a family and its params) or `name` (a room name), not both");
                (None, RoomVar::any())
            }
            (None, None) => {
                self.error(at, "give `room` (a family and its params) or `name` (a room name)");
                (None, RoomVar::any())
            }
            (None, Some(name)) => {
                if let Some((param, _)) = raw.params.first() {
                    self.error(param.referenced, "`params` go with `room`, not with `name`");
                }
                (self.str_template(name, place, "name").map(RoomTarget::Name), RoomVar::any())
            }
            (Some(room), None) => self.family_target(room, &raw.params, place, rooms, schema),
        }
    }

    /// `room: FAMILY, params: {...}`, with the family fixed or named by a template.
    fn family_target(
        &mut self,
        room: &Spanned<String>,
        raw_params: &Named<Spanned<String>>,
        place: &Place,
        rooms: &[RoomFamily],
        schema: Option<&PayloadSchema>,
    ) -> (Option<RoomTarget>, RoomVar) {
        let Some(template) = self.str_template(room, place, "room") else { return (None, RoomVar::any()) };
        let family = match template.as_literal() {
            Some(_) => match self.room_id(room, rooms) {
                Some(id) => FamilyRef::Fixed(id),
                None => return (None, RoomVar::any()),
            },
            None => FamilyRef::Dynamic(template),
        };
        let mut params = Vec::new();
        for (name, value) in raw_params {
            if let FamilyRef::Fixed(id) = family {
                self.param_index(&rooms[id].name, &rooms[id].pattern, name);
            }
            if let Some(t) = self.str_template(value, place, &format!("params.{}", name.value)) {
                params.push((name.value.clone(), t));
            }
        }
        let joined = match &family {
            FamilyRef::Fixed(id) => {
                let family = &rooms[*id];
                for p in family.pattern.params() {
                    if !p.optional && !raw_params.keys().any(|k| k.value == p.name) {
                        self.error(room.referenced, format!("room `{}` needs parameter `{}`", family.name, p.name));
                    }
                }
                if place.ctx == Ctx::ClientEvent && family.server_only {
                    self.error(
                        room.referenced,
                        format!("room `{}` is server_only: only on_connect can join or leave it", family.name),
                    );
                }
                RoomVar::Joined(vec![FamilyView::of(family)])
            }
            FamilyRef::Dynamic(template) => {
                RoomVar::Joined(self.dynamic_families(template, schema, rooms, room.referenced))
            }
        };
        (Some(RoomTarget::Family { family, params }), joined)
    }

    /// `room: "{payload.type}"` with an `enum` on `type`: every value must name a joinable family.
    /// Returns the families it can name (empty: any).
    fn dynamic_families(
        &mut self,
        template: &StrTemplate,
        schema: Option<&PayloadSchema>,
        rooms: &[RoomFamily],
        at: Location,
    ) -> Vec<FamilyView> {
        let Some(Expr::Path(Path { root: Root::Payload, segments })) = template.as_single_expr() else {
            return Vec::new();
        };
        let [Segment::Field(field)] = segments.as_slice() else { return Vec::new() };
        let Some(values) =
            schema.and_then(|s| s.raw().pointer(&format!("/properties/{field}/enum"))).and_then(Value::as_array)
        else {
            return Vec::new();
        };
        let mut families = Vec::new();
        for v in values {
            let name = v.as_str().unwrap_or_default();
            match rooms.iter().find(|r| r.name == name) {
                None => self.error(
                    at,
                    format!(
                        "payload.{field} may be `{v}`, which is not a room (known: {})",
                        list_or_none(&self.room_names)
                    ),
                ),
                Some(r) if r.server_only => {
                    self.error(at, format!("payload.{field} may be `{name}`, a server_only room"))
                }
                Some(r) => families.push(FamilyView::of(r)),
            }
        }
        families
    }

    fn route(
        &mut self,
        route: &Spanned<RawRoute>,
        default_emit: Option<&RawEmit>,
        rooms: &[RoomFamily],
    ) -> Option<Route> {
        let (at, r) = (route.referenced, &route.value);
        let place = Place::new(Ctx::Route);
        let types = self.types(&r.types, at, "types");
        let Some(raw_emit) = r.emit.as_ref().or(default_emit) else {
            self.error(at, "this route emits nothing: give it an `emit`, or give `publish` a default `emit`");
            return None;
        };
        let emit = self.emit(raw_emit, &place, at);
        if r.to.is_empty() {
            self.error(at, "a route needs at least one room in `to`");
        }
        let targets = r.to.iter().filter_map(|t| self.route_target(t, &place, rooms)).collect();
        Some(Route { types: types?, require: r.require.clone(), targets, emit: emit? })
    }

    fn route_target(
        &mut self,
        target: &Spanned<RawTarget>,
        place: &Place,
        rooms: &[RoomFamily],
    ) -> Option<RouteTarget> {
        let t = &target.value;
        let room = self.room_id(&t.room, rooms)?;
        let pattern = &rooms[room].pattern;
        let mut params = vec![None; pattern.params().len()];
        for (name, value) in &t.params {
            if let Some(i) = self.param_index(&t.room.value, pattern, name) {
                params[i] = self.str_template(value, place, &format!("params.{}", name.value));
            }
        }
        for (i, p) in pattern.params().iter().enumerate() {
            if !p.optional && params[i].is_none() {
                self.error(target.referenced, format!("room `{}` needs parameter `{}`", t.room.value, p.name));
            }
        }
        let family = &rooms[room];
        let given = self.filter_templates(&t.filters, Some(family), place);
        let filters =
            family.filters.iter().map(|f| given.iter().find(|(name, _)| name == f).map(|(_, t)| t.clone())).collect();
        Some(RouteTarget { room, params, exact: t.exact, filters })
    }

    fn timer(&mut self, timer: &Spanned<RawTimer>, rooms: &[RoomFamily]) -> Option<TimerSpec> {
        let t = &timer.value;
        let interval = self.interval(&t.interval);
        let room = self.room_id(&t.room, rooms);
        if let Some(id) = room
            && rooms[id].pattern.params().iter().any(|p| !p.optional)
        {
            self.error(
                t.room.referenced,
                format!("timers emit into rooms without required parameters; `{}` has some", t.room.value),
            );
        }
        let emit = self.emit(&t.emit, &Place::new(Ctx::Timer), timer.referenced);
        Some(TimerSpec { interval: interval?, room: room?, emit: emit? })
    }

    fn interval(&mut self, raw: &Spanned<String>) -> Option<TimerInterval> {
        if raw.value == "metrics_interval" {
            return Some(TimerInterval::Metrics);
        }
        match crate::config::parse_duration(&raw.value) {
            Ok(d) if d >= std::time::Duration::from_millis(100) => Some(TimerInterval::Fixed(d)),
            Ok(_) => {
                self.error(raw.referenced, "a timer interval must be at least 100ms");
                None
            }
            Err(e) => {
                self.error(raw.referenced, format!("interval: {e}, or `metrics_interval`"));
                None
            }
        }
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

/// `root.field` where `root` has fixed fields and `field` is not one of them.
fn unknown_root_field(root: Root, field: &str, fields: &[&str]) -> String {
    let root = root.name();
    if fields.is_empty() {
        return format!("`{root}` has no fields: `{root}.{field}` is always unset");
    }
    match suggest::closest(field, fields.iter().copied()) {
        Some(close) => {
            format!("unknown field `{field}` of `{root}`{}", suggest::did_you_mean(Some(format!("{root}.{close}"))))
        }
        None => format!("unknown field `{field}` of `{root}` (known: {})", fields.join(", ")),
    }
}

/// `room.snapshot` and `room.params.<name>`, checked against the families `room` can be of.
fn room_field_problem(path: &Path, room: &RoomVar) -> Option<String> {
    let families = match room {
        RoomVar::Joined(families) if !families.is_empty() => families.as_slice(),
        RoomVar::Snapshotting(family) => std::slice::from_ref(family),
        RoomVar::Joined(_) | RoomVar::Unset => return None,
    };
    match path.segments.as_slice() {
        [Segment::Field(field), ..] if field == "snapshot" => {
            if matches!(room, RoomVar::Snapshotting(_)) {
                // Rendering it would build the snapshot again, and again.
                Some("`room.snapshot` is the snapshot being built; its own key and filters cannot use it".into())
            } else if families.iter().any(|f| f.has_snapshot) {
                None
            } else {
                Some(format!("{} no `snapshot`, so `room.snapshot` is always unset", families_have(families)))
            }
        }
        [Segment::Field(field), Segment::Field(param), ..] if field == "params" => {
            if families.iter().any(|f| f.params.contains(param)) {
                return None;
            }
            let known = families.iter().flat_map(|f| f.params.iter().map(String::as_str));
            let hint = suggest::closest(param, known).map(|p| format!("room.params.{p}"));
            Some(format!("{} no parameter `{param}`{}", families_have(families), suggest::did_you_mean(hint)))
        }
        _ => None,
    }
}

/// `room `a` has` or `rooms `a`, `b` have`.
fn families_have(families: &[FamilyView]) -> String {
    match families {
        [one] => format!("room `{}` has", one.name),
        many => {
            let names: Vec<String> = many.iter().map(|f| format!("`{}`", f.name)).collect();
            format!("rooms {} have", names.join(", "))
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}

/// Checks `raw` (from `file`) and builds its model, or returns every error found.
pub fn compile(raw: RawSpec, file: &str) -> Result<NamespaceSpec, Vec<SpecError>> {
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

#[cfg(test)]
mod tests {
    use super::super::load::{errors_of, spec_lines};

    /// Whether an error on `line` says `message` (whatever its column).
    fn has(errs: &[String], line: u32, message: &str) -> bool {
        errs.iter().any(|e| e.starts_with(&format!("{line}:")) && e.ends_with(&format!(": {message}")))
    }

    #[test]
    fn fields_of_template_variables_are_checked_with_a_suggestion() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: \"a:{id}\", snapshot: { store: s, key: \"{room.params.id}\" } }",
            "  t: { pattern: t }",
            "state:",
            "  s:",
            "    records: { max_per_tenant: 10 }",
            "    on:",
            "      - types: [t]",
            "        key: \"{data.id}\"",
            "        merge: [\"{data}\", { at: \"{event.timestamp}\", by: \"{event.tenant}\" }]",
            "events:",
            "  e:",
            "    do:",
            "      - join: { room: a, params: { id: \"{user.id}\" } }",
            "      - reply: { data: { s: \"{room.snapshott}\", t: \"{user.tenant}\", r: \"{socket.room}\" } }",
            "      - emit: { event: clock, data: \"{now.date}\" }",
            "every:",
            "  - { interval: 5s, room: t, emit: { event: n, data: \"{tenant.stat} {gateway.stats}\" } }",
        ]));
        assert!(has(&errs, 11, "merge[1].by: unknown field `tenant` of `event` (did you mean `event.tenantId`?)"));
        assert!(has(&errs, 16, "data.s: unknown field `snapshott` of `room` (did you mean `room.snapshot`?)"));
        assert!(has(&errs, 16, "data.t: unknown field `tenant` of `user` (did you mean `user.tenantId`?)"));
        assert!(has(&errs, 16, "data.r: unknown field `room` of `socket` (did you mean `socket.rooms`?)"));
        assert!(has(&errs, 17, "data: `now` has no fields: `now.date` is always unset"));
        assert!(has(&errs, 19, "data: unknown field `stat` of `tenant` (did you mean `tenant.stats`?)"));
        assert_eq!(errs.len(), 6, "{errs:?}");
    }

    #[test]
    fn a_room_has_at_most_four_filters() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: a, filters: [f1, f2, f3, f4] }",
            "  b: { pattern: b, filters: [f1, f2, f3, f4, f5, f6] }",
        ]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(has(&errs, 4, "a room has at most 4 filters (an event reaches 2^filters variants of it)"), "{errs:?}");
    }

    #[test]
    fn an_unknown_field_without_a_close_one_lists_the_known_ones() {
        let errs =
            errors_of(&spec_lines(&["namespace: /x", "on_connect:", "  - emit: { event: e, data: \"{user.email}\" }"]));
        assert_eq!(
            errs,
            ["3:29: data: unknown field `email` of `user` (known: id, tenantId, roles, authenticated, expiresAt)"]
        );
    }

    #[test]
    fn fields_of_free_form_variables_are_not_checked() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: \"a:{id?}\" }",
            "state:",
            "  s:",
            "    records: { max_per_tenant: 10 }",
            "    on:",
            "      - { types: [t], key: \"{data.any.thing}\", merge: \"{event.data.other}\" }",
            "events:",
            "  e:",
            "    do:",
            "      - join: { room: a, params: { id: \"{payload.whatever}\" } }",
            "      - reply: { data: [\"{state.s[payload.x].field}\", \"{user.roles[0]}\", \"{room.params}\"] }",
        ]));
        assert_eq!(errs, Vec::<String>::new());
    }

    #[test]
    fn room_params_must_be_parameters_of_a_family_the_room_can_be_of() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: \"a:{id}\" }",
            "  b: { pattern: \"b:{key}:{part?}\" }",
            "events:",
            "  fixed:",
            "    do:",
            "      - join: { room: a, params: { id: \"{payload.id}\" } }",
            "      - reply: { data: \"{room.params.idd}\" }",
            "  dynamic:",
            "    payload: { properties: { type: { enum: [a, b] } } }",
            "    do:",
            "      - join: { room: \"{payload.type}\", params: { id: \"{payload.id}\", key: \"{payload.id}\" } }",
            "      - reply: { data: [\"{room.params.id}\", \"{room.params.part}\", \"{room.params.nope}\"] }",
            "  named:",
            "    do:",
            "      - join: { name: \"{payload.room}\" }",
            "      - reply: { data: \"{room.params.anything}\" }",
        ]));
        assert_eq!(
            errs,
            [
                "9:24: data: room `a` has no parameter `idd` (did you mean `room.params.id`?)",
                "14:67: data[2]: rooms `a`, `b` have no parameter `nope`",
            ]
        );
    }

    #[test]
    fn room_snapshot_must_exist_and_cannot_be_used_to_build_itself() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: a }",
            "  l: { pattern: \"l:{id}\", snapshot: { store: s, key: \"{room.snapshot}\", match: { x: \"{room.params.di}\" } } }",
            "state:",
            "  s:",
            "    lists: { keep: 10, max_keys_per_tenant: 10 }",
            "on_connect:",
            "  - join: { room: a }",
            "  - emit: { event: x, data: \"{room.snapshot}\" }",
        ]));
        assert!(has(
            &errs,
            4,
            "key: `room.snapshot` is the snapshot being built; its own key and filters cannot use it"
        ));
        assert!(has(&errs, 4, "match.x: room `l` has no parameter `di` (did you mean `room.params.id`?)"));
        assert!(has(&errs, 10, "data: room `a` has no `snapshot`, so `room.snapshot` is always unset"));
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn unknown_names_come_with_the_closest_known_one() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  tenant: { pattern: \"t:{resourceId?}\", scope: globl, snapshot: { store: executons } }",
            "state:",
            "  executions: { records: { max_per_tenant: 1 } }",
            "on_connect:",
            "  - join: { room: tenent, params: {} }",
            "  - join: { room: tenant, params: { resourceid: \"{user.id}\" } }",
            "  - emit: { event: e, data: \"{paylod.x} {state.executon}\" }",
        ]));
        assert!(has(&errs, 3, "scope `globl` must be `tenant` or `global` (did you mean `global`?)"));
        assert!(has(&errs, 3, "unknown store `executons` (known: executions) (did you mean `executions`?)"));
        assert!(has(&errs, 7, "unknown room `tenent` (known: tenant) (did you mean `tenant`?)"));
        assert!(has(&errs, 8, "room `tenant` has no parameter `resourceid` (did you mean `resourceId`?)"));
        assert!(
            errs.iter().any(|e| e.starts_with("9:")
                && e.contains("unknown variable `paylod`")
                && e.ends_with("(did you mean `payload`?)")),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 5, "{errs:?}");
    }

    #[test]
    fn errors_point_at_the_offending_value_not_at_what_holds_it() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "auth:",
            "  refresh_event: error",
            "  connections_per_ip:",
            "    max: 0",
            "    per: 1m",
            "rooms:",
            "  a:",
            "    pattern: \"a:{id?}\"",
            "    access:",
            "      - params:",
            "          idd: \"{user.id}\"",
            "events:",
            "  error:",
            "    rate_limit:",
            "      max: 0",
            "      per: 1s",
            "    do:",
            "      - leave:",
            "          room: a",
            "          optional: true",
            "      - emit:",
            "          event: deep",
            "          data:",
            "            outer:",
            "              inner: \"{payload.x} {paylod.y}\"",
            "publish:",
            "  routes:",
            "    - types:",
            "        - ok.*",
            "        - \"bad*type\"",
            "      to:",
            "        - room: nope",
            "      emit: { event: x }",
            "every:",
            "  - interval: 5 parsecs",
            "    room: a",
            "    emit: { event: t }",
        ]));
        let at: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
        assert_eq!(
            at,
            ["3:18", "5:5", "12:11", "14:3", "16:7", "21:21", "26:22", "31:11", "33:17", "36:15"],
            "{errs:?}"
        );
        assert!(errs[0].ends_with("refresh_event `error` is reserved"));
        assert!(errs[1].ends_with("connections_per_ip needs max >= 1 and a non-zero `per`"));
        assert!(errs[2].ends_with("room `a` has no parameter `idd` (did you mean `id`?)"));
        assert!(errs[3].ends_with("`error` is reserved and cannot be a client event"));
        assert!(errs[4].ends_with("rate_limit needs max >= 1 and a non-zero `per`"));
        assert!(errs[5].ends_with("`optional` only applies to `join`"));
        assert!(errs[6].contains("data.outer.inner: in `{paylod.y}`: unknown variable `paylod`"));
        assert!(errs[7].contains("types: `bad*type` is not a type pattern"));
        assert!(errs[8].contains("unknown room `nope`"));
        assert!(errs[9].contains("interval: "));
    }

    #[test]
    fn errors_in_flow_collections_point_at_their_value() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms: { a: { pattern: \"a:{id}\" } }",
            "on_connect: [ { join: { room: a, params: { id: \"{user.id}\", di: x } } }, \
             { emit: { event: e, data: [1, \"{user.rols}\"] } } ]",
        ]));
        assert_eq!(
            errs,
            [
                "3:61: room `a` has no parameter `di` (did you mean `id`?)",
                "3:104: data[1]: unknown field `rols` of `user` (did you mean `user.roles`?)",
            ]
        );
    }

    #[test]
    fn an_error_in_the_default_emit_is_reported_once_where_it_is() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms: { a: { pattern: a } }",
            "publish:",
            "  emit:",
            "    event: update",
            "    data: \"{evnt.type}\"",
            "  routes:",
            "    - { types: [one], to: [{ room: a }] }",
            "    - { types: [two], to: [{ room: a }] }",
        ]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("6:11: data: in `{evnt.type}`: unknown variable `evnt`"), "{errs:?}");
    }

    #[test]
    fn an_action_does_exactly_one_thing() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "on_connect:",
            "  - {}",
            "  - emit: { event: a }",
            "    reply: { event: b }",
        ]));
        assert_eq!(
            errs,
            [
                "3:5: an action needs one of `join`, `leave`, `emit`, `reply` or `relay`",
                "4:5: an action does one thing: give one of `join`, `leave`, `emit`, `reply` or `relay` per item",
            ]
        );
    }
}
