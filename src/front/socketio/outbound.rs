//! What the engine sends to Socket.IO sockets, and the count of it that decides who is a slow
//! consumer.
//!
//! Every emit the engine makes to this node's sockets goes through here (published events, raw
//! emits, timers, replies and errors): the message is encoded once, and its size is counted
//! against the backlog of each receiving socket's session (`crate::backlog`), which the session's
//! transport drains as it writes. A socket whose session falls behind (more than
//! `WS_MAX_BUFFER_BYTES` unwritten, or unwritten bytes with no write for `WS_WRITE_TIMEOUT`) is
//! ended as a slow consumer (`slow`). A burst, however large, is not in itself a reason: a client
//! that keeps reading gets all of it.
//!
//! What passes through the adapter to other nodes (relays, acks counted across the cluster) is
//! counted where it is known, on this node's sockets; what arrives from other nodes' relays is
//! not counted, which errs on the side of the reader.

use crate::net::backlog::Backlog;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, value::RawValue};
use socketioxide::{
    BroadcastError, SendError, SocketError, adapter::Adapter, extract::SocketRef, operators::BroadcastOperators,
};

use crate::{engine::member_state::MemberState, front::socketio::namespace::NamespaceRuntime};
use crate::{
    metrics::DropReason,
    net::backlog::{Behind, event_packet_len},
};

/// One event's arguments, encoded once for every socket that gets it.
pub(crate) struct Encoded {
    /// The data (one argument), or none.
    data: Option<Box<RawValue>>,
    /// The packet's smallest size on the wire.
    packet_len: usize,
}

impl Encoded {
    /// `event` with `data` (or no argument), for namespace `path`.
    pub(crate) fn new(path: &str, event: &str, data: Option<&Value>) -> Result<Self, serde_json::Error> {
        let data = data.map(serde_json::value::to_raw_value).transpose()?;
        let args = data.as_ref().map_or(0, |d| 1 + d.get().len());
        Ok(Self { packet_len: event_packet_len(path, 2 + json_str_len(event) + args), data })
    }

    /// `event` with `args` (any number), for namespace `path`.
    pub(crate) fn size_of<T: Serialize + ?Sized>(path: &str, event: &str, args: &T) -> usize {
        // `[a,b]` is `,a,b` in `["event",a,b]`; `[]` is nothing.
        let list = serde_json::to_vec(args).map_or(2, |json| json.len());
        let args = if list > 2 { list - 1 } else { 0 };
        event_packet_len(path, 2 + json_str_len(event) + args)
    }
}

/// The length of `s` as a JSON string, quotes included.
fn json_str_len(s: &str) -> usize {
    let escaped: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    s.len() + escaped + 2
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// Emits `event` (encoded as `message`) to the sockets `op` selects on this node, counting it
    /// against each one's backlog first.
    pub(crate) async fn emit_here(
        &self,
        op: BroadcastOperators<A>,
        event: &str,
        message: &Encoded,
    ) -> Result<(), BroadcastError> {
        let op = op.local();
        self.charge_all(op.clone(), message.packet_len);
        match &message.data {
            Some(data) => op.emit(event, &**data).await,
            None => op.emit(event, &()).await,
        }
    }

    /// Counts `bytes` against the backlog of every socket `op` selects on this node.
    pub(crate) fn charge_all(&self, op: BroadcastOperators<A>, bytes: usize) {
        for socket in op.local().sockets() {
            self.charge(&socket, bytes);
        }
    }

    /// Sends `event` with `data` to one socket, counted against its backlog.
    pub(crate) fn send_to(&self, socket: &SocketRef<A>, event: &str, data: Option<&Value>) {
        let message = match Encoded::new(&self.spec.path, event, data) {
            Ok(message) => message,
            Err(e) => {
                self.shared.metrics.dropped(DropReason::Unserializable, 1);
                tracing::error!(ns = %self.spec.path, error = %e, "a message could not be serialized");
                return;
            }
        };
        self.charge(socket, message.packet_len);
        let sent = match &message.data {
            Some(data) => socket.emit(event, &**data),
            None => socket.emit(event, &()),
        };
        if let Err(e) = sent {
            self.note_emit_failure(socket, &e);
        }
    }

    /// Counts `bytes` queued for `socket` (an emit made elsewhere), as [`Self::send_to`] does.
    pub(crate) fn charge_socket(&self, socket: &SocketRef<A>, bytes: usize) {
        self.charge(socket, bytes);
    }

    /// Counts `bytes` queued for `socket`; a session now behind is ended as a slow consumer.
    /// Sockets the front has not admitted (no session, no backlog) are not counted.
    fn charge(&self, socket: &SocketRef<A>, bytes: usize) {
        let Some(backlog) = socket.extensions.get::<Arc<Backlog>>() else { return };
        let Err(behind) = backlog.queue(bytes, self.sio.backlog_limits) else { return };
        let Some(session) = socket.extensions.get::<Arc<MemberState>>() else { return };
        if session.ended_as().is_some() {
            return;
        }
        let (bytes, stalled_ms) = match behind {
            Behind::Over(bytes) => (bytes, 0),
            Behind::Stalled(ms) => (backlog.pending(), ms),
        };
        tracing::info!(ns = %self.spec.path, socket = %session.public_id, bytes, stalled_ms, "ending a slow consumer: its client is not reading what is sent to it");
        self.shared.metrics.abandoned_bytes.inc_by(bytes);
        super::slow::end(socket, &self.spec.path, &self.sio);
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// Counts an emit to `socket` that failed; a full queue ends its session.
    pub(crate) fn note_emit_failure(&self, socket: &SocketRef<A>, error: &SendError) {
        let reason = match error {
            SendError::Socket(SocketError::InternalChannelFull) => DropReason::QueueFull,
            SendError::Socket(SocketError::Closed) => DropReason::Closed,
            SendError::Serialize(_) => DropReason::Unserializable,
        };
        self.shared.metrics.dropped(reason, 1);
        tracing::debug!(%error, "emit to a socket failed");
        if matches!(error, SendError::Socket(SocketError::InternalChannelFull)) {
            super::slow::end(socket, &self.spec.path, &self.sio);
        }
    }

    /// Counts what a broadcast could not deliver; full queues start a sweep.
    pub(crate) fn note_broadcast_failure(&self, error: &BroadcastError) {
        if super::slow::note_broadcast_failure(&self.shared, &self.spec.path, error) {
            super::slow::sweep(&self.io, &self.spec.path, self.index, &self.sio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// socketioxide's encoding of an event, as a client receives it over WebSocket.
    fn wire(path: &str, event: &str, args: &str) -> String {
        let ns = if path == "/" { String::new() } else { format!("{path},") };
        format!("42{ns}[{}{args}]", serde_json::to_string(event).unwrap())
    }

    #[test]
    fn sizes_are_what_the_transport_writes_at_least() {
        let data = json!({ "id": "e1", "text": "a \"quoted\"\n line", "n": [1, 2] });
        let message = Encoded::new("/workflow", "update", Some(&data)).unwrap();
        let expected = wire("/workflow", "update", &format!(",{data}"));
        assert_eq!(message.packet_len, expected.len());
        assert_eq!(Encoded::new("/", "ping\u{1}", None).unwrap().packet_len, wire("/", "ping\u{1}", "").len());
        let args = [json!(1), json!("two")];
        assert_eq!(Encoded::size_of("/ws", "x", &args[..]), wire("/ws", "x", ",1,\"two\"").len());
        assert_eq!(Encoded::size_of("/ws", "x", &[] as &[Value]), wire("/ws", "x", "").len());
    }
}
