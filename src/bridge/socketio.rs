//! Socket.IO v5 (Engine.IO 4) as a bridge speaks it over a WebSocket: the packets it reads and
//! writes as text frames. Binary attachments are not read (a packet with them is skipped).
//!
//! Engine.IO frames: `0` open (`{sid, pingInterval, pingTimeout}`), `2` ping (answered `3`),
//! `1` close, `4` a Socket.IO packet. Socket.IO packets: `0` CONNECT, `1` DISCONNECT, `2` EVENT,
//! `3` ACK, `4` CONNECT_ERROR, each `<type>[/<namespace>,][<ack id>][<json>]`.

use std::time::Duration;

use serde_json::Value;

/// An Engine.IO frame the bridge acts on.
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    /// The session is open; the server pings every `ping_interval` and waits `ping_timeout`.
    Open { ping_interval: Duration, ping_timeout: Duration },
    /// The server's heartbeat: answer `3`.
    Ping,
    /// The server closes the session.
    Close,
    /// A Socket.IO packet of the bridge's namespace.
    Packet(Packet),
    /// Anything else (another namespace's packet, binary, noise).
    Ignored,
}

/// A Socket.IO packet of the bridge's namespace.
#[derive(Debug, PartialEq)]
pub(super) enum Packet {
    /// The namespace accepted the connection.
    Connected,
    /// The namespace refused it; the server's message.
    ConnectError(String),
    /// The server disconnected the socket from the namespace.
    Disconnect,
    /// An event: its name and payload (the single argument, or the arguments as a list).
    Event { event: String, data: Value },
    /// The answer to an event the bridge sent with ack id `id`.
    Ack { id: u64, data: Value },
}

/// Reads one text frame for namespace `namespace`.
pub(super) fn read(text: &str, namespace: &str) -> Frame {
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => {
            let open: Value = serde_json::from_str(chars.as_str()).unwrap_or(Value::Null);
            let ms = |field: &str, default: u64| {
                Duration::from_millis(open.get(field).and_then(Value::as_u64).unwrap_or(default))
            };
            Frame::Open { ping_interval: ms("pingInterval", 25_000), ping_timeout: ms("pingTimeout", 20_000) }
        }
        Some('1') => Frame::Close,
        Some('2') => Frame::Ping,
        Some('4') => packet(chars.as_str(), namespace).map_or(Frame::Ignored, Frame::Packet),
        _ => Frame::Ignored,
    }
}

fn packet(text: &str, namespace: &str) -> Option<Packet> {
    let kind = text.chars().next()?;
    let mut rest = &text[1..];
    let mut packet_namespace = "/";
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        packet_namespace = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    if packet_namespace != namespace {
        return None;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = rest[..digits].parse::<u64>().ok();
    let json: Value =
        if rest[digits..].is_empty() { Value::Null } else { serde_json::from_str(&rest[digits..]).ok()? };
    match kind {
        '0' => Some(Packet::Connected),
        '1' => Some(Packet::Disconnect),
        '2' => {
            let Value::Array(mut items) = json else { return None };
            if items.is_empty() {
                return None;
            }
            let Value::String(event) = items.remove(0) else { return None };
            Some(Packet::Event { event, data: arguments(items) })
        }
        '3' => {
            let Value::Array(items) = json else { return None };
            Some(Packet::Ack { id: id?, data: arguments(items) })
        }
        '4' => {
            let message =
                json.get("message").and_then(Value::as_str).map(String::from).unwrap_or_else(|| json.to_string());
            Some(Packet::ConnectError(message))
        }
        _ => None,
    }
}

/// An event's or ack's arguments as one value: the single one, `null` for none, else the list.
fn arguments(mut items: Vec<Value>) -> Value {
    match items.len() {
        0 => Value::Null,
        1 => items.remove(0),
        _ => Value::Array(items),
    }
}

/// `/ns,` before a packet's data, or nothing for the main namespace.
fn prefix(namespace: &str) -> String {
    if namespace == "/" { String::new() } else { format!("{namespace},") }
}

/// The CONNECT packet for `namespace` (no auth payload: the seed authenticates the handshake).
pub(super) fn connect(namespace: &str) -> String {
    format!("40{}", prefix(namespace))
}

/// An EVENT packet, with ack id `id` when an answer is wanted.
pub(super) fn event(namespace: &str, event: &str, data: &Value, id: Option<u64>) -> String {
    let args = serde_json::to_string(&[Value::String(event.to_string()), data.clone()]).unwrap_or_default();
    format!("42{}{}{args}", prefix(namespace), id.map(|i| i.to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn packets_of_the_bridges_namespace_are_read() {
        assert_eq!(read("40{\"sid\":\"x\"}", "/"), Frame::Packet(Packet::Connected));
        assert_eq!(read("40/chat,{\"sid\":\"x\"}", "/chat"), Frame::Packet(Packet::Connected));
        assert_eq!(read("40{\"sid\":\"x\"}", "/chat"), Frame::Ignored);
        assert_eq!(
            read("42/chat,[\"status:update\",{\"a\":1}]", "/chat"),
            Frame::Packet(Packet::Event { event: "status:update".into(), data: json!({"a": 1}) })
        );
        assert_eq!(read("4312[\"ok\"]", "/"), Frame::Packet(Packet::Ack { id: 12, data: json!("ok") }));
        assert_eq!(
            read("44{\"message\":\"Unauthorized\"}", "/"),
            Frame::Packet(Packet::ConnectError("Unauthorized".into()))
        );
        assert_eq!(read("2", "/"), Frame::Ping);
        assert!(
            matches!(read("0{\"sid\":\"a\",\"pingInterval\":300,\"pingTimeout\":200}", "/"), Frame::Open { ping_interval, .. } if ping_interval == Duration::from_millis(300))
        );
    }

    #[test]
    fn events_are_written_with_namespace_and_ack_id() {
        assert_eq!(event("/", "notify", &json!({"a": 1}), None), "42[\"notify\",{\"a\":1}]");
        assert_eq!(event("/n", "notify", &json!(1), Some(7)), "42/n,7[\"notify\",1]");
        assert_eq!(connect("/"), "40");
        assert_eq!(connect("/n"), "40/n,");
    }
}
