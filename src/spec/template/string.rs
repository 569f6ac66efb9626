//! Template strings ([`StrTemplate`]): text with `{expr}` placeholders, parsed once, rendered to a
//! value (a lone placeholder keeps its value's type), to text, or to a key.

use std::borrow::Cow;

use serde_json::Value;

use super::{Expr, Path, Scope, key_string, parse::parse_expr};

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
        self.render_lent(scope).map(Cow::into_owned)
    }

    /// [`render_value`](Self::render_value), borrowing a lone placeholder's value where the
    /// scope lends it.
    pub fn render_lent<'s>(&'s self, scope: &'s dyn Scope) -> Option<Cow<'s, Value>> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => e.eval_lent(scope),
            _ => Some(Cow::Owned(Value::String(self.render_text(scope)))),
        }
    }

    /// Renders to text; an unset placeholder contributes nothing, a non-string value its JSON.
    pub fn render_text(&self, scope: &dyn Scope) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => match e.eval_lent(scope).as_deref() {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Null) | None => {}
                    Some(v) => out.push_str(&v.to_string()),
                },
            }
        }
        out
    }

    /// Renders to a key string: a lone placeholder must be a string or number; `None` if unset.
    pub fn render_key(&self, scope: &dyn Scope) -> Option<String> {
        self.render_key_lent(scope).map(Cow::into_owned)
    }

    /// [`render_key`](Self::render_key), borrowing a lone placeholder's string where the scope
    /// lends it (an id routed on is read where the event holds it, not copied).
    pub fn render_key_lent<'s>(&'s self, scope: &'s dyn Scope) -> Option<Cow<'s, str>> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => match e.eval_lent(scope)? {
                Cow::Borrowed(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
                value => key_string(&value).map(Cow::Owned),
            },
            [Part::Text(t)] => Some(Cow::Borrowed(t.as_str())),
            _ => Some(Cow::Owned(self.render_text(scope))),
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
