//! Who of a plain WebSocket endpoint's room, or of a tenant, is connected to this node, for
//! presence (`crate::engine::presence`): counted when asked from the room index and the
//! connections' identities the endpoint keeps anyway, so a connect or disconnect costs presence
//! nothing.

use crate::engine::presence::{LocalPresence, PresenceQuestion};

use super::Endpoint;

impl Endpoint {
    /// This node's connections of `question` (its namespace is this endpoint's path): those in
    /// the room (internal name) or in a filtered variant of it (a subscriber with filters sits in
    /// a variant only), or without a room every connection, of the question's tenant when it has
    /// one. Users are as their identities say: a backend connected with an API key is the user
    /// `service` of its tenant (as in `/ws/stats` and the admin's listings).
    pub(crate) fn presence_here(&self, question: &PresenceQuestion) -> LocalPresence {
        let mut out = LocalPresence::default();
        let mut count = |conn: &super::Conn| {
            let identity = conn.session.identity();
            let tenant = identity.tenant_id.as_deref();
            if question.room.is_some() || question.tenant.is_none() || question.tenant.as_deref() == tenant {
                out.add(tenant, identity.user_id.as_deref());
            }
        };
        match question.room.as_deref() {
            Some(room) => {
                let members = self.rooms.read().unwrap_or_else(|e| e.into_inner()).members_of_variants(room);
                members.iter().for_each(|conn| count(conn));
            }
            None => self.conns.read().unwrap_or_else(|e| e.into_inner()).values().for_each(|conn| count(conn)),
        }
        out
    }
}
