//! The binary: `check`, `token`, `healthcheck`, `hash-password`, dev mode, start-up errors and
//! warnings, what it logs, and SIGTERM.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_realtime-gateway");

fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    // The tests decide every setting; nothing leaks in from the developer's shell (a stray
    // variable that looks like a setting would be warned about, or refused).
    cmd.env_clear();
    for keep in ["PATH", "RUST_BACKTRACE"] {
        if let Some(value) = std::env::var_os(keep) {
            cmd.env(keep, value);
        }
    }
    cmd
}

/// Runs `cmd` to its end, which must come within `limit`: a gateway that started serving
/// instead of refusing to is killed, and the test fails.
fn exit_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}, so it started: {}", String::from_utf8_lossy(&out.stdout));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn write_spec(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn hash_password_reads_standard_input_and_prints_a_bcrypt_hash_of_it() {
    let mut child = gateway()
        .args(["hash-password", "--cost", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pa ss\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    assert!(bcrypt::verify("pa ss", hash.trim()).unwrap(), "the line ending is not part of the password");
    let empty = gateway().arg("hash-password").stdin(Stdio::null()).output().unwrap();
    assert!(!empty.status.success(), "an empty password is refused");
}

#[test]
fn check_accepts_the_built_in_specs() {
    let out = gateway().arg("check").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/workflow"));
}

#[test]
fn check_reports_every_broken_spec_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "syntax.yaml", "namespace: /a\nrooms: [\n");
    write_spec(dir.path(), "unknown_field.yaml", "namespace: /b\nrooms:\n  r:\n    patern: r\n");
    write_spec(
        dir.path(),
        "bad_ref.yaml",
        "namespace: /c\nrooms:\n  r: { pattern: r }\nevents:\n  e:\n    do:\n      - join: { room: missing }\n      - reply: { event: x, data: \"{paylod.a}\" }\n",
    );
    let out = gateway().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let d = dir.path().display();
    assert!(stderr.contains(&format!("{d}/syntax.yaml:2:8: ")), "{stderr}");
    assert!(stderr.contains(&format!("{d}/unknown_field.yaml:4:5: unknown field `patern`")), "{stderr}");
    // Each at the offending value, not at the action holding it.
    assert!(stderr.contains(&format!("{d}/bad_ref.yaml:7:23: unknown room `missing`")), "{stderr}");
    assert!(
        stderr.contains(&format!("{d}/bad_ref.yaml:8:34: data: in `{{paylod.a}}`: unknown variable `paylod`")),
        "{stderr}"
    );
    assert!(stderr.contains("4 error(s)"), "{stderr}");
}

#[test]
fn the_gateway_refuses_to_start_on_broken_specs_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    write_spec(dir.path(), "x.yaml", "namespace: nope\n");
    let out = gateway().env("NAMESPACES_DIR", dir.path()).env("JWT_SECRET", "s").env("PORT", "0").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("x.yaml:1:12: namespace `nope` must start with `/`"), "{stderr}");
}

#[test]
fn a_log_level_that_would_silence_every_log_refuses_to_start() {
    // `tracing` would read a bare unknown word as a module name and log nothing else, dev mode's
    // token included.
    let out = gateway().env("LOG_LEVEL", "loud").env("PORT", "0").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LOG_LEVEL: `loud` is not a level"), "{stderr}");
}

#[test]
fn auth_settings_without_their_key_refuse_to_start_rather_than_run_dev_mode() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("JWT_ALGORITHM", "RS256")],
            "JWT_ALGORITHM is RS256, but JWT_PUBLIC_KEY (or JWT_PUBLIC_KEY_FILE) is not set",
        ),
        (
            &[("JWT_ISSUER", "https://auth.example")],
            "JWT_ISSUER is set, but neither JWT_SECRET (HS256) nor JWT_PUBLIC_KEY",
        ),
        (&[("API_KEY", "k1")], "API_KEY is not a setting of the gateway (did you mean API_KEYS?)"),
        (&[("JWT_SECRET", "s"), ("API_KEYS", ",")], "API_KEYS is set but holds no key"),
    ];
    for (env, message) in cases {
        let mut cmd = gateway();
        cmd.env("PORT", "0").env("HOST", "127.0.0.1").envs(env.iter().copied());
        let out = exit_within(&mut cmd, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(1), "{env:?} must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(&format!("error: {message}")), "{env:?}: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "{env:?}");
    }
}

#[test]
fn config_values_that_do_not_parse_say_what_was_expected_where() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.yaml");
    std::fs::write(&file, "jwt_secret: s\nredis_db: abc\n").unwrap();
    let out = exit_within(gateway().arg("--config").arg(&file), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("error: {}:2:11: expected a whole number from 0 to 4294967295\n", file.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("    | redis_db: abc\n    |           ^"), "{stderr}");

    let out = exit_within(gateway().env("JWT_SECRET", "s").env("WS_PING_INTERVAL", "soon"), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: WS_PING_INTERVAL: `soon` is not a duration: write milliseconds (60000) or a number with a unit"
        ),
        "{stderr}"
    );
    let out = exit_within(gateway().env("JWT_SECRET", "s").env("PORT", "30OO"), Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: PORT: `30OO` is not a whole number from 0 to 65535"), "{stderr}");
}

#[test]
fn help_lists_the_environment() {
    let out = gateway().arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for var in ["JWT_SECRET", "REDIS_URL", "WS_WRITE_TIMEOUT", "MAX_CONNECTIONS_PER_IP", "SHUTDOWN_DELAY"] {
        assert!(stdout.contains(var), "--help does not mention {var}:\n{stdout}");
    }
}

#[test]
fn a_node_that_cannot_reach_its_redis_refuses_to_start_and_hides_the_password() {
    // Port 1 on loopback: nothing listens there.
    let out = gateway()
        .env("REDIS_URL", "redis://:sekrit-pass@127.0.0.1:1")
        .env("JWT_SECRET", "s")
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("cannot reach Redis at redis://127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("sekrit-pass") && !stdout.contains("sekrit-pass"), "{stderr}{stdout}");
}

#[test]
fn token_mints_with_the_configured_secret_and_refuses_without_one() {
    let out = gateway()
        .args(["token", "--sub", "u1", "--tenant", "t1", "--roles", "admin,ops", "--ttl", "5m"])
        .env("JWT_SECRET", "cli-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(
        token.trim(),
        &jsonwebtoken::DecodingKey::from_secret(b"cli-secret"),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "u1");
    assert_eq!(claims["tenantId"], "t1");
    assert_eq!(claims["roles"], serde_json::json!(["admin", "ops"]));

    let out = gateway().args(["token", "--sub", "u1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET is not set"));
}

#[test]
fn healthcheck_exits_0_when_healthz_answers_200_and_1_otherwise() {
    let gw = start(&[("JWT_SECRET", crate::helpers::SECRET)]);
    let healthcheck = |port: u16| {
        // HOST as the container image sets it: every address, so the probe goes to loopback.
        gateway().arg("healthcheck").env("HOST", "0.0.0.0").env("PORT", port.to_string()).output().unwrap()
    };
    let out = healthcheck(gw.addr.port());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("answered `HTTP/1.1 200 OK`"));

    // Something answers, but not 200.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 256];
        while !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the request ended early: {:?}", String::from_utf8_lossy(&request));
            request.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").unwrap();
        String::from_utf8(request).unwrap()
    });
    let out = healthcheck(port);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("answered `HTTP/1.1 503 Service Unavailable`"), "{stderr}");
    assert!(server.join().unwrap().starts_with("GET /healthz HTTP/1.1\r\n"));

    // Nothing listens (a port just freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = healthcheck(port);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}

/// A gateway process, killed when dropped.
struct Process {
    child: std::process::Child,
    /// Log lines after `listening`.
    lines: Box<dyn Iterator<Item = Value> + Send>,
    /// Log lines before `listening`.
    before: Vec<Value>,
    /// The `listening` line.
    listening: Value,
    addr: std::net::SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with `env` (JSON logs on stdout) until it says where it listens.
fn start(env: &[(&str, &str)]) -> Process {
    start_with(env, |_| {})
}

/// [`start`], with `stdout` (the pipe the logs go to) prepared by `prepare` first.
fn start_with(env: &[(&str, &str)], prepare: impl FnOnce(&std::process::ChildStdout)) -> Process {
    let mut cmd = gateway();
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    prepare(&stdout);
    let mut lines =
        BufReader::new(stdout).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str::<Value>(&l).ok());
    let mut before = Vec::new();
    let listening = loop {
        let line = lines.next().unwrap_or_else(|| panic!("the gateway exited before listening: {before:?}"));
        if line["message"] == "listening" {
            break line;
        }
        before.push(line);
    };
    let addr = listening["addr"].as_str().unwrap().parse().unwrap();
    Process { child, lines: Box::new(lines), before, listening, addr }
}

#[tokio::test]
async fn dev_mode_starts_without_config_and_hands_out_a_working_token_and_key() {
    let gw = start(&[]);
    let warning = gw.before.iter().find(|l| l["demo_token"].is_string()).expect("the dev-mode warning carries a token");
    assert_eq!(warning["level"], "WARN");
    let token = warning["demo_token"].as_str().unwrap();
    let key = warning["demo_api_key"].as_str().unwrap();
    assert!(key.starts_with("dev-"), "{key}");

    let mut client =
        crate::helpers::SioClient::connect(gw.addr, "/workflow", serde_json::json!({ "token": token })).await;
    assert_eq!(client.expect("connected").await["tenantId"], "demo-tenant");
    client.emit_with_ack("subscribe", serde_json::json!({ "type": "execution", "resourceId": "e1" })).await;
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v1/events", gw.addr))
        .header("x-api-key", key)
        .json(&serde_json::json!({ "type": "execution.started", "tenantId": "demo-tenant", "data": { "executionId": "e1" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(client.wait_for("update").await["type"], "execution.started");
}

#[test]
fn a_misspelt_setting_is_warned_about_by_its_right_name() {
    let gw = start(&[("JWT_SECRET", crate::helpers::SECRET), ("REDIS_URI", "redis://cache"), ("API_KEY", "k1")]);
    let warnings: Vec<&str> =
        gw.before.iter().filter(|l| l["level"] == "WARN").filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(
        warnings,
        [
            "API_KEY is not a setting of the gateway and is ignored (did you mean API_KEYS?)",
            "REDIS_URI is not a setting of the gateway and is ignored (did you mean REDIS_URL?)",
        ]
    );
    let out = gateway().arg("check").env("WS_PING_INTERVALS", "1000").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "warning: WS_PING_INTERVALS is not a setting of the gateway and is ignored (did you mean WS_PING_INTERVAL?)\n"
    );
}

#[test]
fn the_start_up_log_tells_the_socket_io_namespace_ws_from_the_plain_endpoint_ws() {
    let gw = start(&[("JWT_SECRET", crate::helpers::SECRET)]);
    // `namespaces` is the list as the log shows it, `["/", ...]`.
    let served: Vec<String> = serde_json::from_str(gw.listening["namespaces"].as_str().unwrap()).unwrap();
    assert_eq!(served, ["/", "/realtime", "/workflow", "/ws", "/ws (plain WebSocket)"]);
}

#[test]
fn on_a_terminal_dev_mode_shows_its_demo_token_and_key_once() {
    use std::os::fd::{FromRawFd, OwnedFd};
    // A pseudo-terminal for stdout and stderr, as `cargo run` in a terminal has.
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors, owned from here on; the other arguments may be null.
    let opened = unsafe {
        libc::openpty(&mut controller, &mut terminal, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(opened, 0, "openpty");
    let (controller, terminal) = unsafe { (OwnedFd::from_raw_fd(controller), OwnedFd::from_raw_fd(terminal)) };
    let mut cmd = gateway();
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal));
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // the terminal's last descriptor here: the screen ends when the gateway does
    let (screen, shown) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut controller = std::fs::File::from(controller);
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = controller.read(&mut chunk) {
            if screen.send(String::from_utf8_lossy(&chunk[..n]).into_owned()).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("listening") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match shown.recv_timeout(left) {
            Ok(more) => text.push_str(&more),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("listening"), "the gateway did not start: {text}");
    let token_line = text.lines().skip_while(|l| !l.contains("Demo token")).nth(1).expect("the banner shows a token");
    let token = token_line.trim();
    assert!(token.starts_with("eyJ"), "{token_line}");
    assert_eq!(text.matches(token).count(), 1, "the demo token is shown once:\n{text}");
    let key = text.split_whitespace().find(|w| w.starts_with("dev-")).expect("a demo key");
    assert_eq!(text.matches(key).count(), 1, "the demo key is shown once:\n{text}");
    assert!(text.contains("dev mode: JWT_SECRET is not set"), "the log still says it is dev mode");
}

#[tokio::test]
async fn sigterm_closes_sockets_and_exits_cleanly() {
    let mut gw = start(&[("JWT_SECRET", crate::helpers::SECRET), ("API_KEYS", "k")]);
    let token = crate::helpers::token("u1", Some("t1"), 60);
    let mut client =
        crate::helpers::SioClient::connect(gw.addr, "/workflow", serde_json::json!({ "token": token })).await;
    client.expect("connected").await;
    assert!(Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap().success());
    client.expect_disconnect().await;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the gateway did not exit within 10s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    assert!(gw.lines.any(|l| l["message"] == "stopped"));
}

#[tokio::test]
async fn tokens_and_keys_never_reach_the_logs_even_at_trace_level() {
    let token = crate::helpers::token("u1", Some("t1"), 60);
    let bad_token = crate::helpers::token("u1", None, 60);
    let mut gw = start(&[
        ("JWT_SECRET", crate::helpers::SECRET),
        ("API_KEYS", "key-that-must-not-print"),
        ("LOG_LEVEL", "trace"),
    ]);
    let mut client =
        crate::helpers::SioClient::connect(gw.addr, "/workflow", serde_json::json!({ "token": token })).await;
    client.expect("connected").await;
    client.emit_with_ack("auth:refresh", serde_json::json!({ "token": token })).await;
    let mut refused = crate::helpers::SioClient::open(gw.addr, &format!("&token={bad_token}")).await;
    futures_util::SinkExt::send(&mut refused, tokio_tungstenite::tungstenite::Message::text("40/workflow,"))
        .await
        .unwrap();
    assert!(crate::helpers::next_text(&mut refused).await.unwrap().starts_with("40/workflow,"));
    let res = reqwest::Client::new()
        .post(format!("http://{}/api/v1/events", gw.addr))
        .header("x-api-key", "key-that-must-not-print")
        .json(&serde_json::json!({ "type": "metrics.updated", "tenantId": "t1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    drop(client);
    assert!(Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap().success());
    let logs: Vec<String> = gw.lines.by_ref().map(|l| l.to_string()).collect();
    let all = logs.join("\n");
    assert!(all.contains("connection refused"), "the logs were read: {all}");
    for secret in [token.as_str(), bad_token.as_str(), crate::helpers::SECRET, "key-that-must-not-print"] {
        assert!(!all.contains(secret), "a secret was logged");
    }
}

/// Bytes waiting in the pipe behind `fd`.
fn pipe_bytes(fd: std::os::fd::RawFd) -> usize {
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, for a descriptor this test owns.
    assert_eq!(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut waiting) }, 0);
    waiting as usize
}

#[tokio::test]
async fn a_gateway_whose_stdout_nobody_reads_keeps_serving_while_clients_make_it_log() {
    use std::os::fd::AsRawFd;
    const PIPE: usize = 4096;
    let mut fd = -1;
    let gw = start_with(
        &[("JWT_SECRET", crate::helpers::SECRET), ("API_KEYS", crate::helpers::API_KEY), ("LOG_LEVEL", "debug")],
        |stdout| {
            fd = stdout.as_raw_fd();
            // The smallest pipe Linux makes (a page), so that a few lines fill it.
            // SAFETY: F_SETPIPE_SZ takes an int, for a descriptor this test owns.
            assert!(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE as libc::c_int) } >= PIPE as libc::c_int);
        },
    );
    // From here on nobody reads the gateway's stdout. Clients make it log: refused handshakes
    // on both fronts, each logged where the gateway refuses it.
    let addr = gw.addr;
    let flood: Vec<_> = (0..300)
        .map(|i| {
            tokio::spawn(tokio::time::timeout(Duration::from_secs(5), async move {
                if i % 2 == 0 {
                    let _ = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token=bad-{i}")).await;
                } else {
                    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
                    if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                        let refused = format!("40/workflow,{{\"token\":\"bad-{i}\"}}");
                        let _ = futures_util::SinkExt::send(&mut ws, Message::text(refused)).await;
                        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut ws).await {}
                    }
                }
            }))
        })
        .collect();
    let started = std::time::Instant::now();
    while pipe_bytes(fd) < PIPE - 1024 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the logs never filled the pipe: {} bytes",
            pipe_bytes(fd)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    futures_util::future::join_all(flood).await;

    // The pipe is full and stays unread: the gateway still connects, subscribes and delivers.
    let token = crate::helpers::token("u1", Some("t1"), 60);
    let mut client = tokio::time::timeout(
        Duration::from_secs(10),
        crate::helpers::SioClient::connect(addr, "/workflow", serde_json::json!({ "token": token })),
    )
    .await
    .expect("a connection while stdout is stuck");
    client.expect("connected").await;
    client.emit_with_ack("subscribe", serde_json::json!({ "type": "execution", "resourceId": "e1" })).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let published = http
        .post(format!("http://{addr}/api/v1/events"))
        .header("x-api-key", crate::helpers::API_KEY)
        .json(&serde_json::json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1" } }))
        .send()
        .await
        .expect("a publish while stdout is stuck");
    assert_eq!(published.status(), 202);
    assert_eq!(client.wait_for("update").await["type"], "execution.started");
    assert!(pipe_bytes(fd) >= PIPE - 1024, "the pipe was read meanwhile");

    // What was not written is counted: the refusals beyond their place's rate.
    let metrics = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let rate_limited = metrics
        .lines()
        .find_map(|l| l.strip_prefix("realtime_gateway_log_lines_dropped_total{reason=\"rate_limited\"} "))
        .expect("the dropped log lines are on /metrics");
    assert!(rate_limited.parse::<u64>().unwrap() > 0, "{metrics}");

    // Nor does the stuck pipe hold the process when it is told to stop.
    let mut gw = gw;
    drop(client);
    assert!(Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap().success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the gateway did not exit within 10s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn malformed_or_shared_tenant_keys_refuse_to_start_and_the_message_shows_no_key() {
    let cases: [(&str, &str); 5] = [
        ("tenant-a", "TENANT_API_KEYS: entry 1 has no `:`"),
        ("tenant-a:key-one,:key-two", "TENANT_API_KEYS: entry 2 has no tenant"),
        ("tenant-a:", "TENANT_API_KEYS: entry 1 (tenant `tenant-a`) has no key"),
        ("tenant-a:key-one,tenant-b:key-one", "TENANT_API_KEYS: tenants `tenant-a` and `tenant-b` have the same key"),
        ("tenant-a:platform-key", "TENANT_API_KEYS: a key of tenant `tenant-a` is also one of API_KEYS"),
    ];
    for (value, message) in cases {
        let mut cmd = gateway();
        cmd.env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("JWT_SECRET", "s")
            .env("API_KEYS", "platform-key")
            .env("TENANT_API_KEYS", value);
        let out = exit_within(&mut cmd, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(1), "{value} must not start");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(stderr.starts_with(&format!("error: {message}")), "{value}: {stderr}");
        for key in ["key-one", "key-two", "platform-key"] {
            assert!(!stderr.contains(key) && !stdout.contains(key), "{value}: a key was printed: {stderr}");
        }
    }
}

#[tokio::test]
async fn tenant_keys_never_reach_the_logs_even_at_trace_level() {
    let mut gw = start(&[
        ("JWT_SECRET", crate::helpers::SECRET),
        ("API_KEYS", "platform-key-that-must-not-print"),
        ("TENANT_API_KEYS", "t1:tenant-key-that-must-not-print,t2:other-tenant-key-must-not-print"),
        ("LOG_LEVEL", "trace"),
    ]);
    let http = reqwest::Client::new();
    let publish = |tenant: &'static str| {
        http.post(format!("http://{}/api/v1/events", gw.addr))
            .header("x-api-key", "tenant-key-that-must-not-print")
            .json(&serde_json::json!({ "type": "metrics.updated", "tenantId": tenant }))
            .send()
    };
    assert_eq!(publish("t1").await.unwrap().status(), 202);
    assert_eq!(publish("t2").await.unwrap().status(), 403);
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/ws?tenantId=t2",
        gw.addr
    ))
    .unwrap();
    request.headers_mut().insert("x-api-key", "tenant-key-that-must-not-print".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err(), "another tenant is refused");
    assert!(Command::new("kill").args(["-TERM", &gw.child.id().to_string()]).status().unwrap().success());
    let all: String = gw
        .before
        .iter()
        .chain([&gw.listening])
        .map(|l| l.to_string())
        .chain(gw.lines.by_ref().map(|l| l.to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("connection refused"), "the logs were read: {all}");
    for secret in
        ["platform-key-that-must-not-print", "tenant-key-that-must-not-print", "other-tenant-key-must-not-print"]
    {
        assert!(!all.contains(secret), "a key was logged");
    }
}
