//! The spec file as written: serde shapes of the YAML, with source locations kept where a later
//! check may need to point at a line. Nothing here is validated beyond its shape; `compile` turns
//! these into the checked model the engine runs. See `docs/namespace-spec.md` for the format.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use super::RateLimit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub namespace: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)] // documentation for readers of the file
    pub description: Option<String>,
    pub auth: Option<Spanned<RawAuth>>,
    #[serde(default)]
    pub rooms: IndexMap<String, Spanned<RawRoom>>,
    #[serde(default)]
    pub on_connect: Vec<Spanned<RawAction>>,
    #[serde(default)]
    pub events: IndexMap<String, Spanned<RawEvent>>,
    #[serde(default)]
    pub state: IndexMap<String, Spanned<RawStore>>,
    pub publish: Option<Spanned<RawPublish>>,
    #[serde(default)]
    pub every: Vec<Spanned<RawTimer>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub require_tenant: bool,
    pub refresh_event: Option<String>,
    #[serde(default)]
    pub cookie: bool,
    pub connections_per_ip: Option<RateLimit>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoom {
    pub pattern: Spanned<String>,
    #[serde(default)]
    pub scope: RawScope,
    #[serde(default)]
    pub server_only: bool,
    #[serde(default)]
    pub access: Vec<Spanned<RawAccess>>,
    pub snapshot: Option<Spanned<RawSnapshot>>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawScope {
    #[default]
    Tenant,
    Global,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccess {
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub params: IndexMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSnapshot {
    pub store: String,
    pub key: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawAction {
    Join(RawRoomTarget),
    Leave(RawRoomTarget),
    Emit(RawEmit),
    Reply(RawEmit),
    Relay(RawRelay),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoomTarget {
    pub room: Option<String>,
    #[serde(default)]
    pub params: IndexMap<String, String>,
    pub name: Option<String>,
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmit {
    pub event: Option<String>,
    pub data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    pub event: String,
    pub rooms: String,
    pub data: Option<Value>,
    #[serde(default)]
    pub deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub rate_limit: Option<RateLimit>,
    pub payload: Option<Value>,
    pub max_size: Option<usize>,
    #[serde(default, rename = "do")]
    pub actions: Vec<Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub records: Option<RawRecordsOptions>,
    pub lists: Option<RawListsOptions>,
    #[serde(default)]
    pub on: Vec<Spanned<RawStoreRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecordsOptions {
    pub max_per_tenant: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListsOptions {
    pub keep: usize,
    pub max_keys_per_tenant: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStoreRule {
    pub types: Vec<String>,
    pub key: Option<String>,
    pub merge: Option<Value>,
    pub replace: Option<Value>,
    pub append: Option<Value>,
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    pub emit: Option<RawEmit>,
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub types: Vec<String>,
    #[serde(default)]
    pub require: Vec<String>,
    #[serde(default)]
    pub to: Vec<Spanned<RawTarget>>,
    pub emit: Option<RawEmit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub room: String,
    #[serde(default)]
    pub params: IndexMap<String, String>,
    #[serde(default)]
    pub exact: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimer {
    pub interval: String,
    pub room: String,
    pub emit: RawEmit,
}
