//! Logging: `tracing` events to stdout, one JSON object per line when stdout is not a terminal
//! (containers, log shippers), human-readable otherwise; the filter comes from `LOG_LEVEL`.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Crates whose debug and trace logs print frames, headers or URLs, and with them client tokens
/// (a handshake's `auth` payload, a `?token=` query). They never log below `info`, whatever
/// `LOG_LEVEL` says: secrets must not reach logs.
const TRANSPORT_CRATES: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "engineioxide",
    "socketioxide",
    "axum",
    "tower_http",
];

/// The `LOG_LEVEL` filter, with the transport crates capped at `info`.
fn log_filter(level: &str) -> anyhow::Result<EnvFilter> {
    let mut filter =
        EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("LOG_LEVEL `{level}` is not a valid filter: {e}"))?;
    for name in TRANSPORT_CRATES {
        filter = filter.add_directive(format!("{name}=info").parse().expect("a valid directive"));
    }
    Ok(filter)
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = log_filter(level)?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(false).with_span_list(false))
            .try_init()?;
    } else {
        registry.with(fmt::layer().compact()).try_init()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_crates_stay_at_info_even_when_asked_for_trace() {
        let shown = log_filter("trace,tungstenite=trace").unwrap().to_string();
        assert!(shown.contains("tungstenite=info"), "{shown}");
        assert!(!shown.contains("tungstenite=trace"), "{shown}");
    }
}
