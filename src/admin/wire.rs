//! The Admin UI protocol's payloads, built from what the engine's roster shows: a socket, this
//! server's `server_stats`, the `config` with the features supported, and the per-second counts
//! of connections and disconnections (`aggregatedEvents`).
//!
//! The shapes are the official server's (`@socket.io/admin-ui` 0.5, `lib/typed-events.ts`), so
//! the official UI reads them unchanged. Ids are public ids: a socket's `id` is the one its
//! clients and everyone else know it by, and `clientId` groups the sockets of one connection
//! without being its Engine.IO session id.
//!
//! What a client chooses (room names and how many, headers, query parameters, its token's
//! claims) is shown within bounds, so one socket's entry stays under 8 KiB whatever it sent: a long text is cut with `…` (a room name keeps a hash of the whole, so two
//! long names stay apart and a leave matches its join), and rooms past the bounds are listed as
//! the one room [`MORE_ROOMS`]. A list cut short lists, for each namespace, a placeholder socket
//! whose id says how many are not listed ([`not_listed`]).

use std::{
    borrow::Cow,
    collections::BTreeMap,
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    time::Instant,
};

use serde_json::{Map, Value, json};

use super::handshake;
use crate::engine::{ClientCounts, SocketView};

/// The longest room name shown, in bytes of JSON; a longer one is cut, and ends with a hash of
/// the whole. (Lengths here are of the JSON text, escapes included, so a name full of control
/// characters cannot take six times its bound.)
const ROOM_NAME_MAX: usize = 160;
/// Rooms listed per socket at most, in number and in bytes of names; the rest are
/// [`MORE_ROOMS`].
const ROOMS_LISTED_MAX: usize = 32;
const ROOMS_BYTES_MAX: usize = 2 * 1024;
/// The room a socket with more rooms than the bounds shows in place of the rest (the same for
/// every such socket, so the UI's rooms page lists them together).
pub(super) const MORE_ROOMS: &str = "… more rooms, not listed";
/// The longest header or parameter value, URL, user or tenant id shown.
const TEXT_MAX: usize = 128;
/// The longest header or parameter name, or role, shown.
const NAME_MAX: usize = 64;
/// Headers, query parameters and roles shown at most, each.
const FIELDS_MAX: usize = 10;
/// A [`not_listed`] placeholder, serialized, is never larger.
pub(super) const NOT_LISTED_MAX_BYTES: usize = 1024;

/// The features this server supports, as the UI names them.
pub(super) fn features(readonly: bool, detail: bool) -> Vec<&'static str> {
    let mut features = Vec::new();
    // Disconnecting a socket (or its whole client) is the one action offered. Joining and
    // leaving rooms and emitting to them are not: they would go around the specs' access rules
    // and the tenant scoping of rooms.
    if !readonly {
        features.push("DISCONNECT");
    }
    // The dashboard counts from `server_stats`, which covers every node of a cluster.
    features.push("AGGREGATED_EVENTS");
    // Sockets, rooms and clients are listed and followed live.
    if detail {
        features.push("ALL_EVENTS");
    }
    features
}

/// The bytes `c` takes in a JSON string (serde_json escapes quotes, backslashes and controls).
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if u32::from(c) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// Where to cut `text` so that it takes at most `max` bytes in JSON with `reserve` more after
/// it; `None` if it fits whole.
fn cut(text: &str, max: usize, reserve: usize) -> Option<usize> {
    let (mut total, mut at) = (0, 0);
    for (i, c) in text.char_indices() {
        if total + reserve <= max {
            at = i;
        }
        total += json_len(c);
        if total > max {
            return Some(at);
        }
    }
    None
}

/// `text`, or as much of it as fits in `max` bytes of JSON with `…` after it.
fn clip(text: &str, max: usize) -> Cow<'_, str> {
    const MORE: char = '…';
    match cut(text, max, MORE.len_utf8()) {
        None => Cow::Borrowed(text),
        Some(at) => Cow::Owned(format!("{}{MORE}", &text[..at])),
    }
}

/// How room `name` is shown: whole, or cut to [`ROOM_NAME_MAX`] bytes of JSON ending with a
/// hash of the whole, the same in a list and in every event, so a cut name still matches its
/// joins and leaves and two long names stay apart.
pub(super) fn room(name: &str) -> Cow<'_, str> {
    const SUFFIX: usize = "…#00000000".len();
    match cut(name, ROOM_NAME_MAX, SUFFIX) {
        None => Cow::Borrowed(name),
        Some(at) => {
            // Fixed keys: the same name gets the same hash for as long as the process runs.
            let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(name) as u32;
            Cow::Owned(format!("{}…#{hash:08x}", &name[..at]))
        }
    }
}

/// The rooms of a socket as shown: at most [`ROOMS_LISTED_MAX`] names and [`ROOMS_BYTES_MAX`]
/// bytes of them, then [`MORE_ROOMS`] if any are left out.
fn rooms(all: &[String]) -> Vec<Cow<'_, str>> {
    let mut shown = Vec::with_capacity(all.len().min(ROOMS_LISTED_MAX + 1));
    let mut bytes = 0;
    for name in all {
        let name = room(name);
        let size = name.chars().map(json_len).sum::<usize>();
        if shown.len() == ROOMS_LISTED_MAX || bytes + size > ROOMS_BYTES_MAX {
            shown.push(Cow::Borrowed(MORE_ROOMS));
            break;
        }
        bytes += size;
        shown.push(name);
    }
    shown
}

/// Up to [`FIELDS_MAX`] name-value pairs, each clipped.
fn fields<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    pairs
        .into_iter()
        .take(FIELDS_MAX)
        .map(|(name, value)| (clip(name, NAME_MAX).into_owned(), Value::String(clip(value, TEXT_MAX).into_owned())))
        .collect()
}

/// One socket, as `all_sockets` and `socket_connected` carry it, within 8 KiB.
pub(crate) fn socket(view: &SocketView<'_>) -> Value {
    let identity = &view.identity;
    let mut handshake = json!({
        "address": view.address.map(|a| a.to_string()),
        "headers": {},
        "query": {},
        "issued": view.connected_at_ms,
        "time": humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(view.connected_at_ms)
        ).to_string(),
        "secure": false,
        "xdomain": false,
        "url": "",
    });
    if let Some(parts) = view.request {
        let query = handshake::query(parts);
        handshake["url"] = json!(clip(&handshake::url(parts, &query), TEXT_MAX));
        handshake["query"] = Value::Object(fields(query.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        let headers = handshake::headers(parts);
        handshake["headers"] =
            Value::Object(fields(headers.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))));
        handshake["xdomain"] = json!(parts.headers.contains_key(http::header::ORIGIN));
        handshake["secure"] =
            json!(parts.headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https")));
    }
    json!({
        "id": view.id.to_string(),
        "clientId": view.client.to_string(),
        "transport": view.transport,
        "nsp": clip(view.namespace, TEXT_MAX),
        "data": {
            "userId": identity.user_id.as_deref().map(|u| clip(u, TEXT_MAX)),
            "tenantId": identity.tenant_id.as_deref().map(|t| clip(t, TEXT_MAX)),
            "roles": identity.roles.iter().take(FIELDS_MAX).map(|r| clip(r, NAME_MAX)).collect::<Vec<_>>(),
            "authenticated": identity.is_authenticated(),
        },
        "handshake": handshake,
        "rooms": rooms(&view.rooms),
    })
}

/// The placeholder listed for `count` sockets of `namespace` a list leaves out: a socket whose
/// id says so, in no room, so the UI's sockets page shows it as a row of its own.
pub(super) fn not_listed(namespace: &str, count: usize, now_ms: u64) -> Value {
    let label = format!("… {count} more sockets, not listed");
    json!({
        "id": label,
        "clientId": label,
        "transport": "websocket",
        "nsp": clip(namespace, TEXT_MAX),
        "data": { "notListed": count },
        "handshake": {
            "address": null, "headers": {}, "query": {}, "issued": now_ms,
            "time": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(now_ms)).to_string(),
            "secure": false, "xdomain": false, "url": "",
        },
        "rooms": [],
    })
}

/// Who this server is in `server_stats`.
#[derive(Debug)]
pub(super) struct ServerInfo {
    /// The id the UI groups stats by: `hostname#pid`, unique among nodes on one host.
    pub id: String,
    /// The host's name.
    pub hostname: String,
    /// This process.
    pub pid: u32,
    /// When it started.
    pub started: Instant,
}

impl ServerInfo {
    /// This process.
    pub(super) fn current() -> Self {
        let hostname = hostname();
        let pid = std::process::id();
        Self { id: format!("{hostname}#{pid}"), hostname, pid, started: Instant::now() }
    }
}

/// The host's name (`localhost` if it cannot be read).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..len]) {
        Ok(name) if ok && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// This server's `server_stats`.
pub(super) fn server_stats(
    server: &ServerInfo,
    clients: ClientCounts,
    namespaces: &[(String, usize)],
    events: Vec<Value>,
) -> Value {
    json!({
        "serverId": server.id,
        "hostname": server.hostname,
        "pid": server.pid,
        "uptime": server.started.elapsed().as_secs_f64(),
        "clientsCount": clients.clients,
        "pollingClientsCount": clients.polling,
        "aggregatedEvents": events,
        "namespaces": namespaces
            .iter()
            .map(|(name, count)| json!({ "name": name, "socketsCount": count }))
            .collect::<Vec<_>>(),
    })
}

/// Connections and disconnections per second, by kind, since the last `server_stats`.
#[derive(Debug, Default)]
pub(super) struct EventCounts {
    counts: BTreeMap<(u64, &'static str, Option<&'static str>), u64>,
}

impl EventCounts {
    /// Counts one `kind` (`rawConnection`, `rawDisconnection`) with its detail (a disconnection's
    /// reason) in the second of `now_ms`.
    pub(super) fn count(&mut self, now_ms: u64, kind: &'static str, detail: Option<&'static str>) {
        *self.counts.entry((now_ms - now_ms % 1000, kind, detail)).or_default() += 1;
    }

    /// The counts as `aggregatedEvents`, emptied.
    pub(super) fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((timestamp, kind, detail), count)| {
                let mut event = json!({ "timestamp": timestamp, "type": kind, "count": count });
                if let Some(detail) = detail {
                    event["subType"] = json!(detail);
                }
                event
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::{
        auth::Identity,
        engine::{PublicId, roster::ClientId},
    };

    #[test]
    fn a_socket_entry_stays_within_its_bound_whatever_the_client_sent() {
        let huge = "\u{85}\u{1}\"".repeat(700);
        let query: String = (0..20).map(|i| format!("&p{i}={}", "%C2%85".repeat(300))).collect();
        let mut request = http::Request::builder().uri(format!("/socket.io/?EIO=4{query}"));
        for i in 0..40 {
            request = request.header(format!("x-{i}-{}", "h".repeat(200)), "v".repeat(4000));
        }
        let parts = request.body(()).unwrap().into_parts().0;
        let long: Arc<str> = Arc::from(huge.as_str());
        let view = SocketView {
            namespace: "/workflow",
            id: PublicId::random(),
            client: ClientId::for_tests(7),
            transport: "polling",
            address: Some("10.0.0.1".parse().unwrap()),
            connected_at_ms: 1_700_000_000_000,
            identity: Arc::new(Identity {
                user_id: Some(long.clone()),
                tenant_id: Some(long.clone()),
                roles: (0..100).map(|_| long.clone()).collect(),
                expires_at: None,
            }),
            rooms: (0..100).map(|i| format!("t / executions {i}{huge}")).collect(),
            request: Some(&parts),
        };
        let entry = socket(&view);
        let bytes = serde_json::to_string(&entry).unwrap().len();
        assert!(bytes <= 8 * 1024, "{bytes} bytes");
        let rooms = entry["rooms"].as_array().unwrap();
        assert_eq!(rooms.last().unwrap(), MORE_ROOMS);
        assert!(rooms.len() > 1 && rooms.len() <= ROOMS_LISTED_MAX + 1);
        assert!(entry["data"]["userId"].as_str().unwrap().ends_with('…'));
        assert_eq!(entry["handshake"]["headers"].as_object().unwrap().len(), FIELDS_MAX);

        let small = SocketView { rooms: vec!["t / tenant".into()], request: None, ..view };
        assert_eq!(socket(&small)["rooms"], json!(["t / tenant"]), "what fits is shown as it is");
    }

    #[test]
    fn a_long_room_name_is_cut_the_same_way_every_time_and_stays_apart_from_others() {
        let (a, b) = (format!("t / {}a", "x".repeat(300)), format!("t / {}b", "x".repeat(300)));
        assert_eq!(room(&a), room(&a));
        assert_ne!(room(&a), room(&b));
        assert!(room(&a).len() <= ROOM_NAME_MAX && room(&a).starts_with("t / xxx"), "{}", room(&a));
        assert_eq!(room("t / short"), "t / short");
        let controls = "\u{1}".repeat(100);
        assert!(serde_json::to_string(&room(&controls)).unwrap().len() <= ROOM_NAME_MAX + 2, "escapes count");
        let multibyte = "é".repeat(200);
        assert!(room(&multibyte).len() <= ROOM_NAME_MAX);
        assert_eq!(clip(&multibyte, 10), "ééé…");
    }

    #[test]
    fn a_placeholder_fits_its_reserved_room() {
        let placeholder = not_listed(&"/n".repeat(500), usize::MAX, 1_700_000_000_000);
        assert!(serde_json::to_string(&placeholder).unwrap().len() <= NOT_LISTED_MAX_BYTES);
        assert_eq!(placeholder["id"], format!("… {} more sockets, not listed", usize::MAX));
    }

    #[test]
    fn readonly_offers_no_action_and_production_lists_no_socket() {
        assert_eq!(features(false, true), ["DISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"]);
        assert_eq!(features(true, true), ["AGGREGATED_EVENTS", "ALL_EVENTS"]);
        assert_eq!(features(true, false), ["AGGREGATED_EVENTS"]);
    }

    #[test]
    fn events_are_counted_per_second_and_kind_then_emptied() {
        let mut counts = EventCounts::default();
        counts.count(1_000_100, "rawConnection", None);
        counts.count(1_000_900, "rawConnection", None);
        counts.count(1_001_000, "rawDisconnection", Some("transport close"));
        let taken = counts.take();
        assert_eq!(taken[0], json!({ "timestamp": 1_000_000, "type": "rawConnection", "count": 2 }));
        assert_eq!(
            taken[1],
            json!({ "timestamp": 1_001_000, "type": "rawDisconnection", "subType": "transport close", "count": 1 })
        );
        assert!(counts.take().is_empty());
    }
}
