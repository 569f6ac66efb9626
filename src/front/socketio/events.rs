//! A client event on the Socket.IO front: the packet read (its name before its payload, so an
//! oversized one is refused unparsed), the engine's dispatch core run, and its answer
//! ([`Handled`]) turned into Socket.IO frames: an `error` event with the seed's shape and an
//! `{error}` ack when one was asked, or the reply as the ack; the socket stays connected.

use std::{sync::Arc, time::Instant};

use serde_json::{Value as Json, json};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef},
    handler::Value,
};

use super::namespace::{NamespaceRuntime, SioMember};
use crate::engine::{dispatch::Handled, errors::ClientError, member_state::MemberState, recovery::HistoryReads};

impl<A: Adapter> NamespaceRuntime<A> {
    /// Handles one Socket.IO event. Runs on the socket's receive path: no awaiting (a backend's
    /// answer is waited for by a task of its own).
    pub(crate) fn handle_event(
        self: &Arc<Self>,
        socket: &SocketRef<A>,
        session: &Arc<MemberState>,
        packet: Value,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        let started = Instant::now();
        self.shared.metrics.events_received.inc();
        let member = SioMember { ns: self, socket };
        let mut reads = None;
        let (event, handled) = self.handle(&member, session, packet, &mut reads);
        self.count_refusal(&handled);
        self.answer(socket, session, event.as_deref(), handled, ack, wants_ack);
        // What its joins read from history follows the answer, before the lock lets any live
        // event of those rooms through; so do the notes of the rooms it is ahead in.
        if let Some(mut reads) = reads {
            for kept in reads.events() {
                self.send_kept(socket, &kept);
            }
            for ahead in reads.ahead() {
                self.skips.skip_through(socket.id, ahead);
            }
            drop(reads);
        }
        self.record_handling(event.as_deref(), started);
    }

    /// Reads the packet and dispatches it; returns the event's name (when it has one) and the outcome.
    fn handle<'a>(
        &'a self,
        member: &SioMember<'_, A>,
        session: &MemberState,
        packet: Value,
        reads: &mut Option<HistoryReads<'a>>,
    ) -> (Option<String>, Handled) {
        // Before any parsing, so a flood costs as little as possible.
        if let Some(refused) = self.flood_check(member, session) {
            return (None, refused);
        }
        let (raw, size) = match &packet {
            // A relay or a reply would forward only the JSON part, with `{"_placeholder": true}`
            // where the bytes were: refuse rather than mangle silently.
            Value::Str(_, Some(attachments)) if !attachments.is_empty() => {
                let message = "binary attachments are not supported: send JSON (bytes as base64 strings, for example)";
                return (None, Handled::Failed(ClientError::validation(message)));
            }
            Value::Str(text, _) => (text.as_str(), text.len()),
            Value::Bytes(_) => {
                return (None, Handled::Failed(ClientError::validation("binary packets are not supported")));
            }
        };
        if let Some(refused) = self.size_check(size) {
            return (event_name(raw), refused);
        }
        match parse_event(raw) {
            Some((name, payload)) => {
                // Joins that read history do so under its lock, held until what they read is sent.
                let handled = match self.spec.events.get(&name).is_some_and(|e| e.reads_history()) {
                    true => {
                        let reads = reads.insert(HistoryReads::new(self));
                        self.dispatch_reading_history(member, session, &name, payload, size, reads)
                    }
                    false => self.dispatch(member, session, &name, payload, size),
                };
                (Some(name), handled)
            }
            None => {
                (None, Handled::Failed(ClientError::validation("the event is not a JSON array starting with its name")))
            }
        }
    }

    /// Turns an outcome into Socket.IO: `error` events, acks, `auth:refreshed`, the expiry.
    fn answer(
        self: &Arc<Self>,
        socket: &SocketRef<A>,
        session: &MemberState,
        event: Option<&str>,
        handled: Handled,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        match handled {
            Handled::Replied(reply) => {
                if wants_ack {
                    send_ack(ack, &reply);
                }
            }
            Handled::Pending(pending) => {
                // The socket's next events are handled meanwhile; each answer goes to its own
                // ack callback (acks are matched by id), in whatever order backends answer.
                let (ns, socket, event) = (self.clone(), socket.clone(), event.map(str::to_string));
                tokio::spawn(async move {
                    let reply_event = pending.event.clone();
                    match pending.outcome().await {
                        Ok(answer) => {
                            if let Some(name) = &reply_event {
                                ns.send_to(&socket, name, Some(&answer));
                            }
                            if wants_ack {
                                send_ack(ack, &answer);
                            }
                        }
                        Err(error) => {
                            ns.metrics.rejected(error.kind.into());
                            ns.fail(&socket, event.as_deref(), ack, wants_ack, error);
                        }
                    }
                });
            }
            Handled::Failed(error) => self.fail(socket, event, ack, wants_ack, error),
            Handled::Limited { error, notify: true } => self.fail(socket, event, ack, wants_ack, error),
            Handled::Limited { error, notify: false } => {
                if wants_ack {
                    self.shared.metrics.events_rejected.inc();
                    send_ack(ack, &json!({ "error": error.payload(event) }));
                }
            }
            Handled::Unknown(error) => {
                if wants_ack {
                    send_ack(ack, &json!({ "error": error.payload(event) }));
                }
            }
            Handled::Expired => self.end_expired(socket, session),
            Handled::Refreshed(reply) => {
                self.send_to(socket, "auth:refreshed", Some(&reply));
                if wants_ack {
                    send_ack(ack, &reply);
                }
            }
        }
    }

    /// Sends `error` to the client and answers its ack with the same payload under `error`.
    pub(crate) fn fail(
        &self,
        socket: &SocketRef<A>,
        event: Option<&str>,
        ack: AckSender<A>,
        wants_ack: bool,
        error: ClientError,
    ) {
        self.shared.metrics.events_rejected.inc();
        tracing::debug!(ns = %self.spec.path, event, kind = error.kind.as_str(), message = %error.message, "client event refused");
        let payload = error.payload(event);
        self.send_to(socket, "error", Some(&payload));
        if wants_ack {
            send_ack(ack, &json!({ "error": payload }));
        }
    }
}
/// The name at the head of a Socket.IO event array (`["name", ...`), read without parsing the rest.
fn event_name(raw: &str) -> Option<String> {
    let rest = raw.trim_start().strip_prefix('[')?.trim_start();
    let bytes = rest.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut end = 1;
    while end < bytes.len() {
        match bytes[end] {
            b'\\' => end += 2,
            b'"' => return serde_json::from_str(rest.get(..=end)?).ok(),
            _ => end += 1,
        }
    }
    None
}

/// Splits a Socket.IO event array into its name and first argument (`null` when absent).
fn parse_event(raw: &str) -> Option<(String, Json)> {
    let Json::Array(items) = serde_json::from_str::<Json>(raw).ok()? else { return None };
    let mut items = items.into_iter();
    let Json::String(name) = items.next()? else { return None };
    Some((name, items.next().unwrap_or(Json::Null)))
}

/// Answers the client's ack callback (a no-op when it did not pass one).
fn send_ack<A: Adapter>(ack: AckSender<A>, data: &Json) {
    if let Err(e) = ack.send(data) {
        tracing::debug!(error = %e, "could not send an ack");
    }
}
#[cfg(test)]
mod tests {
    #[test]
    fn the_event_name_is_read_from_the_head_alone() {
        assert_eq!(super::event_name(r#"["subscribe",{"a":"#).as_deref(), Some("subscribe"));
        assert_eq!(super::event_name(r#" [ "a\"b\\",1]"#).as_deref(), Some("a\"b\\"));
        assert_eq!(super::event_name(r#"[1,2]"#), None);
        assert_eq!(super::event_name(r#"["unterminated"#), None);
        assert_eq!(super::event_name(r#"["\"#), None);
    }
}
