//! Client events (`events:`) and what they and `on_connect` do: join and leave rooms (fixed
//! families, or one a payload names), emit, reply (the ack), relay, and forward to a backend.
//! `room` is tracked from one action to the next, so later templates know which families it
//! can be of.

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::{
    Checker, if_given, list_or_none,
    place::{Ctx, FamilyView, Place, RoomVar},
};
use crate::spec::{
    Action, AuthPolicy, EmitSpec, EventSpec, FamilyRef, ForwardSpec, JoinHistory, RESERVED_EVENTS, RelaySpec,
    ReplySpec, RoomFamily, RoomTarget, SpecPlace,
    raw::{Named, RawAction, RawEmit, RawEvent, RawForward, RawRelay, RawRoomTarget},
    schema::PayloadSchema,
    template::{Expr, Path, Root, Segment, StrTemplate},
};

/// Most events a join's `replay` sends: they go out at once, through the socket's queue.
const MAX_REPLAY: usize = 1_000;

/// The one thing an action does.
#[derive(Clone, Copy)]
enum ActionKind<'r> {
    Join(&'r RawRoomTarget),
    Leave(&'r RawRoomTarget),
    Emit(&'r RawEmit),
    Reply(&'r RawEmit),
    Relay(&'r RawRelay),
    Forward(&'r RawForward),
}

/// Longest `timeout` a `forward` may ask for (a backend's own is at most this too).
const MAX_FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl<'r> ActionKind<'r> {
    /// The action's one key; the error says what is wrong when it has none or several.
    fn of(raw: &'r RawAction) -> Result<Self, &'static str> {
        let RawAction { join, leave, emit, reply, relay, forward } = raw;
        let given: Vec<ActionKind> = [
            join.as_ref().map(ActionKind::Join),
            leave.as_ref().map(ActionKind::Leave),
            emit.as_ref().map(ActionKind::Emit),
            reply.as_ref().map(ActionKind::Reply),
            relay.as_ref().map(ActionKind::Relay),
            forward.as_ref().map(ActionKind::Forward),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.as_slice() {
            [one] => Ok(*one),
            [] => Err("an action needs one of `join`, `leave`, `emit`, `reply`, `relay` or `forward`"),
            _ => Err(
                "an action does one thing: give one of `join`, `leave`, `emit`, `reply`, `relay` or `forward` per item",
            ),
        }
    }
}

impl Checker<'_> {
    pub(super) fn event(
        &mut self,
        name: &Spanned<String>,
        raw: &RawEvent,
        auth: &AuthPolicy,
        rooms: &[RoomFamily],
    ) -> EventSpec {
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

    pub(super) fn actions(
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
                    let history = self.join_history(t, family, &place);
                    target.map(|target| Action::Join { target, optional, filters, history })
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
                    let given = [t.since.as_ref().map(|s| s.referenced), t.replay.as_ref().map(|r| r.referenced)];
                    for at in given.into_iter().flatten() {
                        self.error(at, "`since` and `replay` only apply to `join`");
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
                ActionKind::Forward(f) => {
                    let forward = self.forward(f, &place, at);
                    if forward.as_ref().is_some_and(|f| f.reply) {
                        if replied {
                            self.error(
                                at,
                                "only one `reply` per event: a `forward` with `reply: true` answers the ack (give the others `reply: false`)",
                            );
                        }
                        replied = true;
                    }
                    forward.map(Action::Forward)
                }
            };
            out.extend(compiled);
        }
        out
    }

    /// A join's `since` (a template of the client's last position) and `replay` (1 to
    /// [`MAX_REPLAY`] events); a fixed family must keep history for either.
    fn join_history(&mut self, raw: &RawRoomTarget, family: Option<&RoomFamily>, place: &Place) -> JoinHistory {
        let since = raw.since.as_ref().and_then(|s| self.str_template(s, place, "since"));
        let replay = match &raw.replay {
            None => 0,
            Some(r) if (1..=MAX_REPLAY).contains(&r.value) => r.value,
            Some(r) => {
                self.error(r.referenced, format!("replay must be 1 to {MAX_REPLAY} events"));
                0
            }
        };
        let given = raw.since.as_ref().map(|s| s.referenced).or(raw.replay.as_ref().map(|r| r.referenced));
        if let (Some(family), Some(at)) = (family, given)
            && family.history.is_none()
        {
            self.error(
                at,
                format!("room `{}` keeps no history to read: give the family `history: {{size, ttl}}`", family.name),
            );
        }
        JoinHistory { since, replay }
    }

    pub(super) fn emit(&mut self, raw: &RawEmit, place: &Place, at: Location) -> Option<EmitSpec> {
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
    pub(super) fn event_name(&mut self, text: &Spanned<String>, place: &Place) -> Option<StrTemplate> {
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

    pub(super) fn reply(&mut self, raw: &RawEmit, place: &Place) -> Option<ReplySpec> {
        let event = raw.event.as_ref().map(|e| self.event_name(e, place));
        let data = raw.data.as_ref().map(|v| self.value_template(v, place, "data"));
        Some(ReplySpec { event: if_given(event)?, data: if_given(data)? })
    }

    pub(super) fn relay(&mut self, raw: &RawRelay, place: &Place, at: Location) -> Option<RelaySpec> {
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

    /// `forward: {to, reply, timeout, event, data}`. Whether a backend called `to` exists is
    /// configuration, checked when it is known (`crate::spec::check_destinations`).
    pub(super) fn forward(&mut self, raw: &RawForward, place: &Place, at: Location) -> Option<ForwardSpec> {
        if place.ctx != Ctx::ClientEvent {
            self.error(at, "`forward` sends a client's event on; it belongs in a client event's `do`");
            return None;
        }
        let to = raw.to.value.trim();
        if to.is_empty() {
            self.error(raw.to.referenced, "`to` names a backend (of BACKENDS_FILE), or `stream`");
        }
        let stream = to == crate::spec::STREAM_DESTINATION;
        let reply = match &raw.reply {
            Some(r) if r.value && stream => {
                self.error(r.referenced, "the backend event stream does not answer: `reply: true` needs a backend");
                false
            }
            Some(r) => r.value,
            None => !stream,
        };
        let timeout = raw.timeout.as_ref().and_then(|t| {
            if stream {
                self.error(t.referenced, "`timeout` bounds a backend's call; the event stream has none");
                return None;
            }
            match crate::spec::durations::parse_duration(&t.value) {
                Ok(d) if !d.is_zero() && d <= MAX_FORWARD_TIMEOUT => Some(d),
                Ok(_) => {
                    self.error(t.referenced, "`timeout` must be from 1ms to 2m");
                    None
                }
                Err(e) => {
                    self.error(t.referenced, format!("timeout: {e}"));
                    None
                }
            }
        });
        let event = match &raw.event {
            Some(e) if !reply => {
                self.error(e.referenced, "`event` carries the backend's answer: it needs `reply: true`");
                None
            }
            Some(e) => self.event_name(e, place).map(Some),
            None => Some(None),
        };
        let data = raw.data.as_ref().map(|v| self.value_template(v, place, "data"));
        let to_at = SpecPlace { line: raw.to.referenced.line(), column: raw.to.referenced.column(), source_line: None };
        Some(ForwardSpec { to: to.to_string(), to_at, reply, timeout, event: event?, data: if_given(data)? })
    }

    /// The room of a `join` or `leave`, and what `room` is after it.
    pub(super) fn room_target(
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
    pub(super) fn family_target(
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
    pub(super) fn dynamic_families(
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
}
