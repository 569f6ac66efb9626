//! Presence on a node (`crate::engine::presence`): who of a room, or of a tenant, is connected
//! here, counted from the room membership the node keeps anyway (a Socket.IO namespace's sockets
//! here, a plain WebSocket endpoint's in its front); the API's
//! answer over the whole cluster (this node's count plus every other live node's, asked through
//! the `ClusterLink`); and the task that sends the join and leave events specs ask for.

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use tokio::task::JoinHandle;

use super::Node;
use crate::{
    auth::Identity,
    clock::iso_now,
    engine::{
        EmitRequest,
        member_state::MemberState,
        presence::{LocalPresence, MAX_USERS, PRESENCE_FLUSH, PresenceQuestion},
    },
    rooms,
    spec::Transport,
};

impl<A: Adapter> Node<A> {
    /// Who of `question` is connected to this node (its namespace is a Socket.IO namespace's path
    /// or a plain WebSocket endpoint's; an unknown one or a room no connection is in: nobody).
    pub(crate) fn presence_here(&self, question: &PresenceQuestion) -> LocalPresence {
        let mut out = LocalPresence::default();
        if question.transport == Transport::WebSocket {
            // A plain WebSocket endpoint's front counts its own connections.
            return self.endpoint(&question.namespace).map(|ep| ep.presence_here(question)).unwrap_or(out);
        }
        let Some(ns) = self.namespace(&question.namespace) else { return out };
        let Some(op) = ns.io.of(ns.spec.path.as_str()) else { return out };
        let tenant = question.tenant.as_deref();
        let mut count = |identity: &Identity| out.add(identity.tenant_id.as_deref(), identity.user_id.as_deref());
        let sockets = match &question.room {
            // A family without filters has its room itself; one with filters has variants of it
            // only, found among every socket's rooms.
            Some(room) if !has_filters(ns, room) => op.local().within(room.clone()).sockets(),
            _ => op.local().sockets(),
        };
        for socket in sockets {
            let Some(session) = socket.extensions.get::<std::sync::Arc<MemberState>>() else { continue };
            let identity = session.identity();
            let wanted = match &question.room {
                Some(room) if has_filters(ns, room) => socket.rooms().iter().any(|r| rooms::is_variant_of(r, room)),
                Some(_) => true,
                None => tenant.is_none() || identity.tenant_id.as_deref() == tenant,
            };
            if wanted {
                count(&identity);
            }
        }
        out
    }

    /// `GET /api/v1/presence`: who is connected to `room` of `namespace` (a Socket.IO namespace or
    /// a plain WebSocket endpoint's path; a visible room name, as a client names it; with `tenant`, a tenant
    /// room of that tenant), or without a room to the namespace (only `tenant`'s connections when
    /// given), over the whole cluster. The error says what is wrong with the query.
    pub(crate) async fn presence(
        &self,
        namespace: &str,
        transport: Option<Transport>,
        room: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Value, String> {
        let rt = self.runtime_or_err(namespace, transport)?;
        let internal = room.map(|visible| rt.internal_room(visible, tenant)).transpose()?;
        // A room name carries its tenant: a platform-wide room's answer is every tenant's.
        let question = PresenceQuestion {
            namespace: rt.spec.path.clone(),
            transport: rt.spec.transport,
            tenant: if internal.is_some() { None } else { tenant.map(str::to_string) },
            room: internal,
        };
        let mut total = self.presence_here(&question);
        let (mut nodes, mut complete) = (1usize, true);
        if let Some(cluster) = self.shared.cluster.get() {
            let metrics = &self.shared.metrics.presence;
            metrics.queries.inc();
            if cluster.reachable() {
                let answers = cluster.ask_presence(question.clone()).await;
                nodes += answers.answers.len();
                complete = answers.complete;
                for answer in answers.answers {
                    total.merge(answer);
                }
            } else {
                complete = false;
            }
            if !complete {
                metrics.incomplete.inc();
            }
        }
        // Users of one tenant are named by their id; a platform-wide answer says whose tenant.
        let one_tenant = tenant.is_some();
        let mut users: Vec<((Option<String>, String), u64)> = total.users.into_iter().collect();
        users.sort_unstable();
        users.truncate(MAX_USERS);
        let users: Vec<Value> = users
            .into_iter()
            .map(|((user_tenant, user), n)| match one_tenant {
                true => json!({ "userId": user, "connections": n }),
                false => json!({ "userId": user, "tenantId": user_tenant, "connections": n }),
            })
            .collect();
        Ok(json!({
            "namespace": rt.spec.path,
            "transport": rt.spec.transport.name(),
            "room": room,
            "tenantId": tenant,
            "users": users,
            "connections": total.connections,
            "nodes": nodes,
            "complete": complete,
            "truncated": total.truncated,
        }))
    }

    /// Sends, every [`PRESENCE_FLUSH`], the join and leave events of the namespaces whose specs
    /// ask for them (none: no task). Through raw emits, so in a cluster every node delivers them
    /// to its own members of the room.
    pub(super) fn spawn_presence_events(&self) -> Option<JoinHandle<()>> {
        if self.namespaces.iter().all(|ns| ns.presence.is_none()) {
            return None;
        }
        let node = self.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PRESENCE_FLUSH);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                node.announce_presence().await;
            }
        }))
    }

    async fn announce_presence(&self) {
        for ns in self.namespaces.iter() {
            let Some(presence) = &ns.presence else { continue };
            for change in presence.flush(std::time::Instant::now()) {
                let Some(spec) = &ns.spec.rooms[change.family].presence else { continue };
                let event = match change.online {
                    true => &spec.online,
                    false => &spec.offline,
                };
                let Some(event) = event else { continue };
                let Some((tenant, visible)) = rooms::split_internal(&change.room) else { continue };
                let request = EmitRequest {
                    namespace: ns.spec.path.clone(),
                    rooms: vec![visible.to_string()],
                    event: event.clone(),
                    data: json!({ "userId": change.user, "room": visible, "timestamp": iso_now() }),
                    tenant,
                };
                match self.emit(&request).await {
                    Ok(_) => {
                        self.shared.metrics.presence.announced.inc();
                    }
                    Err(e) => {
                        self.shared.metrics.presence.dropped.inc();
                        tracing::debug!(ns = %ns.spec.path, error = %e, "a presence event was not sent");
                    }
                }
            }
        }
    }
}

/// Whether internal room `room` belongs to a family with filters (whose members are in variants
/// of it).
fn has_filters<A: Adapter>(ns: &crate::front::socketio::namespace::NamespaceRuntime<A>, room: &str) -> bool {
    rooms::split_internal(room)
        .and_then(|(_, visible)| ns.spec.family_of(visible))
        .is_some_and(|(id, _)| !ns.spec.rooms[id].filters.is_empty())
}
