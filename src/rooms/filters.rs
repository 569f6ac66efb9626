//! Filters: hidden dimensions of a room that clients choose values for when they join (the Go
//! hub's subscription filters). Each combination of values is a room of its own, the visible name
//! then one value (or `*`) per filter after [`FILTER_SEP`]; a published event reaches, for each
//! filter, its value and `*`. What one join makes is bounded here: value bytes and combinations.

use std::{fmt::Write, sync::Arc};

use super::ANY;

/// Longest filter value, in bytes as a room name holds it: `%`, `*` and control characters take
/// three bytes for each byte of their UTF-8 (a C1 control character takes six). Ids and statuses
/// fit many times over; a value of control characters cannot multiply what a room costs.
pub(crate) const MAX_FILTER_VALUE_BYTES: usize = 64;

/// Most filtered rooms one join may make: the product of the numbers of values given per filter.
/// Each is a room the node holds for the member (about 200 bytes beside its name), so this, with
/// [`MAX_FILTER_VALUE_BYTES`], keeps the widest subscription within a few KB.
pub(crate) const MAX_FILTER_COMBINATIONS: usize = 16;

/// Most filters a room family may have: a published event reaches 2^filters variants of a room.
pub(crate) const MAX_FILTERS: usize = 4;

/// Separates a room's visible name from its filter values in the names the adapter sees. A
/// control character, which values never contain unescaped and patterns cannot contain.
pub(crate) const FILTER_SEP: char = '\u{1}';

/// A visible name followed by one value per filter (`None`: any value), for [`internal_name`](super::internal_name).
pub(crate) fn with_filters(visible: &str, values: &[Option<&str>]) -> String {
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
pub(crate) fn filter_variants(internal: &str, filters: &[(&str, Vec<Option<String>>)]) -> Result<Vec<String>, String> {
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

/// Whether `room` is `internal` or one of its filtered variants.
pub(crate) fn is_variant_of(room: &str, internal: &str) -> bool {
    room.strip_prefix(internal).is_some_and(|rest| rest.is_empty() || rest.starts_with(FILTER_SEP))
}

/// The visible part of a name made by [`with_filters`] (the name itself when it has none).
pub(crate) fn without_filters(name: &str) -> &str {
    name.split(FILTER_SEP).next().unwrap_or(name)
}

/// The filter values a published event was routed to a room with, as the room's variants' names
/// hold them (escaped; `None`: no value a join could choose), one set for each route target that
/// names the room: which of its variants the event reaches, without a name for each (a family of
/// three filters has eight). Empty for a family without filters: the event reaches the room.
/// History keeps it beside each event, shared by every room the target reached, and a recovery
/// asks it about the member's variants.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterReach(Arc<[FilterValues]>);

/// One target's filter values, escaped, in the family's filter order.
type FilterValues = Box<[Option<Box<str>>]>;

impl FilterReach {
    /// What an event with these filter values (the family's filters, in order) reaches.
    pub(crate) fn new(values: &[Option<&str>]) -> Self {
        Self(Arc::new([Self::escaped(values)]))
    }

    fn escaped(values: &[Option<&str>]) -> FilterValues {
        values
            .iter()
            .map(|v| {
                let v = v.filter(|v| !v.is_empty() && filter_value_bytes(v) <= MAX_FILTER_VALUE_BYTES)?;
                let mut out = String::with_capacity(v.len());
                escape_filter_value(v, &mut out);
                Some(out.into_boxed_str())
            })
            .collect()
    }

    /// This reach and `other`'s together (two targets of one route naming the same room).
    pub(crate) fn and(&self, other: &FilterReach) -> FilterReach {
        Self(self.0.iter().chain(other.0.iter()).cloned().collect())
    }

    /// Whether the room has no filters (the event reaches it whole).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the event reaches the variant whose name ends with `suffix` (the room's name
    /// taken off): one whose every value is `*` or the event's.
    pub(crate) fn reaches(&self, suffix: &str) -> bool {
        self.0.iter().any(|values| {
            let mut chosen = suffix.split(FILTER_SEP);
            chosen.next().is_some_and(str::is_empty)
                && values.iter().all(|value| match chosen.next() {
                    Some(ANY) => true,
                    Some(c) => value.as_deref() == Some(c),
                    None => false,
                })
                && chosen.next().is_none()
        })
    }

    /// How many variants it reaches (what [`suffixes`](Self::suffixes) would name): for each
    /// target, two per filter with a value, one per filter without.
    pub(crate) fn variant_count(&self) -> usize {
        self.0.iter().map(|values| 1usize << values.iter().filter(|v| v.is_some()).count()).sum()
    }

    /// The suffixes of the variants reached: for each filter, the event's value (when it has one
    /// a join could choose) and `*`.
    pub(crate) fn suffixes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for values in self.0.iter() {
            let mut combos = vec![String::new()];
            for value in values.iter() {
                match value {
                    Some(v) => {
                        let with_any: Vec<String> = combos.iter().map(|c| format!("{c}{FILTER_SEP}{ANY}")).collect();
                        combos.iter_mut().for_each(|c| {
                            c.push(FILTER_SEP);
                            c.push_str(v);
                        });
                        combos.extend(with_any);
                    }
                    None => combos.iter_mut().for_each(|c| {
                        c.push(FILTER_SEP);
                        c.push_str(ANY);
                    }),
                }
            }
            out.extend(combos);
        }
        out
    }

    /// Heap bytes it takes, for budgets.
    pub(crate) fn bytes(&self) -> usize {
        self.0.iter().map(|set| 16 + set.iter().map(|v| 16 + v.as_ref().map_or(0, |v| v.len())).sum::<usize>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::{RoomScope, internal_name, split_internal};

    /// The names of the variants of `visible` an event with these filter values reaches.
    fn filter_fanout(visible: &str, values: &[Option<&str>]) -> Vec<String> {
        FilterReach::new(values).suffixes().iter().map(|suffix| format!("{visible}{suffix}")).collect()
    }

    #[test]
    fn filtered_rooms_are_reached_by_their_values_and_by_any() {
        let joined = with_filters("executions", &[Some("w1"), None, Some("running")]);
        let internal = internal_name(RoomScope::Tenant, Some("t1"), &joined).unwrap();
        assert_eq!(split_internal(&internal).unwrap(), (Some("t1".to_string()), "executions"));
        let reached = filter_fanout("executions", &[Some("w1"), Some("e9"), Some("running")]);
        assert_eq!(reached.len(), 8);
        assert_eq!(FilterReach::new(&[Some("w1"), Some("e9"), Some("running")]).variant_count(), 8);
        assert_eq!(FilterReach::new(&[Some("w1"), None]).variant_count(), 2);
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
    fn a_reach_answers_as_the_fanout_of_names_does() {
        let events: [&[Option<&str>]; 4] = [
            &[Some("w1"), Some("e9"), Some("running")],
            &[Some("w1"), None, Some("a*%\u{1}b")],
            &[Some(""), Some(&"x".repeat(MAX_FILTER_VALUE_BYTES + 1)), None],
            &[None, None, None],
        ];
        let joins: Vec<String> = [
            [Some("w1"), None, Some("running")],
            [None, None, None],
            [Some("w2"), None, None],
            [Some("w1"), Some("e9"), Some("running")],
            [None, None, Some("a*%\u{1}b")],
            [None, Some(""), None],
        ]
        .iter()
        .map(|values| with_filters("", values))
        .chain(["".to_string(), "\u{1}*".to_string(), "\u{1}*\u{1}*\u{1}*\u{1}*".to_string()])
        .collect();
        for values in events {
            let reach = FilterReach::new(values);
            let names = reach.suffixes();
            assert_eq!(names.len(), 1 << values.iter().flatten().filter(|v| !v.is_empty() && v.len() <= 64).count());
            for join in &joins {
                assert_eq!(reach.reaches(join), names.contains(join), "{values:?} reaching {join:?}");
            }
        }
        let both = FilterReach::new(&[Some("a")]).and(&FilterReach::new(&[Some("b")]));
        assert!(both.reaches("\u{1}a") && both.reaches("\u{1}b") && !both.reaches("\u{1}c"));
        assert_eq!(both.suffixes().len(), 4);
        assert!(FilterReach::default().is_empty());
    }

    #[test]
    fn an_event_value_no_join_could_choose_reaches_only_any() {
        let long = "x".repeat(MAX_FILTER_VALUE_BYTES + 1);
        assert_eq!(filter_fanout("executions", &[Some(&long)]), [with_filters("executions", &[None])]);
    }
}
