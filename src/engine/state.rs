//! Last-known state, built from published events as a namespace's `state` section says: per
//! tenant, keyed records (merged, replaced, deleted) and keyed lists of recent entries.
//!
//! It answers `state.<store>[key]` in templates and room snapshots (`initial_data`). Everything is
//! bounded by the spec's limits: the least recently updated record or list goes first. Each store
//! has its own lock, held only to copy a value in or out; nothing awaits under it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use lru::LruCache;
use serde_json::Value;

use crate::spec::{
    StoreKind, StoreOp, StoreSpec,
    template::{Scope, deep_merge},
};

/// The runtime state of one namespace's stores, parallel to its spec's `stores`.
pub struct Stores {
    stores: Vec<Store>,
    /// Orders list entries across keys, so "all entries" can be merged chronologically.
    seq: AtomicU64,
}

struct Store {
    kind: StoreKind,
    tenants: Mutex<HashMap<String, TenantData>>,
}

enum TenantData {
    Records(LruCache<String, Value>),
    Lists(LruCache<String, VecDeque<(u64, Value)>>),
}

impl Stores {
    /// Empty stores for these specs.
    pub fn new(specs: &[StoreSpec]) -> Self {
        Self {
            stores: specs.iter().map(|s| Store { kind: s.kind, tenants: Mutex::new(HashMap::new()) }).collect(),
            seq: AtomicU64::new(0),
        }
    }

    /// Applies every rule of every store that matches `event_type`, rendering with `scope`.
    pub fn apply(&self, specs: &[StoreSpec], event_type: &str, tenant: &str, scope: &dyn Scope) {
        for (spec, store) in specs.iter().zip(&self.stores) {
            for rule in spec.rules.iter().filter(|r| r.types.matches(event_type)) {
                let Some(key) = rule.key.render_key(scope).filter(|k| !k.is_empty()) else { continue };
                let rendered: Vec<Value> = match &rule.op {
                    StoreOp::Merge(parts) | StoreOp::Append(parts) => {
                        parts.iter().filter_map(|t| t.render(scope)).collect()
                    }
                    StoreOp::Replace(t) => t.render(scope).into_iter().collect(),
                    StoreOp::Delete => Vec::new(),
                };
                let mut tenants = store.tenants.lock().unwrap_or_else(|e| e.into_inner());
                let data = tenants.entry(tenant.to_string()).or_insert_with(|| match store.kind {
                    StoreKind::Records { .. } => TenantData::Records(LruCache::unbounded()),
                    StoreKind::Lists { .. } => TenantData::Lists(LruCache::unbounded()),
                });
                match (data, &rule.op, store.kind) {
                    (TenantData::Records(records), StoreOp::Delete, _) => {
                        records.pop(&key);
                    }
                    (TenantData::Records(records), StoreOp::Replace(_), StoreKind::Records { max_per_tenant }) => {
                        if let Some(v) = rendered.into_iter().next() {
                            records.put(key, v);
                            trim(records, max_per_tenant);
                        }
                    }
                    (TenantData::Records(records), StoreOp::Merge(_), StoreKind::Records { max_per_tenant }) => {
                        let record = records.get_or_insert_mut(key, || Value::Object(Default::default()));
                        for patch in rendered {
                            deep_merge(record, patch);
                        }
                        trim(records, max_per_tenant);
                    }
                    (TenantData::Lists(lists), StoreOp::Append(_), StoreKind::Lists { keep, max_keys_per_tenant }) => {
                        let mut entry = Value::Null;
                        for patch in rendered {
                            deep_merge(&mut entry, patch);
                        }
                        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                        let list = lists.get_or_insert_mut(key, VecDeque::new);
                        list.push_back((seq, entry));
                        while list.len() > keep {
                            list.pop_front();
                        }
                        trim(lists, max_keys_per_tenant);
                    }
                    _ => tracing::error!(store = %spec.name, "state rule does not fit its store kind"),
                }
            }
        }
    }

    /// `state.<store>[key]`: the record, or the list (oldest first). Without a key: records most
    /// recently updated first, or every list's entries merged oldest first, at most `limit`.
    pub fn read(&self, store: usize, tenant: &str, key: Option<&str>, limit: usize) -> Option<Value> {
        self.read_filtered(store, tenant, key, &[], limit)
    }

    /// Like [`Stores::read`], keeping only list entries whose fields equal the given values.
    pub fn read_filtered(
        &self,
        store: usize,
        tenant: &str,
        key: Option<&str>,
        filters: &[(&str, String)],
        limit: usize,
    ) -> Option<Value> {
        let store = self.stores.get(store)?;
        let tenants = store.tenants.lock().unwrap_or_else(|e| e.into_inner());
        let keep = |entry: &Value| {
            filters.iter().all(|(field, want)| {
                entry.get(*field).and_then(crate::spec::template::key_string).as_deref() == Some(want.as_str())
            })
        };
        let last = |entries: Vec<Value>| {
            let skip = entries.len().saturating_sub(limit);
            Value::Array(entries.into_iter().skip(skip).collect())
        };
        match (store.kind, tenants.get(tenant), key) {
            // A record that was never written (or was evicted) is unknown: unset.
            (StoreKind::Records { .. }, Some(TenantData::Records(records)), Some(key)) => records.peek(key).cloned(),
            (StoreKind::Records { .. }, Some(TenantData::Records(records)), None) => {
                Some(Value::Array(records.iter().take(limit).map(|(_, v)| v.clone()).collect()))
            }
            (StoreKind::Records { .. }, _, Some(_)) => None,
            // A list that was never written is empty.
            (StoreKind::Lists { .. }, Some(TenantData::Lists(lists)), Some(key)) => Some(last(
                lists
                    .peek(key)
                    .map(|l| l.iter().map(|(_, v)| v).filter(|v| keep(v)).cloned().collect())
                    .unwrap_or_default(),
            )),
            (StoreKind::Lists { .. }, Some(TenantData::Lists(lists)), None) => {
                let mut entries: Vec<&(u64, Value)> =
                    lists.iter().flat_map(|(_, l)| l.iter()).filter(|(_, v)| keep(v)).collect();
                entries.sort_by_key(|(seq, _)| *seq);
                Some(last(entries.into_iter().map(|(_, v)| v.clone()).collect()))
            }
            (_, _, _) => Some(Value::Array(Vec::new())),
        }
    }
}

fn trim<V>(cache: &mut LruCache<String, V>, max: usize) {
    while cache.len() > max {
        cache.pop_lru();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{
        StoreRule, TypeMatcher,
        template::{Root, StrTemplate, ValueTemplate},
    };
    use serde_json::json;
    use std::borrow::Cow;

    struct Event(Value);
    impl Scope for Event {
        fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
            match root {
                Root::Data => self.0.get("data").map(Cow::Borrowed),
                Root::Event => Some(Cow::Borrowed(&self.0)),
                _ => None,
            }
        }
    }

    fn rule(types: &str, key: &str, op: StoreOp) -> StoreRule {
        StoreRule {
            types: TypeMatcher::parse(&[types.to_string()]).unwrap(),
            key: StrTemplate::parse(key).unwrap(),
            op,
        }
    }

    fn t(v: Value) -> ValueTemplate {
        ValueTemplate::parse(&v).unwrap()
    }

    #[test]
    fn records_merge_evict_and_delete() {
        let specs = vec![StoreSpec {
            name: "executions".into(),
            kind: StoreKind::Records { max_per_tenant: 2 },
            rules: vec![
                rule(
                    "execution.*",
                    "{data.executionId}",
                    StoreOp::Merge(vec![t(json!("{data}")), t(json!({ "lastEvent": "{event.type}" }))]),
                ),
                rule("execution.deleted", "{data.executionId}", StoreOp::Delete),
            ],
        }];
        let stores = Stores::new(&specs);
        let apply = |ty: &str, data: Value| stores.apply(&specs, ty, "t1", &Event(json!({ "type": ty, "data": data })));
        apply("execution.started", json!({ "executionId": "e1", "status": "running" }));
        apply("execution.completed", json!({ "executionId": "e1", "status": "completed", "result": 1 }));
        assert_eq!(
            stores.read(0, "t1", Some("e1"), 10),
            Some(
                json!({ "executionId": "e1", "status": "completed", "result": 1, "lastEvent": "execution.completed" })
            )
        );
        assert_eq!(stores.read(0, "t2", Some("e1"), 10), None, "tenants are separate");
        apply("execution.started", json!({ "executionId": "e2" }));
        apply("execution.started", json!({ "executionId": "e3" }));
        assert_eq!(stores.read(0, "t1", Some("e1"), 10), None, "the least recently updated is evicted");
        let all = stores.read(0, "t1", None, 10).unwrap();
        assert_eq!(
            all.as_array().unwrap().iter().map(|r| r["executionId"].clone()).collect::<Vec<_>>(),
            vec![json!("e3"), json!("e2")]
        );
        apply("execution.deleted", json!({ "executionId": "e3" }));
        assert_eq!(stores.read(0, "t1", Some("e3"), 10), None);
    }

    #[test]
    fn lists_keep_the_last_entries_and_filter() {
        let specs = vec![StoreSpec {
            name: "logs".into(),
            kind: StoreKind::Lists { keep: 3, max_keys_per_tenant: 10 },
            rules: vec![rule("log.created", "{data.executionId}", StoreOp::Append(vec![t(json!("{data}"))]))],
        }];
        let stores = Stores::new(&specs);
        for (i, (exec, level)) in
            [("e1", "info"), ("e2", "error"), ("e1", "error"), ("e1", "info"), ("e1", "error")].iter().enumerate()
        {
            stores.apply(
                &specs,
                "log.created",
                "t1",
                &Event(json!({ "data": { "executionId": exec, "level": level, "n": i } })),
            );
        }
        let e1 = stores.read(0, "t1", Some("e1"), 10).unwrap();
        assert_eq!(e1.as_array().unwrap().iter().map(|v| v["n"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2, 3, 4]);
        let errors = stores.read_filtered(0, "t1", None, &[("level", "error".into())], 10).unwrap();
        assert_eq!(
            errors.as_array().unwrap().iter().map(|v| v["n"].as_u64().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        let last = stores.read(0, "t1", None, 1).unwrap();
        assert_eq!(last.as_array().unwrap()[0]["n"], 4);
        assert_eq!(stores.read(0, "t1", Some("never-logged"), 10), Some(json!([])), "an unwritten list is empty");
        assert_eq!(stores.read(0, "t2", Some("e1"), 10), Some(json!([])), "also in a tenant without lists");
    }
}
