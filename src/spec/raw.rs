//! The spec file as written: serde shapes of the YAML, with the location of every value a later
//! check may complain about, so that its error points at that value's own line and column. Nothing
//! here is validated beyond its shape; `compile` turns these into the checked model the engine
//! runs. See `docs/namespace-spec.md` for the format.
//!
//! These types are read through `tolerant`, which reports unknown keys instead of stopping at the
//! first (`deny_unknown_fields` only matters to a caller reading them without it). Choices between
//! keys (which action, which store operation) are optional fields rather than enums, for the same
//! reason: a misspelt key is then an unknown field like any other, and `compile` checks that
//! exactly one is given.

use std::fmt;

use indexmap::IndexMap;
use serde::{
    Deserialize, Deserializer,
    de::{self, IntoDeserializer, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::RateLimit;

/// A mapping from names the spec chooses (rooms, events, stores, parameters) to values, each
/// name with its own location.
pub(super) type Named<T> = IndexMap<Spanned<String>, T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub namespace: Spanned<String>,
    /// `socketio` (the default) or `websocket`.
    pub transport: Option<Spanned<String>>,
    #[serde(default)]
    #[allow(dead_code)] // documentation for readers of the file
    pub description: Option<String>,
    pub auth: Option<Spanned<RawAuth>>,
    #[serde(default)]
    pub rooms: Named<Spanned<RawRoom>>,
    #[serde(default)]
    pub on_connect: Vec<Spanned<RawAction>>,
    #[serde(default)]
    pub events: Named<Spanned<RawEvent>>,
    #[serde(default)]
    pub state: Named<Spanned<RawStore>>,
    pub publish: Option<Spanned<RawPublish>>,
    #[serde(default)]
    pub every: Vec<Spanned<RawTimer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub require_tenant: bool,
    pub refresh_event: Option<Spanned<String>>,
    #[serde(default)]
    pub cookie: bool,
    pub connections_per_ip: Option<Spanned<RateLimit>>,
    #[serde(default)]
    pub api_keys: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoom {
    pub pattern: Spanned<String>,
    /// `tenant` (the default) or `global`.
    pub scope: Option<Spanned<String>>,
    #[serde(default)]
    pub server_only: bool,
    #[serde(default)]
    pub access: Vec<Spanned<RawAccess>>,
    pub snapshot: Option<Spanned<RawSnapshot>>,
    #[serde(default)]
    pub filters: Vec<Spanned<String>>,
    pub history: Option<Spanned<RawHistory>>,
    pub presence: Option<Spanned<RawPresence>>,
}

/// A room family's history: `{size, ttl}`, each with a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    pub size: Option<Spanned<usize>>,
    pub ttl: Option<Spanned<String>>,
}

/// A room family's join and leave events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPresence {
    pub online: Option<Spanned<String>>,
    pub offline: Option<Spanned<String>>,
    pub max_per_second: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub params: Named<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSnapshot {
    pub store: Spanned<String>,
    pub key: Option<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub matches: Named<Spanned<String>>,
    pub limit: Option<usize>,
}

/// One action: exactly one of its fields is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub join: Option<RawRoomTarget>,
    pub leave: Option<RawRoomTarget>,
    pub emit: Option<RawEmit>,
    pub reply: Option<RawEmit>,
    pub relay: Option<RawRelay>,
    pub forward: Option<RawForward>,
}

/// `forward: {to, reply, timeout, event, data}`: a client event sent on to a backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    pub to: Spanned<String>,
    pub reply: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<String>>,
    pub event: Option<Spanned<String>>,
    pub data: Option<RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoomTarget {
    pub room: Option<Spanned<String>>,
    #[serde(default)]
    pub params: Named<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub optional: Option<Spanned<bool>>,
    #[serde(default)]
    pub filters: Named<Spanned<String>>,
    /// `join` only: the position (`{offset, epoch}`) from which the room's history is recovered.
    pub since: Option<Spanned<String>>,
    /// `join` only: how many of the room's last events a joiner without `since` is sent.
    pub replay: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmit {
    pub event: Option<Spanned<String>>,
    pub data: Option<RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    pub event: Spanned<String>,
    pub rooms: Spanned<String>,
    pub data: Option<RawValue>,
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvent {
    pub rate_limit: Option<Spanned<RateLimit>>,
    pub payload: Option<Spanned<Value>>,
    pub max_size: Option<usize>,
    #[serde(default, rename = "do")]
    pub actions: Vec<Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub records: Option<Spanned<RawRecordsOptions>>,
    pub lists: Option<Spanned<RawListsOptions>>,
    #[serde(default)]
    pub on: Vec<Spanned<RawStoreRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecordsOptions {
    pub max_per_tenant: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListsOptions {
    pub keep: usize,
    pub max_keys_per_tenant: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStoreRule {
    pub types: Vec<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub merge: Option<RawValue>,
    pub replace: Option<RawValue>,
    pub append: Option<RawValue>,
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPublish {
    pub emit: Option<RawEmit>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub types: Vec<Spanned<String>>,
    #[serde(default)]
    pub require: Vec<String>,
    #[serde(default)]
    pub to: Vec<Spanned<RawTarget>>,
    pub emit: Option<RawEmit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub room: Spanned<String>,
    #[serde(default)]
    pub params: Named<Spanned<String>>,
    #[serde(default)]
    pub exact: bool,
    #[serde(default)]
    pub filters: Named<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimer {
    pub interval: Spanned<String>,
    pub room: Spanned<String>,
    pub emit: RawEmit,
}

/// A free-form value (`data`, `merge`, ...) with the location of each of its nodes, so that an
/// error in a template deep inside points at that template. Reads what `serde_json::Value`
/// would read from the same YAML.
#[derive(Debug)]
pub(super) struct RawValue {
    /// Where this node is.
    pub at: Location,
    /// The node.
    pub node: RawNode,
}

/// One node of a [`RawValue`].
#[derive(Debug)]
pub(super) enum RawNode {
    /// `null`, a boolean or a number.
    Scalar(Value),
    /// A string (possibly a template).
    String(String),
    /// A sequence.
    Array(Vec<RawValue>),
    /// A mapping, in file order; keys are strings (possibly templates).
    Object(Vec<(Spanned<String>, RawValue)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Spanned { value, referenced, .. } = Spanned::<RawNode>::deserialize(deserializer)?;
        Ok(Self { at: referenced, node: value })
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

/// Scalars other than strings become what `serde_json::Value` makes of them (large integers,
/// non-finite floats), by asking it.
macro_rules! visit_scalar {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<RawNode, E> {
            Value::deserialize(v.into_deserializer()).map(RawNode::Scalar)
        }
    )*};
}

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    visit_scalar!(visit_bool(bool) visit_i64(i64) visit_i128(i128) visit_u64(u64) visit_u128(u128) visit_f64(f64));

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<RawNode, E> {
        Ok(RawNode::Scalar(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut fields = Vec::new();
        while let Some(entry) = map.next_entry()? {
            fields.push(entry);
        }
        Ok(RawNode::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value as JSON, without locations.
    fn to_json(raw: &RawValue) -> Value {
        match &raw.node {
            RawNode::Scalar(v) => v.clone(),
            RawNode::String(s) => Value::String(s.clone()),
            RawNode::Array(items) => Value::Array(items.iter().map(to_json).collect()),
            RawNode::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.value.clone(), to_json(v))).collect())
            }
        }
    }

    #[test]
    fn a_raw_value_reads_what_a_json_value_reads() {
        let yaml =
            "a: [1, -2, 1.5, \"3\", true, ~, null, 18446744073709551615, 1e3, -0.0]\n\"1\": { b: 'x', c: [] }\n2: y\n";
        let raw: RawValue = serde_saphyr::from_str(yaml).unwrap();
        let json: Value = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(to_json(&raw), json);
    }

    #[test]
    fn a_raw_value_knows_where_each_node_is() {
        let raw: RawValue = serde_saphyr::from_str("top:\n  list:\n    - one\n    - { k: two }\n").unwrap();
        let RawNode::Object(top) = &raw.node else { panic!("{raw:?}") };
        let RawNode::Object(list) = &top[0].1.node else { panic!("{raw:?}") };
        assert_eq!((list[0].0.referenced.line(), list[0].0.referenced.column()), (2, 3));
        let RawNode::Array(items) = &list[0].1.node else { panic!("{raw:?}") };
        assert_eq!((items[0].at.line(), items[0].at.column()), (3, 7));
        let RawNode::Object(inner) = &items[1].node else { panic!("{raw:?}") };
        assert_eq!((inner[0].1.at.line(), inner[0].1.at.column()), (4, 12));
    }
}
