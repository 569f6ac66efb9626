//! "Did you mean ...?": the known name a misspelt one was probably meant to be, for the errors
//! `check` reports (unknown fields, rooms, stores, parameters, variables), the config file's
//! unknown fields and the environment variables that look like a setting's (`config`).

use std::fmt;

/// The candidate closest to `name`, when one is close enough to be a likely typo and no other is
/// as close (a tie suggests nothing rather than a guess).
pub(crate) fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
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

/// The setting an environment variable `name` (`API_KEY`) was probably meant to be, among the
/// `known` ones (`API_KEYS`), when it is none of them. Besides [`closest`]'s typos: a plural
/// or singular (`TRUSTED_PROXY`), a setting with its prefix changed (`WS_LOG_LEVEL`) or missing
/// (`PING_INTERVAL`), or a setting cut short (`ADMIN_PASSWORD`). Prefixes are the first word of
/// the known names that have several (`WS_`, `JWT_`, `REDIS_`, `API_`, `ADMIN_`, ...); only
/// unambiguous guesses are made.
pub(crate) fn closest_variable<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    if known.contains(&name) {
        return None;
    }
    let unique = |mut found: Vec<&'a str>| {
        found.dedup();
        (found.len() == 1).then(|| found[0])
    };
    // Singular and plural forms of the last word.
    let forms: Vec<String> = [
        name.strip_suffix("IES").map(|stem| format!("{stem}Y")),
        name.strip_suffix('Y').map(|stem| format!("{stem}IES")),
        name.strip_suffix("ES").map(str::to_string),
        name.strip_suffix('S').map(str::to_string),
        Some(format!("{name}S")),
        Some(format!("{name}ES")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(meant) = unique(known.iter().copied().filter(|k| forms.iter().any(|f| f == k)).collect()) {
        return Some(meant);
    }
    let prefixes: Vec<&str> = known.iter().filter_map(|k| k.split_once('_').map(|(prefix, _)| prefix)).collect();
    let words_after_prefix = |k: &'a str| k.split_once('_').map(|(_, rest)| rest);
    let own_prefix = name.split_once('_').filter(|(prefix, _)| prefixes.contains(prefix));
    let guesses: Vec<Vec<&'a str>> = match own_prefix {
        Some((prefix, rest)) => vec![
            // The same prefix, the setting's last words missing.
            known.iter().copied().filter(|k| k.starts_with(&format!("{prefix}_{rest}_"))).collect(),
            // Another prefix (or none) before the same words; not a bare `PORT` or `HOST`: too common.
            known
                .iter()
                .copied()
                .filter(|k| rest.len() >= 6 && (*k == rest || words_after_prefix(k) == Some(rest)))
                .collect(),
        ],
        // A known prefix missing; names of one word (`USERNAME`, `PASSWORD`) are too common to guess at.
        None if name.contains('_') => {
            vec![known.iter().copied().filter(|k| words_after_prefix(k) == Some(name)).collect()]
        }
        None => vec![],
    };
    guesses.into_iter().find_map(unique).or_else(|| match own_prefix {
        // A typo after a known prefix: judged on the words after it, so a long shared prefix
        // does not stretch how different they may be (`ADMIN_ROLES` is not `ADMIN_MODE`).
        Some((prefix, rest)) => {
            let same_prefix = known.iter().copied().filter(|k| k.split_once('_').is_some_and(|(p, _)| p == prefix));
            let rests: Vec<(&'a str, &'a str)> =
                same_prefix.filter_map(|k| Some((words_after_prefix(k)?, k))).collect();
            let meant = closest(rest, rests.iter().map(|(r, _)| *r))?;
            rests.iter().find(|(r, _)| *r == meant).map(|(_, k)| *k)
        }
        None => closest(name, known.iter().copied()),
    })
}

/// ` (did you mean `x`?)` when there is a suggestion, or nothing: the one wording of every
/// suggestion.
pub(crate) fn did_you_mean(suggestion: Option<impl fmt::Display>) -> String {
    suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// The message for an unknown field of a YAML mapping (a spec's or the config file's): the
/// fields there are, and the one probably meant.
pub(crate) fn unknown_field(field: &str, known: &[&str]) -> String {
    let meant = closest(field, known.iter().copied());
    format!("unknown field `{field}`, expected one of {}{}", known.join(", "), did_you_mean(meant))
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
    fn misspelt_environment_variables_find_their_setting() {
        let known = [
            "PORT",
            "HOST",
            "API_KEYS",
            "JWT_SECRET",
            "JWT_PUBLIC_KEY",
            "JWT_PUBLIC_KEY_FILE",
            "TRUSTED_PROXIES",
            "CORS_ORIGINS",
            "WS_PING_INTERVAL",
            "LOG_LEVEL",
            "REDIS_URL",
            "REDIS_PASSWORD",
            "ADMIN_USERNAME",
            "ADMIN_PASSWORD_HASH",
            "WS_MAX_EVENT_SIZE",
        ];
        let meant = |name: &str| closest_variable(name, &known);
        assert_eq!(meant("API_KEY"), Some("API_KEYS"), "singular");
        assert_eq!(meant("TRUSTED_PROXY"), Some("TRUSTED_PROXIES"), "singular of -ies");
        assert_eq!(meant("CORS_ORIGIN"), Some("CORS_ORIGINS"));
        assert_eq!(meant("JWT_SECRETS"), Some("JWT_SECRET"), "plural");
        assert_eq!(meant("REDIS_URI"), Some("REDIS_URL"), "a typo");
        assert_eq!(meant("JWT_SECERT"), Some("JWT_SECRET"), "swapped letters");
        assert_eq!(meant("WS_LOG_LEVEL"), Some("LOG_LEVEL"), "another prefix");
        assert_eq!(meant("API_MAX_EVENT_SIZE"), Some("WS_MAX_EVENT_SIZE"), "another prefix");
        assert_eq!(meant("PING_INTERVAL"), Some("WS_PING_INTERVAL"), "a missing prefix");
        assert_eq!(meant("PUBLIC_KEY"), Some("JWT_PUBLIC_KEY"), "a missing prefix");
        assert_eq!(meant("ADMIN_PASSWORD"), Some("ADMIN_PASSWORD_HASH"), "cut short");
        assert_eq!(meant("JWT_PUBLIC"), None, "cut short, but two settings go on from there");
        for unrelated in
            ["PATH", "HOME", "HOSTNAME", "USER", "USERNAME", "PASSWORD", "TERM", "LANG", "WS_PORT", "API_PORT"]
        {
            assert_eq!(meant(unrelated), None, "{unrelated}");
        }
        assert_eq!(meant("REDIS_SERVICE_HOST"), None, "what Kubernetes sets for a service named redis");
        assert_eq!(meant("ADMIN_ROLES"), None, "not a typo of ADMIN_MODE: the words after the prefix differ");
        assert_eq!(meant("JTW_SECRET"), Some("JWT_SECRET"), "a typo in the prefix");
        assert_eq!(meant("LOGLEVEL"), Some("LOG_LEVEL"));
        assert_eq!(meant("WS_PINGINTERVAL"), Some("WS_PING_INTERVAL"));
        assert_eq!(meant("API_KEYS"), None, "a known name is no misspelling");
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
