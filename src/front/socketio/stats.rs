//! This node's Socket.IO sockets counted for the HTTP API's statistics: per tenant, its
//! connections, users and subscriptions.

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::adapter::Adapter;

use super::namespace::NamespaceRuntime;
use crate::engine::member_state::MemberState;

impl<A: Adapter> NamespaceRuntime<A> {
    /// This node's sockets: `{connections, anonymous, tenants: {t: {connections, users,
    /// subscriptions}}}`.
    pub(crate) fn local_summary(&self) -> Value {
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return json!({}) };
        let (mut total, mut anonymous) = (0u64, 0u64);
        for socket in op.local().sockets() {
            let Some(session) = socket.extensions.get::<Arc<MemberState>>() else { continue };
            total += 1;
            anonymous += u64::from(!session.identity().is_authenticated());
        }
        let tenants: serde_json::Map<String, Value> = self
            .tenant_stats()
            .into_iter()
            .map(|(t, s)| {
                (t, json!({ "connections": s.connections, "users": s.users.len(), "subscriptions": s.subscriptions }))
            })
            .collect();
        json!({ "connections": total, "anonymous": anonymous, "tenants": tenants })
    }
}
