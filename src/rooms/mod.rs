//! Room names: the only place that builds, parses or scopes them.
//!
//! A room family has a *pattern* such as `logs:{resourceId?}:{logLevel?}:{stepId?}`. Rendering it
//! with parameter values gives the *visible name* a client sees (a subscription key, or the name a
//! `/ws` client passes to `join_room`); an optional parameter left unset renders as `*`, meaning
//! "any". The adapter only ever sees *internal names*, which put the tenant in front of the
//! visible name, so two tenants' `execution:e1` are different rooms on every node and no client
//! can name a room of another tenant.
//!
//! Filters become room names, not predicates: a subscriber to `logs:e1:error:*` sits in that one
//! room, and a published log of execution `e1` at level `error` from step `s1` is sent to the
//! rooms `logs:{e1|*}:{error|*}:{s1|*}` (see [`RoomPattern::fanout`]), each socket once.
//!
//! A family may also have *filters*: hidden dimensions of a room that clients do not name but
//! choose values for when they join (the Go hub's subscription filters: `statuses: [running,
//! failed]`). Each combination of chosen values is a room of its own, `executions` then one value
//! (or `*`) per filter after [`FILTER_SEP`] ([`with_filters`]); a published event reaches, for
//! each filter, its value and `*` ([`filter_fanout`]). Every name helper strips them where a
//! visible name is wanted ([`split_internal`]).
//!
//! What rooms one member (a socket, or a plain WebSocket connection) can make the node hold is
//! bounded here, whatever it sends: filter values in bytes as stored
//! ([`MAX_FILTER_VALUE_BYTES`]), the combinations one join makes ([`MAX_FILTER_COMBINATIONS`]),
//! filters per family ([`MAX_FILTERS`], checked on specs), and the bytes of the names of all its
//! rooms together ([`ROOM_NAME_BYTES_PER_ROOM`] times `WS_MAX_ROOMS_PER_SOCKET`, which bounds
//! their number).
//!
//! Here: the bounds, [`RoomScope`], and the internal names (tenant in front) with their
//! escaping. `pattern` parses and renders room families' patterns; `filters` builds and bounds
//! the filtered variants of a room.

mod filters;
mod pattern;

use std::fmt::Write;

pub(crate) use filters::{FILTER_SEP, FilterReach, MAX_FILTERS, filter_variants, is_variant_of, without_filters};
pub(crate) use pattern::{Param, RoomPattern};

/// Longest visible room name accepted from a client or rendered from a payload.
pub(crate) const MAX_NAME_LEN: usize = 512;

/// Bytes of room names a member may hold per room it may be in: the names of all its rooms
/// (internal names: tenant, visible name and filter values) may add up to this many times
/// `WS_MAX_ROOMS_PER_SOCKET` (9,600 bytes by default: a hundred rooms named by a UUID tenant and
/// a UUID id each fit). With the number of rooms it bounds what one connection makes the node hold
/// in rooms, however it names or filters them.
pub(crate) const ROOM_NAME_BYTES_PER_ROOM: usize = 96;

/// The marker an unset optional parameter renders as.
pub(crate) const ANY: &str = "*";

/// Whose rooms these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomScope {
    /// One instance per tenant (the default): the internal name carries the tenant.
    Tenant,
    /// One instance for everyone, whatever the tenant (platform-wide rooms).
    Global,
}

/// The adapter's name for a visible room: `t:<tenant>:<visible>` or `g:<visible>`. `None` for a
/// tenant-scoped room without a tenant. Tenant ids are escaped, so a tenant called `a:b` cannot
/// collide with tenant `a`.
pub(crate) fn internal_name(scope: RoomScope, tenant: Option<&str>, visible: &str) -> Option<String> {
    match scope {
        RoomScope::Global => Some(format!("g:{visible}")),
        RoomScope::Tenant => {
            let tenant = tenant.filter(|t| !t.is_empty())?;
            let mut out = String::with_capacity(tenant.len() + visible.len() + 3);
            out.push_str("t:");
            for c in tenant.chars() {
                match c {
                    ':' => out.push_str("%3A"),
                    '%' => out.push_str("%25"),
                    c => out.push(c),
                }
            }
            out.push(':');
            out.push_str(visible);
            Some(out)
        }
    }
}

/// The tenant and visible name of an internal name made by [`internal_name`] (filter values, if
/// any, left out).
pub(crate) fn split_internal(internal: &str) -> Option<(Option<String>, &str)> {
    let (tenant, name) = match internal.strip_prefix("g:") {
        Some(visible) => (None, visible),
        None => {
            let rest = internal.strip_prefix("t:")?;
            let colon = rest.find(':')?;
            (Some(percent_decode(&rest[..colon])?), &rest[colon + 1..])
        }
    };
    Some((tenant, without_filters(name)))
}

/// How an internal name reads to an operator (the admin view, which sees every tenant): the
/// visible name, after `{tenant} / ` for a tenant's room, with its filter values in parentheses
/// (`t1 / executions (running, *)`). A name this module did not make is shown as it is.
pub(crate) fn display_name(internal: &str) -> String {
    let (tenant, rest) = match internal.strip_prefix("g:") {
        Some(rest) => (None, rest),
        None => {
            let scoped = internal.strip_prefix("t:").and_then(|rest| {
                let colon = rest.find(':')?;
                Some((percent_decode(&rest[..colon])?, &rest[colon + 1..]))
            });
            match scoped {
                Some((tenant, rest)) => (Some(tenant), rest),
                None => return internal.to_string(),
            }
        }
    };
    let mut parts = rest.split(FILTER_SEP);
    let mut out = tenant.map(|t| format!("{t} / ")).unwrap_or_default();
    out.push_str(parts.next().unwrap_or_default());
    let filters: Vec<&str> = parts.collect();
    if !filters.is_empty() {
        let _ = write!(out, " ({})", filters.join(", "));
    }
    out
}

/// Whether a member in `rooms` (internal names), which may be in `max_rooms`, stays within
/// [`ROOM_NAME_BYTES_PER_ROOM`] a room; the message says why not.
pub(crate) fn check_member_rooms<'a>(rooms: impl IntoIterator<Item = &'a str>, max_rooms: usize) -> Result<(), String> {
    let budget = max_rooms.saturating_mul(ROOM_NAME_BYTES_PER_ROOM);
    let bytes: usize = rooms.into_iter().map(str::len).sum();
    if bytes > budget {
        return Err(format!(
            "too many rooms: their names would take {bytes} bytes, and a socket's rooms may take {budget} (shorter names, fewer filter values)"
        ));
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::{filters::with_filters, *};

    #[test]
    fn display_names_show_the_tenant_and_filters_of_an_internal_name() {
        let tenant = internal_name(RoomScope::Tenant, Some("a:b"), "execution:e1").unwrap();
        assert_eq!(display_name(&tenant), "a:b / execution:e1");
        assert_eq!(
            display_name(&internal_name(RoomScope::Global, None, "platform.admins").unwrap()),
            "platform.admins"
        );
        let filtered =
            internal_name(RoomScope::Tenant, Some("t1"), &with_filters("executions", &[Some("running"), None]));
        assert_eq!(display_name(&filtered.unwrap()), "t1 / executions (running, *)");
        assert_eq!(display_name("made-elsewhere"), "made-elsewhere");
    }

    #[test]
    fn the_names_of_a_members_rooms_are_bounded_together() {
        let uuid_room = format!("t:{}:execution:{}", "u".repeat(36), "e".repeat(36));
        assert!(check_member_rooms(std::iter::repeat_n(uuid_room.as_str(), 100), 100).is_ok(), "100 such rooms fit");
        let name = "n".repeat(1000);
        assert!(check_member_rooms(std::iter::repeat_n(name.as_str(), 9), 100).is_ok());
        let error = check_member_rooms(std::iter::repeat_n(name.as_str(), 10), 100).unwrap_err();
        assert!(
            error.starts_with("too many rooms: their names would take 10000 bytes, and a socket's rooms may take 9600"),
            "{error}"
        );
    }

    #[test]
    fn internal_names_keep_tenants_apart() {
        assert_eq!(internal_name(RoomScope::Tenant, Some("t1"), "execution:e1").unwrap(), "t:t1:execution:e1");
        assert_eq!(internal_name(RoomScope::Tenant, None, "x"), None);
        assert_eq!(internal_name(RoomScope::Global, Some("t1"), "platform.admins").unwrap(), "g:platform.admins");
        let tricky = internal_name(RoomScope::Tenant, Some("a:execution"), "e1").unwrap();
        assert_ne!(tricky, internal_name(RoomScope::Tenant, Some("a"), "execution:e1").unwrap());
        assert_eq!(split_internal(&tricky).unwrap(), (Some("a:execution".to_string()), "e1"));
        assert_eq!(split_internal("g:x").unwrap(), (None, "x"));
    }
}
