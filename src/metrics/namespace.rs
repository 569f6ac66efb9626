//! The series of each namespace (Socket.IO) or endpoint (plain WebSocket): the labelled families
//! they come from, registered once, and the handles ([`NamespaceMetrics`]) a namespace resolves
//! when it is mounted, so that counting an event is an atomic add, with no lookup or lock.

use std::collections::HashMap;

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{
    CloseReason, Histogram, HistogramFamily, Metrics, OTHER_EVENT, Rejection,
    labels::{EventLabels, NsLabels, NsReasonLabels},
    registered, seconds,
};

/// Bucket bounds, in seconds, for handling one client event: synchronous work, microseconds to
/// a few milliseconds.
const EVENT_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
/// For admitting a connection: a token check (an RS256 signature is the slow case).
const HANDSHAKE_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
/// From receipt to the emit on this node: rendering, state updates, fan-out.
const DELIVERY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// The labelled families that namespaces take their series from.
#[derive(Debug)]
pub(super) struct NamespaceFamilies {
    connections: Family<NsLabels, Gauge>,
    opened: Family<NsLabels, Counter>,
    closed: Family<NsReasonLabels, Counter>,
    rejections: Family<NsReasonLabels, Counter>,
    events: HistogramFamily<EventLabels>,
    handshakes: HistogramFamily<NsLabels>,
    deliveries: HistogramFamily<NsLabels>,
}

impl NamespaceFamilies {
    /// Registers the families, each empty until a namespace is mounted.
    pub(super) fn register(r: &mut Registry) -> Self {
        Self {
            connections: registered(
                r,
                "namespace_connections",
                "Connections now, by namespace (Socket.IO) or endpoint (plain WebSocket).",
                Family::default(),
            ),
            opened: registered(r, "connections_opened", "Connections admitted, by namespace.", Family::default()),
            closed: registered(
                r,
                "connections_closed",
                "Admitted connections that left their namespace, by namespace and reason.",
                Family::default(),
            ),
            rejections: registered(
                r,
                "rejections",
                "Clients refused, at connect or on an event, by namespace and reason (the error type they were sent, or throttle).",
                Family::default(),
            ),
            events: seconds(
                r,
                "client_event_duration",
                "Time to handle one client event, from receipt to answer, by namespace and event.",
                Family::new_with_constructor(|| Histogram::new(EVENT_BUCKETS)),
            ),
            handshakes: seconds(
                r,
                "handshake_duration",
                "Time to admit a connection to a namespace: limits and token verification.",
                Family::new_with_constructor(|| Histogram::new(HANDSHAKE_BUCKETS)),
            ),
            deliveries: seconds(
                r,
                "publish_delivery_duration",
                "Time from receiving a published event (API call, bus read or Redis input) to its emit on this node, by namespace.",
                Family::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS)),
            ),
        }
    }
}

/// The series of one namespace (or plain WebSocket endpoint), resolved when it is mounted.
#[derive(Debug)]
pub(crate) struct NamespaceMetrics {
    /// Its connections now.
    pub connections: Gauge,
    opened: Counter,
    /// By [`CloseReason`].
    closed: Vec<Counter>,
    /// By [`Rejection`].
    rejections: Vec<Counter>,
    /// Admission time: throttle check, token verification.
    pub handshake: Histogram,
    /// From receipt of a published event (API call, bus read, Redis input) to its emit here.
    pub publish_delivery: Histogram,
    /// Handling time of each declared event (and the refresh event).
    events: HashMap<String, Histogram>,
    /// Handling time of everything else.
    other_events: Histogram,
}

impl NamespaceMetrics {
    /// Counts a connection admitted.
    pub(crate) fn connected(&self) {
        self.opened.inc();
        self.connections.inc();
    }

    /// Counts a connection gone, for `reason`.
    pub(crate) fn disconnected(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
        self.connections.dec();
    }

    /// Counts a client refused, for `reason`.
    pub(crate) fn rejected(&self, reason: Rejection) {
        self.rejections[reason as usize].inc();
    }

    /// The handling-time series of client event `name` (`None`: no readable name). One lookup
    /// in a map built at start-up and never written again: no lock.
    pub(crate) fn event(&self, name: Option<&str>) -> &Histogram {
        name.and_then(|n| self.events.get(n)).unwrap_or(&self.other_events)
    }
}

impl Metrics {
    /// The series of the namespace (or endpoint) at `path`, served over `protocol`
    /// (`socketio`, `websocket`), whose client events are `events`. Call once per namespace, at
    /// start-up: every series it will use is created here, at zero.
    pub(crate) fn namespace<'a>(
        &self,
        path: &str,
        protocol: &'static str,
        events: impl IntoIterator<Item = &'a str>,
    ) -> NamespaceMetrics {
        let f = &self.families;
        let ns = NsLabels { namespace: path.to_string(), protocol };
        let with_reason = |reason: &'static str| NsReasonLabels { namespace: path.to_string(), protocol, reason };
        let event = |name: &str| {
            f.events.get_or_create_owned(&EventLabels {
                namespace: path.to_string(),
                protocol,
                event: name.to_string(),
            })
        };
        NamespaceMetrics {
            connections: f.connections.get_or_create_owned(&ns),
            opened: f.opened.get_or_create_owned(&ns),
            closed: CloseReason::ALL.iter().map(|c| f.closed.get_or_create_owned(&with_reason(c.as_str()))).collect(),
            rejections: Rejection::ALL
                .iter()
                .map(|r| f.rejections.get_or_create_owned(&with_reason(r.as_str())))
                .collect(),
            handshake: f.handshakes.get_or_create_owned(&ns),
            publish_delivery: f.deliveries.get_or_create_owned(&ns),
            events: events.into_iter().map(|name| (name.to_string(), event(name))).collect(),
            other_events: event(OTHER_EVENT),
        }
    }
}
