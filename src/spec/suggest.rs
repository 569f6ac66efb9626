//! "Did you mean ...?": the known name a misspelt one was probably meant to be, for the errors
//! `check` reports (unknown fields, rooms, stores, parameters, variables).

use std::fmt;

/// The candidate closest to `name`, when one is close enough to be a likely typo and no other is
/// as close (a tie suggests nothing rather than a guess).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = name.chars().count();
    // A third of the name may be wrong, at least one character, but never all of it: `b` is not
    // a typo of `a`.
    let max = (len / 3).max(1).min(len.saturating_sub(1));
    let mut best: Option<(usize, &'a str)> = None;
    let mut tied = false;
    for candidate in candidates {
        let distance = edit_distance(name, candidate);
        if distance > max || candidate == name {
            continue;
        }
        match best {
            Some((d, _)) if d < distance => {}
            Some((d, _)) if d == distance => tied = true,
            _ => {
                best = Some((distance, candidate));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, candidate)| candidate)
}

/// ` (did you mean `x`?)` when there is a suggestion, or nothing: the one wording of every
/// suggestion.
pub fn did_you_mean(suggestion: Option<impl fmt::Display>) -> String {
    suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// Edit distance in characters: insertions, deletions, substitutions and swaps of two
/// neighbours (`jion` is one edit from `join`), each counting one. This is the "optimal string
/// alignment" variant: a swapped pair is not edited again.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the classic table: the distances from `a[..i-1]`, `a[..i]` and `a[..i+1]`
    // to each prefix of `b`.
    let mut before = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut row = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let substitution = previous[j] + usize::from(a[i] != b[j]);
            row[j + 1] = substitution.min(previous[j + 1] + 1).min(row[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                row[j + 1] = row[j + 1].min(before[j - 1] + 1);
            }
        }
        before = std::mem::replace(&mut previous, row);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions_and_swaps() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("room", "room"), 0);
        assert_eq!(edit_distance("snapshott", "snapshot"), 1);
        assert_eq!(edit_distance("patern", "pattern"), 1);
        assert_eq!(edit_distance("tenant", "tenantId"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("émit", "emit"), 1, "characters, not bytes");
        assert_eq!(edit_distance("jion", "join"), 1, "a swap of neighbours is one edit");
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3, "a swapped pair is not edited again");
    }

    #[test]
    fn the_closest_name_is_suggested_when_close_enough() {
        let fields = ["key", "name", "params", "snapshot"];
        assert_eq!(closest("snapshott", fields), Some("snapshot"));
        assert_eq!(closest("parms", fields), Some("params"));
        assert_eq!(closest("tenant", ["id", "tenantId", "roles"]), Some("tenantId"));
        assert_eq!(closest("nothing", fields), None);
        assert_eq!(closest("b", ["a"]), None, "a one-letter name is not a typo of another");
        assert_eq!(closest("key", fields), None, "the name itself is not a suggestion");
    }

    #[test]
    fn a_tie_suggests_nothing() {
        assert_eq!(closest("rom", ["roma", "romb"]), None);
        assert_eq!(closest("rom", ["roma", "room2"]), Some("roma"));
    }

    #[test]
    fn did_you_mean_is_empty_without_a_suggestion() {
        assert_eq!(
            did_you_mean(closest("snapshott", ["snapshot"]).map(|c| format!("room.{c}"))),
            " (did you mean `room.snapshot`?)"
        );
        assert_eq!(did_you_mean(closest("zzz", ["snapshot"])), "");
    }
}
