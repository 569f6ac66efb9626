//! The Redis inputs backends already publish to, turned into the engine's terms:
//!
//! - the Go hub's `ws:broadcast:all` channel (seed 001): a JSON message with the event's `type`,
//!   `data` and optional `channel`, `filters`, `timestamp`, becomes a published event;
//! - `@socket.io/redis-emitter`: a msgpack `[uid, packet, opts]` on `<key>#<nsp>#[<room>#]`
//!   becomes a raw emit to a namespace and rooms.
//!
//! Both are received by every node, which delivers them to its own sockets: nothing here goes back
//! out to other nodes. Everything is pure and unit-tested; `cluster::mod` does the I/O.

use serde_json::{Map, Value, json};

use crate::engine::PublishedEvent;

/// The Go hub's message: `{type, data, channel?, filters?, timestamp?, tenantId?}`, or the hub's
/// client envelope wrapped as `{channel, message: {type, timestamp, data}, filters}`. The tenant
/// comes from `tenantId` (or `tenant_id`) beside `type` or inside `data`. Its snake_case fields are
/// routed on under their camelCase names too, as every published event's are.
pub(super) fn go_hub_event(payload: &[u8]) -> Result<PublishedEvent, String> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut outer) = value else { return Err("not a JSON object".into()) };
    let mut message = match outer.remove("message") {
        Some(Value::Object(inner)) => inner,
        _ => outer.clone(),
    };
    let event_type = match message.remove("type") {
        Some(Value::String(t)) => t,
        _ => return Err("no `type`".into()),
    };
    let data = match message.remove("data") {
        Some(Value::Object(d)) => d,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return Err("`data` is not an object".into()),
    };

    let tenant = [outer.get("tenantId"), outer.get("tenant_id"), data.get("tenantId"), data.get("tenant_id")]
        .into_iter()
        .flatten()
        .find(|v| v.is_string() || v.is_number())
        .cloned();
    let timestamp = message.remove("timestamp").or_else(|| outer.remove("timestamp")).filter(Value::is_string);
    let mut event = json!({ "type": event_type, "tenantId": tenant, "data": data });
    if let Some(t) = timestamp {
        event["timestamp"] = t;
    }
    PublishedEvent::from_json(event, "message")
}

/// One `@socket.io/redis-emitter` broadcast.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct EmitterMessage {
    /// The namespace (`/` when the emitter used the main one).
    pub namespace: String,
    /// The event name.
    pub event: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Rooms as the backend named them (empty: the whole namespace).
    pub rooms: Vec<String>,
    /// Rooms whose sockets are left out.
    pub except: Vec<String>,
}

/// Decodes the emitter's msgpack `[uid, {type: 2, data: [event, ...args], nsp}, {rooms, except,
/// flags}]`. Only messages of the emitter itself (uid `emitter`) are taken: broadcasts of Node
/// socket.io servers sharing the Redis use the same channels with their own uid.
pub(super) fn emitter_message(payload: &[u8]) -> Result<Option<EmitterMessage>, String> {
    let value = rmpv::decode::read_value(&mut &payload[..]).map_err(|e| format!("not msgpack: {e}"))?;
    let rmpv::Value::Array(parts) = value else { return Err("not an array".into()) };
    let [uid, packet, opts] = parts.as_slice() else { return Err("not [uid, packet, opts]".into()) };
    if uid.as_str() != Some("emitter") {
        return Ok(None);
    }
    let packet = to_json(packet)?;
    let opts = to_json(opts)?;
    if packet["type"] != json!(2) {
        return Err(format!("packet type {} is not an event", packet["type"]));
    }
    let mut data = match packet.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items.clone().into_iter(),
        _ => return Err("packet.data is not [event, ...args]".into()),
    };
    let Some(Value::String(event)) = data.next() else { return Err("the event name is not a string".into()) };
    let names = |field: &str| -> Vec<String> {
        opts[field].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_string)).collect()
    };
    Ok(Some(EmitterMessage {
        namespace: packet["nsp"].as_str().unwrap_or("/").to_string(),
        event,
        args: data.collect(),
        rooms: names("rooms"),
        except: names("except"),
    }))
}

/// msgpack to JSON; binary and extension values have no JSON form and are refused.
fn to_json(value: &rmpv::Value) -> Result<Value, String> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => json!(n),
            (_, Some(n)) => json!(n),
            _ => return Err("an integer out of range".into()),
        },
        rmpv::Value::F32(f) => json!(f),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::String(s) => json!(s.as_str().ok_or("a string that is not UTF-8")?),
        rmpv::Value::Array(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        rmpv::Value::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Ok((k.as_str().ok_or("a map key that is not a string")?.to_string(), to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        rmpv::Value::Binary(_) => return Err("binary arguments are not supported; send JSON values".into()),
        rmpv::Value::Ext(..) => return Err("msgpack extension values (such as Dates) are not supported".into()),
    })
}

/// How an emitter room name reads: `<tenantId>/<room>` for a tenant's room, or a bare name for a
/// global room.
pub(super) fn split_emitter_room(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((tenant, room)) if !tenant.is_empty() && !room.is_empty() => (Some(tenant), room),
        _ => (None, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_hub_message_becomes_a_published_event() {
        let event = go_hub_event(
            br#"{"channel":"executions","type":"execution.started","data":{"execution_id":"e1","workflow_id":"w1","tenant_id":"t1","status":"running"},"filters":{"status":"running"}}"#,
        )
        .unwrap();
        let json = event.to_json();
        assert_eq!(json["type"], "execution.started");
        assert_eq!(json["tenantId"], "t1");
        assert_eq!(event.data()["executionId"], "e1", "specs route on camelCase names too");
        assert_eq!(json["data"]["execution_id"], "e1");
        assert_eq!(json["data"].get("executionId"), None, "the data as sent stays as sent");
        let wrapped = go_hub_event(
            br#"{"channel":"executions","tenantId":"t2","message":{"type":"step.completed","timestamp":"2024-01-15T10:30:00Z","data":{"executionId":"e1"}}}"#,
        )
        .unwrap()
        .to_json();
        assert_eq!((wrapped["type"].as_str(), wrapped["tenantId"].as_str()), (Some("step.completed"), Some("t2")));
        assert_eq!(wrapped["timestamp"], "2024-01-15T10:30:00Z");
        assert!(go_hub_event(b"nope").is_err());
        assert!(go_hub_event(br#"{"data":{}}"#).unwrap_err().contains("type"));
    }

    fn packed(value: rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &value).unwrap();
        out
    }

    fn emitter_payload(uid: &str, args: Vec<rmpv::Value>, rooms: &[&str]) -> Vec<u8> {
        use rmpv::Value as V;
        let mut data = vec![V::from("commission:calculated")];
        data.extend(args);
        packed(V::Array(vec![
            V::from(uid),
            V::Map(vec![
                (V::from("type"), V::from(2)),
                (V::from("data"), V::Array(data)),
                (V::from("nsp"), V::from("/realtime")),
            ]),
            V::Map(vec![
                (V::from("rooms"), V::Array(rooms.iter().map(|r| V::from(*r)).collect())),
                (V::from("flags"), V::Map(vec![])),
                (V::from("except"), V::Array(vec![])),
            ]),
        ]))
    }

    #[test]
    fn an_emitter_broadcast_decodes_and_others_are_ignored() {
        use rmpv::Value as V;
        let arg = V::Map(vec![(V::from("contractId"), V::from("c1")), (V::from("amount"), V::from(12.5))]);
        let msg = emitter_message(&emitter_payload("emitter", vec![arg], &["t1/dashboard"])).unwrap().unwrap();
        assert_eq!(msg.namespace, "/realtime");
        assert_eq!(msg.event, "commission:calculated");
        assert_eq!(msg.args, vec![json!({ "contractId": "c1", "amount": 12.5 })]);
        assert_eq!(msg.rooms, vec!["t1/dashboard"]);
        assert_eq!(emitter_message(&emitter_payload("a-node-server", vec![], &[])).unwrap(), None);
        let binary = emitter_payload("emitter", vec![V::Binary(vec![1, 2])], &[]);
        assert!(emitter_message(&binary).unwrap_err().contains("binary"));
        assert!(emitter_message(b"\x01").is_err());
    }

    #[test]
    fn emitter_rooms_name_their_tenant() {
        assert_eq!(split_emitter_room("t1/dashboard"), (Some("t1"), "dashboard"));
        assert_eq!(split_emitter_room("platform.admins"), (None, "platform.admins"));
        assert_eq!(split_emitter_room("/x"), (None, "/x"));
    }
}
