//! Rendering's half of the language: what a template asks of its context ([`Scope`]), and how an
//! expression is evaluated and a path followed in what the scope lends, copying only the value
//! found.

use std::borrow::Cow;

use serde_json::Value;

use super::{Expr, Path, Root, Segment};

/// What the renderer asks of its context.
pub trait Scope {
    /// The value of a root variable; `None` when it is unset here.
    fn root(&self, root: Root) -> Option<Cow<'_, Value>>;

    /// A field computed only when a template asks for it (`room.snapshot`, `tenant.stats`), or
    /// lent without building its root (`event.data`); `None` when `root.field` is an ordinary
    /// field of [`Scope::root`].
    fn computed(&self, _root: Root, _field: &str) -> Option<Cow<'_, Value>> {
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
        self.eval_lent(scope).map(Cow::into_owned)
    }

    /// Evaluates the expression, borrowing the value from the template or the scope where they
    /// lend it (a copy only of what the scope computes): for a caller that reads the value, or
    /// merges it into one it owns, without copying it first.
    pub fn eval_lent<'s>(&'s self, scope: &'s dyn Scope) -> Option<Cow<'s, Value>> {
        match self {
            Expr::Literal(v) => Some(Cow::Borrowed(v)),
            Expr::Coalesce(alts) => {
                // `null` counts as unset, so `a ?? b` skips a null `a`; the result is null only
                // when nothing better was found.
                let mut saw_null = false;
                for alt in alts {
                    match alt.eval_lent(scope) {
                        Some(v) if v.is_null() => saw_null = true,
                        Some(v) => return Some(v),
                        None => {}
                    }
                }
                saw_null.then_some(Cow::Owned(Value::Null))
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
    fn eval<'s>(&self, scope: &'s dyn Scope) -> Option<Cow<'s, Value>> {
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
                    v
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
        Some(current)
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
