//! What the engine's actions act on: one connection of one spec, whichever front it came through
//! (a Socket.IO socket, or a plain WebSocket of the native front). Actions join and leave rooms,
//! send events and relay through this trait; each front implements it over its own transport.

use serde_json::Value;
use socketioxide::socket::Sid;

use super::{errors::ClientError, member_state::MemberState};

/// Identifies a member within the node, for rate limiters and token expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MemberKey {
    /// A Socket.IO socket (socketioxide's id; never shown to anyone).
    Socket(Sid),
    /// A plain WebSocket connection of the native front.
    Conn(u64),
}

impl MemberKey {
    /// The smallest key, for range queries.
    pub(crate) const MIN: MemberKey = MemberKey::Socket(Sid::ZERO);
}

/// One connection as the actions see it.
pub(crate) trait Member {
    /// Its key.
    fn key(&self) -> MemberKey;
    /// The internal names of the rooms it is in.
    fn rooms(&self) -> Vec<String>;
    /// Joins a room (internal name).
    fn join(&self, room: String);
    /// Leaves a room (internal name); leaving a room it is not in does nothing.
    fn leave(&self, room: &str);
    /// A join action put it in `room` (internal name, without filter values), whether or not it
    /// was in it already: a front that recovers history on a join learns the room here.
    fn joined(&self, _room: &str) {}
    /// Sends `event` (with `data`, or none) to this connection; failures are counted by the front.
    fn send(&self, event: &str, data: Option<&Value>);
    /// The transport's name (`websocket`, `polling`), for `socket.transport`.
    fn transport(&self) -> &'static str;
    /// Sends `event` with `data` to the other members of `rooms` (internal names, which this one
    /// is in), in the order this member relays.
    fn relay(&self, session: &MemberState, rooms: Vec<String>, event: String, data: Value) -> Result<(), ClientError>;
}
