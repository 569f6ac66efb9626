//! Room history on the Socket.IO front: a published event that reaches rooms whose family keeps
//! history is kept there (`crate::engine::history`) and sent with its position, and what a join
//! read from a history (`since`, `replay`: `crate::engine::recovery`) is sent to its socket.
//!
//! A position is `{offset, epoch, room}` (`room`: the room's visible name, which on `/workflow`
//! is the subscription key). It is a `position` field of the event's data when the data is an
//! object without one (the common case: additive for clients that do not look), and otherwise a
//! second argument `{position}` (data that is not an object, or has a `position` of its own,
//! stays exactly as it was; an event without data gets `null` first).
//!
//! Ordering: an event is kept and emitted under the history's lock, and a join reads and sends
//! under it too (`events`), so a socket gets each event once, from the history or live. The
//! emits are this node's (`local()`), which neither adapter makes wait, so they finish while the
//! lock is held; they are polled once to be sure.
//!
//! Across nodes: in a cluster an event is kept at the positions the cluster gave it (the same on
//! every node), so a socket recovers on any node. One that got events on the node it left that
//! this node has not applied yet is recovered with nothing yet, and the namespace's `Skips`
//! (`skips.rs`) notes, for it, the room's offsets it has: as those events arrive they are sent to
//! the room's other sockets only.

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use serde_json::{Value, value::RawValue};
use socketioxide::{BroadcastError, adapter::Adapter, extract::SocketRef, operators::BroadcastOperators, socket::Sid};

use super::namespace::NamespaceRuntime;
use crate::{
    engine::{
        history::{Kept, KeptHead, Position},
        publish::{Delivery, PublishedEvent},
    },
    metrics::DropReason,
    net::backlog::event_packet_len,
    rooms,
    spec::template::Rendered,
};

/// An event's arguments as kept and sent: one (the data, positioned) or two (the data, then
/// `{position}`).
enum Args {
    One(Box<RawValue>),
    Two(Box<RawValue>, Box<RawValue>),
}

/// Where a kept head's position goes (its [`KeptHead::form`]).
mod form {
    /// A second argument `{position}` after the data.
    pub(super) const SECOND_ARGUMENT: u8 = 0;
    /// Into the data object, which has no field.
    pub(super) const INTO_EMPTY_DATA: u8 = 1;
    /// Into the data object, after its fields.
    pub(super) const INTO_DATA: u8 = 2;
}

/// An event with history serialized once for every room it is kept in (`rooms`): `["event", data`
/// with the data's closing brace left open when the position goes into it. Each room's tail
/// ([`tail`]) closes it.
fn positioned_head(event: &str, data: Option<&Value>, rooms: usize) -> serde_json::Result<KeptHead> {
    let mut head = Vec::with_capacity(128);
    head.push(b'[');
    serde_json::to_writer(&mut head, event)?;
    head.push(b',');
    let form = match data {
        Some(Value::Object(fields)) if !fields.contains_key("position") => {
            serde_json::to_writer(&mut head, fields)?;
            head.pop(); // the object's `}`: the tail closes it after the position
            if fields.is_empty() { form::INTO_EMPTY_DATA } else { form::INTO_DATA }
        }
        other => {
            serde_json::to_writer(&mut head, other.unwrap_or(&Value::Null))?;
            form::SECOND_ARGUMENT
        }
    };
    Ok(KeptHead::new(head.into(), form, rooms))
}

/// [`positioned_head`] of data that is an object written as it renders (see
/// [`Delivery::data_object`]), without the position among its keys.
fn positioned_object_head(event: &str, data: &Rendered<'_>, rooms: usize) -> serde_json::Result<KeptHead> {
    let mut head = Vec::with_capacity(128);
    head.push(b'[');
    serde_json::to_writer(&mut head, event)?;
    head.push(b',');
    serde_json::to_writer(&mut head, data)?;
    head.pop(); // the object's `}`: the tail closes it after the position
    let form = if head.last() == Some(&b'{') { form::INTO_EMPTY_DATA } else { form::INTO_DATA };
    Ok(KeptHead::new(head.into(), form, rooms))
}

/// The whole event array of a head kept in room `room` (its visible name) at `position`: the head,
/// then `,"position": {..}}]` inside the data, or `,{"position": {..}}]` as a second argument.
fn positioned(head: &KeptHead, room: &str, position: &Position) -> serde_json::Result<Vec<u8>> {
    let mut whole = Vec::with_capacity(head.bytes.len() + 64 + room.len());
    whole.extend_from_slice(&head.bytes);
    match head.form {
        form::INTO_DATA => whole.extend_from_slice(b",\"position\":"),
        form::INTO_EMPTY_DATA => whole.extend_from_slice(b"\"position\":"),
        _ => whole.extend_from_slice(b",{\"position\":"),
    }
    whole.extend_from_slice(b"{\"offset\":");
    whole.extend_from_slice(position.offset.to_string().as_bytes());
    whole.extend_from_slice(b",\"epoch\":");
    serde_json::to_writer(&mut whole, &*position.epoch)?;
    whole.extend_from_slice(b",\"room\":");
    serde_json::to_writer(&mut whole, room)?;
    whole.extend_from_slice(b"}}]");
    Ok(whole)
}

impl Args {
    /// The arguments of `event` with `data`, at `position` in room `room` (its visible name).
    #[cfg(test)]
    fn positioned(data: Option<&Value>, room: &str, position: &Position) -> serde_json::Result<Self> {
        let text = positioned(&positioned_head("e", data, 1)?, room, position)?;
        Ok(Self::parse(&text).map(|(_, args)| args).expect("a positioned event reads back"))
    }

    /// `["event", args...]`: the event as a Socket.IO event array, which the history keeps.
    #[cfg(test)]
    fn text(&self, event: &str) -> String {
        let name = Value::String(event.to_string()).to_string();
        match self {
            Args::One(a) => format!("[{name},{}]", a.get()),
            Args::Two(a, b) => format!("[{name},{},{}]", a.get(), b.get()),
        }
    }

    /// Reads back what [`Self::text`] wrote: the event's name and its arguments.
    fn parse(text: &[u8]) -> Option<(String, Self)> {
        let items: Vec<Box<RawValue>> = serde_json::from_slice(text).ok()?;
        let mut items = items.into_iter();
        let name: String = serde_json::from_str(items.next()?.get()).ok()?;
        let args = match (items.next()?, items.next()) {
            (a, None) => Args::One(a),
            (a, Some(b)) => Args::Two(a, b),
        };
        Some((name, args))
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// Delivers an event that reaches rooms with history: kept in each (at the position the
    /// cluster gave it there, or one this node gives), then emitted once to each socket of this
    /// node, positioned in the first of those rooms it is in, in the route's order (as it was,
    /// when it is in none of them); not to a socket that has it already (`NamespaceRuntime::skips`).
    pub(super) fn deliver_kept(&self, event: &PublishedEvent, delivery: Delivery) {
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return };
        // Serialized once, shared by every room it is kept in; each room adds its position.
        let head = match delivery.data_object("position") {
            Some(object) => positioned_object_head(&delivery.event, &object, delivery.history.len()),
            None => positioned_head(&delivery.event, delivery.data().as_deref(), delivery.history.len()),
        };
        let head = match head {
            Ok(head) => head,
            Err(e) => {
                self.shared.metrics.dropped(DropReason::Unserializable, 1);
                tracing::error!(ns = %self.spec.path, error = %e, "a published event could not be serialized");
                return;
            }
        };
        // With no socket of this namespace here, the event is only kept: nothing to emit to.
        let emitting = self.has_sockets_here();
        let mut history = self.history.lock();
        // The rooms of earlier groups: a socket in one of them has had the event.
        let mut reached: Vec<String> = Vec::new();
        for kept in &delivery.history {
            let given = event.given_position(&self.spec.path, &kept.room);
            let appended =
                history.append_at(&kept.room, &kept.visible, kept.spec, kept.reach.clone(), given, head.clone());
            if !emitting {
                continue;
            }
            let position = history.position(&kept.room, &appended);
            let variants: Vec<String> =
                delivery.rooms.iter().filter(|r| rooms::is_variant_of(r, &kept.room)).cloned().collect();
            if let Ok(text) = positioned(&head, &kept.visible, &position)
                && let Some((_, args)) = Args::parse(&text)
            {
                let to = op.clone().to(variants.clone()).except(reached.clone());
                let having = self.skips.having(&kept.room, &position);
                match having.is_empty() {
                    true => self.emit_now(to, &delivery.event, &args, text.len()),
                    false => self.emit_each(to, &having, &delivery.event, &args, text.len()),
                }
            }
            reached.extend(variants);
        }
        if emitting {
            let seen: HashSet<&str> = reached.iter().map(String::as_str).collect();
            let plain: Vec<String> = delivery.rooms.iter().filter(|r| !seen.contains(r.as_str())).cloned().collect();
            if !plain.is_empty() {
                match delivery.data().as_deref().map(serde_json::value::to_raw_value).transpose() {
                    Ok(data) => self.emit_plain_now(op.to(plain).except(reached), &delivery.event, data),
                    Err(e) => {
                        tracing::error!(ns = %self.spec.path, error = %e, "a published event could not be serialized")
                    }
                }
            }
        }
        drop(history);
    }

    /// Emits `args` (`len` bytes as an event array) to the sockets `op` selects on this node, at
    /// once (see the module's comment).
    fn emit_now(&self, op: BroadcastOperators<A>, event: &str, args: &Args, len: usize) {
        let op = op.local();
        self.charge_all(op.clone(), event_packet_len(&self.spec.path, len));
        match args {
            Args::One(a) => self.finish_now(Box::pin(op.emit(event, &**a))),
            Args::Two(a, b) => self.finish_now(Box::pin(op.emit(event, &(&**a, &**b)))),
        }
    }

    /// [`Self::emit_now`], one socket at a time, but for those in `except` (they have it already).
    fn emit_each(&self, op: BroadcastOperators<A>, except: &HashSet<Sid>, event: &str, args: &Args, len: usize) {
        let len = event_packet_len(&self.spec.path, len);
        for socket in op.local().sockets().into_iter().filter(|s| !except.contains(&s.id)) {
            self.charge_socket(&socket, len);
            let sent = match args {
                Args::One(a) => socket.emit(event, &**a),
                Args::Two(a, b) => socket.emit(event, &(&**a, &**b)),
            };
            if let Err(e) = sent {
                self.note_emit_failure(&socket, &e);
            }
        }
    }

    /// Emits `data` (or no argument) as it is, like [`Self::emit_now`].
    fn emit_plain_now(&self, op: BroadcastOperators<A>, event: &str, data: Option<Box<RawValue>>) {
        let op = op.local();
        let args = data.as_ref().map_or(0, |d| 1 + d.get().len());
        let len = 2 + Value::String(event.to_string()).to_string().len() + args;
        self.charge_all(op.clone(), event_packet_len(&self.spec.path, len));
        match &data {
            Some(d) => self.finish_now(Box::pin(op.emit(event, &**d))),
            None => self.finish_now(Box::pin(op.emit(event, &()))),
        }
    }

    /// Polls a local emit once: it is done by then (neither adapter waits for a local emit).
    fn finish_now(&self, mut sending: Pin<Box<dyn Future<Output = Result<(), BroadcastError>> + Send + '_>>) {
        match sending.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => self.note_broadcast_failure(&e),
            Poll::Pending => {
                // An adapter that waits for a local emit would break the order kept here.
                self.shared.metrics.dropped(DropReason::Closed, 1);
                tracing::error!(ns = %self.spec.path, "a local emit did not finish at once: an event with history was not sent");
            }
        }
    }

    /// Sends an event read from a history (kept by [`Self::deliver_kept`]) to one socket.
    pub(super) fn send_kept(&self, socket: &SocketRef<A>, kept: &Kept) {
        let text = positioned(&kept.head, &kept.room, &kept.position).unwrap_or_default();
        let Some((event, args)) = Args::parse(&text) else {
            tracing::error!(ns = %self.spec.path, "an event kept in history could not be read back");
            return;
        };
        self.charge_socket(socket, event_packet_len(&self.spec.path, text.len()));
        let sent = match &args {
            Args::One(a) => socket.emit(&event, &**a),
            Args::Two(a, b) => socket.emit(&event, &(&**a, &**b)),
        };
        if let Err(e) = sent {
            self.note_emit_failure(socket, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn position() -> Position {
        Position { offset: 4, epoch: "abc".into() }
    }

    #[test]
    fn an_object_gets_a_position_field_and_anything_else_a_second_argument() {
        let data = json!({ "type": "t", "payload": { "position": 1 } });
        let args = Args::positioned(Some(&data), "execution:e1", &position()).unwrap();
        assert_eq!(
            args.text("update"),
            r#"["update",{"type":"t","payload":{"position":1},"position":{"offset":4,"epoch":"abc","room":"execution:e1"}}]"#
        );
        let taken = json!({ "position": "mine" });
        let args = Args::positioned(Some(&taken), "r", &position()).unwrap();
        assert_eq!(args.text("e"), r#"["e",{"position":"mine"},{"position":{"offset":4,"epoch":"abc","room":"r"}}]"#);
        let args = Args::positioned(Some(&json!([1, 2])), "r", &position()).unwrap();
        assert_eq!(args.text("e"), r#"["e",[1,2],{"position":{"offset":4,"epoch":"abc","room":"r"}}]"#);
        let args = Args::positioned(Some(&json!({})), "r", &position()).unwrap();
        assert_eq!(args.text("e"), r#"["e",{"position":{"offset":4,"epoch":"abc","room":"r"}}]"#);
        let args = Args::positioned(None, "r", &position()).unwrap();
        assert!(args.text("e").starts_with(r#"["e",null,{"position""#));
    }

    #[test]
    fn an_object_written_as_it_renders_is_kept_as_its_rendered_value_would_be() {
        use crate::spec::template::{Root, Scope, ValueTemplate};
        struct Data(Value);
        impl Scope for Data {
            fn root(&self, root: Root) -> Option<std::borrow::Cow<'_, Value>> {
                (root == Root::Data).then_some(std::borrow::Cow::Borrowed(&self.0))
            }
        }
        let scope = Data(json!({ "executionId": "e1", "status": "running" }));
        for template in [
            json!({ "type": "update", "payload": "{data}", "gone": "{data.missing}" }),
            json!({ "gone": "{data.missing}" }),
        ] {
            let template = ValueTemplate::parse(&template).unwrap();
            let rendered = template.render(&scope);
            let by_value = positioned_head("e", rendered.as_ref(), 1).unwrap();
            let as_rendered = positioned_object_head("e", &template.rendered(&scope), 1).unwrap();
            assert_eq!((as_rendered.bytes.clone(), as_rendered.form), (by_value.bytes.clone(), by_value.form));
        }
    }

    #[test]
    fn kept_text_reads_back_as_name_and_arguments() {
        let args = Args::positioned(Some(&json!("s")), "r", &position()).unwrap();
        let (name, back) = Args::parse(args.text("a\"b").as_bytes()).unwrap();
        assert_eq!(name, "a\"b");
        assert!(matches!(back, Args::Two(a, _) if a.get() == "\"s\""));
        assert!(Args::parse(b"[]").is_none());
        assert!(Args::parse(b"[\"only\"]").is_none());
    }
}
