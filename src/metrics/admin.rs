//! The admin view's series (`crate::admin`): what its feed drops, its logins by outcome, the
//! password checks it runs.

use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::{
    LoginOutcome,
    labels::{OutcomeLabel, ReasonLabel},
    registered,
};

/// The admin view's series (`crate::admin`). Clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct AdminMetrics {
    /// Changes dropped because the feed's queue was full (every admin socket then gets a list).
    pub dropped_queue_full: Counter,
    /// Changes an admin socket was not sent: over its byte budget, or behind until a fresh list.
    pub dropped_budget: Counter,
    /// Changes or lists an admin socket's full send queue refused.
    pub dropped_socket_full: Counter,
    /// Admin logins, by [`LoginOutcome`] (its index).
    logins: Vec<Counter>,
    /// bcrypt checks run.
    pub password_checks: Counter,
}

impl AdminMetrics {
    /// Counts a login that ended as `outcome`.
    pub(crate) fn login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].inc();
    }

    /// Registers the admin view's series, every login outcome at zero.
    pub(super) fn register(r: &mut Registry) -> Self {
        let dropped = registered(
            r,
            "admin_events_dropped",
            "Admin view events not sent, by reason: the feed's queue was full, an admin socket was over its byte budget (or behind, waiting for a fresh list), or its send queue was full.",
            Family::<ReasonLabel, Counter>::default(),
        );
        let logins = registered(
            r,
            "admin_logins",
            "Admin view logins, by outcome: session, password, invalid, throttled (its address's attempts), busy (refused at once: the node's attempts or queue of password checks were full).",
            Family::<OutcomeLabel, Counter>::default(),
        );
        let logins = LoginOutcome::ALL
            .iter()
            .map(|o| logins.get_or_create_owned(&OutcomeLabel { outcome: o.as_str() }))
            .collect();
        AdminMetrics {
            dropped_queue_full: dropped.get_or_create_owned(&ReasonLabel { reason: "queue_full" }),
            dropped_budget: dropped.get_or_create_owned(&ReasonLabel { reason: "budget" }),
            dropped_socket_full: dropped.get_or_create_owned(&ReasonLabel { reason: "socket_full" }),
            logins,
            password_checks: registered(
                r,
                "admin_password_checks",
                "Admin view password (bcrypt) checks run.",
                Counter::default(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LoginOutcome, Metrics};

    #[test]
    fn admin_login_outcomes_sit_at_their_own_index() {
        assert!(LoginOutcome::ALL.iter().enumerate().all(|(i, o)| *o as usize == i));
        let metrics = Metrics::default();
        metrics.admin.login(LoginOutcome::Busy);
        assert!(metrics.render().contains("realtime_gateway_admin_logins_total{outcome=\"busy\"} 1"));
    }
}
