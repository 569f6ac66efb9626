//! The PostgreSQL sink (`database`): each message a row of `bridge_messages`, the table of
//! `migrations/001_bridge_messages.sql`, written in the order received, up to [`BATCH`] rows in
//! one INSERT.
//!
//! One connection per sink (per bridge), opened at start and again whenever it is lost, with
//! backoff ([`FIRST_BACKOFF`] doubled up to [`MAX_BACKOFF`]). On each connection the table is
//! created when missing (the migration file, embedded). While PostgreSQL is away, or refuses the
//! INSERT for a reason that is not the rows' own (a missing table, a privilege, a shutdown), the
//! batch in hand waits and is retried, and new messages wait in the [`Queue`] up to its bound;
//! past it they are dropped (`queue_full`). A batch refused for its data (SQLSTATE classes 22
//! and 23, such as a `\u0000` that jsonb does not take) is retried row by row, and a row refused
//! alone is dropped (`failed`). Delivery is at least once: a batch whose answer was lost is
//! written again.
//!
//! `DATABASE_URL` is never logged: errors are the client's and PostgreSQL's own, which do not
//! repeat the password.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Statement, types::ToSql};

use super::queue::Queue;
use crate::metrics::{BridgeMetrics, SinkDrop, SinkKind};

/// The table, created when missing.
const MIGRATION: &str = include_str!("../../migrations/001_bridge_messages.sql");
/// Most rows in one INSERT.
const BATCH: usize = 100;
/// The first wait after a failure, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Opening a connection, and one INSERT, give up after this long (then it is a failure like any).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Unnests one array per column, so a batch is one statement whatever its size; the JSON and
/// timestamps travel as text and are cast by PostgreSQL (no JSON or date types in the client).
const INSERT: &str = r#"INSERT INTO bridge_messages (tenant_id, bridge, event, data, "timestamp", metadata, source)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]::jsonb[], $5::text[]::timestamptz[],
                     $6::text[]::jsonb[], $7::text[]::jsonb[])"#;

/// One message as a row: the JSON parts already serialized.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub tenant: String,
    pub bridge: String,
    pub event: String,
    pub data: String,
    pub timestamp: String,
    pub metadata: String,
    pub source: String,
}

impl Row {
    /// What it weighs in the queue's bytes.
    fn bytes(&self) -> usize {
        [&self.tenant, &self.bridge, &self.event, &self.data, &self.timestamp, &self.metadata, &self.source]
            .iter()
            .map(|s| s.len())
            .sum()
    }
}

/// A PostgreSQL sink. Clones share the queue.
#[derive(Clone)]
pub(crate) struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    queue: Queue<Row>,
}

/// Why a write failed.
enum Failure {
    /// PostgreSQL is away or cannot take any row now: reconnect, retry the batch.
    Down(String),
    /// PostgreSQL refused these rows for their data.
    Rows(String),
}

impl Database {
    /// A sink writing bridge `bridge`'s messages to the database at `url` (`DATABASE_URL`).
    pub(crate) fn new(bridge: &str, url: &str, metrics: BridgeMetrics) -> Self {
        let queue = Queue::new(SinkKind::Database, bridge, metrics);
        Self { inner: Arc::new(Inner { url: url.to_string(), queue }) }
    }

    /// Queues `row`, or drops it (counted, logged) when the queue is full.
    pub(crate) fn offer(&self, row: Row) {
        let bytes = row.bytes();
        self.inner.queue.offer(row, bytes);
    }

    /// The writing loop: connect, write batches, reconnect when the connection is lost.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run().await })
    }
}

impl Inner {
    async fn run(&self) {
        let bridge = self.queue.bridge().to_string();
        let mut pending: Vec<Row> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        // After a failure (already warned about: a failed write, or the first failed connect),
        // further failed connects are debug lines and the next connection is told.
        let mut outage = false;
        loop {
            let (client, connection, insert) = match self.connect().await {
                Ok(connected) => connected,
                Err(e) => {
                    if outage {
                        tracing::debug!(bridge, error = %e, "PostgreSQL still unreachable");
                    } else {
                        tracing::warn!(bridge, error = %e, "PostgreSQL unreachable: incoming messages wait in the database sink's queue, then are dropped and counted; retrying");
                        outage = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if outage {
                tracing::info!(bridge, "PostgreSQL reachable again: writing the queued messages");
            }
            backoff = FIRST_BACKOFF;
            let lost = self.serve(&client, &insert, &mut pending).await;
            connection.abort();
            tracing::warn!(bridge, error = %lost, "PostgreSQL write failed: reconnecting; the batch is kept and retried");
            outage = true;
            tokio::time::sleep(backoff).await;
        }
    }

    /// Opens a connection, creates the table if missing, prepares the INSERT.
    async fn connect(&self) -> Result<(Client, JoinHandle<()>, Statement), String> {
        let mut config: tokio_postgres::Config = self.url.parse().map_err(|e| format!("DATABASE_URL: {e}"))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("realtime-gateway");
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| describe(&e))?;
        // The connection's I/O runs on its own task; it ends when the client is dropped or the
        // socket fails, which the next statement then reports.
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        let prepared = async {
            let exists: bool = client
                .query_one("SELECT to_regclass('bridge_messages') IS NOT NULL", &[])
                .await
                .map_err(|e| describe(&e))?
                .get(0);
            if !exists {
                client.batch_execute(MIGRATION).await.map_err(|e| {
                    format!(
                        "cannot create table bridge_messages ({}): run migrations/001_bridge_messages.sql as a role that may",
                        describe(&e)
                    )
                })?;
                tracing::info!(bridge = self.queue.bridge(), "created table bridge_messages");
            }
            client.prepare(INSERT).await.map_err(|e| describe(&e))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, prepared).await {
            Ok(Ok(insert)) => Ok((client, connection, insert)),
            Ok(Err(e)) => {
                connection.abort();
                Err(e)
            }
            Err(_) => {
                connection.abort();
                Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))
            }
        }
    }

    /// Writes batches until the connection fails; says why. `pending` is the batch in hand,
    /// kept for the next connection when this one fails.
    async fn serve(&self, client: &Client, insert: &Statement, pending: &mut Vec<Row>) -> String {
        loop {
            if pending.is_empty() {
                *pending = self.queue.take(BATCH).await;
            }
            match write(client, insert, pending).await {
                Ok(()) => {
                    self.queue.delivered(pending.len());
                    pending.clear();
                }
                Err(Failure::Down(e)) => return e,
                Err(Failure::Rows(e)) if pending.len() == 1 => {
                    self.queue.dropped(SinkDrop::Failed, 1, &format!("PostgreSQL refused the row: {e}"));
                    pending.clear();
                }
                // One row spoils the batch: find it by writing them one at a time.
                Err(Failure::Rows(_)) => {
                    while !pending.is_empty() {
                        let one = &pending[..1];
                        match write(client, insert, one).await {
                            Ok(()) => self.queue.delivered(1),
                            Err(Failure::Rows(e)) => {
                                self.queue.dropped(SinkDrop::Failed, 1, &format!("PostgreSQL refused the row: {e}"));
                            }
                            Err(Failure::Down(e)) => return e,
                        }
                        pending.remove(0);
                    }
                }
            }
        }
    }
}

/// One INSERT of `rows`.
async fn write(client: &Client, insert: &Statement, rows: &[Row]) -> Result<(), Failure> {
    let column = |field: fn(&Row) -> &str| rows.iter().map(field).collect::<Vec<&str>>();
    let columns = [
        column(|r| &r.tenant),
        column(|r| &r.bridge),
        column(|r| &r.event),
        column(|r| &r.data),
        column(|r| &r.timestamp),
        column(|r| &r.metadata),
        column(|r| &r.source),
    ];
    let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
    match tokio::time::timeout(WRITE_TIMEOUT, client.execute(insert, &params)).await {
        Err(_) => Err(Failure::Down(format!("no answer within {} s", WRITE_TIMEOUT.as_secs()))),
        Ok(Ok(_)) => Ok(()),
        // Data exceptions and integrity violations are the rows' own; anything else (the
        // connection, a missing table, a privilege, a shutdown) would refuse any row.
        Ok(Err(e)) => match e.code().map(|c| c.code().get(..2)) {
            Some(Some("22" | "23")) => Err(Failure::Rows(describe(&e))),
            _ => Err(Failure::Down(describe(&e))),
        },
    }
}

/// A client error with its cause: PostgreSQL's own severity, SQLSTATE and message, or the I/O
/// error beneath (the error's own text is only its kind, such as `db error`). Neither repeats
/// the connection string.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
