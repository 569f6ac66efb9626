//! An endpoint's room index: which of its connections are in which room (internal names), for
//! delivery. A join, a leave or a disconnect costs the same in a room of a million members as in
//! a room of one (a set per room), so a reconnect storm into one tenant's room is linear, not
//! quadratic. Most rooms have one member (a user's channel, one execution's watcher): it is kept
//! inline, without a set. The index holds the members themselves (the endpoint's connections),
//! not only their ids: a delivery reaches them from their rooms without a second lookup.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

use crate::rooms::{FILTER_SEP, FilterReach};

/// What the index holds of a member: cheap to clone (an `Arc`), known by its connection id.
pub(crate) trait Indexed: Clone {
    fn id(&self) -> u64;
}

/// Rooms (internal names) to the members (connections) in them.
#[derive(Debug)]
pub(crate) struct RoomIndex<M> {
    rooms: HashMap<Arc<str>, Members<M>>,
    /// Rooms of a family with filters (names without filter values) to their filtered variants
    /// that have members: a published event's reach is checked against those when they are
    /// fewer than the variants it reaches (eight for three filters, most with no member), and
    /// the variants it reaches are looked up among them otherwise
    /// ([`members_reached`](Self::members_reached)).
    filtered: HashMap<Box<str>, HashSet<Arc<str>>>,
}

impl<M> Default for RoomIndex<M> {
    fn default() -> Self {
        Self { rooms: HashMap::new(), filtered: HashMap::new() }
    }
}

/// The members of one room.
#[derive(Debug)]
enum Members<M> {
    One(M),
    Many(HashMap<u64, M, IdHash>),
}

impl<M: Indexed> RoomIndex<M> {
    /// Puts `member` in `room`; the room's shared name when it was not in it yet.
    pub(crate) fn join(&mut self, room: String, member: M) -> Option<Arc<str>> {
        if let Some(key) = self.rooms.get_key_value(room.as_str()).map(|(key, _)| key.clone())
            && let Some(members) = self.rooms.get_mut(&key)
        {
            let added = match members {
                Members::One(one) if one.id() == member.id() => false,
                Members::One(one) => {
                    let many = [(one.id(), one.clone()), (member.id(), member)].into_iter().collect();
                    *members = Members::Many(many);
                    true
                }
                Members::Many(set) => match set.entry(member.id()) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(member);
                        true
                    }
                },
            };
            return added.then(|| key.clone());
        }
        let key: Arc<str> = Arc::from(room);
        self.rooms.insert(key.clone(), Members::One(member));
        if let Some((base, _)) = key.split_once(FILTER_SEP) {
            match self.filtered.get_mut(base) {
                Some(variants) => {
                    variants.insert(key.clone());
                }
                None => {
                    self.filtered.insert(Box::from(base), HashSet::from([key.clone()]));
                }
            }
        }
        Some(key)
    }

    fn room_gone(&mut self, room: &str) {
        self.rooms.remove(room);
        if let Some((base, _)) = room.split_once(FILTER_SEP)
            && let Some(variants) = self.filtered.get_mut(base)
        {
            variants.remove(room);
            if variants.is_empty() {
                self.filtered.remove(base);
            }
        }
    }

    /// Takes connection `id` out of `room`; whether it was in it. An emptied room goes.
    pub(crate) fn leave(&mut self, room: &str, id: u64) -> bool {
        let Some(members) = self.rooms.get_mut(room) else { return false };
        match members {
            Members::One(one) if one.id() == id => {
                self.room_gone(room);
                true
            }
            Members::One(_) => false,
            Members::Many(set) => {
                let removed = set.remove(&id).is_some();
                let last = (set.len() == 1).then(|| set.drain().next()).flatten();
                if let Some((_, last)) = last {
                    *members = Members::One(last);
                }
                removed
            }
        }
    }

    /// The members of any of `rooms`, each once, in id order.
    pub(crate) fn members_of<'a>(&self, rooms: impl Iterator<Item = &'a str>) -> Vec<M> {
        self.members_reached(rooms, std::iter::empty())
    }

    /// The members of any of `rooms` or of any variant that `filtered` (rooms with filters,
    /// without filter values, each with a published event's reach) reaches, each once, in id
    /// order.
    pub(crate) fn members_reached<'a>(
        &self,
        rooms: impl Iterator<Item = &'a str>,
        filtered: impl Iterator<Item = (&'a str, &'a FilterReach)>,
    ) -> Vec<M> {
        let mut found = Vec::new();
        let mut add = |members: &Members<M>| match members {
            Members::One(one) => found.push(one.clone()),
            Members::Many(set) => found.extend(set.values().cloned()),
        };
        rooms.filter_map(|room| self.rooms.get(room)).for_each(&mut add);
        for (room, reach) in filtered {
            let Some(variants) = self.filtered.get(room) else { continue };
            // Whichever is fewer: the variants with members, or those the event reaches (a
            // channel whose subscribers chose thousands of different values costs the same).
            if variants.len() <= reach.variant_count() {
                let reached = variants.iter().filter(|v| reach.reaches(&v[room.len()..]));
                reached.filter_map(|v| self.rooms.get(v)).for_each(&mut add);
            } else {
                let names = reach.suffixes().into_iter().map(|suffix| format!("{room}{suffix}"));
                names.filter_map(|name| self.rooms.get(name.as_str())).for_each(&mut add);
            }
        }
        found.sort_unstable_by_key(M::id);
        found.dedup_by_key(|m| m.id());
        found
    }

    /// The members of `room` or of any of its filtered variants, each once (for presence: a
    /// subscriber with filters sits in a variant only). Looks at every room of the endpoint,
    /// which a question may; a delivery never does.
    pub(crate) fn members_of_variants(&self, room: &str) -> Vec<M> {
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

    impl Indexed for u64 {
        fn id(&self) -> u64 {
            *self
        }
    }

    #[test]
    fn members_join_once_leave_once_and_an_empty_room_goes() {
        let mut index = RoomIndex::<u64>::default();
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
    fn an_event_reaches_the_members_of_the_variants_its_filter_values_reach() {
        let mut index = RoomIndex::<u64>::default();
        let base = "t:t1:executions";
        let (w1, any, w2) =
            ("t:t1:executions\u{1}w1\u{1}*", "t:t1:executions\u{1}*\u{1}*", "t:t1:executions\u{1}w2\u{1}*");
        let reach = FilterReach::new(&[Some("w1"), Some("running")]);
        let reached =
            |index: &RoomIndex<u64>| index.members_reached(std::iter::empty(), std::iter::once((base, &reach)));
        assert!(reached(&index).is_empty());
        index.join(w1.into(), 1);
        index.join(w1.into(), 2);
        index.join(any.into(), 1);
        index.join(w2.into(), 4);
        index.join(base.into(), 3);
        assert_eq!(reached(&index), [1, 2], "not w2's, nor the unfiltered room's");
        assert_eq!(index.members_reached([base].into_iter(), std::iter::once((base, &reach))), [1, 2, 3]);
        index.leave(w1, 1);
        index.leave(w1, 2);
        assert_eq!(reached(&index), [1], "member 1 is in the variant of any workflow still");
        index.leave(any, 1);
        index.leave(w2, 4);
        assert!(reached(&index).is_empty());
        assert!(index.filtered.is_empty(), "no variant with members is kept");
    }

    #[test]
    fn a_room_of_many_variants_is_reached_through_the_event_s_own() {
        // Thousands of subscribers, each filtering on its own workflow: the event's two variants
        // of each filter are looked up, not every variant checked.
        let mut index = RoomIndex::<u64>::default();
        let base = "t:t1:executions";
        for id in 0..5_000u64 {
            index.join(format!("{base}\u{1}w{id}\u{1}*"), id);
        }
        index.join(format!("{base}\u{1}*\u{1}running"), 9_999);
        let reach = FilterReach::new(&[Some("w42"), Some("running")]);
        assert_eq!(index.members_reached(std::iter::empty(), std::iter::once((base, &reach))), [42, 9_999]);
        for id in 0..5_000u64 {
            assert!(index.leave(&format!("{base}\u{1}w{id}\u{1}*"), id));
        }
        assert_eq!(index.members_reached(std::iter::empty(), std::iter::once((base, &reach))), [9_999]);
    }

    #[test]
    fn delivery_reaches_each_member_of_several_rooms_once() {
        let mut index = RoomIndex::<u64>::default();
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
        let mut index = RoomIndex::<u64>::default();
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
        let mut index = RoomIndex::<u64>::default();
        for id in 0..100_000 {
            index.join("tenant".into(), id);
        }
        for id in 0..100_000 {
            assert!(index.leave("tenant", id));
        }
        assert!(index.rooms.is_empty());
    }
}
