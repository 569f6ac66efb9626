//! Engine.IO 4 long-polling, the client side, for a bridge whose Socket.IO peer is reached over
//! `polling`: the handshake GET, then one poll GET at a time (held by the server until it has
//! packets, at the latest its next ping) and one POST per packet sent.
//!
//! A poll answer is packets separated by `\x1e`; it is bounded ([`MAX_ANSWER_BYTES`] after
//! decompression, [`MAX_ANSWER_PACKETS`], each packet at most [`MAX_PACKET_BYTES`]) and a
//! poller holds at most one answer the task has not taken, so a session holds at most two
//! answers' worth. Sends are not buffered here: each is POSTed and awaited before the task goes
//! on, so the bridge's send queue (count and bytes) is the only buffer. Requests go to the
//! address `net::outbound` checked (the client is built with it), never to a new lookup.

use std::{collections::VecDeque, time::Duration};

use serde_json::Value;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::net::outbound::describe_request_error;

/// Most bytes of one poll answer, decompressed.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Most packets in one poll answer.
const MAX_ANSWER_PACKETS: usize = 10_000;
/// Most bytes of one packet (a WebSocket message's bound too).
const MAX_PACKET_BYTES: usize = 1024 * 1024;
/// Beyond the server's own heartbeat (`pingInterval + pingTimeout`), how long a poll or a POST
/// may take before the session is taken as lost.
const REQUEST_MARGIN: Duration = Duration::from_secs(5);
/// How long the close packet's POST may take when the bridge leaves.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// An open long-polling session.
pub(super) struct Polling {
    http: reqwest::Client,
    /// The session's URL (`...&transport=polling&sid=...`).
    url: reqwest::Url,
    /// The handshake's credentials, sent again with every request (a Node server may check any).
    headers: http::HeaderMap,
    /// Each request's limit.
    timeout: Duration,
    /// Poll answers from the poller, one at most ahead of the task.
    answers: mpsc::Receiver<Result<Vec<String>, String>>,
    /// Packets of the answer being read.
    waiting: VecDeque<String>,
    poller: JoinHandle<()>,
}

impl Drop for Polling {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Opens a session at `url` (the Engine.IO path with `EIO=4&transport=polling` and the peer's
/// query): the handshake GET, whose open packet [`Polling::next`] hands out first.
pub(super) async fn open(
    http: reqwest::Client,
    url: reqwest::Url,
    headers: http::HeaderMap,
) -> Result<Polling, String> {
    // The handshake is bounded by the bridge's `timeout`, around the whole connection attempt.
    let packets = poll(&http, url.clone(), &headers, None).await?;
    let open = packets
        .first()
        .and_then(|p| p.strip_prefix('0'))
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
        .ok_or("the peer's first poll answer is not an Engine.IO open packet")?;
    let sid = open.get("sid").and_then(Value::as_str).ok_or("the peer's open packet has no sid")?;
    let ms = |field: &str| open.get(field).and_then(Value::as_u64).unwrap_or(30_000);
    let timeout = Duration::from_millis(ms("pingInterval").saturating_add(ms("pingTimeout"))) + REQUEST_MARGIN;
    let mut session = url;
    session.query_pairs_mut().append_pair("sid", sid);
    let (sender, answers) = mpsc::channel(1);
    let poller = tokio::spawn(poller(http.clone(), session.clone(), headers.clone(), timeout, sender));
    Ok(Polling { http, url: session, headers, timeout, answers, waiting: packets.into(), poller })
}

impl Polling {
    /// The next packet; an error once the session is closed or a poll failed. Cancel-safe.
    pub(super) async fn next(&mut self) -> Result<String, String> {
        loop {
            if let Some(packet) = self.waiting.pop_front() {
                return Ok(packet);
            }
            match self.answers.recv().await {
                Some(Ok(packets)) => self.waiting.extend(packets),
                Some(Err(e)) => return Err(e),
                None => return Err("the peer closed the session".into()),
            }
        }
    }

    /// POSTs one packet and waits for the server to take it.
    pub(super) async fn send(&mut self, packet: String) -> Result<(), String> {
        post(&self.http, self.url.clone(), &self.headers, packet, self.timeout).await
    }

    /// Stops polling and tells the server the session is over (Engine.IO's close packet).
    pub(super) async fn close(&mut self) {
        self.poller.abort();
        let _ = post(&self.http, self.url.clone(), &self.headers, "1".into(), CLOSE_TIMEOUT).await;
    }
}

/// Polls until the session ends, handing each answer over; stops after a close packet or an error
/// (which it hands over too).
async fn poller(
    http: reqwest::Client,
    url: reqwest::Url,
    headers: http::HeaderMap,
    timeout: Duration,
    answers: mpsc::Sender<Result<Vec<String>, String>>,
) {
    loop {
        let answer = poll(&http, url.clone(), &headers, Some(timeout)).await;
        let last = answer.as_ref().map_or(true, |packets| packets.iter().any(|p| p == "1"));
        if answers.send(answer).await.is_err() || last {
            return;
        }
    }
}

/// One GET: the answer's packets.
async fn poll(
    http: &reqwest::Client,
    url: reqwest::Url,
    headers: &http::HeaderMap,
    timeout: Option<Duration>,
) -> Result<Vec<String>, String> {
    let mut request = http.get(url).headers(headers.clone());
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let mut answer = request.send().await.map_err(|e| describe_request_error(&e))?;
    if !answer.status().is_success() {
        return Err(format!("WebSocket error: {} (polling)", answer.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| describe_request_error(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("a poll answer is larger than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    packets(body)
}

/// A poll answer's packets, checked against the bounds.
fn packets(body: Vec<u8>) -> Result<Vec<String>, String> {
    let text = String::from_utf8(body).map_err(|_| "a poll answer is not UTF-8 text".to_string())?;
    let packets: Vec<String> = text.split('\x1e').map(String::from).collect();
    if packets.len() > MAX_ANSWER_PACKETS {
        return Err(format!("a poll answer holds more than {MAX_ANSWER_PACKETS} packets"));
    }
    if packets.iter().any(|p| p.len() > MAX_PACKET_BYTES) {
        return Err(format!("a packet is larger than {MAX_PACKET_BYTES} bytes"));
    }
    Ok(packets)
}

/// One POST of one packet.
async fn post(
    http: &reqwest::Client,
    url: reqwest::Url,
    headers: &http::HeaderMap,
    packet: String,
    timeout: Duration,
) -> Result<(), String> {
    let answer = http
        .post(url)
        .headers(headers.clone())
        .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
        .body(packet)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| describe_request_error(&e))?;
    if answer.status().is_success() { Ok(()) } else { Err(format!("WebSocket error: {} (polling)", answer.status())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_answer_is_split_and_bounded() {
        assert_eq!(packets(b"2\x1e42[\"a\",1]".to_vec()).unwrap(), vec!["2", "42[\"a\",1]"]);
        assert_eq!(packets(b"6".to_vec()).unwrap(), vec!["6"]);
        let many = vec!["6"; MAX_ANSWER_PACKETS + 1].join("\x1e");
        assert!(packets(many.into_bytes()).unwrap_err().contains("more than"));
        let big = "4".to_string() + &"x".repeat(MAX_PACKET_BYTES);
        assert!(packets(big.into_bytes()).unwrap_err().contains("larger than"));
        assert!(packets(vec![0xff, 0xfe]).is_err());
    }
}
