//! The admin sockets of this node that follow its sockets (`ADMIN_MODE=development`), and the
//! one task that sends them what they get: a list of sockets (`all_sockets`) when they join, then
//! the changes the feed queues, in order.
//!
//! What an admin socket costs the node is bounded whatever clients do:
//! - a list is at most [`LIST_MAX_BYTES`] (and [`MAX_LISTED`] sockets); the sockets past it are
//!   counted in a placeholder per namespace (`wire::not_listed`), and the walk stops there;
//! - lists are built off the runtime's threads, at most one every [`LIST_MIN_INTERVAL`], one for
//!   every admin socket that needs one then;
//! - each admin socket has a byte budget, refilled at [`RATE`] bytes a second up to
//!   [`CAPACITY`]; a change that does not fit is dropped (and counted), and the socket is then
//!   behind: it gets nothing until its budget holds a fresh list, which resets the UI's lists.
//!   Over any stretch of time an admin socket is sent at most `CAPACITY` plus `RATE` per second,
//!   and a churn of joins and leaves cannot make the node rebuild lists in a loop.
//!
//! A send never waits: an admin socket whose queue is full is behind too.

use std::{
    collections::HashMap,
    ops::ControlFlow,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};
use socketioxide::{SendError, SocketError, adapter::Adapter, extract::SocketRef};

use super::{
    feed::{Change, Control, Feed, Receivers},
    wire,
};
use crate::engine::Roster;

/// The largest `all_sockets`, in bytes: a browser parses it in well under a second.
pub(super) const LIST_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most sockets one `all_sockets` lists (`ADMIN_MODE=production` lists none).
pub(super) const MAX_LISTED: usize = 10_000;
/// Bytes a second an admin socket's budget refills by.
pub(super) const RATE: f64 = 512.0 * 1024.0;
/// An admin socket's budget when full: a whole list, and a burst of changes after it.
pub(super) const CAPACITY: f64 = (LIST_MAX_BYTES + 1024 * 1024) as f64;
/// Lists are built at most this often.
const LIST_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the task looks whether an admin socket that is behind can have its list.
const TICK: Duration = Duration::from_millis(500);

/// Bytes an admin socket may still be sent: refills at [`RATE`] up to [`CAPACITY`]. A list is
/// charged whole, and may leave it below zero, so it must refill before anything else goes.
#[derive(Debug)]
struct Budget {
    bytes: f64,
    at: Instant,
}

impl Budget {
    fn full() -> Self {
        Self { bytes: CAPACITY, at: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.bytes = (self.bytes + now.duration_since(self.at).as_secs_f64() * RATE).min(CAPACITY);
        self.at = now;
    }

    /// Whether `n` bytes fit now.
    fn has(&mut self, n: usize) -> bool {
        self.refill();
        self.bytes >= n as f64
    }

    /// Takes `n` bytes if they fit.
    fn try_take(&mut self, n: usize) -> bool {
        let fits = self.has(n);
        if fits {
            self.bytes -= n as f64;
        }
        fits
    }

    /// Takes `n` bytes, fitting or not.
    fn charge(&mut self, n: usize) {
        self.refill();
        self.bytes -= n as f64;
    }
}

/// An admin socket that follows this node's sockets.
struct Listener<A: Adapter> {
    socket: SocketRef<A>,
    budget: Budget,
    /// It missed a change: it gets nothing more until a fresh list.
    behind: bool,
}

/// The socket could not take a message: its queue is full.
struct Full;

impl<A: Adapter> Listener<A> {
    fn emit(&self, event: &str, args: &(impl Serialize + ?Sized)) -> Result<(), Full> {
        match self.socket.emit(event, args) {
            Ok(()) => Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => Err(Full),
            // Closed: it is being detached.
            Err(e) => {
                tracing::debug!(error = %e, "admin view: could not send to an admin socket");
                Ok(())
            }
        }
    }

    fn send(&self, change: &Change) -> Result<(), Full> {
        match change {
            Change::Connected { socket, at } => self.emit("socket_connected", &(&**socket, at)),
            Change::Joined { nsp, room, id, at } => self.emit("room_joined", &(nsp, room, id, at)),
            Change::Left { nsp, room, id, at } => self.emit("room_left", &(nsp, room, id, at)),
            Change::Upgraded { nsp, id } => {
                self.emit("socket_updated", &serde_json::json!({ "id": id, "nsp": nsp, "transport": "websocket" }))
            }
            Change::Disconnected { nsp, id, reason, rooms, at } => {
                for room in rooms {
                    self.emit("room_left", &(nsp, room, id, at))?;
                }
                self.emit("socket_disconnected", &(nsp, id, reason, at))
            }
        }
    }

    fn fall_behind(&mut self, why: &str) {
        if !self.behind {
            tracing::info!(why, "admin view: an admin socket misses changes; it will get a fresh list");
        }
        self.behind = true;
    }
}

/// One `all_sockets`, built once for every admin socket that needs it then.
struct List {
    sockets: Box<RawValue>,
    /// Sockets left out, counted in the placeholders.
    left_out: usize,
}

impl List {
    /// This node's sockets, within [`LIST_MAX_BYTES`] and [`MAX_LISTED`].
    fn build(roster: &dyn Roster) -> Self {
        let namespaces = roster.namespaces();
        // Room for a placeholder per namespace, so the whole stays within the bound.
        let room = LIST_MAX_BYTES - 2 - namespaces.len() * (wire::NOT_LISTED_MAX_BYTES + 1);
        let (mut entries, mut bytes) = (Vec::new(), 0);
        let mut listed: HashMap<String, usize> = HashMap::new();
        roster.each_socket(&mut |view| {
            if entries.len() == MAX_LISTED {
                return ControlFlow::Break(());
            }
            let entry = match to_raw_value(&wire::socket(view)) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(error = %e, "admin view: a socket could not be serialized");
                    return ControlFlow::Continue(());
                }
            };
            if bytes + entry.get().len() + 1 > room {
                return ControlFlow::Break(());
            }
            bytes += entry.get().len() + 1;
            entries.push(entry);
            *listed.entry(view.namespace.to_string()).or_default() += 1;
            ControlFlow::Continue(())
        });
        let (now, mut left_out) = (crate::clock::now_millis(), 0);
        for (name, count) in namespaces {
            let missing = count.saturating_sub(listed.get(&name).copied().unwrap_or_default());
            if missing > 0
                && let Ok(placeholder) = to_raw_value(&wire::not_listed(&name, missing, now))
            {
                left_out += missing;
                entries.push(placeholder);
            }
        }
        let sockets = to_raw_value(&entries).unwrap_or_else(|_| RawValue::from_string("[]".into()).expect("JSON"));
        Self { sockets, left_out }
    }

    fn bytes(&self) -> usize {
        self.sockets.get().len()
    }
}

/// The listeners' task: the admin sockets that follow, and what they are sent.
pub(super) struct Listeners<A: Adapter> {
    roster: Arc<dyn Roster>,
    feed: Arc<Feed<A>>,
    receivers: Receivers<A>,
    /// Attached, waiting for their first list.
    joining: Vec<SocketRef<A>>,
    live: Vec<Listener<A>>,
    last_build: Option<Instant>,
    /// The size of the last list, what a listener that is behind must have in its budget.
    last_bytes: usize,
    /// The last list was cut short (said once, until lists fit again).
    cut: bool,
}

impl<A: Adapter> Listeners<A> {
    /// The task's state, over the feed's receiving ends.
    pub(super) fn new(roster: Arc<dyn Roster>, feed: Arc<Feed<A>>, receivers: Receivers<A>) -> Self {
        Self {
            roster,
            feed,
            receivers,
            joining: Vec::new(),
            live: Vec::new(),
            last_build: None,
            last_bytes: 0,
            cut: false,
        }
    }

    /// Runs until the feed is gone (or the task is aborted).
    pub(super) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                control = self.receivers.control.recv() => match control {
                    Some(Control::Attach(socket)) => self.joining.push(socket),
                    Some(Control::Detach(id)) => {
                        self.joining.retain(|s| s.id != id);
                        self.live.retain(|l| l.socket.id != id);
                    }
                    None => return,
                },
                change = self.receivers.changes.recv() => match change {
                    Some(change) => self.dispatch(change),
                    None => return,
                },
                _ = tick.tick() => {}
            }
            if self.feed.take_lost() {
                for listener in &mut self.live {
                    listener.fall_behind("the feed's queue was full");
                }
            }
            if self.wants_list() {
                self.send_list().await;
            }
        }
    }

    /// Sends `change` to every admin socket that is live and has the budget for it.
    fn dispatch(&mut self, change: Change) {
        let size = change.size();
        self.feed.dequeued(size);
        let metrics = self.feed.metrics();
        for listener in &mut self.live {
            if listener.behind {
                metrics.dropped_budget.inc();
            } else if !listener.budget.try_take(size) {
                metrics.dropped_budget.inc();
                listener.fall_behind("over its byte budget");
            } else if listener.send(&change).is_err() {
                metrics.dropped_socket_full.inc();
                listener.fall_behind("its queue is full");
            }
        }
    }

    /// Whether a list is due: an admin socket joined, or one that is behind can take one.
    fn wants_list(&mut self) -> bool {
        if self.last_build.is_some_and(|at| at.elapsed() < LIST_MIN_INTERVAL) {
            return false;
        }
        let last = self.last_bytes;
        !self.joining.is_empty() || self.live.iter_mut().any(|l| l.behind && l.budget.has(last))
    }

    /// Builds a list off the runtime's threads and sends it to each admin socket that joined
    /// or is behind and can take it; from then on they get the changes.
    async fn send_list(&mut self) {
        let roster = self.roster.clone();
        self.last_build = Some(Instant::now());
        let list = match tokio::task::spawn_blocking(move || List::build(&*roster)).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "admin view: the socket list could not be built");
                return;
            }
        };
        let bytes = list.bytes();
        self.last_bytes = bytes;
        match (list.left_out > 0, self.cut) {
            (true, false) => tracing::warn!(
                left_out = list.left_out,
                bytes,
                "admin view: too many sockets to list; the list is cut (the UI shows how many are not listed)"
            ),
            (false, true) => tracing::info!("admin view: the socket list fits again"),
            _ => {}
        }
        self.cut = list.left_out > 0;
        for socket in std::mem::take(&mut self.joining) {
            self.live.push(Listener { socket, budget: Budget::full(), behind: true });
        }
        let metrics = self.feed.metrics();
        for listener in self.live.iter_mut().filter(|l| l.behind) {
            if !listener.budget.has(bytes.min(CAPACITY as usize)) {
                continue;
            }
            listener.budget.charge(bytes);
            match listener.emit("all_sockets", &*list.sockets) {
                Ok(()) => listener.behind = false,
                Err(Full) => {
                    metrics.dropped_socket_full.inc();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use socketioxide::adapter::LocalAdapter;

    use super::*;
    use crate::{
        auth::Identity,
        engine::{ClientCounts, ClusterState, Observer, PublicId, SocketView, roster::ClientId},
        metrics::Metrics,
    };

    /// A node with `sockets` sockets on `/workflow`, each in `rooms`; `during` runs once, in the
    /// middle of a walk, as a hook would on another connection's path.
    struct FakeRoster {
        sockets: usize,
        rooms: Vec<String>,
        visited: AtomicUsize,
        during: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl FakeRoster {
        fn new(sockets: usize, rooms: Vec<String>) -> Self {
            Self { sockets, rooms, visited: AtomicUsize::new(0), during: Mutex::new(None) }
        }
    }

    impl Roster for FakeRoster {
        fn namespaces(&self) -> Vec<(String, usize)> {
            vec![("/workflow".into(), self.sockets)]
        }
        fn clients(&self) -> ClientCounts {
            ClientCounts::default()
        }
        fn each_socket(&self, visit: &mut dyn FnMut(&SocketView<'_>) -> ControlFlow<()>) {
            let identity = Arc::new(Identity::service("t1"));
            for i in 0..self.sockets {
                if i == self.sockets / 2
                    && let Some(during) = self.during.lock().unwrap().take()
                {
                    during();
                }
                self.visited.fetch_add(1, Ordering::SeqCst);
                let view = SocketView {
                    namespace: "/workflow",
                    id: PublicId::random(),
                    client: ClientId::for_tests(i as u64),
                    transport: "websocket",
                    address: None,
                    connected_at_ms: 1_700_000_000_000,
                    identity: identity.clone(),
                    rooms: self.rooms.clone(),
                    request: None,
                };
                if visit(&view).is_break() {
                    return;
                }
            }
        }
        fn disconnect(&self, _: &str, _: &str, _: bool) -> bool {
            false
        }
        fn observe(&self, _: Arc<dyn Observer>) {}
        fn cluster(&self) -> ClusterState {
            ClusterState::Alone
        }
    }

    #[test]
    fn a_list_is_cut_at_its_bound_says_how_many_it_leaves_out_and_stops_walking() {
        // Every socket in as many long rooms as it may join.
        let rooms = (0..100).map(|i| format!("t1 / executions ({i}{})", "\u{85}".repeat(1800))).collect();
        let roster = FakeRoster::new(5000, rooms);
        let list = List::build(&roster);
        assert!(list.bytes() <= LIST_MAX_BYTES, "{}", list.bytes());
        let sockets: Vec<serde_json::Value> = serde_json::from_str(list.sockets.get()).unwrap();
        let placeholder = sockets.last().unwrap();
        let listed = sockets.len() - 1;
        assert!(listed > 1000, "{listed} listed");
        assert_eq!(list.left_out, 5000 - listed);
        assert_eq!(placeholder["id"], format!("… {} more sockets, not listed", 5000 - listed));
        assert_eq!(placeholder["nsp"], "/workflow");
        assert_eq!(roster.visited.load(Ordering::SeqCst), listed + 1, "the walk stops at the bound");
        assert!(sockets[..listed].iter().all(|s| s["rooms"].as_array().unwrap().last().unwrap() == wire::MORE_ROOMS));

        let few = List::build(&FakeRoster::new(3, vec!["t1 / tenant".into()]));
        assert_eq!(
            (few.left_out, serde_json::from_str::<Vec<serde_json::Value>>(few.sockets.get()).unwrap().len()),
            (0, 3)
        );
    }

    #[test]
    fn hooks_called_while_a_list_is_built_neither_wait_for_it_nor_are_lost() {
        let (feed, mut receivers) = Feed::<LocalAdapter>::new(true, Metrics::default().admin);
        let feed = Arc::new(feed);
        feed.watch_for_tests();
        let roster = Arc::new(FakeRoster::new(1000, vec!["t1 / tenant".into()]));
        let hooks = feed.clone();
        *roster.during.lock().unwrap() = Some(Box::new(move || {
            // On the walk's own thread: waiting for anything the walk holds would never return.
            hooks.joined("/workflow", PublicId::random(), "t1 / executions".into());
            hooks.left("/workflow", PublicId::random(), "t1 / tenant".into());
        }));
        let (done, finished) = std::sync::mpsc::channel();
        let building = roster.clone();
        std::thread::spawn(move || done.send(List::build(&*building).left_out).unwrap());
        let left_out = finished.recv_timeout(Duration::from_secs(10)).expect("the list was built, the hooks returned");
        assert_eq!(left_out, 0);
        assert!(matches!(receivers.changes.try_recv(), Ok(Change::Joined { .. })));
        assert!(matches!(receivers.changes.try_recv(), Ok(Change::Left { .. })));
    }

    #[test]
    fn a_budget_refills_up_to_its_capacity_and_a_list_may_overdraw_it() {
        let mut budget = Budget::full();
        assert!(budget.try_take(LIST_MAX_BYTES));
        assert!(!budget.try_take(2 * 1024 * 1024), "a burst of changes past the capacity is refused");
        budget.charge(LIST_MAX_BYTES);
        assert!(budget.bytes < 0.0);
        budget.at = Instant::now().checked_sub(Duration::from_secs(20)).expect("up for 20 s");
        assert!(budget.has(CAPACITY as usize) && !budget.has(CAPACITY as usize + 1));
    }
}
