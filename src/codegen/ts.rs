//! TypeScript types as the generator builds them ([`Ty`]), and how they are written out: one
//! stable text per type, so the same specs always give the same files.

use std::fmt::Write as _;

/// A TypeScript type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    /// `unknown`: the spec does not say.
    Unknown,
    /// `string`.
    String,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `null`.
    Null,
    /// A type written out: a literal (`'workflow'`, `true`), a template literal type
    /// (`` `workflow.${string}` ``) or the name of a generated type.
    Raw(String),
    /// `T[]`.
    Array(Box<Ty>),
    /// `[A, B]`.
    Tuple(Vec<Ty>),
    /// An object type.
    Object(Obj),
    /// `A | B`.
    Union(Vec<Ty>),
}

/// An object type: named fields, and what any other field may be (`None`: no other field).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Obj {
    /// The fields, in the order written.
    pub(crate) fields: Vec<Field>,
    /// `[field: string]: T`, when fields other than the named ones may be there.
    pub(crate) rest: Option<Box<Ty>>,
}

/// One field of an object type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Its name.
    pub(crate) name: String,
    /// Its type.
    pub(crate) ty: Ty,
    /// `name?:`, the field may be absent.
    pub(crate) optional: bool,
    /// A doc comment.
    pub(crate) doc: Option<String>,
}

impl Field {
    /// A field without a doc comment.
    pub(crate) fn new(name: impl Into<String>, ty: Ty, optional: bool) -> Self {
        Self { name: name.into(), ty, optional, doc: None }
    }
}

impl Ty {
    /// `Record<string, unknown>`-like: an object of which nothing is known.
    pub(crate) fn open_object() -> Ty {
        Ty::Object(Obj { fields: Vec::new(), rest: Some(Box::new(Ty::Unknown)) })
    }

    /// A string literal type.
    pub(crate) fn string_literal(text: &str) -> Ty {
        Ty::Raw(quote(text))
    }

    /// The literal type of a JSON value fixed in a spec.
    pub(crate) fn of_json(value: &serde_json::Value) -> Ty {
        use serde_json::Value;
        match value {
            Value::Null => Ty::Null,
            Value::Bool(b) => Ty::Raw(b.to_string()),
            Value::Number(n) => Ty::Raw(n.to_string()),
            Value::String(s) => Ty::string_literal(s),
            Value::Array(items) => Ty::Tuple(items.iter().map(Ty::of_json).collect()),
            Value::Object(map) => Ty::Object(Obj {
                fields: map.iter().map(|(k, v)| Field::new(k, Ty::of_json(v), false)).collect(),
                rest: None,
            }),
        }
    }

    /// `a | b | ...`, flattened and without repeats; `unknown` absorbs everything.
    pub(crate) fn union(members: impl IntoIterator<Item = Ty>) -> Ty {
        let mut out: Vec<Ty> = Vec::new();
        let push = |t: Ty, out: &mut Vec<Ty>| {
            if !out.contains(&t) {
                out.push(t);
            }
        };
        for member in members {
            match member {
                Ty::Union(inner) => inner.into_iter().for_each(|t| push(t, &mut out)),
                t => push(t, &mut out),
            }
        }
        if out.contains(&Ty::Unknown) {
            return Ty::Unknown;
        }
        match out.len() {
            0 => Ty::Unknown,
            1 => out.pop().expect("one member"),
            _ => Ty::Union(out),
        }
    }

    /// The type written at `indent` levels of nesting.
    pub(crate) fn render(&self, indent: usize) -> String {
        match self {
            Ty::Unknown => "unknown".into(),
            Ty::String => "string".into(),
            Ty::Number => "number".into(),
            Ty::Boolean => "boolean".into(),
            Ty::Null => "null".into(),
            Ty::Raw(text) => text.clone(),
            Ty::Array(item) => match **item {
                Ty::Union(_) => format!("Array<{}>", item.render(indent)),
                _ => format!("{}[]", item.render(indent)),
            },
            Ty::Tuple(items) => {
                format!("[{}]", items.iter().map(|t| t.render(indent)).collect::<Vec<_>>().join(", "))
            }
            Ty::Union(members) => members.iter().map(|t| t.render(indent)).collect::<Vec<_>>().join(" | "),
            Ty::Object(obj) => obj.render(indent),
        }
    }
}

impl Obj {
    /// The object type written at `indent` levels of nesting.
    pub(crate) fn render(&self, indent: usize) -> String {
        if self.fields.is_empty() {
            return match &self.rest {
                Some(rest) => format!("Record<string, {}>", rest.render(indent)),
                None => "Record<string, never>".into(),
            };
        }
        self.render_body(indent)
    }

    /// The object type in braces, even when it has no named field: an interface's body.
    pub(crate) fn render_body(&self, indent: usize) -> String {
        let pad = "  ".repeat(indent + 1);
        let mut out = String::from("{\n");
        for field in &self.fields {
            if let Some(doc) = &field.doc {
                let _ = writeln!(out, "{pad}/** {} */", doc.replace("*/", "*\\/"));
            }
            let optional = if field.optional { "?" } else { "" };
            let _ = writeln!(out, "{pad}{}{optional}: {};", property_name(&field.name), field.ty.render(indent + 1));
        }
        if let Some(rest) = &self.rest {
            let _ = writeln!(out, "{pad}[field: string]: {};", rest.render(indent + 1));
        }
        out.push_str(&"  ".repeat(indent));
        out.push('}');
        out
    }
}

/// A single-quoted TypeScript string literal.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A property name as written in an interface: bare when it is an identifier, quoted otherwise.
pub(crate) fn property_name(name: &str) -> String {
    let mut chars = name.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier { name.to_string() } else { quote(name) }
}

/// `queue:job-progress` → `QueueJobProgress`: a type name made of the words of an event name.
pub(crate) fn pascal_case(text: &str) -> String {
    let mut out = String::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'T');
    }
    out
}

/// The TypeScript type of the event names an event-type pattern matches: `'log.created'`,
/// `` `workflow.${string}` ``, or `string` for `*`.
pub(crate) fn pattern_type(pattern: &str) -> Ty {
    if pattern == "*" {
        Ty::String
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        let escaped = prefix.replace('\\', "\\\\").replace('`', "\\`").replace("${", "\\${");
        Ty::Raw(format!("`{escaped}${{string}}`"))
    } else {
        Ty::string_literal(pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_only_when_they_must_be() {
        assert_eq!(property_name("executionId"), "executionId");
        assert_eq!(property_name("auth:refresh"), "'auth:refresh'");
        assert_eq!(property_name("it's"), "'it\\'s'");
        assert_eq!(pascal_case("queue:job-progress"), "QueueJobProgress");
        assert_eq!(pascal_case("connection.confirmed"), "ConnectionConfirmed");
        assert_eq!(pascal_case("2fa"), "T2fa");
    }

    #[test]
    fn unions_flatten_and_unknown_absorbs() {
        assert_eq!(Ty::union([Ty::String, Ty::Union(vec![Ty::String, Ty::Null])]).render(0), "string | null");
        assert_eq!(Ty::union([Ty::String, Ty::Unknown]), Ty::Unknown);
        assert_eq!(pattern_type("workflow.*").render(0), "`workflow.${string}`");
        assert_eq!(Ty::Array(Box::new(Ty::union([Ty::String, Ty::Number]))).render(0), "Array<string | number>");
    }
}
