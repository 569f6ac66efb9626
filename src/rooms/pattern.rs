//! Room patterns (`logs:{resourceId?}:{logLevel?}`): parsed once from a spec, rendered into the
//! visible names clients see, parsed back from them, and fanned out over `*` for published
//! events. Parameter values are escaped so that no value can end its slot early or pass for `*`.

use std::fmt::Write;

use super::{ANY, MAX_NAME_LEN, percent_decode};

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

/// Most parameters a pattern may have: a published event reaches up to 2^n names of a pattern
/// whose n parameters are optional.
pub(crate) const MAX_PARAMS: usize = 8;

/// One parameter of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name in the pattern.
    pub name: String,
    /// `{name?}`: may be unset, meaning "any value".
    pub optional: bool,
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
                    if params.len() == MAX_PARAMS {
                        return Err(format!("room pattern `{pattern}` has more than {MAX_PARAMS} parameters"));
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
        let mut values = vec![None; self.params.len()];
        self.walk_name(name, |i, raw| {
            values[i] = Some(percent_decode(raw)?);
            Some(())
        })?;
        Some(values)
    }

    /// Whether [`parse_name`](Self::parse_name) parses `name`, without making its values.
    pub fn matches_name(&self, name: &str) -> bool {
        self.walk_name(name, |_, raw| (!raw.contains('%') || percent_decode(raw).is_some()).then_some(())).is_some()
    }

    /// Walks `name` along the pattern, calling `value` with each parameter's raw (escaped) value
    /// (not for `*`); `None` when the name is not one of the pattern's, or `value` refused one.
    fn walk_name(&self, name: &str, mut value: impl FnMut(usize, &str) -> Option<()>) -> Option<()> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return None;
        }
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
                    if raw == ANY {
                        if !self.params[*i].optional {
                            return None;
                        }
                    } else {
                        value(*i, raw)?;
                    }
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(())
    }

    /// The visible names a published event with these parameter values reaches: for every
    /// optional parameter, both its value and `*` (subscribers who did not filter on it). With
    /// `exact`, only the name with every value set. Unset required values reach nothing.
    pub fn fanout(&self, values: &[Option<&str>], exact: bool) -> Vec<String> {
        let mut given = [None; MAX_PARAMS];
        // Bit i of `wild`: parameter i has a value, and a variant with `*` in its place exists.
        let mut wild = 0u32;
        for (i, param) in self.params.iter().enumerate() {
            let value = values.get(i).copied().flatten().filter(|v| !v.is_empty());
            match (value, param.optional, exact) {
                (None, false, _) | (None, true, true) => return Vec::new(),
                (Some(_), true, false) => wild |= 1 << i,
                _ => {}
            }
            given[i] = value;
        }
        // Every subset of `wild` replaced by `*`, the values themselves first.
        let mut names = Vec::with_capacity(1 << wild.count_ones());
        let mut star = 0u32;
        loop {
            let mut combo = given;
            for (i, slot) in combo.iter_mut().enumerate().take(self.params.len()) {
                if star & (1 << i) != 0 {
                    *slot = None;
                }
            }
            names.extend(self.render(&combo[..self.params.len()]));
            if star == wild {
                break;
            }
            star = (star.wrapping_sub(wild)) & wild;
        }
        names
    }
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
        let nine = (0..=MAX_PARAMS).map(|i| format!("{{p{i}?}}")).collect::<Vec<_>>().join(".");
        assert!(RoomPattern::parse(&nine).unwrap_err().contains("more than 8 parameters"));
    }
}
