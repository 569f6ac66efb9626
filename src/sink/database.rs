//! The PostgreSQL sink (`database`): each message a row of its [`Table`], written in the order
//! received, up to [`BATCH`] rows in one INSERT. Bridges' sinks write [`BRIDGE_MESSAGES`]
//! (`migrations/001_bridge_messages.sql`), `forward` destinations of kind `database`
//! [`CLIENT_EVENTS`] (`migrations/002_client_events.sql`); the writer is the same.
//!
//! One connection per sink (per bridge, per forward destination), opened at start and again
//! whenever it is lost, with backoff ([`FIRST_BACKOFF`] doubled up to [`MAX_BACKOFF`]). On each
//! connection the table is
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
use crate::metrics::SinkDrop;

/// A table a sink writes: its migration (run when the table is missing) and its INSERT.
pub(crate) struct Table {
    name: &'static str,
    /// The migration's file, named when it cannot be run.
    file: &'static str,
    migration: &'static str,
    /// Unnests one array per column, so a batch is one statement whatever its size; the JSON
    /// and timestamps travel as text and are cast by PostgreSQL (no JSON or date types in the
    /// client). Its parameters are the [`Row`]'s columns, in order.
    insert: &'static str,
}

/// Where bridges' sinks write: `{tenant_id, bridge, event, data, timestamp, metadata, source}`.
pub(crate) const BRIDGE_MESSAGES: Table = Table {
    name: "bridge_messages",
    file: "migrations/001_bridge_messages.sql",
    migration: include_str!("../../migrations/001_bridge_messages.sql"),
    insert: r#"INSERT INTO bridge_messages (tenant_id, bridge, event, data, "timestamp", metadata, source)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]::jsonb[], $5::text[]::timestamptz[],
                     $6::text[]::jsonb[], $7::text[]::jsonb[])"#,
};

/// Where `forward` destinations of kind `database` write: `{destination, tenant_id, namespace,
/// event, socket_id, user_id, data, socket, timestamp}`.
pub(crate) const CLIENT_EVENTS: Table = Table {
    name: "client_events",
    file: "migrations/002_client_events.sql",
    migration: include_str!("../../migrations/002_client_events.sql"),
    insert: r#"INSERT INTO client_events (destination, tenant_id, namespace, event, socket_id, user_id, data, socket, "timestamp")
SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[]::jsonb[], $8::text[]::jsonb[], $9::text[]::timestamptz[])"#,
};

/// Most rows in one INSERT.
const BATCH: usize = 100;
/// The first wait after a failure, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Opening a connection, and one INSERT, give up after this long (then it is a failure like any).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as a row: its columns in the table's INSERT order, the JSON parts already
/// serialized (`None`: SQL NULL).
#[derive(Debug, Clone)]
pub(crate) struct Row(pub Vec<Option<String>>);

impl Row {
    /// What it weighs in the queue's bytes.
    fn bytes(&self) -> usize {
        self.0.iter().map(|c| c.as_ref().map_or(0, String::len)).sum()
    }
}

/// A PostgreSQL sink. Clones share the queue.
#[derive(Clone)]
pub(crate) struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    table: &'static Table,
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
    /// A sink writing the rows of `queue` to `table` in the database at `url` (`DATABASE_URL`).
    pub(super) fn new(url: &str, table: &'static Table, queue: Queue<Row>) -> Self {
        Self { inner: Arc::new(Inner { url: url.to_string(), table, queue }) }
    }

    /// Queues `row`, or drops it (counted, logged) when the queue is full; whether it was queued.
    pub(crate) fn offer(&self, row: Row) -> bool {
        let bytes = row.bytes();
        self.inner.queue.offer(row, bytes)
    }

    /// The writing loop: connect, write batches, reconnect when the connection is lost.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run().await })
    }
}

impl Inner {
    async fn run(&self) {
        let owner = self.queue.owner();
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
                        tracing::debug!(owner, error = %e, "PostgreSQL still unreachable");
                    } else {
                        tracing::warn!(owner, error = %e, "PostgreSQL unreachable: messages wait in the database sink's queue, then are dropped and counted; retrying");
                        outage = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if outage {
                tracing::info!(owner, "PostgreSQL reachable again: writing the queued messages");
            }
            backoff = FIRST_BACKOFF;
            let lost = self.serve(&client, &insert, &mut pending).await;
            connection.abort();
            tracing::warn!(owner, error = %lost, "PostgreSQL write failed: reconnecting; the batch is kept and retried");
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
            let table = self.table;
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.name])
                .await
                .map_err(|e| describe(&e))?
                .get(0);
            if !exists {
                client.batch_execute(table.migration).await.map_err(|e| {
                    format!(
                        "cannot create table {} ({}): run {} as a role that may",
                        table.name,
                        describe(&e),
                        table.file
                    )
                })?;
                tracing::info!(owner = self.queue.owner(), table = table.name, "created a table");
            }
            client.prepare(table.insert).await.map_err(|e| describe(&e))
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
    let width = rows.first().map_or(0, |r| r.0.len());
    let columns: Vec<Vec<Option<&str>>> =
        (0..width).map(|i| rows.iter().map(|r| r.0.get(i).and_then(|c| c.as_deref())).collect()).collect();
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
