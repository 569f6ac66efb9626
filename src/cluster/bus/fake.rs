//! A fake of the bus's Redis stream for the bus's unit tests, which misbehaves on demand the way
//! Redis and its client do: an append that goes through but answers an error (the client's
//! command timeout fired first), a Redis that hangs (appends and reads get no answer; appends
//! sent meanwhile run when it wakes, as a SIGSTOPped Redis does), a stream trimmed past a reader,
//! a stream recreated empty (Redis restarted without its data), reads that fail on their own, and
//! reads that fall behind.
//!
//! Answers take the time the real client takes (`COMMAND_TIMEOUT`, `BUS_BLOCK`): tests run it on
//! tokio's paused clock, so these waits cost nothing and every interleaving is deterministic.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::sync::Notify;

use crate::cluster::{
    COMMAND_TIMEOUT,
    stream::{BUS_BLOCK, BusStream, Entry, NumberedRoom, StreamError, StreamId},
};

/// One Redis, shared by every node of a test (clone it to hand it to another bus).
#[derive(Clone, Default)]
pub(super) struct FakeRedis(Arc<Inner>);

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Something changed: an entry landed, Redis woke.
    changed: Notify,
}

#[derive(Default)]
struct State {
    entries: Vec<(StreamId, String)>,
    /// The time part of the next entry id; ids only grow until the stream is recreated.
    next_ms: u64,
    /// Redis hangs: nothing is answered; appends received meanwhile run when it wakes.
    hung: bool,
    queued: Vec<String>,
    /// The next appends go through, then answer an error when the client's timeout fires.
    unanswered: usize,
    /// Reads fail at once (the reader's own connection is broken).
    reads_fail: bool,
    /// Reads see nothing new (a reader that has fallen behind, or whose answer is slow).
    reads_stalled: bool,
}

impl FakeRedis {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn land(state: &mut State, message: String) {
        state.next_ms += 1;
        state.entries.push((StreamId::new(state.next_ms, 0), message));
    }

    /// Adds an entry as another process would (another node's message, written by hand).
    pub(super) fn push(&self, message: impl Into<String>) {
        Self::land(&mut self.state(), message.into());
        self.0.changed.notify_waiters();
    }

    /// Redis hangs (SIGSTOP).
    pub(super) fn hang(&self) {
        self.state().hung = true;
    }

    /// Redis wakes (SIGCONT) and runs the appends it received meanwhile, in order.
    pub(super) fn wake(&self) {
        {
            let mut state = self.state();
            state.hung = false;
            for message in std::mem::take(&mut state.queued) {
                Self::land(&mut state, message);
            }
        }
        self.0.changed.notify_waiters();
    }

    /// The next `n` appends go through but answer an error, as when the client's command timeout
    /// fires before Redis's answer is in.
    pub(super) fn append_but_time_out(&self, n: usize) {
        self.state().unanswered = n;
    }

    /// Reads fail (or work again).
    pub(super) fn fail_reads(&self, fail: bool) {
        self.state().reads_fail = fail;
        self.0.changed.notify_waiters();
    }

    /// Reads see nothing new (or again see everything).
    pub(super) fn stall_reads(&self, stall: bool) {
        self.state().reads_stalled = stall;
        self.0.changed.notify_waiters();
    }

    /// Keeps only the newest `keep` entries, as `MAXLEN` does.
    pub(super) fn trim(&self, keep: usize) {
        let mut state = self.state();
        let drop = state.entries.len().saturating_sub(keep);
        state.entries.drain(..drop);
    }

    /// Redis restarted without its data: the stream is empty and its ids start again from 1.
    pub(super) fn recreate(&self) {
        let mut state = self.state();
        state.entries.clear();
        state.next_ms = 0;
    }

    /// The messages in the stream, in order.
    pub(super) fn messages(&self) -> Vec<String> {
        self.state().entries.iter().map(|(_, m)| m.clone()).collect()
    }

    /// Waits until Redis is awake; false when `limit` passes first.
    async fn awake_within(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, async {
            loop {
                let changed = self.0.changed.notified();
                if !self.state().hung {
                    return;
                }
                changed.await;
            }
        })
        .await
        .is_ok()
    }
}

impl BusStream for FakeRedis {
    async fn append(&self, message: &str, _rooms: &[NumberedRoom]) -> Result<(), StreamError> {
        let (hung, unanswered) = {
            let mut state = self.state();
            if state.hung {
                state.queued.push(message.to_string());
                (true, false)
            } else {
                Self::land(&mut state, message.to_string());
                let unanswered = state.unanswered > 0;
                state.unanswered = state.unanswered.saturating_sub(1);
                (false, unanswered)
            }
        };
        self.0.changed.notify_waiters();
        if unanswered || (hung && !self.awake_within(COMMAND_TIMEOUT).await) {
            if unanswered {
                tokio::time::sleep(COMMAND_TIMEOUT).await;
            }
            return Err(StreamError::Failed("Timeout Error: Request timed out.".into()));
        }
        Ok(())
    }

    async fn read_after(&self, after: StreamId, count: usize) -> Result<Vec<Entry>, StreamError> {
        let deadline = tokio::time::Instant::now() + BUS_BLOCK;
        loop {
            let changed = self.0.changed.notified();
            {
                let state = self.state();
                if state.reads_fail {
                    return Err(StreamError::Failed("connection reset".into()));
                }
                if !state.hung && !state.reads_stalled {
                    let found: Vec<Entry> = state
                        .entries
                        .iter()
                        .filter(|(id, _)| *id > after)
                        .take(count)
                        .map(|(id, m)| Entry { id: *id, message: Some(m.clone()), positions: None })
                        .collect();
                    if !found.is_empty() {
                        return Ok(found);
                    }
                }
            }
            if self.state().hung {
                // The real reader's timeout is the block time plus the command timeout.
                if !self.awake_within(BUS_BLOCK + COMMAND_TIMEOUT).await {
                    return Err(StreamError::Failed("Timeout Error: Request timed out.".into()));
                }
                continue;
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    async fn last_id(&self) -> Result<Option<StreamId>, StreamError> {
        if self.state().hung && !self.awake_within(COMMAND_TIMEOUT).await {
            return Err(StreamError::Failed("Timeout Error: Request timed out.".into()));
        }
        Ok(self.state().entries.last().map(|(id, _)| *id))
    }
}
