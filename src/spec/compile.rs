//! Checks a parsed spec file and builds the model the engine serves. Every mistake found is
//! reported with the line it is on, all at once, so a spec author fixes a file in one pass.

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::{
    AccessRule, Action, AuthPolicy, DEFAULT_REFRESH_EVENT, EmitSpec, EventSpec, FamilyRef, NamespaceSpec,
    RESERVED_EVENTS, RelaySpec, ReplySpec, RoomFamily, RoomTarget, Route, RouteTarget, SnapshotSpec, StoreKind,
    StoreOp, StoreRule, StoreSpec, TimerInterval, TimerSpec, TypeMatcher,
    load::SpecError,
    raw::{RawAction, RawEmit, RawRelay, RawRoomTarget, RawScope, RawSpec},
    schema::PayloadSchema,
    template::{Expr, Path, Root, Segment, StrTemplate, ValueTemplate},
};
use crate::rooms::{RoomPattern, RoomScope};

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

struct Checker<'a> {
    file: &'a str,
    errors: Vec<SpecError>,
    store_names: Vec<String>,
    room_names: Vec<String>,
    /// Literal names of the events the spec sends, collected as emits are checked.
    server_events: Vec<String>,
}

impl Checker<'_> {
    fn error(&mut self, at: Location, message: impl Into<String>) {
        self.errors.push(SpecError::at(self.file, at.line(), at.column(), message));
    }

    /// Parses a template string and checks the variables it uses.
    fn str_template(&mut self, text: &str, ctx: Ctx, room_set: bool, at: Location, what: &str) -> Option<StrTemplate> {
        self.checked(StrTemplate::parse(text), ctx, room_set, at, what)
    }

    /// Parses a JSON-shaped template and checks the variables it uses.
    fn value_template(
        &mut self,
        value: &Value,
        ctx: Ctx,
        room_set: bool,
        at: Location,
        what: &str,
    ) -> Option<ValueTemplate> {
        self.checked(ValueTemplate::parse(value), ctx, room_set, at, what)
    }

    /// Reports a parse error, or every variable the template may not use here.
    fn checked<T: HasPaths>(
        &mut self,
        parsed: Result<T, String>,
        ctx: Ctx,
        room_set: bool,
        at: Location,
        what: &str,
    ) -> Option<T> {
        match parsed {
            Ok(t) => {
                let mut problems = Vec::new();
                t.visit_paths(&mut |p| problems.extend(self.path_problem(p, ctx, room_set)));
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

    fn path_problem(&self, path: &Path, ctx: Ctx, room_set: bool) -> Option<String> {
        if !ctx.allows(path.root) {
            return Some(format!("`{}` is not available in {}", path.root.name(), ctx.describe()));
        }
        if path.root == Root::Room && matches!(ctx, Ctx::OnConnect | Ctx::ClientEvent) && !room_set {
            return Some("`room` is only set after a `join` or `leave`".into());
        }
        if path.root == Root::State {
            return match path.segments.first() {
                Some(Segment::Field(store)) if self.store_names.contains(store) => None,
                Some(Segment::Field(store)) => {
                    Some(format!("unknown store `{store}` (known: {})", list_or_none(&self.store_names)))
                }
                _ => Some("`state` must be followed by a store name, as in `state.executions[..]`".into()),
            };
        }
        None
    }

    fn emit(&mut self, raw: &RawEmit, ctx: Ctx, room_set: bool, at: Location) -> Option<EmitSpec> {
        let Some(event) = &raw.event else {
            self.error(at, "an emit needs an `event` name");
            return None;
        };
        let event = self.event_name(event, ctx, room_set, at)?;
        let data = match &raw.data {
            Some(v) => Some(self.value_template(v, ctx, room_set, at, "data")?),
            None => None,
        };
        Some(EmitSpec { event, data })
    }

    /// An event name the server sends: checked against the reserved names and remembered, so
    /// relays cannot use it.
    fn event_name(&mut self, text: &str, ctx: Ctx, room_set: bool, at: Location) -> Option<StrTemplate> {
        let event = self.str_template(text, ctx, room_set, at, "event")?;
        if let Some(name) = event.as_literal() {
            if RESERVED_EVENTS.contains(&name) && name != "error" {
                self.error(at, format!("`{name}` is reserved by Socket.IO and cannot be emitted"));
            }
            if !self.server_events.iter().any(|e| e == name) {
                self.server_events.push(name.to_string());
            }
        }
        Some(event)
    }

    fn reply(&mut self, raw: &RawEmit, ctx: Ctx, room_set: bool, at: Location) -> Option<ReplySpec> {
        let event = match &raw.event {
            Some(e) => Some(self.event_name(e, ctx, room_set, at)?),
            None => None,
        };
        let data = match &raw.data {
            Some(v) => Some(self.value_template(v, ctx, room_set, at, "data")?),
            None => None,
        };
        Some(ReplySpec { event, data })
    }

    fn relay(&mut self, raw: &RawRelay, ctx: Ctx, room_set: bool, at: Location) -> Option<RelaySpec> {
        if ctx != Ctx::ClientEvent {
            self.error(at, "`relay` sends a client's event on; it belongs in a client event's `do`");
            return None;
        }
        let event = self.str_template(&raw.event, ctx, room_set, at, "event")?;
        let rooms = self.str_template(&raw.rooms, ctx, room_set, at, "rooms")?;
        let data = match &raw.data {
            None => Vec::new(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|v| self.value_template(v, ctx, room_set, at, "data")).collect()
            }
            Some(one) => self.value_template(one, ctx, room_set, at, "data").into_iter().collect(),
        };
        let deny = if raw.deny.is_empty() {
            None
        } else {
            match TypeMatcher::parse(&raw.deny) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.error(at, format!("deny: {e}"));
                    None
                }
            }
        };
        Some(RelaySpec { event, rooms, data, deny })
    }

    fn room_target(
        &mut self,
        raw: &RawRoomTarget,
        ctx: Ctx,
        room_set: bool,
        at: Location,
        rooms: &[RoomFamily],
    ) -> Option<RoomTarget> {
        match (&raw.room, &raw.name) {
            (Some(_), Some(_)) => {
                self.error(at, "give either `room` (a family and its params) or `name` (a room name), not both");
                None
            }
            (None, None) => {
                self.error(at, "give `room` (a family and its params) or `name` (a room name)");
                None
            }
            (None, Some(name)) => {
                if !raw.params.is_empty() {
                    self.error(at, "`params` go with `room`, not with `name`");
                }
                self.str_template(name, ctx, room_set, at, "name").map(RoomTarget::Name)
            }
            (Some(room), None) => {
                let template = self.str_template(room, ctx, room_set, at, "room")?;
                let family = match template.as_literal() {
                    Some(name) => match rooms.iter().position(|r| r.name == name) {
                        Some(id) => FamilyRef::Fixed(id),
                        None => {
                            self.error(
                                at,
                                format!("unknown room `{name}` (known: {})", list_or_none(&self.room_names)),
                            );
                            return None;
                        }
                    },
                    None => FamilyRef::Dynamic(template),
                };
                let mut params = Vec::new();
                for (name, value) in &raw.params {
                    if let FamilyRef::Fixed(id) = family
                        && rooms[id].pattern.param_index(name).is_none()
                    {
                        self.error(at, format!("room `{}` has no parameter `{name}`", rooms[id].name));
                    }
                    if let Some(t) = self.str_template(value, ctx, room_set, at, &format!("params.{name}")) {
                        params.push((name.clone(), t));
                    }
                }
                if let FamilyRef::Fixed(id) = family {
                    for p in rooms[id].pattern.params() {
                        if !p.optional && !raw.params.contains_key(&p.name) {
                            self.error(at, format!("room `{}` needs parameter `{}`", rooms[id].name, p.name));
                        }
                    }
                    if ctx == Ctx::ClientEvent && rooms[id].server_only {
                        self.error(
                            at,
                            format!("room `{}` is server_only: only on_connect can join or leave it", rooms[id].name),
                        );
                    }
                }
                Some(RoomTarget::Family { family, params })
            }
        }
    }

    fn actions(
        &mut self,
        raw: &[Spanned<RawAction>],
        ctx: Ctx,
        rooms: &[RoomFamily],
        schema: Option<&PayloadSchema>,
    ) -> Vec<Action> {
        let mut room_set = false;
        let mut replied = false;
        let mut out = Vec::new();
        for action in raw {
            let at = action.referenced;
            let compiled = match &action.value {
                RawAction::Join(t) => {
                    let target = self.room_target(t, ctx, room_set, at, rooms);
                    if let Some(RoomTarget::Family { family: FamilyRef::Dynamic(tpl), .. }) = &target {
                        self.check_dynamic_family(tpl, schema, rooms, at);
                    }
                    room_set = true;
                    target.map(|target| Action::Join { target, optional: t.optional })
                }
                RawAction::Leave(t) => {
                    if t.optional {
                        self.error(at, "`optional` only applies to `join`");
                    }
                    let target = self.room_target(t, ctx, room_set, at, rooms);
                    room_set = true;
                    target.map(|target| Action::Leave { target })
                }
                RawAction::Emit(e) => self.emit(e, ctx, room_set, at).map(Action::Emit),
                RawAction::Reply(e) => {
                    if ctx == Ctx::OnConnect {
                        self.error(at, "`reply` answers a client event; on_connect has none (use `emit`)");
                    } else if replied {
                        self.error(at, "only one `reply` per event: it is also the ack");
                    }
                    replied = true;
                    self.reply(e, ctx, room_set, at).map(Action::Reply)
                }
                RawAction::Relay(r) => self.relay(r, ctx, room_set, at).map(Action::Relay),
            };
            out.extend(compiled);
        }
        out
    }

    /// `room: "{payload.type}"` with an `enum` on `type`: every value must name a joinable family.
    fn check_dynamic_family(
        &mut self,
        template: &StrTemplate,
        schema: Option<&PayloadSchema>,
        rooms: &[RoomFamily],
        at: Location,
    ) {
        let Some(Expr::Path(Path { root: Root::Payload, segments })) = template.as_single_expr() else { return };
        let [Segment::Field(field)] = segments.as_slice() else { return };
        let Some(values) =
            schema.and_then(|s| s.raw().pointer(&format!("/properties/{field}/enum"))).and_then(Value::as_array)
        else {
            return;
        };
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
                Some(_) => {}
            }
        }
    }
}

/// Templates whose variables can be checked.
trait HasPaths {
    fn visit_paths(&self, f: &mut dyn FnMut(&Path));
}

impl HasPaths for StrTemplate {
    fn visit_paths(&self, f: &mut dyn FnMut(&Path)) {
        self.for_each_path(f);
    }
}

impl HasPaths for ValueTemplate {
    fn visit_paths(&self, f: &mut dyn FnMut(&Path)) {
        self.for_each_path(f);
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
        store_names: raw.state.keys().cloned().collect(),
        room_names: raw.rooms.keys().cloned().collect(),
        server_events: Vec::new(),
    };

    let path = raw.namespace.value.clone();
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        c.error(
            raw.namespace.referenced,
            format!("namespace `{path}` must start with `/` and contain no spaces, like `/workflow`"),
        );
    }

    let auth = match &raw.auth {
        Some(a) => {
            let refresh_event = a.value.refresh_event.clone().unwrap_or_else(|| DEFAULT_REFRESH_EVENT.to_string());
            if RESERVED_EVENTS.contains(&refresh_event.as_str()) || refresh_event.is_empty() {
                c.error(a.referenced, format!("refresh_event `{refresh_event}` is reserved"));
            }
            if let Some(limit) = a.value.connections_per_ip
                && (limit.max == 0 || limit.per.is_zero())
            {
                c.error(a.referenced, "connections_per_ip needs max >= 1 and a non-zero `per`");
            }
            AuthPolicy {
                required: a.value.required,
                require_tenant: a.value.require_tenant,
                refresh_event,
                cookie: a.value.cookie,
                connections_per_ip: a.value.connections_per_ip,
            }
        }
        None => AuthPolicy {
            required: true,
            require_tenant: false,
            refresh_event: DEFAULT_REFRESH_EVENT.to_string(),
            cookie: false,
            connections_per_ip: None,
        },
    };

    // Stores first: snapshots and templates refer to them.
    let mut stores = Vec::new();
    for (name, store) in &raw.state {
        let at = store.referenced;
        let kind = match (&store.value.records, &store.value.lists) {
            (Some(r), None) if r.max_per_tenant > 0 => StoreKind::Records { max_per_tenant: r.max_per_tenant },
            (None, Some(l)) if l.keep > 0 && l.max_keys_per_tenant > 0 => {
                StoreKind::Lists { keep: l.keep, max_keys_per_tenant: l.max_keys_per_tenant }
            }
            (Some(_), Some(_)) | (None, None) => {
                c.error(at, format!("store `{name}` needs exactly one of `records` or `lists`"));
                continue;
            }
            _ => {
                c.error(at, format!("store `{name}`: limits must be at least 1"));
                continue;
            }
        };
        let mut rules = Vec::new();
        for rule in &store.value.on {
            let at = rule.referenced;
            let r = &rule.value;
            let types = match TypeMatcher::parse(&r.types) {
                Ok(t) => t,
                Err(e) => {
                    c.error(at, e);
                    continue;
                }
            };
            let Some(key_text) = &r.key else {
                c.error(at, "a state rule needs a `key`");
                continue;
            };
            let Some(key) = c.str_template(key_text, Ctx::StoreRule, false, at, "key") else { continue };
            let many = |c: &mut Checker, v: &Value, what: &str| -> Vec<ValueTemplate> {
                let items: Vec<&Value> = match v {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                items.into_iter().filter_map(|v| c.value_template(v, Ctx::StoreRule, false, at, what)).collect()
            };
            let ops = [r.merge.is_some(), r.replace.is_some(), r.append.is_some(), r.delete];
            if ops.iter().filter(|&&o| o).count() != 1 {
                c.error(at, "a state rule needs exactly one of `merge`, `replace`, `append` or `delete: true`");
                continue;
            }
            let op = match (kind, r) {
                (StoreKind::Records { .. }, r) if r.merge.is_some() => {
                    StoreOp::Merge(many(&mut c, r.merge.as_ref().expect("checked"), "merge"))
                }
                (StoreKind::Records { .. }, r) if r.replace.is_some() => {
                    match c.value_template(r.replace.as_ref().expect("checked"), Ctx::StoreRule, false, at, "replace") {
                        Some(t) => StoreOp::Replace(t),
                        None => continue,
                    }
                }
                (StoreKind::Records { .. }, r) if r.delete => StoreOp::Delete,
                (StoreKind::Lists { .. }, r) if r.append.is_some() => {
                    StoreOp::Append(many(&mut c, r.append.as_ref().expect("checked"), "append"))
                }
                (StoreKind::Records { .. }, _) => {
                    c.error(at, format!("store `{name}` holds records: use `merge`, `replace` or `delete`"));
                    continue;
                }
                (StoreKind::Lists { .. }, _) => {
                    c.error(at, format!("store `{name}` holds lists: use `append`"));
                    continue;
                }
            };
            rules.push(StoreRule { types, key, op });
        }
        stores.push(StoreSpec { name: name.clone(), kind, rules });
    }

    // Room families.
    let mut rooms = Vec::new();
    for (name, room) in &raw.rooms {
        let r = &room.value;
        let pattern = match RoomPattern::parse(&r.pattern.value) {
            Ok(p) => p,
            Err(e) => {
                c.error(r.pattern.referenced, e);
                continue;
            }
        };
        let mut access = Vec::new();
        for rule in &r.access {
            let mut params = Vec::new();
            for (param, value) in &rule.value.params {
                let Some(i) = pattern.param_index(param) else {
                    c.error(rule.referenced, format!("room `{name}` has no parameter `{param}`"));
                    continue;
                };
                if let Some(t) = c.str_template(value, Ctx::Access, false, rule.referenced, &format!("params.{param}"))
                {
                    params.push((i, t));
                }
            }
            access.push(AccessRule { anonymous: rule.value.anonymous, roles: rule.value.roles.clone(), params });
        }
        let snapshot = match &r.snapshot {
            None => None,
            Some(s) => {
                let at = s.referenced;
                match stores.iter().position(|st| st.name == s.value.store) {
                    None => {
                        c.error(
                            at,
                            format!("unknown store `{}` (known: {})", s.value.store, list_or_none(&c.store_names)),
                        );
                        None
                    }
                    Some(store) => {
                        let key = s.value.key.as_ref().and_then(|k| c.str_template(k, Ctx::Snapshot, true, at, "key"));
                        let matches: Vec<_> = s
                            .value
                            .matches
                            .iter()
                            .filter_map(|(field, v)| {
                                c.str_template(v, Ctx::Snapshot, true, at, &format!("match.{field}"))
                                    .map(|t| (field.clone(), t))
                            })
                            .collect();
                        if !matches.is_empty() && matches!(stores[store].kind, StoreKind::Records { .. }) {
                            c.error(at, "`match` filters list entries; this store holds records");
                        }
                        Some(SnapshotSpec {
                            store,
                            key,
                            matches,
                            limit: s.value.limit.unwrap_or(DEFAULT_SNAPSHOT_LIMIT).max(1),
                        })
                    }
                }
            }
        };
        let scope = match r.scope {
            RawScope::Tenant => RoomScope::Tenant,
            RawScope::Global => RoomScope::Global,
        };
        rooms.push(RoomFamily { name: name.clone(), pattern, scope, server_only: r.server_only, access, snapshot });
    }
    if rooms.len() != raw.rooms.len() {
        // A broken pattern: references to it would only add noise.
        return Err(c.errors);
    }

    let on_connect = c.actions(&raw.on_connect, Ctx::OnConnect, &rooms, None);

    let mut events = std::collections::HashMap::new();
    for (name, event) in &raw.events {
        let at = event.referenced;
        if RESERVED_EVENTS.contains(&name.as_str()) || *name == auth.refresh_event {
            c.error(at, format!("`{name}` is reserved and cannot be a client event"));
        }
        let e = &event.value;
        let schema = match &e.payload {
            Some(raw_schema) => match PayloadSchema::compile(raw_schema) {
                Ok(s) => Some(s),
                Err(err) => {
                    c.error(at, format!("payload: {err}"));
                    None
                }
            },
            None => None,
        };
        if let Some(limit) = e.rate_limit
            && (limit.max == 0 || limit.per.is_zero())
        {
            c.error(at, "rate_limit needs max >= 1 and a non-zero `per`");
        }
        if e.actions.is_empty() {
            c.error(at, format!("event `{name}` does nothing: give it a `do` list"));
        }
        let actions = c.actions(&e.actions, Ctx::ClientEvent, &rooms, schema.as_ref());
        events.insert(
            name.clone(),
            EventSpec { name: name.clone(), rate_limit: e.rate_limit, schema, max_bytes: e.max_size, actions },
        );
    }

    let mut routes = Vec::new();
    if let Some(publish) = &raw.publish {
        let default_emit = publish.value.emit.as_ref();
        for route in &publish.value.routes {
            let at = route.referenced;
            let r = &route.value;
            let types = match TypeMatcher::parse(&r.types) {
                Ok(t) => t,
                Err(e) => {
                    c.error(at, e);
                    continue;
                }
            };
            let Some(raw_emit) = r.emit.as_ref().or(default_emit) else {
                c.error(at, "this route emits nothing: give it an `emit`, or give `publish` a default `emit`");
                continue;
            };
            let Some(emit) = c.emit(raw_emit, Ctx::Route, false, at) else { continue };
            if r.to.is_empty() {
                c.error(at, "a route needs at least one room in `to`");
            }
            let mut targets = Vec::new();
            for target in &r.to {
                let t = &target.value;
                let Some(room) = rooms.iter().position(|f| f.name == t.room) else {
                    c.error(
                        target.referenced,
                        format!("unknown room `{}` (known: {})", t.room, list_or_none(&c.room_names)),
                    );
                    continue;
                };
                let pattern = &rooms[room].pattern;
                let mut params = vec![None; pattern.params().len()];
                for (name, value) in &t.params {
                    match pattern.param_index(name) {
                        Some(i) => {
                            params[i] =
                                c.str_template(value, Ctx::Route, false, target.referenced, &format!("params.{name}"))
                        }
                        None => c.error(target.referenced, format!("room `{}` has no parameter `{name}`", t.room)),
                    }
                }
                for (i, p) in pattern.params().iter().enumerate() {
                    if !p.optional && params[i].is_none() {
                        c.error(target.referenced, format!("room `{}` needs parameter `{}`", t.room, p.name));
                    }
                }
                targets.push(RouteTarget { room, params, exact: t.exact });
            }
            routes.push(Route { types, require: r.require.clone(), targets, emit });
        }
    }

    let mut timers = Vec::new();
    for timer in &raw.every {
        let at = timer.referenced;
        let t = &timer.value;
        let interval = if t.interval == "metrics_interval" {
            TimerInterval::Metrics
        } else {
            match crate::config::parse_duration(&t.interval) {
                Ok(d) if d >= std::time::Duration::from_millis(100) => TimerInterval::Fixed(d),
                Ok(_) => {
                    c.error(at, "a timer interval must be at least 100ms");
                    continue;
                }
                Err(e) => {
                    c.error(at, format!("interval: {e}, or `metrics_interval`"));
                    continue;
                }
            }
        };
        let Some(room) = rooms.iter().position(|f| f.name == t.room) else {
            c.error(at, format!("unknown room `{}` (known: {})", t.room, list_or_none(&c.room_names)));
            continue;
        };
        if rooms[room].pattern.params().iter().any(|p| !p.optional) {
            c.error(at, format!("timers emit into rooms without required parameters; `{}` has some", t.room));
        }
        if let Some(emit) = c.emit(&t.emit, Ctx::Timer, false, at) {
            timers.push(TimerSpec { interval, room, emit });
        }
    }

    if c.errors.is_empty() {
        let server_events = c.server_events;
        Ok(NamespaceSpec {
            path,
            file: file.to_string(),
            auth,
            rooms,
            on_connect,
            events,
            stores,
            routes,
            timers,
            server_events,
        })
    } else {
        Err(c.errors)
    }
}
