//! Where bridges' sinks deliver (seed 003's `messageHandling`): PostgreSQL for `database`
//! (`DATABASE_URL`), Kafka for `kafka` (`KAFKA_BROKERS`), and the check that every bridge whose
//! strategy needs one of them has it, so a missing setting stops the start naming the bridge and
//! the variable rather than dropping every message it receives.
//!
//! `DATABASE_URL` may hold a password: it is a [`SecretString`], and errors about it never
//! repeat its value.

use anyhow::bail;
use secrecy::{ExposeSecret, SecretString};

use super::{
    HandlingStrategy, MessageHandling,
    bridges::BridgeConfig,
    env::{Env, list},
    file::FileConfig,
};

/// Most Kafka bootstrap brokers one list may name.
const MAX_BROKERS: usize = 100;

/// The sinks' destinations.
#[derive(Debug, Clone, Default)]
pub struct SinksConfig {
    /// `DATABASE_URL`: `postgres://user:password@host:port/database` (or PostgreSQL's
    /// `key=value` form); a secret.
    pub database_url: Option<SecretString>,
    /// `KAFKA_BROKERS`: bootstrap brokers, `host:port` each.
    pub kafka_brokers: Vec<String>,
}

impl SinksConfig {
    /// `DATABASE_URL` and `KAFKA_BROKERS`, checked.
    pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<Self> {
        let database_url = env.get("DATABASE_URL").or_else(|| file.database_url.clone());
        if let Some(url) = &database_url {
            check_database_url(url)?;
        }
        let kafka_brokers = match env.get("KAFKA_BROKERS") {
            Some(v) => list(v),
            None => file.kafka_brokers.clone().map(|l| l.into_vec(list)).unwrap_or_default(),
        };
        if kafka_brokers.len() > MAX_BROKERS {
            bail!("KAFKA_BROKERS: at most {MAX_BROKERS} brokers, got {}", kafka_brokers.len());
        }
        for broker in &kafka_brokers {
            check_broker(broker)?;
        }
        Ok(Self { database_url: database_url.map(SecretString::from), kafka_brokers })
    }

    /// Refuses a bridge whose strategy needs a destination this configuration lacks.
    pub fn check_bridges(&self, bridges: &[BridgeConfig]) -> anyhow::Result<()> {
        for bridge in bridges.iter().filter(|b| b.provider.enable_receiving) {
            let Some(handling) = &bridge.provider.message_handling else { continue };
            if handling.stores_in_database() && self.database_url.is_none() {
                bail!(
                    "bridge `{}` stores incoming messages in PostgreSQL (messageHandling.strategy \"{}\"): set DATABASE_URL",
                    bridge.name,
                    handling.strategy.as_str()
                );
            }
            if handling.publishes_to_kafka() && self.kafka_brokers.is_empty() {
                bail!(
                    "bridge `{}` publishes incoming messages to Kafka (messageHandling.strategy \"{}\"): set KAFKA_BROKERS",
                    bridge.name,
                    handling.strategy.as_str()
                );
            }
        }
        Ok(())
    }

    /// The database URL, for the sink that connects with it.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_ref().map(|u| u.expose_secret())
    }
}

impl MessageHandling {
    /// Whether messages go to the webhook: `callback`, or `all` with a `callbackUrl`.
    pub fn calls_back(&self) -> bool {
        match self.strategy {
            HandlingStrategy::Callback => true,
            HandlingStrategy::All => self.callback_url.is_some(),
            _ => false,
        }
    }

    /// Whether messages go to PostgreSQL: `database`, or `all` with `storeInDatabase`.
    pub fn stores_in_database(&self) -> bool {
        match self.strategy {
            HandlingStrategy::Database => true,
            HandlingStrategy::All => self.store_in_database,
            _ => false,
        }
    }

    /// Whether messages go to Kafka: `kafka`, or `all` with `publishToKafka`.
    pub fn publishes_to_kafka(&self) -> bool {
        match self.strategy {
            HandlingStrategy::Kafka => true,
            HandlingStrategy::All => self.publish_to_kafka,
            _ => false,
        }
    }
}

/// A PostgreSQL connection string the client understands; the error names what is wrong, never
/// the value (it may hold a password).
fn check_database_url(url: &str) -> anyhow::Result<()> {
    let looks_like_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !looks_like_url && !url.contains('=') {
        bail!("DATABASE_URL: must be postgres://user:password@host:port/database (or PostgreSQL's key=value form)");
    }
    match url.parse::<tokio_postgres::Config>() {
        // The client's parse errors name an option, not its value.
        Err(e) => bail!("DATABASE_URL: not a PostgreSQL connection string: {e}"),
        Ok(config) if config.get_hosts().is_empty() => bail!("DATABASE_URL: names no host"),
        Ok(_) => Ok(()),
    }
}

/// `host:port`, the port a number.
fn check_broker(broker: &str) -> anyhow::Result<()> {
    let valid = broker.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) && !host.contains(['/', '@', ' '])
    });
    if !valid {
        bail!(
            "KAFKA_BROKERS: `{broker}` is not host:port (a comma-separated list of bootstrap brokers, such as kafka-1:9092,kafka-2:9092)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_bridges_file;

    fn sinks(vars: &[(&str, &str)]) -> anyhow::Result<SinksConfig> {
        let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        SinksConfig::from_sources(&Env(&lookup), &FileConfig::default())
    }

    #[test]
    fn database_url_errors_never_show_the_password() {
        let e = sinks(&[("DATABASE_URL", "mysql://u:hunter2@db/x")]).unwrap_err().to_string();
        assert!(e.starts_with("DATABASE_URL:") && !e.contains("hunter2"), "{e}");
        let e = sinks(&[("DATABASE_URL", "postgres://u:hunter2@db:notaport/x")]).unwrap_err().to_string();
        assert!(e.starts_with("DATABASE_URL:") && !e.contains("hunter2"), "{e}");
        let ok = sinks(&[("DATABASE_URL", "postgres://u:hunter2@db:5432/x")]).unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }

    #[test]
    fn kafka_brokers_are_host_and_port() {
        let ok = sinks(&[("KAFKA_BROKERS", "kafka-1:9092, kafka-2:9093")]).unwrap();
        assert_eq!(ok.kafka_brokers, ["kafka-1:9092", "kafka-2:9093"]);
        let e = sinks(&[("KAFKA_BROKERS", "kafka-1")]).unwrap_err().to_string();
        assert!(e.starts_with("KAFKA_BROKERS: `kafka-1` is not host:port"), "{e}");
    }

    #[test]
    fn a_bridge_needing_a_missing_sink_is_refused_by_name() {
        let bridges = parse_bridges_file(
            r#"[{"tenantId": 1, "name": "io", "mode": "external", "protocol": "ws", "url": "ws://x",
                "enableReceiving": true, "subscribeToEvents": ["a"],
                "messageHandling": {"strategy": "all", "callbackUrl": "http://x/h", "storeInDatabase": true,
                  "publishToKafka": true, "kafkaTopic": "t"}}]"#,
        )
        .unwrap();
        let e = sinks(&[]).unwrap().check_bridges(&bridges).unwrap_err().to_string();
        assert!(e.contains("bridge `io`") && e.contains("DATABASE_URL"), "{e}");
        let e = sinks(&[("DATABASE_URL", "postgres://db/x")]).unwrap().check_bridges(&bridges).unwrap_err();
        assert!(e.to_string().contains("KAFKA_BROKERS"), "{e}");
        let all = sinks(&[("DATABASE_URL", "postgres://db/x"), ("KAFKA_BROKERS", "k:9092")]).unwrap();
        all.check_bridges(&bridges).unwrap();
    }
}
