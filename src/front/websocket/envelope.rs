//! The Go hub's message envelope, both ways: `{"type", "timestamp", "data"}`.
//!
//! From the client: a JSON object whose `type` names the message (`subscribe`, `ping`, ...) and
//! whose `data` is its payload; `timestamp` is the client's and ignored. To the client: the type,
//! an RFC 3339 timestamp, and the data, in that order; an event from a room with history adds its
//! `channel` and its `position` there (`{offset, epoch}`), which a client sends back as `since`
//! when it subscribes again (`subscribe`'s `data.since`).

use std::io::Write;

use serde_json::Value;

use bytes::Bytes;

use crate::{
    engine::history::{Kept, Position},
    front::websocket::wire::Frame,
};

/// Longest message type accepted from a client.
const MAX_TYPE_LEN: usize = 100;

/// A client message's type and data (`null` when it has none), or what is wrong with it.
pub(crate) fn parse(text: &str) -> Result<(String, Value), String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("the message is not valid JSON: {}", crate::parse_errors::json(text.as_bytes(), &e)))?;
    let Value::Object(mut fields) = value else {
        return Err("a message is an object: {\"type\": \"subscribe\", \"data\": {...}}".into());
    };
    let kind = match fields.remove("type") {
        Some(Value::String(t)) if !t.is_empty() && t.len() <= MAX_TYPE_LEN && !t.chars().any(char::is_control) => t,
        _ => {
            return Err(format!(
                "`type` must be a message type of 1 to {MAX_TYPE_LEN} characters, such as \"subscribe\""
            ));
        }
    };
    Ok((kind, fields.remove("data").unwrap_or(Value::Null)))
}

/// `{"type", "timestamp", "data", "channel", "position": {"offset", "epoch"}}`, an event of a room
/// with history, in two parts: the head, up to the data, serialized once for every room the event
/// is kept in ([`positioned_head`]), and each room's tail, written after it ([`positioned`]).
pub(crate) fn positioned_head(kind: &str, timestamp: &str, data: &Value) -> Bytes {
    let mut head = Vec::with_capacity(64);
    write_head(&mut head, kind, timestamp, data);
    Bytes::from(head)
}

/// `{"type": kind, "timestamp": timestamp, "data": data`: an envelope up to its end or its tail.
fn write_head(out: &mut Vec<u8>, kind: &str, timestamp: &str, data: &Value) {
    out.extend_from_slice(b"{\"type\":");
    write_json(out, kind);
    out.extend_from_slice(b",\"timestamp\":");
    write_json(out, timestamp);
    out.extend_from_slice(b",\"data\":");
    write_json(out, data);
}

/// The rest of a positioned event after [`positioned_head`]: its channel and position.
fn write_positioned_tail(out: &mut Vec<u8>, channel: &str, position: &Position) {
    out.extend_from_slice(b",\"channel\":");
    write_json(out, channel);
    // Into the frame's buffer, without a string of its own (`Write` for a `Vec` cannot fail).
    let _ = write!(out, ",\"position\":{{\"offset\":{},\"epoch\":", position.offset);
    write_json(out, &*position.epoch);
    out.extend_from_slice(b"}}");
}

/// A positioned event's whole message: its head, then its channel's and position's tail.
pub(crate) fn positioned(head: &[u8], channel: &str, position: &Position) -> Frame {
    Frame::writing(|out| {
        out.extend_from_slice(head);
        write_positioned_tail(out, channel, position);
    })
}

/// The message of an event read from a room's history.
pub(crate) fn kept(kept: &Kept) -> Frame {
    positioned(&kept.head.bytes, &kept.room, &kept.position)
}

/// Writes `value` as JSON; a value that is already JSON cannot fail to serialize into memory.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    if let Err(e) = serde_json::to_writer(&mut *out, value) {
        tracing::error!(error = %e, "a value could not be serialized");
    }
}

/// Takes `since` out of a message's data: the position a client last saw, from which it asks for
/// what it missed. `Ok(None)`: none given; `Err`: what is wrong with it.
pub(crate) fn take_since(data: &mut Value) -> Result<Option<(u64, String)>, String> {
    let Some(since) = data.as_object_mut().and_then(|d| d.remove("since")) else { return Ok(None) };
    crate::engine::recovery::parse_since(&since).map(Some)
}

/// `{"type": kind, "timestamp": timestamp, "data": data}`, serialized once, as a frame.
pub(crate) fn render(kind: &str, timestamp: &str, data: &Value) -> Frame {
    Frame::writing(|out| {
        write_head(out, kind, timestamp, data);
        out.push(b'}');
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_parse_to_their_type_and_data() {
        assert_eq!(
            parse(r#"{"type":"subscribe","timestamp":"2024-01-15T10:30:00Z","data":{"channel":"executions"}}"#),
            Ok(("subscribe".to_string(), json!({ "channel": "executions" })))
        );
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(("ping".to_string(), Value::Null)));
        assert!(parse("{").unwrap_err().starts_with("the message is not valid JSON"));
        assert!(parse("[1]").unwrap_err().starts_with("a message is an object"));
        assert!(parse(r#"{"data":{}}"#).unwrap_err().starts_with("`type` must be"));
        assert!(parse(r#"{"type":""}"#).is_err() && parse(r#"{"type":7}"#).is_err());
    }

    #[test]
    fn positioned_envelopes_add_channel_and_position_after_the_data() {
        let position = Position { offset: 7, epoch: "abc".into() };
        assert_eq!(
            std::str::from_utf8(positioned(&positioned_head("e", "t", &json!({})), "executions", &position).payload())
                .unwrap(),
            r#"{"type":"e","timestamp":"t","data":{},"channel":"executions","position":{"offset":7,"epoch":"abc"}}"#
        );
    }

    #[test]
    fn since_is_taken_out_of_the_data_and_checked() {
        let mut data = json!({ "channel": "x", "since": { "offset": 3, "epoch": "e1" } });
        assert_eq!(take_since(&mut data), Ok(Some((3, "e1".to_string()))));
        assert_eq!(data, json!({ "channel": "x" }));
        assert_eq!(take_since(&mut data), Ok(None));
        assert_eq!(take_since(&mut Value::Null), Ok(None));
        for bad in [
            json!(1),
            json!({ "offset": -1, "epoch": "e" }),
            json!({ "offset": 1 }),
            json!({ "offset": 1, "epoch": "" }),
        ] {
            assert!(take_since(&mut json!({ "since": bad })).is_err());
        }
    }

    #[test]
    fn envelopes_render_type_timestamp_and_data_in_that_order() {
        let text = render("pong", "2024-01-15T10:30:00.000Z", &json!({ "b": 1, "a": 2 }));
        assert_eq!(
            std::str::from_utf8(text.payload()).unwrap(),
            r#"{"type":"pong","timestamp":"2024-01-15T10:30:00.000Z","data":{"b":1,"a":2}}"#
        );
    }
}
