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

use std::fmt::Write;

/// Longest visible room name accepted from a client or rendered from a payload.
pub const MAX_NAME_LEN: usize = 512;

/// Longest filter value, in bytes as a room name holds it: `%`, `*` and control characters take
/// three bytes for each byte of their UTF-8 (a C1 control character takes six). Ids and statuses
/// fit many times over; a value of control characters cannot multiply what a room costs.
pub const MAX_FILTER_VALUE_BYTES: usize = 64;

/// Most filtered rooms one join may make: the product of the numbers of values given per filter.
/// Each is a room the node holds for the member (about 200 bytes beside its name), so this, with
/// [`MAX_FILTER_VALUE_BYTES`], keeps the widest subscription within a few KB.
pub const MAX_FILTER_COMBINATIONS: usize = 16;

/// Most filters a room family may have: a published event reaches 2^filters variants of a room.
pub const MAX_FILTERS: usize = 4;

/// Bytes of room names a member may hold per room it may be in: the names of all its rooms
/// (internal names: tenant, visible name and filter values) may add up to this many times
/// `WS_MAX_ROOMS_PER_SOCKET` (9,600 bytes by default: a hundred rooms named by a UUID tenant and
/// a UUID id each fit). With the number of rooms it bounds what one connection makes the node hold
/// in rooms, however it names or filters them.
pub const ROOM_NAME_BYTES_PER_ROOM: usize = 96;

/// The marker an unset optional parameter renders as.
pub const ANY: &str = "*";

/// Separates a room's visible name from its filter values in the names the adapter sees. A
/// control character, which values never contain unescaped and patterns cannot contain.
pub const FILTER_SEP: char = '\u{1}';

/// A parsed room pattern: literal text and `{param}` / `{param?}` slots.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomPattern {
    segments: Vec<Seg>,
    params: Vec<Param>,
    /// Characters escaped in parameter values: `%`, `*`, and the first character of every literal
    /// that follows a parameter, so a value can never contain the text that ends it.
    reserved: Vec<char>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    Param(usize),
}

/// One parameter of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name in the pattern.
    pub name: String,
    /// `{name?}`: may be unset, meaning "any value".
    pub optional: bool,
}

/// Whose rooms these are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomScope {
    /// One instance per tenant (the default): the internal name carries the tenant.
    Tenant,
    /// One instance for everyone, whatever the tenant (platform-wide rooms).
    Global,
}

impl RoomPattern {
    /// Parses a pattern; two parameters must be separated by literal text.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("a room pattern cannot be empty".into());
        }
        let mut segments = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or_else(|| format!("unclosed `{{` in room pattern `{pattern}`"))?;
                    let inner = &rest[1..end];
                    let (name, optional) = match inner.strip_suffix('?') {
                        Some(n) => (n, true),
                        None => (inner, false),
                    };
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(format!("`{{{inner}}}` in room pattern `{pattern}` is not a parameter name"));
                    }
                    if params.iter().any(|p| p.name == name) {
                        return Err(format!("parameter `{name}` appears twice in room pattern `{pattern}`"));
                    }
                    if matches!(segments.last(), Some(Seg::Param(_))) {
                        return Err(format!("room pattern `{pattern}` needs literal text between two parameters"));
                    }
                    segments.push(Seg::Param(params.len()));
                    params.push(Param { name: name.to_string(), optional });
                    rest = &rest[end + 1..];
                }
                found => {
                    let end = found.unwrap_or(rest.len());
                    let lit = &rest[..end];
                    if lit.contains('}') {
                        return Err(format!("unmatched `}}` in room pattern `{pattern}`"));
                    }
                    if lit.contains('*') || lit.contains('%') {
                        return Err(format!("room pattern `{pattern}` cannot contain `*` or `%` outside a parameter"));
                    }
                    if lit.chars().any(char::is_control) {
                        return Err(format!("room pattern `{pattern}` cannot contain control characters"));
                    }
                    segments.push(Seg::Lit(lit.to_string()));
                    rest = &rest[end..];
                }
            }
        }
        let mut reserved: Vec<char> = vec!['%', '*'];
        for pair in segments.windows(2) {
            if let [Seg::Param(_), Seg::Lit(l)] = pair {
                reserved.extend(l.chars().next());
            }
        }
        reserved.sort_unstable();
        reserved.dedup();
        Ok(Self { segments, params, reserved })
    }

    /// The pattern's parameters, in order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Index of the parameter called `name`.
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }

    /// The pattern as written in the spec (`logs:{resourceId?}:{logLevel?}`), for descriptions.
    pub fn source(&self) -> String {
        self.segments
            .iter()
            .map(|seg| match seg {
                Seg::Lit(l) => l.clone(),
                Seg::Param(i) => {
                    let p = &self.params[*i];
                    format!("{{{}{}}}", p.name, if p.optional { "?" } else { "" })
                }
            })
            .collect()
    }

    /// Renders the visible name; `values[i]` is parameter `i` (`None`: unset). `None` when a
    /// required parameter is unset or the name would be too long.
    pub fn render(&self, values: &[Option<&str>]) -> Option<String> {
        let mut out = String::new();
        for seg in &self.segments {
            match seg {
                Seg::Lit(l) => out.push_str(l),
                Seg::Param(i) => match values.get(*i).copied().flatten() {
                    Some(v) if !v.is_empty() => self.escape_into(v, &mut out),
                    _ if self.params[*i].optional => out.push_str(ANY),
                    _ => return None,
                },
            }
        }
        (out.len() <= MAX_NAME_LEN).then_some(out)
    }

    fn escape_into(&self, value: &str, out: &mut String) {
        for c in value.chars() {
            if self.reserved.contains(&c) || c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            } else {
                out.push(c);
            }
        }
    }

    /// Parses a visible name back into parameter values (`None` for `*`). Each parameter but the
    /// last runs to the first occurrence of the literal after it; the last runs to the final
    /// literal. That is exact for names this pattern rendered (literals are escaped in values) and
    /// lenient for single-parameter names typed by hand, such as `user.bob@example.com.private`.
    pub fn parse_name(&self, name: &str) -> Option<Vec<Option<String>>> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
        let mut values = vec![None; self.params.len()];
        let mut rest = name;
        let last_param = self.segments.iter().rposition(|s| matches!(s, Seg::Param(_)));
        for (idx, seg) in self.segments.iter().enumerate() {
            match seg {
                Seg::Lit(l) => rest = rest.strip_prefix(l.as_str())?,
                Seg::Param(i) => {
                    let end = match self.segments.get(idx + 1) {
                        None => rest.len(),
                        // The literal after the last parameter is the name's suffix.
                        Some(Seg::Lit(suffix)) if Some(idx) == last_param => rest.strip_suffix(suffix.as_str())?.len(),
                        Some(Seg::Lit(next)) => rest.find(next.as_str())?,
                        Some(Seg::Param(_)) => unreachable!("parse() keeps parameters apart"),
                    };
                    let raw = &rest[..end];
                    if raw.is_empty() {
                        return None;
                    }
                    values[*i] = if raw == ANY {
                        if !self.params[*i].optional {
                            return None;
                        }
                        None
                    } else {
                        Some(percent_decode(raw)?)
                    };
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }

    /// The visible names a published event with these parameter values reaches: for every
    /// optional parameter, both its value and `*` (subscribers who did not filter on it). With
    /// `exact`, only the name with every value set. Unset required values reach nothing.
    pub fn fanout(&self, values: &[Option<&str>], exact: bool) -> Vec<String> {
        let mut combos: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(self.params.len())];
        for (i, param) in self.params.iter().enumerate() {
            let value = values.get(i).copied().flatten().filter(|v| !v.is_empty());
            match (value, param.optional, exact) {
                (None, false, _) | (None, true, true) => return Vec::new(),
                (Some(v), true, false) => {
                    let mut with_any = combos.clone();
                    combos.iter_mut().for_each(|c| c.push(Some(v)));
                    with_any.iter_mut().for_each(|c| c.push(None));
                    combos.extend(with_any);
                }
                (v, _, _) => combos.iter_mut().for_each(|c| c.push(v)),
            }
        }
        combos.iter().filter_map(|c| self.render(c)).collect()
    }
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

/// The adapter's name for a visible room: `t:<tenant>:<visible>` or `g:<visible>`. `None` for a
/// tenant-scoped room without a tenant. Tenant ids are escaped, so a tenant called `a:b` cannot
/// collide with tenant `a`.
pub fn internal_name(scope: RoomScope, tenant: Option<&str>, visible: &str) -> Option<String> {
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
pub fn split_internal(internal: &str) -> Option<(Option<String>, &str)> {
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
pub fn display_name(internal: &str) -> String {
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

/// A visible name followed by one value per filter (`None`: any value), for [`internal_name`].
pub fn with_filters(visible: &str, values: &[Option<&str>]) -> String {
    let mut out = String::with_capacity(visible.len() + 4 * values.len());
    out.push_str(visible);
    for value in values {
        out.push(FILTER_SEP);
        match value {
            Some(v) if !v.is_empty() => escape_filter_value(v, &mut out),
            _ => out.push_str(ANY),
        }
    }
    out
}

fn escape_filter_value(value: &str, out: &mut String) {
    for c in value.chars() {
        if c == '%' || c == '*' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// How many bytes `value` takes in a room name made by [`with_filters`].
fn filter_value_bytes(value: &str) -> usize {
    value.chars().map(|c| if c == '%' || c == '*' || c.is_control() { 3 * c.len_utf8() } else { c.len_utf8() }).sum()
}

/// The filtered variants of room `internal` a join makes: one per combination of one value per
/// filter, in the family's filter order (`None`: any value; a filter given no value has just
/// that). `filters` pairs each filter's name with its values. Refused, with a message for the
/// client: a value over [`MAX_FILTER_VALUE_BYTES`], or more than [`MAX_FILTER_COMBINATIONS`].
pub fn filter_variants(internal: &str, filters: &[(&str, Vec<Option<String>>)]) -> Result<Vec<String>, String> {
    for (name, values) in filters {
        if let Some(long) = values.iter().flatten().map(|v| filter_value_bytes(v)).find(|b| *b > MAX_FILTER_VALUE_BYTES)
        {
            return Err(format!(
                "a value of filter `{name}` takes {long} bytes; at most {MAX_FILTER_VALUE_BYTES} (`%`, `*` and control characters count three per byte)"
            ));
        }
    }
    let combinations = filters.iter().try_fold(1usize, |n, (_, values)| n.checked_mul(values.len().max(1)));
    if combinations.is_none_or(|n| n > MAX_FILTER_COMBINATIONS) {
        let n = combinations.map_or_else(|| "too many".to_string(), |n| n.to_string());
        return Err(format!("{n} filter combinations; at most {MAX_FILTER_COMBINATIONS} (fewer values per filter)"));
    }
    let mut combos: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(filters.len())];
    for (_, values) in filters {
        if values.is_empty() {
            combos.iter_mut().for_each(|c| c.push(None));
            continue;
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(v.as_deref());
                    c
                })
            })
            .collect();
    }
    Ok(combos
        .iter()
        .map(|c| {
            let mut name = String::with_capacity(internal.len() + c.len() * 8);
            name.push_str(internal);
            name.push_str(&with_filters("", c));
            name
        })
        .collect())
}

/// Whether a member in `rooms` (internal names), which may be in `max_rooms`, stays within
/// [`ROOM_NAME_BYTES_PER_ROOM`] a room; the message says why not.
pub fn check_member_rooms<'a>(rooms: impl IntoIterator<Item = &'a str>, max_rooms: usize) -> Result<(), String> {
    let budget = max_rooms.saturating_mul(ROOM_NAME_BYTES_PER_ROOM);
    let bytes: usize = rooms.into_iter().map(str::len).sum();
    if bytes > budget {
        return Err(format!(
            "too many rooms: their names would take {bytes} bytes, and a socket's rooms may take {budget} (shorter names, fewer filter values)"
        ));
    }
    Ok(())
}

/// Whether `room` is `internal` or one of its filtered variants.
pub fn is_variant_of(room: &str, internal: &str) -> bool {
    room.strip_prefix(internal).is_some_and(|rest| rest.is_empty() || rest.starts_with(FILTER_SEP))
}

/// The visible part of a name made by [`with_filters`] (the name itself when it has none).
pub fn without_filters(name: &str) -> &str {
    name.split(FILTER_SEP).next().unwrap_or(name)
}

/// The filtered rooms of `visible` an event with these filter values reaches: for each filter, its
/// value (when the event has one, and it is one a join could choose) and `*`.
pub fn filter_fanout(visible: &str, values: &[Option<&str>]) -> Vec<String> {
    let mut combos: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(values.len())];
    for value in values {
        match value.filter(|v| !v.is_empty() && filter_value_bytes(v) <= MAX_FILTER_VALUE_BYTES) {
            Some(v) => {
                let mut with_any = combos.clone();
                combos.iter_mut().for_each(|c| c.push(Some(v)));
                with_any.iter_mut().for_each(|c| c.push(None));
                combos.extend(with_any);
            }
            None => combos.iter_mut().for_each(|c| c.push(None)),
        }
    }
    combos.iter().map(|c| with_filters(visible, c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RoomPattern {
        RoomPattern::parse(s).unwrap()
    }

    #[test]
    fn renders_and_parses_back() {
        let logs = p("logs:{resourceId?}:{logLevel?}:{stepId?}");
        let name = logs.render(&[Some("e1"), None, Some("s:1")]).unwrap();
        assert_eq!(name, "logs:e1:*:s%3A1");
        assert_eq!(logs.parse_name(&name).unwrap(), vec![Some("e1".into()), None, Some("s:1".into())]);
    }

    #[test]
    fn required_params_must_be_set() {
        let chat = p("chat.{id}");
        assert_eq!(chat.render(&[None]), None);
        assert_eq!(chat.parse_name("chat.*"), None);
        assert_eq!(chat.parse_name("chat."), None);
    }

    #[test]
    fn a_single_param_between_literals_takes_everything_between() {
        let user = p("user.{id}.private");
        assert_eq!(user.parse_name("user.bob@x.com.private").unwrap(), vec![Some("bob@x.com".into())]);
        assert_eq!(user.parse_name("user.bob.public"), None);
        let tenant = p("tenant.{tenantId}.users");
        assert_eq!(tenant.parse_name("tenant.t1.users").unwrap(), vec![Some("t1".into())]);
    }

    #[test]
    fn literal_only_patterns_match_exactly() {
        let m = p("metrics");
        assert_eq!(m.render(&[]).unwrap(), "metrics");
        assert_eq!(m.parse_name("metrics").unwrap(), Vec::<Option<String>>::new());
        assert_eq!(m.parse_name("metrics2"), None);
    }

    #[test]
    fn values_that_look_like_wildcards_are_escaped() {
        let e = p("execution:{resourceId?}");
        let name = e.render(&[Some("*")]).unwrap();
        assert_eq!(name, "execution:%2A");
        assert_eq!(e.parse_name(&name).unwrap(), vec![Some("*".into())]);
    }

    #[test]
    fn fanout_covers_every_wildcard_combination_once() {
        let logs = p("logs:{resourceId?}:{logLevel?}:{stepId?}");
        let mut rooms = logs.fanout(&[Some("e1"), Some("error"), None], false);
        rooms.sort();
        assert_eq!(rooms, vec!["logs:*:*:*", "logs:*:error:*", "logs:e1:*:*", "logs:e1:error:*"]);
        assert_eq!(logs.fanout(&[Some("e1"), Some("error"), Some("s1")], true), vec!["logs:e1:error:s1"]);
        assert!(logs.fanout(&[Some("e1"), None, None], true).is_empty());
        assert!(p("chat.{id}").fanout(&[None], false).is_empty());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(RoomPattern::parse("a{b}{c}").unwrap_err().contains("literal text between"));
        assert!(RoomPattern::parse("a{b").unwrap_err().contains("unclosed"));
        assert!(RoomPattern::parse("a{b}.{b}").unwrap_err().contains("twice"));
        assert!(RoomPattern::parse("a*").is_err());
        assert!(RoomPattern::parse("").is_err());
    }

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
    fn filtered_rooms_are_reached_by_their_values_and_by_any() {
        let joined = with_filters("executions", &[Some("w1"), None, Some("running")]);
        let internal = internal_name(RoomScope::Tenant, Some("t1"), &joined).unwrap();
        assert_eq!(split_internal(&internal).unwrap(), (Some("t1".to_string()), "executions"));
        let reached = filter_fanout("executions", &[Some("w1"), Some("e9"), Some("running")]);
        assert_eq!(reached.len(), 8);
        assert!(reached.contains(&joined), "{reached:?}");
        assert!(!reached.contains(&with_filters("executions", &[Some("w2"), None, Some("running")])));
        assert_eq!(
            with_filters("x", &[Some("*"), Some("a\u{1}b")]),
            "x\u{1}%2A\u{1}a%01b",
            "values cannot forge separators"
        );
        assert_eq!(without_filters("plain"), "plain");
    }

    fn values(list: &[&str]) -> Vec<Option<String>> {
        list.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn a_join_makes_one_room_per_combination_of_filter_values() {
        let rooms = filter_variants(
            "t:t1:executions",
            &[("workflow_id", values(&["w1", "w2"])), ("execution_id", vec![None]), ("status", values(&["running"]))],
        )
        .unwrap();
        assert_eq!(
            rooms,
            [
                "t:t1:executions\u{1}w1\u{1}*\u{1}running".to_string(),
                "t:t1:executions\u{1}w2\u{1}*\u{1}running".to_string()
            ]
        );
        let reached = filter_fanout("executions", &[Some("w2"), Some("e7"), Some("running")]);
        assert!(reached.iter().any(|r| format!("t:t1:{r}") == rooms[1]), "an event reaches what a join made");
    }

    #[test]
    fn filter_values_are_bounded_in_bytes_as_stored_and_combinations_in_number() {
        let exact = "x".repeat(MAX_FILTER_VALUE_BYTES);
        assert!(filter_variants("r", &[("f", values(&[&exact]))]).is_ok());
        // 22 C1 control characters: 44 bytes of UTF-8, 132 stored.
        let c1: String = std::iter::repeat_n('\u{85}', 22).collect();
        let error = filter_variants("r", &[("status", values(&[&c1]))]).unwrap_err();
        assert!(error.starts_with("a value of filter `status` takes 132 bytes; at most 64"), "{error}");
        assert!(filter_variants("r", &[("f", values(&["%".repeat(22).as_str()]))]).is_err(), "66 bytes");

        let four = values(&["1", "2", "3", "4"]);
        assert_eq!(filter_variants("r", &[("a", four.clone()), ("b", four.clone())]).unwrap().len(), 16);
        let error = filter_variants("r", &[("a", four.clone()), ("b", four), ("c", values(&["1", "2"]))]).unwrap_err();
        assert!(error.starts_with("32 filter combinations; at most 16"), "{error}");
        let huge = vec![None; 1 << 16];
        assert!(
            filter_variants("r", &[("a", huge.clone()), ("b", huge.clone()), ("c", huge.clone()), ("d", huge)])
                .unwrap_err()
                .starts_with("too many filter combinations")
        );
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
    fn an_event_value_no_join_could_choose_reaches_only_any() {
        let long = "x".repeat(MAX_FILTER_VALUE_BYTES + 1);
        assert_eq!(filter_fanout("executions", &[Some(&long)]), [with_filters("executions", &[None])]);
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
