//! Room families (`rooms:`): their patterns, scopes, filters, access rules, snapshots and presence
//! events, and the filter templates of whatever joins or targets them.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::{
    Checker, list_or_none,
    place::{Ctx, FamilyView, Place, RoomVar},
    unknown,
};
use crate::{
    parse_errors::suggest,
    rooms::{MAX_FILTERS, RoomPattern, RoomScope},
    spec::{
        AccessRule, HistorySpec, PresenceSpec, RESERVED_EVENTS, RoomFamily, SnapshotSpec, StoreKind, StoreSpec,
        raw::{Named, RawAccess, RawHistory, RawPresence, RawRoom, RawSnapshot},
        template::StrTemplate,
    },
};

/// Default number of records or entries in a snapshot.
const DEFAULT_SNAPSHOT_LIMIT: usize = 100;
/// Default cap on one family's presence events, per node and second.
const DEFAULT_PRESENCE_PER_SECOND: u32 = 100;

/// A room's history by default: a few hundred events over two minutes covers a reconnect (a
/// network change, a laptop waking, a deploy) on a busy execution's channel.
const DEFAULT_HISTORY_SIZE: usize = 300;
const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(120);
/// The most a room's history may keep: a recovery sends all of it at once, through a connection's
/// send buffer (`WS_NATIVE_SEND_BUFFER`).
const MAX_HISTORY_SIZE: usize = 10_000;
const MAX_HISTORY_TTL: Duration = Duration::from_secs(24 * 3600);

impl Checker<'_> {
    /// A room family; `None` when its pattern does not parse.
    pub(super) fn room_family(
        &mut self,
        name: &Spanned<String>,
        raw: &RawRoom,
        stores: &[StoreSpec],
    ) -> Option<RoomFamily> {
        let pattern = match RoomPattern::parse(&raw.pattern.value) {
            Ok(p) => p,
            Err(e) => {
                self.error(raw.pattern.referenced, e);
                return None;
            }
        };
        let scope = self.scope(raw.scope.as_ref());
        let access = raw.access.iter().map(|rule| self.access_rule(&name.value, &pattern, &rule.value)).collect();
        let snapshot = raw.snapshot.as_ref().and_then(|s| self.snapshot(s, &name.value, &pattern, stores));
        let filters = self.filter_names(&raw.filters, &pattern);
        let history = raw.history.as_ref().and_then(|h| self.history(&h.value));
        let presence = raw.presence.as_ref().and_then(|p| self.presence(p));
        Some(RoomFamily {
            name: name.value.clone(),
            pattern,
            scope,
            server_only: raw.server_only,
            access,
            snapshot,
            filters,
            history,
            presence,
        })
    }

    /// A family's `history: {size, ttl}`, within [`MAX_HISTORY_SIZE`] and [`MAX_HISTORY_TTL`].
    fn history(&mut self, raw: &RawHistory) -> Option<HistorySpec> {
        let size = match &raw.size {
            None => DEFAULT_HISTORY_SIZE,
            Some(size) if (1..=MAX_HISTORY_SIZE).contains(&size.value) => size.value,
            Some(size) => {
                self.error(size.referenced, format!("history.size must be 1 to {MAX_HISTORY_SIZE} events"));
                return None;
            }
        };
        let ttl = match &raw.ttl {
            None => DEFAULT_HISTORY_TTL,
            Some(ttl) => match crate::spec::durations::parse_duration(&ttl.value) {
                Ok(d) if d >= Duration::from_secs(1) && d <= MAX_HISTORY_TTL => d,
                Ok(_) => {
                    self.error(ttl.referenced, "history.ttl must be 1s to 24h");
                    return None;
                }
                Err(e) => {
                    self.error(ttl.referenced, format!("history.ttl: {e}"));
                    return None;
                }
            },
        };
        Some(HistorySpec { size, ttl })
    }

    /// A family's presence events: at least one event name, none reserved by Socket.IO, and a
    /// cap of at least one a second.
    fn presence(&mut self, raw: &Spanned<RawPresence>) -> Option<PresenceSpec> {
        let mut name = |event: &Option<Spanned<String>>| -> Option<String> {
            let event = event.as_ref()?;
            if event.value.is_empty() || RESERVED_EVENTS.contains(&event.value.as_str()) {
                self.error(event.referenced, format!("`{}` cannot be a presence event: name another", event.value));
                return None;
            }
            // The spec sends it: no client may relay it (a relay cannot fake a user's coming).
            if !self.server_events.contains(&event.value) {
                self.server_events.push(event.value.clone());
            }
            Some(event.value.clone())
        };
        let (online, offline) = (name(&raw.value.online), name(&raw.value.offline));
        if raw.value.online.is_none() && raw.value.offline.is_none() {
            self.error(raw.referenced, "presence: name its `online` event, its `offline` event, or both");
            return None;
        }
        let max_per_second = match &raw.value.max_per_second {
            None => DEFAULT_PRESENCE_PER_SECOND,
            Some(max) if max.value == 0 => {
                self.error(max.referenced, "max_per_second is at least 1");
                DEFAULT_PRESENCE_PER_SECOND
            }
            Some(max) => max.value,
        };
        Some(PresenceSpec { online, offline, max_per_second })
    }

    /// A family's filter names: identifiers, each once, none a parameter's name, at most
    /// [`MAX_FILTERS`] (each doubles the rooms a published event is sent to).
    pub(super) fn filter_names(&mut self, raw: &[Spanned<String>], pattern: &RoomPattern) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(extra) = raw.get(MAX_FILTERS) {
            self.error(
                extra.referenced,
                format!("a room has at most {MAX_FILTERS} filters (an event reaches 2^filters variants of it)"),
            );
        }
        for filter in raw.iter().take(MAX_FILTERS) {
            let name = &filter.value;
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                self.error(filter.referenced, format!("`{name}` is not a filter name (letters, digits, `_`)"));
            } else if names.contains(name) || pattern.param_index(name).is_some() {
                self.error(filter.referenced, format!("`{name}` is already a filter or a parameter of this room"));
            } else {
                names.push(name.clone());
            }
        }
        names
    }

    /// The filter templates of a join or a route target, checked against `family`'s filters
    /// when the family is known.
    pub(super) fn filter_templates(
        &mut self,
        raw: &Named<Spanned<String>>,
        family: Option<&RoomFamily>,
        place: &Place,
    ) -> Vec<(String, StrTemplate)> {
        let mut out = Vec::new();
        for (name, value) in raw {
            if let Some(family) = family
                && !family.filters.contains(&name.value)
            {
                let hint =
                    suggest::did_you_mean(suggest::closest(&name.value, family.filters.iter().map(String::as_str)));
                self.error(
                    name.referenced,
                    format!(
                        "room `{}` has no filter `{}` (filters: {}){hint}",
                        family.name,
                        name.value,
                        list_or_none(&family.filters)
                    ),
                );
                continue;
            }
            if let Some(t) = self.str_template(value, place, &format!("filters.{}", name.value)) {
                out.push((name.value.clone(), t));
            }
        }
        out
    }

    pub(super) fn scope(&mut self, raw: Option<&Spanned<String>>) -> RoomScope {
        let Some(scope) = raw else { return RoomScope::Tenant };
        match scope.value.as_str() {
            "tenant" => RoomScope::Tenant,
            "global" => RoomScope::Global,
            other => {
                let hint = suggest::did_you_mean(suggest::closest(other, ["tenant", "global"]));
                self.error(scope.referenced, format!("scope `{other}` must be `tenant` or `global`{hint}"));
                RoomScope::Tenant
            }
        }
    }

    pub(super) fn access_rule(&mut self, room: &str, pattern: &RoomPattern, rule: &RawAccess) -> AccessRule {
        let place = Place::new(Ctx::Access);
        let mut params = Vec::new();
        for (param, value) in &rule.params {
            let Some(i) = self.param_index(room, pattern, param) else { continue };
            if let Some(t) = self.str_template(value, &place, &format!("params.{}", param.value)) {
                params.push((i, t));
            }
        }
        AccessRule { anonymous: rule.anonymous, roles: rule.roles.clone(), params }
    }

    /// Where `param` is in the family's pattern; a parameter it does not have is reported.
    pub(super) fn param_index(&mut self, room: &str, pattern: &RoomPattern, param: &Spanned<String>) -> Option<usize> {
        let index = pattern.param_index(&param.value);
        if index.is_none() {
            let hint = suggest::closest(&param.value, pattern.params().iter().map(|p| p.name.as_str()));
            self.error(
                param.referenced,
                format!("room `{room}` has no parameter `{}`{}", param.value, suggest::did_you_mean(hint)),
            );
        }
        index
    }

    pub(super) fn snapshot(
        &mut self,
        raw: &Spanned<RawSnapshot>,
        room: &str,
        pattern: &RoomPattern,
        stores: &[StoreSpec],
    ) -> Option<SnapshotSpec> {
        let s = &raw.value;
        let Some(store) = stores.iter().position(|st| st.name == s.store.value) else {
            self.error(s.store.referenced, unknown("store", &s.store.value, &self.store_names));
            return None;
        };
        let place = Place { ctx: Ctx::Snapshot, room: RoomVar::Snapshotting(FamilyView::new(room, pattern, true)) };
        let key = s.key.as_ref().and_then(|k| self.str_template(k, &place, "key"));
        let matches: Vec<_> = s
            .matches
            .iter()
            .filter_map(|(field, v)| {
                self.str_template(v, &place, &format!("match.{}", field.value)).map(|t| (field.value.clone(), t))
            })
            .collect();
        if let Some((first, _)) = s.matches.first()
            && matches!(stores[store].kind, StoreKind::Records { .. })
        {
            self.error(first.referenced, "`match` filters list entries; this store holds records");
        }
        Some(SnapshotSpec { store, key, matches, limit: s.limit.unwrap_or(DEFAULT_SNAPSHOT_LIMIT).max(1) })
    }
}
