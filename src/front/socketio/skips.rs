//! The sockets of a namespace that have some rooms' next events already: a socket recovered on
//! this node from a position it got on another node that this node has not applied yet
//! (`Since::Ahead`). Delivery (`history.rs`) asks which sockets have an event before emitting it.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use socketioxide::socket::Sid;

use crate::engine::{history::Position, recovery::Ahead};

/// The namespace's sockets that have some rooms' next events already (see the module's comment):
/// per socket, per room, the epoch and last offset it has. Bounded by the rooms each socket
/// recovered in (one note a room, the latest); a note goes once the room reaches its offset or
/// changes epoch, and all of a socket's with it when it disconnects. Read and written under the
/// namespace's history lock (but for a disconnect).
#[derive(Debug, Default)]
pub(crate) struct Skips {
    by_socket: Mutex<HashMap<Sid, Vec<Ahead>>>,
}

impl Skips {
    /// Notes that `socket` has the room's events up to `ahead.through` (replacing what was noted
    /// for the room).
    pub(crate) fn skip_through(&self, socket: Sid, ahead: Ahead) {
        let mut by_socket = self.by_socket.lock().unwrap_or_else(|e| e.into_inner());
        let notes = by_socket.entry(socket).or_default();
        notes.retain(|a| a.room != ahead.room);
        notes.push(ahead);
    }

    /// The sockets that have the event at `position` of `room` already; what is noted for the
    /// room is forgotten once the room reaches or passes it, or changes epoch.
    pub(super) fn having(&self, room: &str, position: &Position) -> HashSet<Sid> {
        let mut by_socket = self.by_socket.lock().unwrap_or_else(|e| e.into_inner());
        let mut having = HashSet::new();
        if by_socket.is_empty() {
            return having;
        }
        by_socket.retain(|sid, notes| {
            notes.retain(|a| {
                if a.room != room {
                    return true;
                }
                let has = a.epoch == position.epoch && position.offset <= a.through;
                if has {
                    having.insert(*sid);
                }
                has && position.offset < a.through
            });
            !notes.is_empty()
        });
        having
    }

    /// Forgets what was noted for a socket that is gone.
    pub(crate) fn forget(&self, socket: Sid) {
        self.by_socket.lock().unwrap_or_else(|e| e.into_inner()).remove(&socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_skips_a_rooms_events_up_to_the_offset_it_has_then_the_note_goes() {
        let skips = Skips::default();
        let (s1, s2) = (Sid::new(), Sid::new());
        let at = |offset, epoch: &str| Position { offset, epoch: epoch.into() };
        let ahead = |room: &str, through| Ahead { room: room.into(), epoch: "e".into(), through };
        assert!(skips.having("r", &at(1, "e")).is_empty(), "nothing noted");
        skips.skip_through(s1, ahead("r", 3));
        skips.skip_through(s2, ahead("r", 2));
        skips.skip_through(s2, ahead("q", 9));
        assert!(skips.having("other", &at(2, "e")).is_empty(), "another room");
        assert_eq!(skips.having("r", &at(2, "e")), HashSet::from([s1, s2]));
        assert_eq!(skips.having("r", &at(3, "e")), HashSet::from([s1]), "s2's note went at its offset");
        assert!(skips.having("r", &at(4, "e")).is_empty(), "and s1's");
        assert!(skips.having("q", &at(5, "f")).is_empty(), "another epoch is not what it had");
        assert!(skips.by_socket.lock().unwrap().is_empty(), "nothing left");
        skips.skip_through(s1, ahead("r", 9));
        skips.forget(s1);
        assert!(skips.having("r", &at(5, "e")).is_empty(), "a socket that is gone");
    }
}
