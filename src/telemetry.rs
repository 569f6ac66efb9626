//! Logging: `tracing` events to stdout, one JSON object per line when stdout is not a terminal
//! (containers, log shippers), human-readable otherwise; the filter comes from `LOG_LEVEL`.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("LOG_LEVEL `{level}` is not a valid filter: {e}"))?;
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
