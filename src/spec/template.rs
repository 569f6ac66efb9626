//! The template language of namespace specs: `{...}` placeholders in strings, and JSON-shaped
//! values built from them.
//!
//! A placeholder holds an expression: a path from a root variable (`payload.resourceId`,
//! `state.executions[payload.executionId]`), a literal (`null`, `'text'`, `3`), or alternatives
//! joined by `??` (the first one that is set). A string that is exactly one placeholder renders to
//! the value itself, whatever its JSON type; any other string renders to text. Inside an object, a
//! field whose value is unset is left out, as `JSON.stringify` drops `undefined`.
//!
//! Templates are parsed once, when a spec is loaded, and rendered against a [`Scope`] that knows
//! what the roots mean in the current context (a client event, a published event, a timer...).

use std::{borrow::Cow, fmt};

use serde_json::{Map, Value};

use super::suggest;

/// The variables an expression can start from. Which ones exist depends on where the template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// The socket: `socket.id`, `socket.transport`.
    Socket,
    /// The authenticated user: `user.id`, `user.tenantId`, `user.roles`, `user.authenticated`.
    User,
    /// The client event's first argument.
    Payload,
    /// The published event: `event.type`, `event.tenantId`, `event.data`, `event.timestamp`.
    Event,
    /// Shorthand for `event.data`.
    Data,
    /// The room just joined (`room.key`, `room.params.*`, `room.snapshot`), or the room whose
    /// snapshot is being built.
    Room,
    /// Last-known state: `state.<store>` or `state.<store>[key]`.
    State,
    /// The current time as an ISO 8601 string.
    Now,
    /// The tenant a timer is emitting for: `tenant.id`, `tenant.stats`.
    Tenant,
    /// A stored entry, while matching a snapshot filter.
    Entry,
    /// The gateway process: `gateway.stats` (connections, message rates, latencies, CPU, memory).
    Gateway,
}

impl Root {
    const ALL: [Root; 11] = [
        Root::Socket,
        Root::User,
        Root::Payload,
        Root::Event,
        Root::Data,
        Root::Room,
        Root::State,
        Root::Now,
        Root::Tenant,
        Root::Entry,
        Root::Gateway,
    ];

    /// The name used in templates.
    pub fn name(self) -> &'static str {
        match self {
            Root::Socket => "socket",
            Root::User => "user",
            Root::Payload => "payload",
            Root::Event => "event",
            Root::Data => "data",
            Root::Room => "room",
            Root::State => "state",
            Root::Now => "now",
            Root::Tenant => "tenant",
            Root::Entry => "entry",
            Root::Gateway => "gateway",
        }
    }

    fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The fields this root has, when they are fixed (what the engine's scopes provide:
    /// `engine::actions`, `engine::publish`, `engine::timers`, `auth::Identity::to_json`), so that
    /// a spec reading any other is refused when it loads instead of rendering nothing. `None` for
    /// roots whose fields are the spec's or a client's (`payload`, `data`, `state`, `entry`).
    pub fn fields(self) -> Option<&'static [&'static str]> {
        match self {
            Root::Socket => Some(&["id", "transport", "rooms"]),
            Root::User => Some(&["id", "tenantId", "roles", "authenticated", "expiresAt"]),
            Root::Event => Some(&["type", "tenantId", "data", "timestamp"]),
            Root::Room => Some(&["key", "name", "params", "snapshot"]),
            Root::Tenant => Some(&["id", "stats"]),
            Root::Gateway => Some(&["stats"]),
            Root::Now => Some(&[]),
            Root::Payload | Root::Data | Root::State | Root::Entry => None,
        }
    }
}

/// One step of a path after its root.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name`
    Field(String),
    /// `[expression]`: a field named by, or an array index given by, another expression.
    Index(Box<Expr>),
}

/// A path such as `state.executions[payload.executionId].status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Where the path starts.
    pub root: Root,
    /// The steps after the root.
    pub segments: Vec<Segment>,
}

/// An expression inside `{...}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path from a root variable.
    Path(Path),
    /// `null`, `true`, `false`, a number or a `'quoted string'`.
    Literal(Value),
    /// `a ?? b ?? c`: the first alternative that is set.
    Coalesce(Vec<Expr>),
}

/// What the renderer asks of its context.
pub trait Scope {
    /// The value of a root variable; `None` when it is unset here.
    fn root(&self, root: Root) -> Option<Cow<'_, Value>>;

    /// A field computed only when a template asks for it (`room.snapshot`, `tenant.stats`);
    /// `None` when `root.field` is an ordinary field of [`Scope::root`].
    fn computed(&self, _root: Root, _field: &str) -> Option<Value> {
        None
    }

    /// `state.<store>[key]` (`key` given) or the whole store listing (`key` is `None`).
    fn state(&self, _store: &str, _key: Option<&str>) -> Option<Value> {
        None
    }
}

impl Expr {
    /// Evaluates the expression; `None` when unset.
    pub fn eval(&self, scope: &dyn Scope) -> Option<Value> {
        match self {
            Expr::Literal(v) => Some(v.clone()),
            Expr::Coalesce(alts) => {
                // `null` counts as unset, so `a ?? b` skips a null `a`; the result is null only
                // when nothing better was found.
                let mut saw_null = false;
                for alt in alts {
                    match alt.eval(scope) {
                        Some(Value::Null) => saw_null = true,
                        Some(v) => return Some(v),
                        None => {}
                    }
                }
                saw_null.then_some(Value::Null)
            }
            Expr::Path(path) => path.eval(scope),
        }
    }

    /// Calls `f` with every path in the expression (for static checks).
    pub fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        match self {
            Expr::Literal(_) => {}
            Expr::Coalesce(alts) => alts.iter().for_each(|e| e.for_each_path(f)),
            Expr::Path(p) => {
                f(p);
                for seg in &p.segments {
                    if let Segment::Index(e) = seg {
                        e.for_each_path(f);
                    }
                }
            }
        }
    }
}

impl Path {
    fn eval(&self, scope: &dyn Scope) -> Option<Value> {
        let mut rest = self.segments.as_slice();
        let start: Cow<'_, Value> = if self.root == Root::State {
            // `state.<store>` or `state.<store>[key]`: the store does the lookup.
            let Some((Segment::Field(store), after)) = rest.split_first() else {
                return None;
            };
            rest = after;
            let key = match rest.first() {
                Some(Segment::Index(key)) => {
                    rest = &rest[1..];
                    Some(key_string(&key.eval(scope)?)?)
                }
                _ => None,
            };
            Cow::Owned(scope.state(store, key.as_deref())?)
        } else {
            match rest.first() {
                Some(Segment::Field(field)) if let Some(v) = scope.computed(self.root, field) => {
                    rest = &rest[1..];
                    Cow::Owned(v)
                }
                _ => scope.root(self.root)?,
            }
        };
        // Borrowed as far as the scope lends it: only the value found is copied.
        let mut current = start;
        for seg in rest {
            current = match current {
                Cow::Borrowed(v) => Cow::Borrowed(step(v, seg, scope)?),
                Cow::Owned(v) => Cow::Owned(step(&v, seg, scope)?.clone()),
            };
        }
        Some(current.into_owned())
    }
}

/// The field or element `seg` names in `value`.
fn step<'v>(value: &'v Value, seg: &Segment, scope: &dyn Scope) -> Option<&'v Value> {
    match seg {
        Segment::Field(name) => value.get(name.as_str()),
        Segment::Index(e) => match e.eval(scope)? {
            Value::Number(n) => value.get(usize::try_from(n.as_u64()?).ok()?),
            other => value.get(key_string(&other)?.as_str()),
        },
    }
}

/// A value used as a key: strings as they are, numbers and booleans as their text.
pub fn key_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A parsed template string.
#[derive(Debug, Clone, PartialEq)]
pub struct StrTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

impl StrTemplate {
    /// Parses `text`, with `{expr}` placeholders and `{{`/`}}` for literal braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => return Err(format!("unmatched `}}` in `{text}` (write `}}}}` for a literal brace)")),
                '{' => {
                    let start = i + 1;
                    let mut end = None;
                    let mut in_quote = false;
                    for (j, c) in chars.by_ref() {
                        match c {
                            '\'' => in_quote = !in_quote,
                            '}' if !in_quote => {
                                end = Some(j);
                                break;
                            }
                            _ => {}
                        }
                    }
                    let end = end.ok_or_else(|| format!("unclosed `{{` in `{text}`"))?;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    let expr =
                        parse_expr(&text[start..end]).map_err(|e| format!("in `{{{}}}`: {e}", &text[start..end]))?;
                    parts.push(Part::Expr(expr));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() || parts.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// The literal text, when the template has no placeholder.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    /// The expression, when the whole template is one placeholder.
    pub fn as_single_expr(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    /// Renders to a JSON value: the value itself for a lone placeholder, text otherwise.
    /// `None` when a lone placeholder is unset.
    pub fn render_value(&self, scope: &dyn Scope) -> Option<Value> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => e.eval(scope),
            _ => Some(Value::String(self.render_text(scope))),
        }
    }

    /// Renders to text; an unset placeholder contributes nothing, a non-string value its JSON.
    pub fn render_text(&self, scope: &dyn Scope) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => match e.eval(scope) {
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(Value::Null) | None => {}
                    Some(v) => out.push_str(&v.to_string()),
                },
            }
        }
        out
    }

    /// Renders to a key string: a lone placeholder must be a string or number; `None` if unset.
    pub fn render_key(&self, scope: &dyn Scope) -> Option<String> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => key_string(&e.eval(scope)?),
            _ => Some(self.render_text(scope)),
        }
    }

    /// Calls `f` with every path in the template.
    pub fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        for part in &self.parts {
            if let Part::Expr(e) = part {
                e.for_each_path(f);
            }
        }
    }
}

/// A JSON-shaped template: objects, arrays and literals, with template strings inside.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTemplate {
    /// No placeholder anywhere inside: rendered by cloning.
    Const(Value),
    /// A template string.
    Str(StrTemplate),
    /// An object; keys may be templates too.
    Object(Vec<(StrTemplate, ValueTemplate)>),
    /// An array.
    Array(Vec<ValueTemplate>),
}

impl ValueTemplate {
    /// Parses every string in `value` as a template.
    pub fn parse(value: &Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => ValueTemplate::string(StrTemplate::parse(s)?),
            Value::Array(items) => ValueTemplate::array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ValueTemplate::parse(v).map_err(|e| format!("[{i}]: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => ValueTemplate::object(
                map.iter()
                    .map(|(k, v)| {
                        let key = StrTemplate::parse(k).map_err(|e| format!("key `{k}`: {e}"))?;
                        let value = ValueTemplate::parse(v).map_err(|e| format!("{k}: {e}"))?;
                        Ok((key, value))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => ValueTemplate::Const(other.clone()),
        })
    }

    /// A template string; without placeholders, the constant text.
    pub fn string(template: StrTemplate) -> Self {
        match template.as_literal() {
            Some(text) => ValueTemplate::Const(Value::String(text.to_string())),
            None => ValueTemplate::Str(template),
        }
    }

    /// An array; a constant when every item is.
    pub fn array(items: Vec<ValueTemplate>) -> Self {
        match items.iter().map(ValueTemplate::as_constant).collect::<Option<Vec<_>>>() {
            Some(values) => ValueTemplate::Const(Value::Array(values.into_iter().cloned().collect())),
            None => ValueTemplate::Array(items),
        }
    }

    /// An object; a constant when every key is literal text and every value constant.
    pub fn object(fields: Vec<(StrTemplate, ValueTemplate)>) -> Self {
        let constant =
            fields.iter().map(|(k, v)| Some((k.as_literal()?.to_string(), v.as_constant()?.clone()))).collect();
        match constant {
            Some(map) => ValueTemplate::Const(Value::Object(map)),
            None => ValueTemplate::Object(fields),
        }
    }

    fn as_constant(&self) -> Option<&Value> {
        match self {
            ValueTemplate::Const(v) => Some(v),
            _ => None,
        }
    }

    /// Renders the template; `None` only when the whole template is a lone unset placeholder.
    pub fn render(&self, scope: &dyn Scope) -> Option<Value> {
        match self {
            ValueTemplate::Const(v) => Some(v.clone()),
            ValueTemplate::Str(t) => t.render_value(scope),
            ValueTemplate::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, value) in fields {
                    let Some(key) = key.render_key(scope) else { continue };
                    if let Some(v) = value.render(scope) {
                        map.insert(key, v);
                    }
                }
                Some(Value::Object(map))
            }
            ValueTemplate::Array(items) => {
                Some(Value::Array(items.iter().map(|t| t.render(scope).unwrap_or(Value::Null)).collect()))
            }
        }
    }

    /// Calls `f` with every path in the template.
    pub fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        match self {
            ValueTemplate::Const(_) => {}
            ValueTemplate::Str(t) => t.for_each_path(f),
            ValueTemplate::Object(fields) => fields.iter().for_each(|(k, v)| {
                k.for_each_path(f);
                v.for_each_path(f);
            }),
            ValueTemplate::Array(items) => items.iter().for_each(|v| v.for_each_path(f)),
        }
    }
}

/// Merges `patch` into `target`: objects field by field, recursively; anything else replaces.
pub fn deep_merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

// ---- expression parser -------------------------------------------------------------------

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

fn parse_expr(src: &str) -> Result<Expr, String> {
    let mut p = Parser { src, pos: 0 };
    let expr = p.coalesce()?;
    p.skip_ws();
    if p.pos != src.len() {
        return Err(format!("unexpected `{}`", &src[p.pos..]));
    }
    Ok(expr)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn coalesce(&mut self) -> Result<Expr, String> {
        let mut alts = vec![self.term()?];
        while self.eat("??") {
            alts.push(self.term()?);
        }
        Ok(if alts.len() == 1 { alts.pop().expect("one alternative") } else { Expr::Coalesce(alts) })
    }

    fn term(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        let rest = self.rest();
        if rest.is_empty() {
            return Err("expected an expression".into());
        }
        if let Some(stripped) = rest.strip_prefix('\'') {
            let end = stripped.find('\'').ok_or("unclosed quote")?;
            let text = stripped[..end].to_string();
            self.pos += end + 2;
            return Ok(Expr::Literal(Value::String(text)));
        }
        let first = rest.chars().next().expect("not empty");
        if first.is_ascii_digit() || first == '-' {
            let len = rest
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E' | '+')))
                .unwrap_or(rest.len());
            let number: Value =
                serde_json::from_str(&rest[..len]).map_err(|_| format!("`{}` is not a number", &rest[..len]))?;
            self.pos += len;
            return Ok(Expr::Literal(number));
        }
        let name = self.ident()?;
        match name.as_str() {
            "null" => return Ok(Expr::Literal(Value::Null)),
            "true" => return Ok(Expr::Literal(Value::Bool(true))),
            "false" => return Ok(Expr::Literal(Value::Bool(false))),
            _ => {}
        }
        let root = Root::from_name(&name).ok_or_else(|| {
            let known: Vec<_> = Root::ALL.iter().map(|r| r.name()).collect();
            let hint = suggest::did_you_mean(suggest::closest(&name, known.iter().copied()));
            format!("unknown variable `{name}` (known: {}){hint}", known.join(", "))
        })?;
        let mut segments = Vec::new();
        loop {
            if self.rest().starts_with('.') {
                self.pos += 1;
                segments.push(Segment::Field(self.ident()?));
            } else if self.rest().starts_with('[') {
                self.pos += 1;
                let inner = self.coalesce()?;
                if !self.eat("]") {
                    return Err("expected `]`".into());
                }
                segments.push(Segment::Index(Box::new(inner)));
            } else {
                break;
            }
        }
        Ok(Expr::Path(Path { root, segments }))
    }

    fn ident(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected a name at `{rest}`"));
        }
        let name = rest[..len].to_string();
        self.pos += len;
        Ok(name)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.name())?;
        for seg in &self.segments {
            match seg {
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(_) => f.write_str("[..]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct TestScope(Value);
    impl Scope for TestScope {
        fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
            self.0.get(root.name()).map(Cow::Borrowed)
        }
        fn state(&self, store: &str, key: Option<&str>) -> Option<Value> {
            let s = self.0.get("state")?.get(store)?;
            match key {
                Some(k) => s.get(k).cloned(),
                None => Some(s.clone()),
            }
        }
    }

    fn scope() -> TestScope {
        TestScope(json!({
            "payload": { "type": "logs", "resourceId": "e1", "n": 3, "filters": { "logLevel": "error" } },
            "user": { "id": "u1", "roles": ["admin"] },
            "now": "2024-01-15T10:30:00.000Z",
            "state": { "executions": { "e1": { "status": "running" } } }
        }))
    }

    fn render(t: Value) -> Option<Value> {
        ValueTemplate::parse(&t).unwrap().render(&scope())
    }

    #[test]
    fn a_lone_placeholder_keeps_the_type_of_its_value() {
        assert_eq!(render(json!("{payload.n}")), Some(json!(3)));
        assert_eq!(render(json!("{user.roles}")), Some(json!(["admin"])));
        assert_eq!(render(json!("{payload.filters}")), Some(json!({ "logLevel": "error" })));
    }

    #[test]
    fn mixed_text_interpolates() {
        assert_eq!(render(json!("user {user.id} has {payload.n}")), Some(json!("user u1 has 3")));
        assert_eq!(render(json!("{{literal}} {payload.type}")), Some(json!("{literal} logs")));
    }

    #[test]
    fn unset_fields_are_left_out_of_objects() {
        let out = render(json!({ "type": "{payload.type}", "resourceId": "{payload.missing}", "t": "{now}" }));
        assert_eq!(out, Some(json!({ "type": "logs", "t": "2024-01-15T10:30:00.000Z" })));
    }

    #[test]
    fn state_lookups_take_a_key_expression() {
        assert_eq!(render(json!("{state.executions[payload.resourceId].status}")), Some(json!("running")));
        assert_eq!(render(json!("{state.executions[payload.type]}")), None);
    }

    #[test]
    fn coalesce_takes_the_first_set_alternative() {
        assert_eq!(render(json!("{payload.nope ?? payload.type}")), Some(json!("logs")));
        assert_eq!(render(json!("{payload.nope ?? state.executions[payload.nope] ?? null}")), Some(Value::Null));
        assert_eq!(render(json!("{payload.nope ?? 'fallback'}")), Some(json!("fallback")));
    }

    #[test]
    fn templated_keys_render() {
        assert_eq!(
            render(json!({ "steps": { "{payload.resourceId}": "{payload.n}" } })),
            Some(json!({ "steps": { "e1": 3 } }))
        );
    }

    #[test]
    fn constants_are_recognised() {
        assert!(matches!(ValueTemplate::parse(&json!({ "a": [1, "x"] })).unwrap(), ValueTemplate::Const(_)));
        assert_eq!(
            ValueTemplate::parse(&json!({ "{{k}}": ["{{x}}", null] })).unwrap(),
            ValueTemplate::Const(json!({ "{k}": ["{x}", null] })),
            "escaped braces are literal text"
        );
        let ValueTemplate::Object(fields) = ValueTemplate::parse(&json!({ "c": { "d": 1 }, "t": "{now}" })).unwrap()
        else {
            panic!("a template")
        };
        assert_eq!(fields[0].1, ValueTemplate::Const(json!({ "d": 1 })), "constant parts of a template are folded");
    }

    #[test]
    fn syntax_errors_say_what_is_wrong() {
        assert!(StrTemplate::parse("{payload.type").unwrap_err().contains("unclosed"));
        assert!(StrTemplate::parse("{paylod.type}").unwrap_err().contains("unknown variable `paylod`"));
        assert!(StrTemplate::parse("{paylod.type}").unwrap_err().ends_with("(did you mean `payload`?)"));
        assert!(StrTemplate::parse("{payload.}").unwrap_err().contains("expected a name"));
        assert!(StrTemplate::parse("a } b").unwrap_err().contains("unmatched"));
        assert!(StrTemplate::parse("{payload.a[payload.b}").unwrap_err().contains("expected `]`"));
    }

    #[test]
    fn deep_merge_merges_objects_and_replaces_the_rest() {
        let mut v = json!({ "a": 1, "steps": { "s1": { "x": 1 } } });
        deep_merge(&mut v, json!({ "a": 2, "steps": { "s2": { "y": 2 } } }));
        assert_eq!(v, json!({ "a": 2, "steps": { "s1": { "x": 1 }, "s2": { "y": 2 } } }));
    }
}
