//! JSON-shaped templates ([`ValueTemplate`]): objects, arrays and literals with template strings
//! inside, rendered with unset fields left out, or merged straight into a value
//! ([`ValueTemplate::merge_into`]), or serialized as rendered ([`Rendered`]); and
//! [`deep_merge`], which lays one value over another.

use std::borrow::Cow;

use serde::{Serialize, Serializer, ser::SerializeMap, ser::SerializeSeq};
use serde_json::{Map, Value};

use super::{Path, Scope, StrTemplate};

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

    /// [`render`](Self::render), borrowing a lone placeholder's value where the scope lends it
    /// (`{event.data}` is not copied to be serialized).
    pub fn render_lent<'s>(&'s self, scope: &'s dyn Scope) -> Option<Cow<'s, Value>> {
        match self {
            ValueTemplate::Const(v) => Some(Cow::Borrowed(v)),
            ValueTemplate::Str(t) => t.render_lent(scope),
            _ => self.render(scope).map(Cow::Owned),
        }
    }

    /// Merges what the template renders into `target`, as [`deep_merge`] of
    /// [`render`](Self::render) would, without rendering it first: what the scope lends (an
    /// event's data, `{data}`) is read where it is, and only the values that differ from
    /// `target`'s are copied in. Last-known state merges every published event into its records
    /// this way, so an event's data is not copied whole for each rule that merges it.
    pub fn merge_into(&self, target: &mut Value, scope: &dyn Scope) {
        match (self, &mut *target) {
            (ValueTemplate::Const(v), _) => merge_lent(target, v),
            (ValueTemplate::Str(t), _) => match t.render_lent(scope) {
                Some(Cow::Borrowed(v)) => merge_lent(target, v),
                Some(Cow::Owned(v)) => deep_merge(target, v),
                None => {}
            },
            (ValueTemplate::Object(fields), Value::Object(map)) => {
                for (key, value) in fields {
                    let Some(key) = key.render_key_lent(scope) else { continue };
                    match map.get_mut(&*key) {
                        Some(existing) => value.merge_into(existing, scope),
                        None => {
                            if let Some(v) = value.render(scope) {
                                map.insert(key.into_owned(), v);
                            }
                        }
                    }
                }
            }
            (ValueTemplate::Object(_) | ValueTemplate::Array(_), _) => {
                if let Some(v) = self.render(scope) {
                    *target = v;
                }
            }
        }
    }

    /// What it renders with `scope`, to serialize as it renders ([`Rendered`]).
    pub fn rendered<'a>(&'a self, scope: &'a dyn Scope) -> Rendered<'a> {
        Rendered { template: self, scope }
    }

    /// The keys of an object whose keys are all literal (`None` for anything else): the keys it
    /// may render, known without rendering.
    pub fn literal_keys(&self) -> Option<Vec<&str>> {
        match self {
            ValueTemplate::Object(fields) => fields.iter().map(|(k, _)| k.as_literal()).collect(),
            _ => None,
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

/// What a template renders, serialized as it is rendered: the values the scope lends (an
/// event's data, `{data}`) are written where they are, not copied into a new value first as
/// [`ValueTemplate::render`] does. The same JSON as `render`'s (`null` where it gives `None`).
pub struct Rendered<'a> {
    template: &'a ValueTemplate,
    scope: &'a dyn Scope,
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let scope = self.scope;
        match self.template {
            // Keys that are templates may render the same: `render` keeps the last of those.
            ValueTemplate::Object(fields) if fields.iter().all(|(k, _)| k.as_literal().is_some()) => {
                let mut map = serializer.serialize_map(None)?;
                for (key, value) in fields {
                    let key = key.as_literal().unwrap_or_default();
                    match value {
                        // An unset placeholder leaves its field out.
                        ValueTemplate::Str(t) => {
                            if let Some(v) = t.render_lent(scope) {
                                map.serialize_entry(key, &*v)?;
                            }
                        }
                        nested => map.serialize_entry(key, &nested.rendered(scope))?,
                    }
                }
                map.end()
            }
            ValueTemplate::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&item.rendered(scope))?;
                }
                seq.end()
            }
            other => other.render_lent(scope).as_deref().unwrap_or(&Value::Null).serialize(serializer),
        }
    }
}

/// [`deep_merge`] of a value that is lent: objects field by field, recursively; anything else is
/// copied in unless `target` holds it already (a status that did not change costs no copy).
fn merge_lent(target: &mut Value, patch: &Value) {
    match (&mut *target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) => merge_lent(existing, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) if *t != *p => *t = p.clone(),
        _ => {}
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
