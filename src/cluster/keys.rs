//! The names of the gateway's Redis keys that are written together, in one place, because on a
//! Redis Cluster keys one command or script touches must share a hash slot: the part in braces
//! (the hash tag) decides the slot, so each group below shares one tag.
//!
//! Every other key (node snapshots, idempotency entries, bridge leases and statuses) is touched
//! alone and named where it is used, under `REDIS_PREFIX` (which may hold no braces).

/// The stream of bus shard `shard`: a slot of its own, shared with its rooms' numbering.
pub(super) fn bus_stream(prefix: &str, shard: usize) -> String {
    format!("{{{prefix}:bus:{shard}}}")
}

/// Before the name of a room whose events bus shard `shard` numbers (a hash per room, appended
/// to by the same script as the stream, so in the stream's slot).
pub(super) fn numbered_rooms(prefix: &str, shard: usize) -> String {
    format!("{}:hist:", bus_stream(prefix, shard))
}

/// How many shards the nodes of this prefix split the bus over (they must agree).
pub(super) fn bus_shards(prefix: &str) -> String {
    format!("{prefix}:bus:shards")
}

/// Run-time bridge changes: the hash of providers, and the version every node polls, written
/// together by one script.
pub(super) fn bridge_changes(prefix: &str) -> (String, String) {
    let tag = format!("{{{prefix}:bridges}}");
    (format!("{tag}:config"), format!("{tag}:version"))
}

/// The bus shard of a tenant's messages: every message of one tenant goes through one stream,
/// so every node applies them in one order. FNV-1a, so every build and every node agrees;
/// messages of no tenant go through shard 0.
pub(super) fn shard_of(tenant: Option<&str>, shards: usize) -> usize {
    let Some(tenant) = tenant.filter(|_| shards > 1) else { return 0 };
    let hash = tenant.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % shards as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis Cluster hashes: the first `{...}` with something inside, else the whole key.
    fn tag(key: &str) -> &str {
        match key.find('{').and_then(|open| key[open + 1..].find('}').map(|len| &key[open + 1..open + 1 + len])) {
            Some(tag) if !tag.is_empty() => tag,
            _ => key,
        }
    }

    #[test]
    fn keys_written_together_share_a_hash_tag() {
        assert_eq!(tag(&bus_stream("rtgw", 3)), tag(&format!("{}room", numbered_rooms("rtgw", 3))));
        assert_ne!(tag(&bus_stream("rtgw", 3)), tag(&bus_stream("rtgw", 4)));
        let (config, version) = bridge_changes("rtgw");
        assert_eq!(tag(&config), tag(&version));
    }

    #[test]
    fn a_tenant_always_has_the_same_shard() {
        assert_eq!(shard_of(Some("tenant-a"), 1), 0);
        assert_eq!(shard_of(None, 8), 0);
        let shard = shard_of(Some("tenant-a"), 8);
        assert!(shard < 8);
        assert_eq!(shard, shard_of(Some("tenant-a"), 8));
        // Fixed values: every version of the gateway must agree with every other (64-bit FNV-1a).
        assert_eq!((shard, shard_of(Some("t1"), 8), shard_of(Some("t2"), 16)), (3, 6, 3));
        let spread: std::collections::HashSet<usize> = (0..64).map(|i| shard_of(Some(&format!("t{i}")), 8)).collect();
        assert_eq!(spread.len(), 8, "64 tenants reach every one of 8 shards");
    }
}
