//! [`Bridges`]: every provider this node knows, by tenant, and the bridges it runs.
//!
//! A tenant's provider is its `BRIDGES_FILE` entry unless a run-time change replaced it
//! (`PUT /api/v1/tenants/{tenantId}/providers/websocket`): the file seeds, changes override, and
//! a change of a tenant the file does not list adds it. Alone, a node runs every enabled
//! external provider and keeps changes in memory (a restart goes back to the file). In a cluster
//! the changes are stored in Redis (`BridgeLink::store`) and every node reloads them
//! ([`Bridges::reload`]); a node runs only the bridges whose lease it holds ([`Bridges::hold`]) and
//! forwards the other sends to their holder (`BridgeLink::forward`).
//!
//! A change replaces a running bridge atomically with respect to sends: the new bridge takes the
//! old one's place in the map at once (sends meet it connecting: 503), the old one is stopped
//! (its connection closed, its queued sends answered 503) and only then is the new one started,
//! so a peer never sees both connections at once and no send goes to both.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    Bridge, BridgeLink, Command, Lease, Outbound, Recipient, SendError, Started,
    status::{State, Status},
};
use crate::{
    config::{BridgeConfig, BridgesConfig, ProviderMode, is_bridge_name},
    metrics::BridgeMetrics,
};

/// How long a replaced or released bridge may take to close its connection.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// The fields of a bridge's view that are its status (the rest is its configuration).
const STATUS_FIELDS: &[&str] =
    &["state", "lastError", "cause", "attempts", "connectedSince", "messagesIn", "messagesOut", "node"];

/// Every provider of this node and the bridges it runs. Clones share them.
#[derive(Clone)]
pub(crate) struct Bridges(Arc<Registry>);

struct Registry {
    /// What its bridges connect out with.
    outbound: Outbound,
    /// `BRIDGES_FILE`'s entries, in its order.
    file: Vec<BridgeConfig>,
    inner: Mutex<Inner>,
    /// Set in a cluster.
    link: OnceLock<Arc<dyn BridgeLink>>,
    /// One change at a time: a replacement waits for the old connection to close.
    changes: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Inner {
    /// Run-time changes, by tenant.
    overrides: BTreeMap<String, BridgeConfig>,
    /// The bridges this node runs, by tenant.
    running: HashMap<String, Running>,
    /// Alone: whether `spawn` ran (bridges start with the node's background work).
    spawned: bool,
}

struct Running {
    bridge: Arc<Bridge>,
    /// In a cluster, the lease it runs under.
    lease: Option<Arc<Lease>>,
    /// Its queue's receiving end until it is started.
    pending: Option<mpsc::Receiver<Command>>,
    started: Option<Started>,
}

/// A tenant's external provider, as a send through it needs it.
#[derive(Debug, Clone)]
pub(crate) struct Target(BridgeConfig);

impl Target {
    /// The bridge's name.
    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }

    /// Its tenant.
    pub(crate) fn tenant(&self) -> &str {
        &self.0.tenant_id
    }

    /// Whether the provider asks for acknowledgments (`enableAcknowledgments`).
    pub(crate) fn acknowledged(&self) -> bool {
        self.0.provider.enable_acknowledgments
    }

    /// `requestTimeout` when the provider takes queries (`enableRequestResponse`).
    pub(crate) fn queries(&self) -> Option<Duration> {
        self.0.provider.enable_request_response.then_some(self.0.provider.request_timeout)
    }

    /// The peer's event for a notification to `recipient`.
    pub(crate) fn notification_event(&self, recipient: &Recipient) -> Result<String, SendError> {
        let provider = &self.0.provider;
        match recipient {
            Recipient::User => Ok(provider.custom_events.notification.clone()),
            Recipient::Channel if !provider.support_channel_broadcast => Err(SendError::NoChannels),
            Recipient::Channel => Ok(provider.custom_events.channel_broadcast.clone()),
        }
    }
}

impl Bridges {
    /// The providers of `config` (nothing started: see [`Bridges::spawn`], [`Bridges::hold`]).
    pub(crate) fn new(config: &BridgesConfig, metrics: &BridgeMetrics) -> Self {
        Self(Arc::new(Registry {
            outbound: Outbound::new(config, metrics),
            file: config.bridges.clone(),
            inner: Mutex::default(),
            link: OnceLock::new(),
            changes: tokio::sync::Mutex::new(()),
        }))
    }

    /// Makes this node a cluster member's: bridges run where their lease is held.
    pub(crate) fn attach(&self, link: Arc<dyn BridgeLink>) {
        let _ = self.0.link.set(link);
    }

    fn link(&self) -> Option<&Arc<dyn BridgeLink>> {
        self.0.link.get()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Alone, starts every enabled external provider's bridge (once). In a cluster the leases
    /// start them. The task returned stops every bridge of this node when aborted.
    pub(crate) fn spawn(&self) -> Vec<JoinHandle<()>> {
        let starts: Vec<(String, Arc<Bridge>, mpsc::Receiver<Command>)> = {
            let mut inner = self.inner();
            if inner.spawned || self.link().is_some() {
                Vec::new()
            } else {
                inner.spawned = true;
                let runnable: Vec<BridgeConfig> =
                    effective(&self.0.file, &inner.overrides).into_iter().filter(BridgeConfig::runs_bridge).collect();
                runnable
                    .iter()
                    .map(|config| {
                        let (bridge, receiver) = Bridge::new(config, &self.0.outbound);
                        (config.tenant_id.clone(), bridge, receiver)
                    })
                    .collect()
            }
        };
        let mut inner = self.inner();
        for (tenant, bridge, receiver) in starts {
            let started = Some(bridge.start(receiver, None));
            inner.running.insert(tenant, Running { bridge, lease: None, pending: None, started });
        }
        drop(inner);
        let guard = StopOnDrop(self.clone());
        vec![tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        })]
    }

    /// Every provider: the file's, changed or not, then the tenants only changes name.
    pub(crate) fn configs(&self) -> Vec<BridgeConfig> {
        effective(&self.0.file, &self.inner().overrides)
    }

    /// `tenant`'s provider when it is external (enabled or not): its notifications go through it.
    pub(crate) fn for_tenant(&self, tenant: &str) -> Option<Target> {
        self.configs()
            .into_iter()
            .find(|c| c.tenant_id == tenant && c.provider.mode == ProviderMode::External)
            .map(Target)
    }

    /// The external provider named `name`.
    pub(crate) fn named(&self, name: &str) -> Option<Target> {
        self.configs().into_iter().find(|c| c.name == name && c.provider.mode == ProviderMode::External).map(Target)
    }

    /// `tenant`'s provider as configured now (any mode), and whether it comes from a run-time
    /// change.
    pub(crate) fn provider(&self, tenant: &str) -> Option<(BridgeConfig, bool)> {
        let inner = self.inner();
        if let Some(changed) = inner.overrides.get(tenant) {
            return Some((changed.clone(), true));
        }
        self.0.file.iter().find(|c| c.tenant_id == tenant).map(|c| (c.clone(), false))
    }

    /// The name a run-time change of `tenant` gives its bridge: the one it has, or
    /// `tenant-{tenantId}` (characters a name may not hold become `_`); an error when another
    /// tenant's bridge has that name.
    pub(crate) fn name_for(&self, tenant: &str) -> Result<String, String> {
        let configs = self.configs();
        if let Some(existing) = configs.iter().find(|c| c.tenant_id == tenant) {
            return Ok(existing.name.clone());
        }
        let mut name: String = format!("tenant-{tenant}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        name.truncate(100);
        debug_assert!(is_bridge_name(&name));
        match configs.iter().find(|c| c.name == name) {
            Some(other) => Err(format!(
                "this tenant's bridge would be named `{name}`, which is tenant `{}`'s bridge: name it in BRIDGES_FILE",
                other.tenant_id
            )),
            None => Ok(name),
        }
    }

    /// Sends `event` with `data` through `tenant`'s bridge, here or on the node holding it.
    pub(crate) async fn send(
        &self,
        tenant: &str,
        event: String,
        data: Value,
        ack: Option<Duration>,
    ) -> Result<Value, SendError> {
        let local = self.inner().running.get(tenant).map(|r| (r.bridge.clone(), r.lease.clone()));
        if local.is_none() && !self.configs().iter().any(|c| c.tenant_id == tenant && c.runs_bridge()) {
            // Disabled: no node runs it, none is to be asked.
            return Err(SendError::NotConnected);
        }
        match (local, self.link()) {
            (Some((bridge, lease)), _) if lease.as_ref().is_none_or(|l| l.valid()) => {
                bridge.send(event, data, ack).await
            }
            (_, Some(link)) => link.forward(tenant, event, data, ack).await,
            (_, None) => Err(SendError::NotConnected),
        }
    }

    /// A send another node forwarded here, for the bridge it found held under lease `token`.
    pub(crate) async fn send_held(
        &self,
        tenant: &str,
        token: u64,
        event: String,
        data: Value,
        ack: Option<Duration>,
    ) -> Result<Value, SendError> {
        let bridge = self
            .inner()
            .running
            .get(tenant)
            .filter(|r| r.lease.as_ref().is_some_and(|l| l.token() == token && l.valid()))
            .map(|r| r.bridge.clone());
        match bridge {
            Some(bridge) => bridge.send(event, data, ack).await,
            None => Err(SendError::Unheld),
        }
    }

    /// Every external provider as the API shows it: configuration without credentials, and the
    /// status of its bridge (here, from the node holding it, or `waiting` for one).
    pub(crate) async fn describe(&self) -> Vec<Value> {
        let statuses = match self.link() {
            Some(link) => link.statuses().await,
            None => HashMap::new(),
        };
        let node = self.link().map(|l| l.node());
        let configs = self.configs();
        let inner = self.inner();
        configs
            .iter()
            .filter(|c| c.provider.mode == ProviderMode::External)
            .map(|config| {
                let mut view = view(config);
                let status = match inner.running.get(&config.tenant_id) {
                    _ if !config.provider.enabled => with_node(Status::new(State::Disabled).describe(), None),
                    Some(r) if r.bridge.name() == config.name => with_node(r.bridge.status.describe(), node.clone()),
                    _ => match statuses.get(&config.tenant_id) {
                        Some(reported) if reported["name"] == json!(config.name) => reported.clone(),
                        _ => waiting(self.link().is_some()),
                    },
                };
                for field in STATUS_FIELDS {
                    view[*field] = status.get(*field).cloned().unwrap_or(Value::Null);
                }
                view
            })
            .collect()
    }

    /// The bridges this node holds, as it reports them to the others (`{name, ...status}`).
    pub(crate) fn held_statuses(&self) -> Vec<(String, Value)> {
        let node = self.link().map(|l| l.node());
        self.inner()
            .running
            .iter()
            .map(|(tenant, r)| {
                let mut status = with_node(r.bridge.status.describe(), node.clone());
                status["name"] = json!(r.bridge.name());
                (tenant.clone(), status)
            })
            .collect()
    }

    /// Whether `config`'s strategy has every destination it names (`DATABASE_URL`,
    /// `KAFKA_BROKERS`), as start-up checks the file's entries; the error names what to set.
    pub(crate) fn can_deliver(&self, config: &BridgeConfig) -> Result<(), String> {
        self.0.outbound.sinks.check_bridges(std::slice::from_ref(config)).map_err(|e| e.to_string())
    }

    /// A run-time change of `config.tenant_id`'s provider. Alone, applied before it returns (the
    /// old bridge closed, the new one started). In a cluster, stored for every node, which each
    /// applies within a lease tick.
    pub(crate) async fn change(&self, config: BridgeConfig) -> Result<(), String> {
        match self.link() {
            Some(link) => {
                let entry = json!({ "name": config.name, "provider": config.json.expose() });
                link.store(&config.tenant_id, entry).await
            }
            None => {
                let tenant = config.tenant_id.clone();
                self.apply(move |overrides| {
                    overrides.insert(tenant, config);
                })
                .await;
                Ok(())
            }
        }
    }

    /// In a cluster: every node's run-time changes, as stored (a reload replaces them all).
    pub(crate) async fn reload(&self, changes: BTreeMap<String, BridgeConfig>) {
        self.apply(move |overrides| *overrides = changes).await;
    }

    /// Changes the overrides with `change`, then replaces, stops or (alone) starts bridges so
    /// that each runs its provider as now configured.
    async fn apply(&self, change: impl FnOnce(&mut BTreeMap<String, BridgeConfig>)) {
        let _one = self.0.changes.lock().await;
        let mut stops = Vec::new();
        let mut starts = Vec::new();
        {
            let mut inner = self.inner();
            change(&mut inner.overrides);
            let now: HashMap<String, BridgeConfig> = effective(&self.0.file, &inner.overrides)
                .into_iter()
                .filter(BridgeConfig::runs_bridge)
                .map(|c| (c.tenant_id.clone(), c))
                .collect();
            let tenants: Vec<String> = inner.running.keys().cloned().collect();
            for tenant in tenants {
                let Some(running) = inner.running.get(&tenant) else { continue };
                let config = &running.bridge.config;
                match now.get(&tenant) {
                    Some(new) if new.name == config.name && new.json == config.json => {}
                    Some(new) => {
                        let lease = running.lease.clone();
                        let (bridge, receiver) = Bridge::new(new, &self.0.outbound);
                        let replacement = Running { bridge, lease, pending: Some(receiver), started: None };
                        if let Some(old) = inner.running.insert(tenant.clone(), replacement) {
                            stops.extend(old.started);
                        }
                        tracing::info!(bridge = %new.name, tenant = %tenant, "provider changed: replacing the bridge");
                        starts.push(tenant);
                    }
                    None => {
                        if let Some(old) = inner.running.remove(&tenant) {
                            tracing::info!(bridge = %old.bridge.name(), tenant = %tenant, "provider changed: no bridge any more (internal or disabled)");
                            stops.extend(old.started);
                        }
                    }
                }
            }
            if inner.spawned {
                for (tenant, config) in &now {
                    if !inner.running.contains_key(tenant) {
                        let (bridge, receiver) = Bridge::new(config, &self.0.outbound);
                        inner.running.insert(
                            tenant.clone(),
                            Running { bridge, lease: None, pending: Some(receiver), started: None },
                        );
                        tracing::info!(bridge = %config.name, tenant = %tenant, "provider added: starting its bridge");
                        starts.push(tenant.clone());
                    }
                }
            }
        }
        for old in stops {
            old.stop(STOP_WITHIN).await;
        }
        let mut inner = self.inner();
        for tenant in starts {
            if let Some(running) = inner.running.get_mut(&tenant)
                && let Some(receiver) = running.pending.take()
            {
                running.started = Some(running.bridge.start(receiver, running.lease.clone()));
            }
        }
    }

    /// In a cluster: this node took (or renewed) `tenant`'s lease; starts its bridge unless it
    /// runs.
    pub(crate) async fn hold(&self, tenant: &str, lease: Arc<Lease>) {
        let _one = self.0.changes.lock().await;
        let config = self.configs().into_iter().find(|c| c.tenant_id == tenant && c.runs_bridge());
        let mut inner = self.inner();
        // A bridge whose lease ran out stopped on its own: it starts afresh under the new one.
        let alive = inner.running.get(tenant).is_some_and(|r| r.started.as_ref().is_some_and(|s| !s.finished()));
        if alive && let Some(running) = inner.running.get_mut(tenant) {
            running.lease = Some(lease);
            return;
        }
        inner.running.remove(tenant);
        let Some(config) = config else { return };
        let (bridge, receiver) = Bridge::new(&config, &self.0.outbound);
        tracing::info!(bridge = %config.name, tenant, token = lease.token(), "took the bridge's lease: starting it here");
        let started = Some(bridge.start(receiver, Some(lease.clone())));
        inner.running.insert(tenant.to_string(), Running { bridge, lease: Some(lease), pending: None, started });
    }

    /// In a cluster: this node no longer holds `tenant`'s lease; stops its bridge here.
    pub(crate) async fn release(&self, tenant: &str) {
        let _one = self.0.changes.lock().await;
        let old = self.inner().running.remove(tenant);
        if let Some(old) = old {
            tracing::warn!(bridge = %old.bridge.name(), tenant, "no longer holds the bridge's lease: stopping it here");
            if let Some(started) = old.started {
                started.stop(STOP_WITHIN).await;
            }
        }
    }

    /// The node stops: in a cluster, its bridges are closed and handed over to the other nodes
    /// (at most `within`); alone, they stop with the node's background work.
    pub(crate) async fn stop(&self, within: Duration) {
        if let Some(link) = self.link() {
            link.stop(within).await;
        }
    }

    /// The tenants whose bridge this node runs.
    pub(crate) fn running(&self) -> Vec<String> {
        self.inner().running.keys().cloned().collect()
    }
}

/// Every provider: the file's entries in order, each replaced by its tenant's change if any,
/// then the changes of tenants the file does not list.
fn effective(file: &[BridgeConfig], overrides: &BTreeMap<String, BridgeConfig>) -> Vec<BridgeConfig> {
    let mut configs: Vec<BridgeConfig> =
        file.iter().map(|c| overrides.get(&c.tenant_id).unwrap_or(c).clone()).collect();
    configs.extend(overrides.values().filter(|o| !file.iter().any(|c| c.tenant_id == o.tenant_id)).cloned());
    configs
}

/// A provider's configuration as the API shows it: no credentials (the URL without its query).
fn view(config: &BridgeConfig) -> Value {
    let provider = &config.provider;
    let url = provider.url.as_deref().unwrap_or_default();
    json!({
        "name": config.name,
        "tenantId": config.tenant_id,
        "protocol": provider.protocol.as_str(),
        "url": url.split(['?', '#']).next().unwrap_or_default(),
        "defaultChannels": provider.default_channels,
        "subscribeToEvents": provider.subscribe_to_events,
        "strategy": provider.message_handling.as_ref().map(|h| h.strategy.as_str()),
        "requestResponse": provider.enable_request_response,
    })
}

fn with_node(mut status: Value, node: Option<String>) -> Value {
    status["node"] = json!(node);
    status
}

/// The status of a bridge no node runs: in a cluster, waiting for a node to take its lease.
fn waiting(cluster: bool) -> Value {
    let state = if cluster { "waiting" } else { "connecting" };
    json!({ "state": state, "lastError": null, "cause": null, "attempts": 0, "connectedSince": null,
            "messagesIn": 0, "messagesOut": 0, "node": null })
}

/// Stops every bridge of this node when dropped (the node's background work is aborted).
struct StopOnDrop(Bridges);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for (_, running) in self.0.inner().running.drain() {
            if let Some(started) = running.started {
                started.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_bridges_file;

    fn provider(tenant: &str, name: &str, mode: &str) -> BridgeConfig {
        let json = json!({ "mode": mode, "protocol": "ws", "url": "ws://peer.example/ws" });
        BridgeConfig::from_provider_json(tenant, name, &json, "body").unwrap()
    }

    #[test]
    fn the_file_seeds_and_changes_override_their_tenant_then_add_the_others() {
        let file = parse_bridges_file(
            r#"[{"tenantId": "a", "name": "a-io", "mode": "external", "protocol": "ws", "url": "ws://a.example"},
                {"tenantId": "b", "name": "b-io", "mode": "external", "protocol": "ws", "url": "ws://b.example"}]"#,
        )
        .unwrap();
        let mut overrides = BTreeMap::new();
        overrides.insert("z".to_string(), provider("z", "tenant-z", "external"));
        overrides.insert("a".to_string(), provider("a", "a-io", "internal"));
        let all = effective(&file, &overrides);
        let seen: Vec<(&str, &str, bool)> =
            all.iter().map(|c| (c.tenant_id.as_str(), c.name.as_str(), c.runs_bridge())).collect();
        assert_eq!(seen, [("a", "a-io", false), ("b", "b-io", true), ("z", "tenant-z", true)]);
    }

    #[test]
    fn a_new_tenants_bridge_is_named_after_it_and_never_takes_another_name() {
        let config = BridgesConfig {
            bridges: parse_bridges_file(
                r#"[{"tenantId": "t1", "name": "tenant-x_y", "mode": "external", "protocol": "ws", "url": "ws://a.example"}]"#,
            )
            .unwrap(),
            ..BridgesConfig::default()
        };
        let bridges = Bridges::new(&config, &crate::metrics::Metrics::new(false).bridges);
        assert_eq!(bridges.name_for("t1").unwrap(), "tenant-x_y", "a tenant keeps its bridge's name");
        assert_eq!(bridges.name_for("acme 7").unwrap(), "tenant-acme_7");
        assert!(bridges.name_for("x/y").unwrap_err().contains("tenant `t1`'s bridge"));
    }

    #[test]
    fn a_lease_is_valid_until_its_time_only() {
        let now = std::time::Instant::now();
        let lease = Lease::new(7, now + Duration::from_secs(60));
        assert!(lease.valid() && lease.token() == 7);
        lease.extend(now);
        assert!(!lease.valid());
    }
}
