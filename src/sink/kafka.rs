//! The Kafka sink (`kafka`): each message a record of its topic on the cluster of
//! `KAFKA_BROKERS`, its key the tenant id, written in the order received, up to [`BATCH`] records
//! per produce request. A bridge's sink produces to its `kafkaTopic`, the value the seed's
//! payload JSON (what the webhook receives), the key the bridge's tenant; a `forward`
//! destination of kind `kafka` to its `topic`, the value the forward call's body, the key the
//! socket's tenant (no key when it has none). The writer is the same.
//!
//! The partition is the one Kafka's own clients pick for the key (murmur2 of the key, modulo
//! the topic's partitions), so one tenant's records keep their order on one partition and land
//! where a Java or librdkafka producer would put them. A record without a key goes to partition
//! 0 (the gateway does not spread keyless records: its records have keys but for tenantless
//! sockets). The topic must exist (or the cluster
//! create topics on first use): the gateway does not choose partitions or replication for you.
//!
//! One client per sink (per bridge, per forward destination), built at start and again after a failure, with backoff
//! ([`FIRST_BACKOFF`] doubled up to [`MAX_BACKOFF`]). While Kafka is away the batch in hand waits
//! and is retried, and new messages wait in the [`Queue`] up to its bound; past it they are
//! dropped (`queue_full`). A record the broker refuses for itself (too large, invalid) is
//! dropped (`failed`). Delivery is at least once: a batch whose acknowledgment was lost is
//! produced again.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use rskafka::{
    BackoffConfig,
    chrono::{DateTime, Utc},
    client::{
        Client, ClientBuilder,
        error::{Error, ProtocolError},
        partition::{Compression, PartitionClient, UnknownTopicHandling},
    },
    record::Record,
};
use tokio::task::JoinHandle;

use super::queue::Queue;
use crate::metrics::SinkDrop;

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
    queue: Queue<Message>,
}

/// One record to produce.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The tenant id; `None`: no key.
    pub key: Option<Bytes>,
    /// The JSON value.
    pub value: Bytes,
}

/// A client of the cluster, and of the topic's partitions as records need them.
struct Connected {
    client: Client,
    partitions: i32,
    clients: HashMap<i32, Arc<PartitionClient>>,
}

/// Why a produce failed.
enum Failure {
    /// The cluster is away or cannot take records now: reconnect, retry the batch.
    Down(String),
    /// The broker refused these records for themselves.
    Records(String),
}

impl Kafka {
    /// A sink producing the records of `queue` to `topic` on `brokers`.
    pub(super) fn new(brokers: &[String], topic: &str, queue: Queue<Message>) -> Self {
        Self { inner: Arc::new(Inner { brokers: brokers.to_vec(), topic: topic.to_string(), queue }) }
    }

    /// Queues `message`, or drops it (counted, logged) when the queue is full; whether it was
    /// queued.
    pub(crate) fn offer(&self, message: Message) -> bool {
        let bytes = message.value.len() + message.key.as_ref().map_or(0, Bytes::len);
        self.inner.queue.offer(message, bytes)
    }

    /// The producing loop: connect, produce batches, reconnect after a failure.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.run().await })
    }
}

impl Inner {
    async fn run(&self) {
        let owner = self.queue.owner();
        let mut pending: Vec<Message> = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        // After a failure (already warned about: a failed write, or the first failed connect),
        // further failed connects are debug lines and the next connection is told.
        let mut outage = false;
        loop {
            let mut connected = match self.connect().await {
                Ok(connected) => connected,
                Err(e) => {
                    if outage {
                        tracing::debug!(owner, error = %e, "Kafka still unreachable");
                    } else {
                        tracing::warn!(owner, topic = %self.topic, error = %e, "Kafka unreachable: messages wait in the kafka sink's queue, then are dropped and counted; retrying");
                        outage = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if outage {
                tracing::info!(owner, topic = %self.topic, "Kafka reachable again: producing the queued messages");
            }
            backoff = FIRST_BACKOFF;
            let lost = self.serve(&mut connected, &mut pending).await;
            tracing::warn!(owner, topic = %self.topic, error = %lost, "Kafka produce failed: reconnecting; the batch is kept and retried");
            outage = true;
            tokio::time::sleep(backoff).await;
        }
    }

    /// A client of the cluster, knowing the topic's partitions.
    async fn connect(&self) -> Result<Connected, String> {
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
            Ok(Connected { client, partitions, clients: HashMap::new() })
        };
        tokio::time::timeout(OPERATION_TIMEOUT * 2, connect)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", (OPERATION_TIMEOUT * 2).as_secs())))
    }

    /// The partition `message` goes to.
    fn partition_of(connected: &Connected, message: &Message) -> i32 {
        message.key.as_ref().map_or(0, |key| partition_for(key, connected.partitions))
    }

    /// Produces batches until the cluster fails; says why. `pending` is the batch in hand, kept
    /// for the next client when this one fails. A batch goes out in runs of consecutive records
    /// for one partition (one run when they share a key), so every key keeps its order.
    async fn serve(&self, connected: &mut Connected, pending: &mut Vec<Message>) -> String {
        loop {
            if pending.is_empty() {
                *pending = self.queue.take(BATCH).await;
            }
            let partition = Self::partition_of(connected, &pending[0]);
            let run = pending.iter().take_while(|m| Self::partition_of(connected, m) == partition).count();
            let client = match self.partition_client(connected, partition).await {
                Ok(client) => client,
                Err(e) => return e,
            };
            match self.produce(&client, &pending[..run]).await {
                Ok(()) => {
                    self.queue.delivered(run);
                    pending.drain(..run);
                }
                Err(Failure::Down(e)) => return e,
                Err(Failure::Records(e)) if run == 1 => {
                    self.queue.dropped(SinkDrop::Failed, 1, &format!("Kafka refused the record: {e}"));
                    pending.remove(0);
                }
                // One record spoils the run: find it by producing them one at a time.
                Err(Failure::Records(_)) => {
                    for _ in 0..run {
                        match self.produce(&client, &pending[..1]).await {
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

    /// The client of `partition`, made on first use.
    async fn partition_client(
        &self,
        connected: &mut Connected,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, String> {
        if let Some(client) = connected.clients.get(&partition) {
            return Ok(client.clone());
        }
        let made = connected.client.partition_client(self.topic.clone(), partition, UnknownTopicHandling::Error);
        let client = match tokio::time::timeout(OPERATION_TIMEOUT, made).await {
            Ok(Ok(client)) => Arc::new(client),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {} s", OPERATION_TIMEOUT.as_secs())),
        };
        connected.clients.insert(partition, client.clone());
        Ok(client)
    }

    async fn produce(&self, partition: &PartitionClient, messages: &[Message]) -> Result<(), Failure> {
        let now = DateTime::<Utc>::from_timestamp_millis(crate::clock::now_millis() as i64).unwrap_or_default();
        let records = messages
            .iter()
            .map(|m| Record {
                key: m.key.as_ref().map(|k| k.to_vec()),
                value: Some(m.value.to_vec()),
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
