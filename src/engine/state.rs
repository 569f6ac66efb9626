//! Last-known state, built from published events as a namespace's `state` section says: per
//! tenant, keyed records (merged, replaced, deleted) and keyed lists of recent entries.
//!
//! It answers `state.<store>[key]` in templates and room snapshots (`initial_data`). Everything is
//! bounded twice: by the spec's counts (records per tenant, entries per list, lists per tenant)
//! and by bytes, which counts cannot bound when entries vary in size: each tenant's data in one
//! store may hold `STATE_MAX_BYTES_PER_TENANT`, and all stores of the node together
//! `STATE_MAX_BYTES`. The least recently updated record or list goes first; past the node's
//! budget, the least recently updated tenant of the store being written. Sizes are estimates of
//! the heap a JSON value takes ([`approx_bytes`]), not its text length. Each store has its own
//! lock, held only to copy a value in or out; nothing awaits under it.

use std::{
    borrow::Cow,
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use lru::LruCache;
use serde_json::Value;

use crate::spec::{StoreKind, StoreOp, StoreSpec, template::Scope};

/// Byte budgets of last-known state.
#[derive(Debug, Clone)]
pub(crate) struct StateBudget {
    /// One tenant's data in one store.
    pub per_tenant: usize,
    /// Every store of every namespace together, shared through `used`.
    pub total: usize,
    /// Bytes held now by all stores.
    pub used: Arc<AtomicUsize>,
}

impl StateBudget {
    /// Budgets of `per_tenant` and `total` bytes, nothing used yet.
    pub(crate) fn new(per_tenant: usize, total: usize) -> Self {
        Self { per_tenant, total, used: Arc::new(AtomicUsize::new(0)) }
    }
}

/// The runtime state of one namespace's stores, parallel to its spec's `stores`.
pub(crate) struct Stores {
    stores: Vec<Store>,
    /// Orders list entries across keys, so "all entries" can be merged chronologically.
    seq: AtomicU64,
    budget: StateBudget,
}

struct Store {
    kind: StoreKind,
    /// Tenants, least recently updated first out.
    tenants: Mutex<LruCache<String, TenantData>>,
}

struct TenantData {
    entries: Entries,
    /// Estimated heap bytes of `entries`.
    bytes: usize,
}

enum Entries {
    Records(LruCache<String, Value>),
    Lists(LruCache<String, VecDeque<(u64, Value)>>),
}

/// An estimate of the heap a JSON value holds (not its text length: a small object costs far
/// more in memory than in JSON).
pub(crate) fn approx_bytes(value: &Value) -> usize {
    const NODE: usize = 32;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
        Value::String(s) => NODE + s.len(),
        Value::Array(items) => NODE + items.iter().map(approx_bytes).sum::<usize>(),
        Value::Object(fields) => NODE + fields.iter().map(|(k, v)| NODE + k.len() + approx_bytes(v)).sum::<usize>(),
    }
}

/// One list entry: its value and its sequence number.
fn entry_bytes(value: &Value) -> usize {
    8 + approx_bytes(value)
}

fn list_bytes(key: &str, list: &VecDeque<(u64, Value)>) -> usize {
    key.len() + list.iter().map(|(_, v)| entry_bytes(v)).sum::<usize>()
}

impl TenantData {
    fn new(kind: StoreKind) -> Self {
        let entries = match kind {
            StoreKind::Records { .. } => Entries::Records(LruCache::unbounded()),
            StoreKind::Lists { .. } => Entries::Lists(LruCache::unbounded()),
        };
        Self { entries, bytes: 0 }
    }

    /// Drops the least recently updated record or list; returns the bytes freed (0: empty).
    fn evict_one(&mut self) -> usize {
        let freed = match &mut self.entries {
            Entries::Records(records) => records.pop_lru().map_or(0, |(k, v)| k.len() + approx_bytes(&v)),
            Entries::Lists(lists) => lists.pop_lru().map_or(0, |(k, l)| list_bytes(&k, &l)),
        };
        self.bytes -= freed.min(self.bytes);
        freed
    }

    fn len(&self) -> usize {
        match &self.entries {
            Entries::Records(records) => records.len(),
            Entries::Lists(lists) => lists.len(),
        }
    }
}

impl Stores {
    /// Empty stores for these specs, within `budget`.
    pub(crate) fn new(specs: &[StoreSpec], budget: StateBudget) -> Self {
        Self {
            stores: specs.iter().map(|s| Store { kind: s.kind, tenants: Mutex::new(LruCache::unbounded()) }).collect(),
            seq: AtomicU64::new(0),
            budget,
        }
    }

    /// Applies every rule of every store that matches `event_type`, rendering with `scope`.
    pub(crate) fn apply(&self, specs: &[StoreSpec], event_type: &str, tenant: &str, scope: &dyn Scope) {
        for (spec, store) in specs.iter().zip(&self.stores) {
            for rule in spec.rules.iter().filter(|r| r.types.matches(event_type)) {
                let Some(key) = rule.key.render_key_lent(scope).filter(|k| !k.is_empty()) else { continue };
                let mut tenants = store.tenants.lock().unwrap_or_else(|e| e.into_inner());
                // Looked up before inserting: the tenant's name is copied only for a new tenant.
                if !tenants.contains(tenant) {
                    tenants.put(tenant.to_string(), TenantData::new(store.kind));
                }
                let Some(data) = tenants.get_mut(tenant) else { continue };
                let before = data.bytes;
                let updated = self.update(data, key, &rule.op, store.kind, scope);
                if !updated {
                    tracing::error!(store = %spec.name, "state rule does not fit its store kind");
                }
                self.enforce_budgets(&mut tenants, tenant, before);
            }
        }
    }

    /// Applies one rule's operation to one tenant's data, keeping `data.bytes` and the count
    /// limits; false when the operation does not fit the store's kind. What the rule writes is
    /// rendered here, under the store's lock: a merge reads the event where it is and copies in
    /// only what changes, and what a rule that does not fit would render is never made.
    fn update(
        &self,
        data: &mut TenantData,
        key: Cow<'_, str>,
        op: &StoreOp,
        kind: StoreKind,
        scope: &dyn Scope,
    ) -> bool {
        match (&mut data.entries, op, kind) {
            (Entries::Records(records), StoreOp::Delete, _) => {
                if let Some(old) = records.pop(&*key) {
                    data.bytes -= (key.len() + approx_bytes(&old)).min(data.bytes);
                }
            }
            (Entries::Records(records), StoreOp::Replace(template), StoreKind::Records { .. }) => {
                if let Some(v) = template.render(scope) {
                    let added = key.len() + approx_bytes(&v);
                    let removed = records.put(key.to_string(), v).map_or(0, |old| key.len() + approx_bytes(&old));
                    data.bytes = (data.bytes + added).saturating_sub(removed);
                }
            }
            (Entries::Records(records), StoreOp::Merge(parts), StoreKind::Records { .. }) => {
                let key_len = key.len();
                // One lookup, and the key kept only for a new record (merges mostly update one).
                let (record, removed) = match records.get_mut(&*key) {
                    Some(record) => {
                        let removed = key_len + approx_bytes(record);
                        (record, removed)
                    }
                    None => (records.get_or_insert_mut(key.into_owned(), || Value::Object(Default::default())), 0),
                };
                for part in parts {
                    part.merge_into(record, scope);
                }
                let added = key_len + approx_bytes(record);
                data.bytes = (data.bytes + added).saturating_sub(removed);
            }
            (Entries::Lists(lists), StoreOp::Append(parts), StoreKind::Lists { keep, .. }) => {
                let mut entry = Value::Null;
                for part in parts {
                    part.merge_into(&mut entry, scope);
                }
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                // Counted by what comes and goes, not by walking the list: a list of the last
                // 50 events of every type is appended to on every publish.
                let mut added = entry_bytes(&entry);
                let list = match lists.get_mut(&*key) {
                    Some(list) => list,
                    None => {
                        added += key.len();
                        lists.get_or_insert_mut(key.into_owned(), VecDeque::new)
                    }
                };
                list.push_back((seq, entry));
                let mut removed = 0;
                while list.len() > keep {
                    removed += list.pop_front().map_or(0, |(_, old)| entry_bytes(&old));
                }
                data.bytes = (data.bytes + added).saturating_sub(removed);
            }
            _ => return false,
        }
        // The spec's count limits.
        let max = match kind {
            StoreKind::Records { max_per_tenant } => max_per_tenant,
            StoreKind::Lists { max_keys_per_tenant, .. } => max_keys_per_tenant,
        };
        while data.len() > max {
            data.evict_one();
        }
        true
    }

    /// Brings `tenant`'s data within its budget, then the node within its own by dropping the
    /// least recently updated tenants of this store (the one just written last of all).
    fn enforce_budgets(&self, tenants: &mut LruCache<String, TenantData>, tenant: &str, before: usize) {
        let Some(data) = tenants.get_mut(tenant) else { return };
        while data.bytes > self.budget.per_tenant && data.evict_one() > 0 {}
        let after = data.bytes;
        let used = if after >= before {
            self.budget.used.fetch_add(after - before, Ordering::Relaxed) + (after - before)
        } else {
            self.budget.used.fetch_sub(before - after, Ordering::Relaxed) - (before - after)
        };
        let mut used = used;
        while used > self.budget.total {
            let freed = match tenants.peek_lru() {
                Some((oldest, _)) if oldest != tenant => tenants.pop_lru().map_or(0, |(_, d)| d.bytes),
                _ => tenants.get_mut(tenant).map_or(0, TenantData::evict_one),
            };
            if freed == 0 {
                break;
            }
            used = self.budget.used.fetch_sub(freed, Ordering::Relaxed) - freed;
        }
    }

    /// `state.<store>[key]`: the record, or the list (oldest first). Without a key: records most
    /// recently updated first, or every list's entries merged oldest first, at most `limit`.
    pub(crate) fn read(&self, store: usize, tenant: &str, key: Option<&str>, limit: usize) -> Option<Value> {
        self.read_filtered(store, tenant, key, &[], limit)
    }

    /// Like [`Stores::read`], keeping only list entries whose fields equal the given values.
    pub(crate) fn read_filtered(
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
        match (store.kind, tenants.peek(tenant).map(|d| &d.entries), key) {
            // A record that was never written (or was evicted) is unknown: unset.
            (StoreKind::Records { .. }, Some(Entries::Records(records)), Some(key)) => records.peek(key).cloned(),
            (StoreKind::Records { .. }, Some(Entries::Records(records)), None) => {
                Some(Value::Array(records.iter().take(limit).map(|(_, v)| v.clone()).collect()))
            }
            (StoreKind::Records { .. }, _, Some(_)) => None,
            // A list that was never written is empty.
            (StoreKind::Lists { .. }, Some(Entries::Lists(lists)), Some(key)) => Some(last(
                lists
                    .peek(key)
                    .map(|l| l.iter().map(|(_, v)| v).filter(|v| keep(v)).cloned().collect())
                    .unwrap_or_default(),
            )),
            (StoreKind::Lists { .. }, Some(Entries::Lists(lists)), None) => {
                let mut entries: Vec<&(u64, Value)> =
                    lists.iter().flat_map(|(_, l)| l.iter()).filter(|(_, v)| keep(v)).collect();
                entries.sort_by_key(|(seq, _)| *seq);
                Some(last(entries.into_iter().map(|(_, v)| v.clone()).collect()))
            }
            (_, _, _) => Some(Value::Array(Vec::new())),
        }
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
        let stores = Stores::new(&specs, StateBudget::new(usize::MAX, usize::MAX));
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
    fn bytes_are_bounded_per_tenant_and_in_all() {
        let specs = vec![StoreSpec {
            name: "logs".into(),
            kind: StoreKind::Lists { keep: 1000, max_keys_per_tenant: 1000 },
            rules: vec![rule("log.created", "{data.executionId}", StoreOp::Append(vec![t(json!("{data}"))]))],
        }];
        let budget = StateBudget::new(20_000, 50_000);
        let stores = Stores::new(&specs, budget.clone());
        let log = |tenant: &str, exec: usize| {
            let data = json!({ "executionId": format!("e{exec}"), "message": "x".repeat(500) });
            stores.apply(&specs, "log.created", tenant, &Event(json!({ "data": data })));
        };
        for i in 0..200 {
            log("t1", i);
        }
        let held = |tenant: &str| stores.read(0, tenant, None, usize::MAX).unwrap().as_array().unwrap().len();
        let t1 = held("t1");
        assert!(t1 > 10 && t1 < 50, "t1 keeps what fits 20 kB: {t1}");
        assert_eq!(stores.read(0, "t1", Some("e199"), 10).unwrap().as_array().unwrap().len(), 1, "the newest stay");
        assert_eq!(stores.read(0, "t1", Some("e0"), 10), Some(json!([])), "the oldest went first");
        assert!(budget.used.load(Ordering::Relaxed) <= 20_000);
        for tenant in ["t2", "t3", "t4"] {
            for i in 0..200 {
                log(tenant, i);
            }
        }
        assert!(budget.used.load(Ordering::Relaxed) <= 50_000, "{}", budget.used.load(Ordering::Relaxed));
        assert_eq!(held("t1"), 0, "past the node's budget the least recently updated tenant goes");
        assert!(held("t4") > 10, "the tenant just written keeps its data");
    }

    #[test]
    fn list_bytes_counted_as_entries_come_and_go_match_a_recount() {
        let specs = vec![StoreSpec {
            name: "activity".into(),
            kind: StoreKind::Lists { keep: 5, max_keys_per_tenant: 3 },
            rules: vec![rule("*", "{data.key}", StoreOp::Append(vec![t(json!("{data}"))]))],
        }];
        let budget = StateBudget::new(usize::MAX, usize::MAX);
        let stores = Stores::new(&specs, budget.clone());
        for i in 0..40 {
            let data = json!({ "key": format!("k{}", i % 4), "text": "x".repeat(i * 7 % 90) });
            stores.apply(&specs, "a.b", "t1", &Event(json!({ "data": data })));
        }
        let tenants = stores.stores[0].tenants.lock().unwrap();
        let data = tenants.peek("t1").unwrap();
        let Entries::Lists(lists) = &data.entries else { panic!("a list store") };
        let recount: usize = lists.iter().map(|(k, l)| list_bytes(k, l)).sum();
        assert_eq!(data.bytes, recount);
        assert_eq!(budget.used.load(Ordering::Relaxed), recount);
    }

    #[test]
    fn lists_keep_the_last_entries_and_filter() {
        let specs = vec![StoreSpec {
            name: "logs".into(),
            kind: StoreKind::Lists { keep: 3, max_keys_per_tenant: 10 },
            rules: vec![rule("log.created", "{data.executionId}", StoreOp::Append(vec![t(json!("{data}"))]))],
        }];
        let stores = Stores::new(&specs, StateBudget::new(usize::MAX, usize::MAX));
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
