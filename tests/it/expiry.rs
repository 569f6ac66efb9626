//! Token expiry at the edges: tokens whose `exp` is beyond any clock (`1e300`, `u64::MAX`) with
//! a leeway, on both fronts, next to tokens that do run out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

const LEEWAY: Duration = Duration::from_secs(1);

/// A token for `sub` in tenant `t1` whose `exp` claim is `exp` exactly as given.
fn token_expiring(sub: &str, exp: Value) -> String {
    let claims = json!({ "sub": sub, "tenantId": "t1", "roles": ["user"], "exp": exp });
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

type PlainWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connection to the plain WebSocket endpoint `/ws` with `token`.
async fn plain(app: &TestApp, token: &str) -> PlainWs {
    let url = format!("ws://{}/ws?token={token}", app.addr);
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("a plain connection in time")
        .expect("the plain endpoint admits the token");
    ws
}

/// The next envelope of `type` on a plain connection, skipping others; `None` if it closed first.
async fn plain_message(ws: &mut PlainWs, kind: &str) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap_or_else(|_| panic!("no `{kind}` within {WAIT:?}")) {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == kind {
                    return Some(message);
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Whether a plain connection is still served: `ping` is answered by `pong`.
async fn assert_plain_alive(ws: &mut PlainWs) {
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.expect("the connection is open");
    assert!(plain_message(ws, "pong").await.is_some(), "the plain connection was closed");
}

#[tokio::test]
async fn an_exp_beyond_any_clock_stays_connected_and_others_still_expire_on_time() {
    let app = spawn_app_with(|c| c.jwt.leeway = LEEWAY).await;
    // `1e300` saturates whole seconds; `u64::MAX` plus the leeway would overflow them.
    let mut forever = Vec::new();
    for exp in [json!(1e300), json!(u64::MAX), json!(u64::MAX - 1000)] {
        let mut client = SioClient::connect(app.addr, "/workflow", json!({ "token": token_expiring("u1", exp) })).await;
        client.expect("connected").await;
        client.assert_alive().await;
        forever.push(client);
    }
    let mut forever_plain = plain(&app, &token_expiring("u1", json!(1e300))).await;
    assert_plain_alive(&mut forever_plain).await;

    // A token refreshed to one that never expires is answered with a date a client can read.
    let reply = forever[0].emit_with_ack("auth:refresh", json!({ "token": token_expiring("u1", json!(1e300)) })).await;
    assert_eq!(reply["expiresAt"], "9999-12-31T23:59:59.000Z", "{reply}");

    // Tokens that run out in a second are still cut, on both fronts, after exp plus the leeway.
    let exp = now_ms() / 1000 + 1;
    let cut_from = (exp + LEEWAY.as_secs()) * 1000;
    let mut short =
        SioClient::connect(app.addr, "/workflow", json!({ "token": token_expiring("u2", json!(exp)) })).await;
    let mut short_plain = plain(&app, &token_expiring("u2", json!(exp))).await;
    // Every client keeps reading (answering heartbeats) meanwhile, and past the cut.
    let idle = futures_util::future::join_all(forever.iter_mut().map(|c| c.idle(Duration::from_millis(3500))));
    let cut = async {
        let cut = tokio::join!(short.wait_for("error"), plain_message(&mut short_plain, "error"));
        (cut, now_ms())
    };
    let (((error, plain_error), cut_at), _) = tokio::join!(cut, idle);
    assert_eq!(error["message"], "Authentication token expired", "{error}");
    assert_eq!(plain_error.expect("an error before the close")["data"]["message"], "Authentication token expired");
    assert!(cut_at >= cut_from, "cut {} ms before exp plus the leeway", cut_from - cut_at);
    short.expect_disconnect().await;

    for client in &mut forever {
        client.assert_alive().await;
    }
    assert_plain_alive(&mut forever_plain).await;
}
