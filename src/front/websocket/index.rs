//! An endpoint's room index: which of its connections are in which room (internal names), for
//! delivery. A join, a leave or a disconnect costs the same in a room of a million members as in
//! a room of one (a set per room), so a reconnect storm into one tenant's room is linear, not
//! quadratic. Most rooms have one member (a user's channel, one execution's watcher): it is kept
//! inline, without a set.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

use crate::rooms::FILTER_SEP;

/// Rooms (internal names) to the connections (ids) in them.
#[derive(Debug, Default)]
pub(crate) struct RoomIndex {
    rooms: HashMap<Arc<str>, Members>,
    /// Rooms of a family with filters (names without filter values) to how many of their
    /// filtered variants have members: a published event's variants are named for delivery
    /// only where some have (`has_variants`). Most filtered rooms an event reaches have none.
    filtered: HashMap<Box<str>, usize>,
}

/// The connections of one room.
#[derive(Debug)]
enum Members {
    One(u64),
    Many(HashSet<u64, IdHash>),
}

impl RoomIndex {
    /// Puts connection `id` in `room`; the room's shared name when it was not in it yet.
    pub(crate) fn join(&mut self, room: String, id: u64) -> Option<Arc<str>> {
        if let Some(key) = self.rooms.get_key_value(room.as_str()).map(|(key, _)| key.clone())
            && let Some(members) = self.rooms.get_mut(&key)
        {
            let added = match members {
                Members::One(one) if *one == id => false,
                Members::One(one) => {
                    *members = Members::Many([*one, id].into_iter().collect());
                    true
                }
                Members::Many(set) => set.insert(id),
            };
            return added.then(|| key.clone());
        }
        let key: Arc<str> = Arc::from(room);
        self.rooms.insert(key.clone(), Members::One(id));
        if let Some((base, _)) = key.split_once(FILTER_SEP) {
            *self.filtered.entry(Box::from(base)).or_default() += 1;
        }
        Some(key)
    }

    /// Whether any filtered variant of `room` (internal name, without filter values) has a
    /// member.
    pub(crate) fn has_variants(&self, room: &str) -> bool {
        self.filtered.contains_key(room)
    }

    fn room_gone(&mut self, room: &str) {
        self.rooms.remove(room);
        if let Some((base, _)) = room.split_once(FILTER_SEP)
            && let Some(count) = self.filtered.get_mut(base)
        {
            *count -= 1;
            if *count == 0 {
                self.filtered.remove(base);
            }
        }
    }

    /// Takes connection `id` out of `room`; whether it was in it. An emptied room goes.
    pub(crate) fn leave(&mut self, room: &str, id: u64) -> bool {
        let Some(members) = self.rooms.get_mut(room) else { return false };
        match members {
            Members::One(one) if *one == id => {
                self.room_gone(room);
                true
            }
            Members::One(_) => false,
            Members::Many(set) => {
                let removed = set.remove(&id);
                if set.len() == 1 {
                    let last = set.iter().next().copied();
                    *members = Members::One(last.unwrap_or(id));
                }
                removed
            }
        }
    }

    /// The connections in any of `rooms`, each once, in id order.
    pub(crate) fn members_of<'a>(&self, rooms: impl Iterator<Item = &'a str>) -> Vec<u64> {
        let mut ids = Vec::new();
        for members in rooms.filter_map(|room| self.rooms.get(room)) {
            match members {
                Members::One(id) => ids.push(*id),
                Members::Many(set) => ids.extend(set.iter().copied()),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The connections in `room` or in any of its filtered variants, each once (for presence:
    /// a subscriber with filters sits in a variant only). Looks at every room of the endpoint,
    /// which a question may; a delivery never does.
    pub(crate) fn members_of_variants(&self, room: &str) -> Vec<u64> {
        self.members_of(self.rooms.keys().map(|r| &**r).filter(|r| crate::rooms::is_variant_of(r, room)))
    }
}

/// Hashes connection ids, which an endpoint hands out in sequence: one multiplication spreads
/// them over the table. The standard hasher costs more per lookup than the rest of a delivery,
/// and keeps 16 bytes of keys in every room's set.
pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_join_once_leave_once_and_an_empty_room_goes() {
        let mut index = RoomIndex::default();
        let key = index.join("r".into(), 1).expect("joined");
        assert_eq!(&*key, "r");
        assert_eq!(index.join("r".into(), 1), None, "already in");
        assert!(index.join("r".into(), 2).is_some());
        assert!(index.join("r".into(), 3).is_some());
        assert_eq!(index.members_of(["r", "r", "nowhere"].into_iter()), [1, 2, 3]);
        assert!(index.leave("r", 2));
        assert!(!index.leave("r", 2), "left already");
        assert!(index.leave("r", 3));
        assert!(matches!(index.rooms.get("r"), Some(Members::One(1))), "one member again: inline");
        assert!(!index.leave("r", 9));
        assert!(index.leave("r", 1));
        assert!(index.rooms.is_empty(), "an empty room is forgotten");
    }

    #[test]
    fn a_room_has_variants_while_one_of_them_has_a_member() {
        let mut index = RoomIndex::default();
        let (a, b) = ("t:t1:executions\u{1}w1\u{1}*", "t:t1:executions\u{1}*\u{1}*");
        assert!(!index.has_variants("t:t1:executions"));
        index.join(a.into(), 1);
        index.join(a.into(), 2);
        index.join(b.into(), 1);
        index.join("t:t1:executions".into(), 3);
        assert!(index.has_variants("t:t1:executions"));
        assert!(!index.has_variants("t:t1:executions\u{1}w1"), "a room's name, not a prefix of a variant's");
        index.leave(a, 1);
        index.leave(b, 1);
        assert!(index.has_variants("t:t1:executions"), "member 2 is in a variant still");
        index.leave(a, 2);
        assert!(!index.has_variants("t:t1:executions"), "only the unfiltered room has a member");
        assert!(index.filtered.is_empty());
    }

    #[test]
    fn delivery_reaches_each_member_of_several_rooms_once() {
        let mut index = RoomIndex::default();
        for (room, id) in [("a", 5), ("a", 1), ("b", 1), ("b", 7), ("c", 9)] {
            index.join(room.into(), id);
        }
        assert_eq!(index.members_of(["a", "b"].into_iter()), [1, 5, 7]);
    }

    #[test]
    fn a_room_s_variants_are_its_members_too() {
        use crate::rooms::{FILTER_SEP, RoomScope, internal_name};
        let room =
            |tenant: &str, visible: &str| internal_name(RoomScope::Tenant, Some(tenant), visible).expect("tenant room");
        let running = format!("{}{FILTER_SEP}running", room("t1", "executions:e1"));
        let mut index = RoomIndex::default();
        for (name, id) in
            [(room("t1", "executions:e1"), 1), (running.clone(), 2), (running, 1), (room("t1", "executions:e10"), 3)]
        {
            index.join(name, id);
        }
        assert_eq!(index.members_of_variants(&room("t1", "executions:e1")), [1, 2], "not executions:e10's");
        assert_eq!(index.members_of_variants(&room("t2", "executions:e1")), Vec::<u64>::new());
    }

    #[test]
    fn a_reconnect_storm_joins_and_leaves_one_large_room() {
        // 100,000 members in and out of one room (minutes, were each join or leave to scan it).
        let mut index = RoomIndex::default();
        for id in 0..100_000 {
            index.join("tenant".into(), id);
        }
        for id in 0..100_000 {
            assert!(index.leave("tenant", id));
        }
        assert!(index.rooms.is_empty());
    }
}
