//! This node's connections on both fronts as the admin view lists and acts on them: the
//! engine's [`Roster`], implemented over the Socket.IO namespaces and the plain WebSocket endpoints.

use std::{collections::HashSet, ops::ControlFlow, sync::Arc, time::Duration};

use socketioxide::{TransportType, adapter::Adapter, extract::SocketRef, socket::Sid};

use super::Node;
use crate::{
    engine::{ClientCounts, ClusterState, Observer, Roster, SocketView, endpoint_name, member_state::MemberState},
    front::socketio::roster::{UPGRADE_NO_SOCKETS, UPGRADE_WATCH},
    metrics::CutReason,
};

impl<A: Adapter> Roster for Node<A> {
    fn namespaces(&self) -> Vec<(String, usize)> {
        let sio = self
            .namespaces
            .iter()
            .map(|ns| (ns.spec.path.clone(), self.shared.ns_connections[ns.index].1.get().max(0) as usize));
        let native = self.endpoints.iter().map(|ep| (endpoint_name(&ep.spec.path), ep.connection_count()));
        sio.chain(native).collect()
    }

    fn clients(&self) -> ClientCounts {
        let (mut sessions, mut polling) = (HashSet::new(), HashSet::new());
        for ns in self.namespaces.iter() {
            for (s, _) in ns.local_sessions() {
                sessions.insert(s.id);
                if s.transport_type() == TransportType::Polling {
                    polling.insert(s.id);
                }
            }
        }
        let native: usize = self.endpoints.iter().map(|ep| ep.connection_count()).sum();
        ClientCounts { clients: sessions.len() + native, polling: polling.len() }
    }

    fn each_socket(&self, visit: &mut dyn FnMut(&SocketView<'_>) -> ControlFlow<()>) {
        for ns in self.namespaces.iter() {
            for (s, session) in ns.local_sessions() {
                if visit(&ns.view(&s, &session)).is_break() {
                    return;
                }
            }
        }
        let mut stopped = false;
        for ep in self.endpoints.iter() {
            let name = endpoint_name(&ep.spec.path);
            ep.each_conn(&mut |conn| {
                // Views are what costs; the rest of the walk is a skip.
                if !stopped {
                    stopped = visit(&ep.view(&name, conn)).is_break();
                }
            });
            if stopped {
                return;
            }
        }
    }

    fn disconnect(&self, namespace: &str, id: &str, whole_client: bool) -> bool {
        if let Some(ns) = self.namespace(namespace) {
            let Some((s, _)) = ns.local_sessions().into_iter().find(|(_, session)| session.public_id.to_string() == id)
            else {
                return false;
            };
            if whole_client {
                self.sio.sessions.close(s.id, s.transport_type(), s.protocol(), s.req_parts(), CutReason::Admin);
            } else if let Err(e) = s.disconnect() {
                tracing::debug!(error = %e, "could not disconnect a socket");
            }
            return true;
        }
        self.endpoints
            .iter()
            .find(|ep| endpoint_name(&ep.spec.path) == namespace)
            .is_some_and(|ep| ep.close_by_public_id(id))
    }

    fn observe(&self, observer: Arc<dyn Observer>) {
        if self.shared.observer.set(observer).is_err() {
            tracing::warn!("the engine already has an observer");
        }
    }

    fn cluster(&self) -> ClusterState {
        match self.shared.cluster.get() {
            None => ClusterState::Alone,
            Some(c) if c.reachable() => ClusterState::Reachable,
            Some(_) => ClusterState::Unreachable,
        }
    }
}

impl<A: Adapter> Node<A> {
    /// A long-polling session asked to upgrade to WebSocket: once it has, the observer hears of
    /// it for each of the session's sockets. socketioxide says nothing when an upgrade completes,
    /// so the session's transport is looked at until it changes (or the upgrade timed out).
    pub(crate) fn watch_upgrade(&self, sid: Sid) {
        if self.shared.watcher().is_none() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            while started.elapsed() < UPGRADE_WATCH {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let sockets: Vec<(&str, SocketRef<A>)> = engine
                    .namespaces
                    .iter()
                    .filter_map(|ns| Some((ns.spec.path.as_str(), ns.io.of(ns.spec.path.as_str())?.get_socket(sid)?)))
                    .collect();
                // None yet: the client may connect its namespaces while it upgrades, but a
                // session with none for a while has none of ours (the admin's own, say).
                if sockets.is_empty() && started.elapsed() > UPGRADE_NO_SOCKETS {
                    return;
                }
                if !sockets.is_empty() && sockets.iter().all(|(_, s)| s.transport_type() == TransportType::Websocket) {
                    let Some(observer) = engine.shared.watcher() else { return };
                    for (path, s) in sockets {
                        if let Some(session) = s.extensions.get::<Arc<MemberState>>() {
                            observer.upgraded(path, session.public_id);
                        }
                    }
                    return;
                }
            }
        });
    }
}
