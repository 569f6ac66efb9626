//! The actions of `on_connect` and of client events, run for one member (a socket of either
//! front): join and leave rooms (with their access rules and the member's tenant), emit, reply,
//! relay a client's event to the other members of its rooms, and forward it to a backend
//! (handed over without waiting: `forward`). Also the template scope those
//! actions render with, and room snapshots (`room.snapshot`). Everything here works on a
//! [`SpecRuntime`] and a [`Member`]; the fronts implement the member.

use std::{borrow::Cow, cell::OnceCell};

use serde_json::{Map, Value, json};

use super::{
    errors::ClientError,
    forward::{ForwardCall, PendingAnswer},
    member::Member,
    member_state::MemberState,
    recovery::{self, JoinReads},
    runtime::SpecRuntime,
};
use crate::clock::iso_now;
use crate::{
    auth::Identity,
    rooms::{self, RoomScope},
    spec::{
        Action, EmitSpec, FamilyRef, ForwardSpec, JoinHistory, RelaySpec, RoomFamily, RoomId, RoomTarget,
        template::{Root, Scope, StrTemplate, key_string},
    },
};

/// Longest event name a client may relay.
const MAX_RELAY_EVENT_LEN: usize = 100;
/// Most rooms one relay may name.
const MAX_RELAY_ROOMS: usize = 20;

/// A room a socket just joined: what `room.*` describes.
struct JoinedRoom {
    family: RoomId,
    /// `{key, name, params}`.
    json: Value,
}

/// What a client event's actions answer its ack with.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The `reply`'s data, now.
    Now(Value),
    /// A backend's answer, later (`forward` with `reply`).
    Later(PendingAnswer),
}

/// Everything an action list of one member needs, and the scope its templates render in.
pub(crate) struct ActionCtx<'a, M: Member> {
    ns: &'a SpecRuntime,
    socket: &'a M,
    session: &'a MemberState,
    identity: &'a Identity,
    payload: Option<&'a Value>,
    /// Set when the actions answer a client event: server-only rooms are then off limits.
    pub from_client: bool,
    /// The client event's name, when the actions answer one (what `forward` sends on).
    pub event: Option<&'a str>,
    /// Where joins with `since` or `replay` read their room's history (the front holds its
    /// lock); `None`: such joins read nothing.
    pub history: Option<&'a mut dyn JoinReads>,
    room: Option<JoinedRoom>,
    now: String,
    user_json: OnceCell<Value>,
    socket_json: OnceCell<Value>,
}

impl<'a, M: Member> ActionCtx<'a, M> {
    pub(crate) fn new(
        ns: &'a SpecRuntime,
        socket: &'a M,
        session: &'a MemberState,
        identity: &'a Identity,
        payload: Option<&'a Value>,
    ) -> Self {
        Self {
            ns,
            socket,
            session,
            identity,
            payload,
            from_client: false,
            event: None,
            history: None,
            room: None,
            now: iso_now(),
            user_json: OnceCell::new(),
            socket_json: OnceCell::new(),
        }
    }

    /// Runs `actions` in order, stopping at the first failure. Returns what answers the ack: the
    /// data of the `reply`, or the answer a `forward` waits for.
    pub(crate) fn run(&mut self, actions: &[Action]) -> Result<Option<Answer>, ClientError> {
        let mut reply = None;
        for action in actions {
            match action {
                Action::Join { target, optional, filters, history } => {
                    self.join(target, *optional, filters, history)?
                }
                Action::Leave { target } => self.leave(target)?,
                Action::Emit(emit) => {
                    self.emit(emit);
                }
                Action::Reply(r) => {
                    let mut data = r.data.as_ref().and_then(|d| d.render(self)).unwrap_or(Value::Null);
                    // A join with `since` says whether it recovered, beside the reply's fields.
                    if let (Some(recovered), Value::Object(fields)) =
                        (self.history.as_ref().and_then(|h| h.recovered()), &mut data)
                    {
                        fields.insert("recovered".into(), Value::Bool(recovered));
                    }
                    if let Some(event) = &r.event {
                        self.send(&event.render_text(self), Some(&data));
                    }
                    reply = Some(Answer::Now(data));
                }
                Action::Relay(relay) => self.relay(relay)?,
                Action::Forward(forward) => {
                    if let Some(pending) = self.forward(forward)? {
                        reply = Some(Answer::Later(pending));
                    }
                }
            }
        }
        Ok(reply)
    }

    fn emit(&self, emit: &EmitSpec) {
        let data = emit.data.as_ref().and_then(|d| d.render(self));
        self.send(&emit.event.render_text(self), data.as_ref());
    }

    fn send(&self, event: &str, data: Option<&Value>) {
        self.socket.send(event, data);
    }

    /// Hands the client's event, with the socket's identity, to its destination, without
    /// waiting; returns the answer to wait for when the spec asks for one.
    fn forward(&self, forward: &ForwardSpec) -> Result<Option<PendingAnswer>, ClientError> {
        let Some(backends) = self.ns.shared.backends.get() else {
            return Err(ClientError::backend_unavailable("this gateway has no backends configured"));
        };
        let event = self.event.unwrap_or_default().to_string();
        let data = match &forward.data {
            Some(template) => template.render(self).unwrap_or(Value::Null),
            None => self.payload.cloned().unwrap_or(Value::Null),
        };
        let identity = self.identity;
        // The public id, never the Engine.IO session id (a credential).
        let socket = json!({
            "id": self.session.public_id.to_string(),
            "transport": self.socket.transport(),
            "userId": identity.user_id.as_deref(),
            "tenantId": identity.tenant_id.as_deref(),
            "roles": identity.roles.iter().map(|r| r.as_ref()).collect::<Vec<&str>>(),
            "authenticated": identity.is_authenticated(),
        });
        let body = json!({
            "event": event,
            "data": data,
            "namespace": self.ns.spec.path,
            "socket": socket,
            "timestamp": self.now,
        });
        let (sender, receiver) = match forward.reply {
            true => {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                (Some(sender), Some(receiver))
            }
            false => (None, None),
        };
        let within = backends.forward(ForwardCall {
            to: forward.to.clone(),
            event,
            tenant: identity.tenant_id.as_deref().map(str::to_string),
            body,
            timeout: forward.timeout,
            answer: sender,
        })?;
        Ok(receiver.map(|answer| PendingAnswer {
            answer,
            event: forward.event.as_ref().map(|e| e.render_text(self)),
            within,
        }))
    }

    /// Sends the client's event to the other members of the named rooms, which the socket must
    /// be in, under a name the server itself never sends.
    fn relay(&self, relay: &RelaySpec) -> Result<(), ClientError> {
        let event = relay.event.render_text(self);
        if event.is_empty() || event.len() > MAX_RELAY_EVENT_LEN {
            return Err(ClientError::validation(format!(
                "the event name must be 1 to {MAX_RELAY_EVENT_LEN} characters"
            )));
        }
        if !self.ns.spec.relayable(&event, relay.deny.as_ref()) {
            return Err(ClientError::permission(format!(
                "`{}` cannot be sent by a client: the name is reserved or used by the server",
                truncate(&event)
            )));
        }
        let names: Vec<String> = match relay.rooms.render_value(self) {
            Some(Value::String(name)) => vec![name],
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                items.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            _ => return Err(ClientError::validation("`rooms` must be a room name or a list of room names")),
        };
        if names.is_empty() || names.len() > MAX_RELAY_ROOMS {
            return Err(ClientError::validation(format!("name 1 to {MAX_RELAY_ROOMS} rooms to send to")));
        }
        let current = self.socket.rooms();
        let mut targets: Vec<String> = Vec::with_capacity(names.len());
        for name in &names {
            let internal = self
                .ns
                .spec
                .family_of(name)
                .and_then(|(id, values)| self.internal_name(id, &values))
                .filter(|internal| current.iter().any(|r| r == internal))
                .ok_or_else(|| ClientError::permission(format!("join `{}` before sending to it", truncate(name))))?;
            targets.push(internal);
        }
        targets.sort_unstable();
        targets.dedup();
        // Later parts replace whole top-level fields: a client's `from: {..}` must not survive
        // field by field under the gateway's.
        let mut data = Value::Null;
        for part in relay.data.iter().filter_map(|t| t.render(self)) {
            match (&mut data, part) {
                (Value::Object(fields), Value::Object(over)) => fields.extend(over),
                (slot, part) => *slot = part,
            }
        }
        self.ns.shared.metrics.relayed.inc();
        self.socket.relay(self.session, targets, event, data)
    }

    /// Which family and parameter values a target means, rendered now.
    fn resolve(&self, target: &RoomTarget) -> Result<(RoomId, Vec<Option<String>>), ClientError> {
        let spec = &self.ns.spec;
        match target {
            RoomTarget::Family { family, params } => {
                let id = match family {
                    FamilyRef::Fixed(id) => *id,
                    FamilyRef::Dynamic(t) => {
                        let name = t.render_text(self);
                        spec.room_id(&name).ok_or_else(|| {
                            ClientError::validation(format!(
                                "`{}` is not a room type here (types: {})",
                                truncate(&name),
                                spec.client_room_types()
                            ))
                        })?
                    }
                };
                let values = spec.rooms[id]
                    .pattern
                    .params()
                    .iter()
                    .map(|p| {
                        params
                            .iter()
                            .find(|(name, _)| *name == p.name)
                            .and_then(|(_, t)| t.render_key(self))
                            .filter(|v| !v.is_empty())
                    })
                    .collect();
                Ok((id, values))
            }
            RoomTarget::Name(t) => {
                let name = t.render_text(self);
                spec.family_of(&name).ok_or_else(|| {
                    ClientError::validation(format!(
                        "`{}` is not a room name here (rooms: {})",
                        truncate(&name),
                        spec.client_room_patterns()
                    ))
                })
            }
        }
    }

    /// The internal room name for a family and values, checking what applies to this socket.
    fn room_for(&self, id: RoomId, values: &[Option<String>]) -> Result<(String, String), ClientError> {
        let family = &self.ns.spec.rooms[id];
        if self.from_client && family.server_only {
            return Err(ClientError::permission(format!("room `{}` is managed by the server", family.name)));
        }
        let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        let visible = family.pattern.render(&refs).ok_or_else(|| {
            let missing: Vec<&str> = family
                .pattern
                .params()
                .iter()
                .zip(values)
                .filter(|(p, v)| !p.optional && v.is_none())
                .map(|(p, _)| p.name.as_str())
                .collect();
            if missing.is_empty() {
                ClientError::validation(format!("the room name for `{}` is too long", family.name))
            } else {
                ClientError::validation(format!("room `{}` needs {}", family.name, missing.join(", ")))
            }
        })?;
        // A name belongs to the first family that parses it; a family's params must not spell a
        // name of another family (whose access rules would then be bypassed).
        if self.ns.spec.family_of(&visible).map(|(owner, _)| owner) != Some(id) {
            return Err(ClientError::validation(format!(
                "`{}` is not a `{}` room name",
                truncate(&visible),
                family.name
            )));
        }
        let internal = self.internal_name(id, values).ok_or_else(|| {
            if self.identity.is_authenticated() {
                ClientError::permission(format!("room `{visible}` belongs to a tenant, and this connection has none"))
            } else {
                ClientError::permission(format!(
                    "`{visible}` is a tenant's room, and anonymous connections have none: connect with a token"
                ))
            }
        })?;
        Ok((visible, internal))
    }

    /// The adapter's name for a room of this socket's tenant (`None`: a tenant room, no tenant).
    fn internal_name(&self, id: RoomId, values: &[Option<String>]) -> Option<String> {
        let family = &self.ns.spec.rooms[id];
        let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        let visible = family.pattern.render(&refs)?;
        rooms::internal_name(family.scope, self.identity.tenant_id.as_deref(), &visible)
    }

    fn join(
        &mut self,
        target: &RoomTarget,
        optional: bool,
        filters: &[(String, StrTemplate)],
        history: &JoinHistory,
    ) -> Result<(), ClientError> {
        let since = match history.since.as_ref().and_then(|t| t.render_value(self)) {
            None | Some(Value::Null) => None,
            Some(since) => Some(recovery::parse_since(&since).map_err(ClientError::validation)?),
        };
        let (id, values) = self.resolve(target)?;
        let (visible, internal) = match self.room_for(id, &values) {
            Ok(names) => names,
            Err(_) if optional => return Ok(()),
            Err(e) => return Err(e),
        };
        let family = &self.ns.spec.rooms[id];
        if !self.allowed(family, &values) {
            if optional {
                return Ok(());
            }
            return Err(ClientError::permission(format!("not allowed to join `{visible}`")));
        }
        let wanted =
            if family.filters.is_empty() { vec![internal.clone()] } else { self.filtered(id, &internal, filters)? };
        let current = self.socket.rooms();
        // Joining a filtered room again replaces its filters: the variants not chosen now go.
        let dropped: Vec<&String> = current
            .iter()
            .filter(|r| !family.filters.is_empty() && rooms::is_variant_of(r, &internal) && !wanted.contains(r))
            .collect();
        let added: Vec<String> = wanted.into_iter().filter(|r| !current.contains(r)).collect();
        let max = self.ns.shared.limits.max_rooms_per_socket;
        if current.len() - dropped.len() + added.len() > max {
            return Err(ClientError::rate_limit(format!("too many rooms: a socket may be in {max} at most"), None));
        }
        let kept = current.iter().filter(|r| !dropped.contains(r));
        rooms::check_member_rooms(kept.chain(&added).map(String::as_str), max)
            .map_err(|message| ClientError::rate_limit(message, None))?;
        let was_in = current.iter().any(|r| rooms::is_variant_of(r, &internal));
        for room in dropped {
            self.socket.leave(room);
        }
        for room in added {
            self.socket.join(room);
        }
        self.socket.joined(&internal);
        if history.reads() {
            self.read_history(id, &internal, since, history.replay);
        }
        if !was_in {
            self.ns.presence_changed(&internal, self.identity.user_id.as_deref(), true);
        }
        self.room = Some(JoinedRoom { family: id, json: self.room_json(id, &visible, &values) });
        Ok(())
    }

    /// Reads room `internal` (of family `id`) from `since`, or its last `replay` events, for
    /// the front to send after the event's answer.
    fn read_history(&mut self, id: RoomId, internal: &str, since: Option<(u64, String)>, replay: usize) {
        let Some(reads) = self.history.as_mut() else { return };
        if self.ns.spec.rooms[id].history.is_none() {
            if since.is_some() {
                reads.not_recovered();
            }
            return;
        }
        let variants: Vec<String> = self
            .socket
            .rooms()
            .iter()
            .filter(|r| rooms::is_variant_of(r, internal))
            .map(|r| r[internal.len()..].to_string())
            .collect();
        reads.read(internal, &variants, since, replay);
    }

    /// The filtered variants of room `internal` a join chooses: every combination of the values
    /// given per filter (a list, one value, or none for any).
    fn filtered(
        &self,
        id: RoomId,
        internal: &str,
        given: &[(String, StrTemplate)],
    ) -> Result<Vec<String>, ClientError> {
        let family = &self.ns.spec.rooms[id];
        let mut choices: Vec<(&str, Vec<Option<String>>)> = Vec::with_capacity(family.filters.len());
        for filter in &family.filters {
            let value = given.iter().find(|(name, _)| name == filter).and_then(|(_, t)| t.render_value(self));
            let values: Vec<Option<String>> =
                match value {
                    None | Some(Value::Null) => vec![None],
                    Some(Value::Array(items)) if items.is_empty() => vec![None],
                    Some(Value::Array(items)) => {
                        items.iter().map(|v| key_string(v).map(Some)).collect::<Option<_>>().ok_or_else(|| {
                            ClientError::validation(format!("filter `{filter}` takes strings or numbers"))
                        })?
                    }
                    Some(v) => vec![Some(key_string(&v).ok_or_else(|| {
                        ClientError::validation(format!("filter `{filter}` takes strings or numbers"))
                    })?)],
                };
            choices.push((filter, values));
        }
        rooms::filter_variants(internal, &choices).map_err(ClientError::validation)
    }

    fn leave(&mut self, target: &RoomTarget) -> Result<(), ClientError> {
        let (id, values) = self.resolve(target)?;
        let (visible, internal) = self.room_for(id, &values)?;
        // Leaving a room one is not in is not an error: unsubscribing twice is harmless. A
        // filtered room is left with every filter combination chosen.
        let mut was_in = false;
        for room in self.socket.rooms().iter().filter(|r| rooms::is_variant_of(r, &internal)) {
            self.socket.leave(room);
            was_in = true;
        }
        if was_in {
            self.ns.presence_changed(&internal, self.identity.user_id.as_deref(), false);
        }
        self.room = Some(JoinedRoom { family: id, json: self.room_json(id, &visible, &values) });
        Ok(())
    }

    /// Leaves every room whose access rules no longer let this socket in (its identity changed:
    /// a token refresh with fewer roles); returns their visible names.
    pub(crate) fn leave_rooms_no_longer_allowed(&self) -> Vec<String> {
        let spec = &self.ns.spec;
        let mut left = Vec::new();
        let mut gone = Vec::new();
        for internal in self.socket.rooms() {
            let Some((_, visible)) = rooms::split_internal(&internal) else { continue };
            let Some((id, values)) = spec.family_of(visible) else { continue };
            if !self.allowed(&spec.rooms[id], &values) {
                left.push(visible.to_string());
                self.socket.leave(&internal);
                gone.push(internal);
            }
        }
        self.ns.presence_gone(gone.iter().map(String::as_str), self.identity.user_id.as_deref());
        left.sort_unstable();
        left
    }

    /// What `room` describes: `{key, name, params}`.
    fn room_json(&self, id: RoomId, visible: &str, values: &[Option<String>]) -> Value {
        let family = &self.ns.spec.rooms[id];
        let params: Map<String, Value> = family
            .pattern
            .params()
            .iter()
            .zip(values)
            .filter_map(|(p, v)| v.as_ref().map(|v| (p.name.clone(), json!(v))))
            .collect();
        json!({ "key": visible, "name": family.name, "params": params })
    }

    /// The family's access rules: any rule may let the socket in; without rules, any
    /// authenticated socket may join.
    fn allowed(&self, family: &RoomFamily, values: &[Option<String>]) -> bool {
        if family.access.is_empty() {
            return self.identity.is_authenticated();
        }
        family.access.iter().any(|rule| {
            (rule.anonymous || self.identity.is_authenticated())
                && (rule.roles.is_empty() || self.identity.has_any_role(&rule.roles))
                && rule.params.iter().all(|(i, t)| {
                    let want = t.render_key(self);
                    values[*i].is_some() && values[*i] == want
                })
        })
    }

    /// The snapshot of the room just joined, read in the state of its tenant.
    fn snapshot(&self) -> Option<Value> {
        let room = self.room.as_ref()?;
        let family = &self.ns.spec.rooms[room.family];
        let snap = family.snapshot.as_ref()?;
        let tenant = match family.scope {
            RoomScope::Tenant => self.identity.tenant_id.as_deref().unwrap_or_default(),
            RoomScope::Global => "",
        };
        let key = snap.key.as_ref().and_then(|k| k.render_key(self)).filter(|k| !k.is_empty());
        let filters: Vec<(&str, String)> =
            snap.matches.iter().filter_map(|(field, t)| t.render_key(self).map(|v| (field.as_str(), v))).collect();
        Some(
            self.ns
                .stores
                .read_filtered(snap.store, tenant, key.as_deref(), &filters, snap.limit)
                .unwrap_or(Value::Null),
        )
    }
}

impl<M: Member> Scope for ActionCtx<'_, M> {
    fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
        match root {
            Root::Socket => Some(Cow::Borrowed(self.socket_json.get_or_init(
                || json!({ "id": self.session.public_id.to_string(), "transport": self.socket.transport() }),
            ))),
            Root::User => Some(Cow::Borrowed(self.user_json.get_or_init(|| self.identity.to_json()))),
            Root::Payload => self.payload.map(Cow::Borrowed),
            Root::Room => self.room.as_ref().map(|r| Cow::Borrowed(&r.json)),
            Root::Now => Some(Cow::Owned(Value::String(self.now.clone()))),
            _ => None,
        }
    }

    fn computed(&self, root: Root, field: &str) -> Option<Cow<'_, Value>> {
        let value = match (root, field) {
            (Root::Room, "snapshot") => self.snapshot(),
            (Root::Socket, "rooms") => {
                let mut visible: Vec<String> = self
                    .socket
                    .rooms()
                    .iter()
                    .filter_map(|r| rooms::split_internal(r).map(|(_, v)| v.to_string()))
                    .collect();
                visible.sort_unstable();
                Some(json!(visible))
            }
            (Root::Gateway, "stats") => Some(self.ns.shared.gateway_stats()),
            _ => None,
        };
        value.map(Cow::Owned)
    }

    fn state(&self, store: &str, key: Option<&str>) -> Option<Value> {
        let id = self.ns.spec.store_id(store)?;
        let tenant = self.identity.tenant_id.as_deref().unwrap_or_default();
        self.ns.stores.read(id, tenant, key, 100)
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_string();
    }
    let mut cut = 80;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}
