//! A Kafka-protocol broker for tests: librdkafka's mock cluster (one broker on 127.0.0.1),
//! printing `bootstrap=<host:port>` on its first line. It then reads commands, one a line, from
//! its standard input, and answers each with a line: `down` (the broker drops its connections
//! and refuses new ones), `up` (it serves again, on the same port). It exits when its standard
//! input closes, so it never outlives the test that started it.
//!
//! Topics named by `--topic NAME` (repeatable) are created up front with one partition.

use std::io::{BufRead, Write};

use rdkafka::{mocking::MockCluster, producer::DefaultProducerContext};

/// The mock cluster's only broker.
const BROKER: i32 = 1;

fn main() {
    let mut topics = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--topic", Some(topic)) => topics.push(topic),
            _ => {
                eprintln!("usage: kafka-test-broker [--topic NAME]...");
                std::process::exit(2);
            }
        }
    }
    let cluster: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).expect("a mock cluster");
    for topic in &topics {
        cluster.create_topic(topic, 1, 1).expect("the topic created");
    }
    let mut out = std::io::stdout();
    writeln!(out, "bootstrap={}", cluster.bootstrap_servers()).and_then(|()| out.flush()).expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "down" => cluster.broker_down(BROKER).map(|()| "ok down".to_string()),
            "up" => cluster.broker_up(BROKER).map(|()| "ok up".to_string()),
            other => Ok(format!("error unknown command `{other}`")),
        }
        .unwrap_or_else(|e| format!("error {e}"));
        writeln!(out, "{answer}").and_then(|()| out.flush()).expect("stdout");
    }
}
