//! The Socket.IO front's sockets as an observer (the admin view) sees them: one socket's view
//! (address, transport, rooms), socket.io's words for why one left, and the watch on an upgrade
//! that tells the observer when a polling session moves to WebSocket.

use std::{sync::Arc, time::Duration};

use axum::extract::ConnectInfo;
use socketioxide::{TransportType, adapter::Adapter, extract::SocketRef};

use super::namespace::NamespaceRuntime;
use crate::{
    engine::{SocketView, member_state::MemberState},
    rooms,
};

/// How long an upgrade is watched for its end: Engine.IO's upgrade timeout is 10 s by default.
pub(crate) const UPGRADE_WATCH: Duration = Duration::from_secs(15);
/// How long an upgrading session may have no socket of the engine's before it is not watched.
pub(crate) const UPGRADE_NO_SOCKETS: Duration = Duration::from_secs(2);

impl<A: Adapter> NamespaceRuntime<A> {
    /// How the observer sees socket `s`.
    pub(crate) fn view<'a>(&'a self, s: &'a SocketRef<A>, session: &MemberState) -> SocketView<'a> {
        let parts = s.req_parts();
        let address = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(peer)| self.sio.trusted_proxies.client_ip(peer.ip(), &parts.headers));
        SocketView {
            namespace: &self.spec.path,
            id: session.public_id,
            client: self.shared.client_ids.of_session(s.id),
            transport: transport_name(s.transport_type()),
            address,
            connected_at_ms: session.connected_at_ms,
            identity: session.identity(),
            rooms: s.rooms().iter().map(|r| rooms::display_name(r)).collect(),
            request: Some(parts),
        }
    }

    /// This node's admitted sockets with their sessions.
    pub(crate) fn local_sessions(&self) -> Vec<(SocketRef<A>, Arc<MemberState>)> {
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return Vec::new() };
        op.local()
            .sockets()
            .into_iter()
            .filter_map(|s| s.extensions.get::<Arc<MemberState>>().map(|session| (s, session)))
            .collect()
    }
}

fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Websocket => "websocket",
        TransportType::Polling => "polling",
    }
}
