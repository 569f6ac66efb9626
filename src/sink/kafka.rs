//! The Kafka sink (`kafka`): each message a record of the bridge's `kafkaTopic` on the cluster of
//! `KAFKA_BROKERS`, its value the seed's payload JSON (what the webhook receives), its key the
//! tenant id, written in the order received, up to [`BATCH`] records per produce request.
//!
//! The partition is the one Kafka's own clients pick for that key (murmur2 of the key, modulo
//! the topic's partitions), so one tenant's records keep their order on one partition and land
//! where a Java or librdkafka producer would put them. The topic must exist (or the cluster
//! create topics on first use): the gateway does not choose partitions or replication for you.
//!
//! One client per sink (per bridge), built at start and again after a failure, with backoff
//! ([`FIRST_BACKOFF`] doubled up to [`MAX_BACKOFF`]). While Kafka is away the batch in hand waits
//! and is retried, and new messages wait in the [`Queue`] up to its bound; past it they are
//! dropped (`queue_full`). A record the broker refuses for itself (too large, invalid) is
//! dropped (`failed`). Delivery is at least once: a batch whose acknowledgment was lost is
//! produced again.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bytes::Bytes;
use rskafka::{
    BackoffConfig,
    chrono::{DateTime, Utc},
    client::{
        ClientBuilder,
        error::{Error, ProtocolError},
        partition::{Compression, PartitionClient, UnknownTopicHandling},
    },
    record::Record,
};
use tokio::task::JoinHandle;

use super::queue::Queue;
use crate::metrics::{BridgeMetrics, SinkDrop, SinkKind};

/// Most records in one produce request.
const BATCH: usize = 100;
/// The first wait after a failure, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one operation (connect, metadata, produce) may take, its own retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// A Kafka sink. Clones share the queue.
#[derive(Clone)]
pub(crate) struct Kafka {
    inner: Arc<Inner>,
}

struct Inner {
    brokers: Vec<String>,
    topic: String,
    /// The record key: the tenant id.
    key: Vec<u8>,
    queue: Queue<Bytes>,
}

/// Why a produce failed.
enum Failure {
    /// The cluster is away or cannot take records now: reconnect, retry the batch.
    Down(String),
    /// The broker refused these records for themselves.
    Records(String),
}

impl Kafka {
    /// A sink producing bridge `bridge`'s messages (tenant `tenant`) to `topic` on `brokers`.
    pub(crate) fn new(bridge: &str, tenant: &str, brokers: &[String], topic: &str, metrics: BridgeMetrics) -> Self {
        let queue = Queue::new(SinkKind::Kafka, bridge, metrics);
        let inner =
            Inner { brokers: brokers.to_vec(), topic: topic.to_string(), key: tenant.as_bytes().to_vec(), queue };
        Self { inner: Arc::new(inner) }
    }

    /// Queues `payload` (the seed's JSON), or drops it (counted, logged) when the queue is full.
    pub(crate) fn offer(&self, payload: Bytes) {
        let bytes = payload.len();
        self.inner.queue.offer(payload, bytes);
    }

    /// The producing loop: connect, produce batches, reconnect after a failure.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run().await })
    }
}

impl Inner {
    async fn run(&self) {
        let bridge = self.queue.bridge().to_string();
        let mut pending: Vec<Bytes> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        // After a failure (already warned about: a failed write, or the first failed connect),
        // further failed connects are debug lines and the next connection is told.
        let mut outage = false;
        loop {
            let partition = match self.connect().await {
                Ok(partition) => partition,
                Err(e) => {
                    if outage {
                        tracing::debug!(bridge, error = %e, "Kafka still unreachable");
                    } else {
                        tracing::warn!(bridge, topic = %self.topic, error = %e, "Kafka unreachable: incoming messages wait in the kafka sink's queue, then are dropped and counted; retrying");
                        outage = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if outage {
                tracing::info!(bridge, topic = %self.topic, "Kafka reachable again: producing the queued messages");
            }
            backoff = FIRST_BACKOFF;
            let lost = self.serve(&partition, &mut pending).await;
            tracing::warn!(bridge, topic = %self.topic, error = %lost, "Kafka produce failed: reconnecting; the batch is kept and retried");
            outage = true;
            tokio::time::sleep(backoff).await;
        }
    }

    /// A client of the partition this tenant's records go to.
    async fn connect(&self) -> Result<PartitionClient, String> {
        let connect = async {
            let backoff = BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
                deadline: Some(OPERATION_TIMEOUT),
            };
            let client = ClientBuilder::new(self.brokers.clone())
                .client_id("realtime-gateway")
                .backoff_config(backoff)
                .build()
                .await
                .map_err(|e| e.to_string())?;
            let topics = client.list_topics().await.map_err(|e| e.to_string())?;
            let Some(topic) = topics.iter().find(|t| t.name == self.topic) else {
                return Err(format!("topic `{}` does not exist: create it on the cluster", self.topic));
            };
            let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX).max(1);
            let partition = partition_for(&self.key, partitions);
            client
                .partition_client(self.topic.clone(), partition, UnknownTopicHandling::Error)
                .await
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(OPERATION_TIMEOUT * 2, connect)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", (OPERATION_TIMEOUT * 2).as_secs())))
    }

    /// Produces batches until the cluster fails; says why. `pending` is the batch in hand, kept
    /// for the next client when this one fails.
    async fn serve(&self, partition: &PartitionClient, pending: &mut Vec<Bytes>) -> String {
        loop {
            if pending.is_empty() {
                *pending = self.queue.take(BATCH).await;
            }
            match self.produce(partition, pending).await {
                Ok(()) => {
                    self.queue.delivered(pending.len());
                    pending.clear();
                }
                Err(Failure::Down(e)) => return e,
                Err(Failure::Records(e)) if pending.len() == 1 => {
                    self.queue.dropped(SinkDrop::Failed, 1, &format!("Kafka refused the record: {e}"));
                    pending.clear();
                }
                // One record spoils the batch: find it by producing them one at a time.
                Err(Failure::Records(_)) => {
                    while !pending.is_empty() {
                        match self.produce(partition, &pending[..1]).await {
                            Ok(()) => self.queue.delivered(1),
                            Err(Failure::Records(e)) => {
                                self.queue.dropped(SinkDrop::Failed, 1, &format!("Kafka refused the record: {e}"));
                            }
                            Err(Failure::Down(e)) => return e,
                        }
                        pending.remove(0);
                    }
                }
            }
        }
    }

    async fn produce(&self, partition: &PartitionClient, values: &[Bytes]) -> Result<(), Failure> {
        let now = DateTime::<Utc>::from_timestamp_millis(crate::clock::now_millis() as i64).unwrap_or_default();
        let records = values
            .iter()
            .map(|value| Record {
                key: Some(self.key.clone()),
                value: Some(value.to_vec()),
                headers: BTreeMap::new(),
                timestamp: now,
            })
            .collect();
        match tokio::time::timeout(OPERATION_TIMEOUT, partition.produce(records, Compression::NoCompression)).await {
            Err(_) => Err(Failure::Down(format!("no answer within {} s", OPERATION_TIMEOUT.as_secs()))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(Error::ServerError { protocol_error, .. }))
                if matches!(
                    protocol_error,
                    ProtocolError::MessageTooLarge
                        | ProtocolError::RecordListTooLarge
                        | ProtocolError::InvalidRecord
                        | ProtocolError::CorruptMessage
                ) =>
            {
                Err(Failure::Records(protocol_error.to_string()))
            }
            Ok(Err(e)) => Err(Failure::Down(e.to_string())),
        }
    }
}

/// The partition Kafka's default partitioner gives `key` among `partitions`: murmur2 of the key,
/// made positive, modulo the count (as the Java client's `Utils.toPositive(murmur2(key))`).
fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

/// MurmurHash2, 32 bits, with Kafka's seed (`0x9747b28c`).
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_to_the_partition_the_java_client_picks() {
        // Kafka's own `UtilsTest.testMurmur2` values.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1_486_304_829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58_897_971);
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
        for partitions in 1..8 {
            assert!((0..partitions).contains(&partition_for(b"tenant-1", partitions)));
        }
    }
}
