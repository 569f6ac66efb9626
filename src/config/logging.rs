//! Logging settings: the filter (`LOG_LEVEL`, checked here so a bad one cannot silence every
//! line, dev mode's token included) and the line format (`LOG_FORMAT`).

use anyhow::bail;

use super::{env::Env, file::FileConfig};
use crate::telemetry::LogFormat;

/// `LOG_LEVEL`, checked: a level (`error`..`trace`, `off`, or the Node/NestJS names `log`,
/// `verbose`, `warning`, `fatal`), or `tracing` directives such as `info,realtime_gateway=debug`.
/// A bare word that is not a level would be read by `tracing` as a module name, turning every
/// other log off: that is refused.
pub fn log_filter(value: &str) -> Result<String, String> {
    let mut directives = Vec::new();
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.contains('=') {
            directives.push(directive.to_string());
            continue;
        }
        let level = match directive.to_ascii_lowercase().as_str() {
            "log" => "info",
            "verbose" => "trace",
            "warning" => "warn",
            "fatal" | "critical" => "error",
            level @ ("error" | "warn" | "info" | "debug" | "trace" | "off") => level,
            _ => {
                return Err(format!(
                    "`{directive}` is not a level (error, warn, info, debug, trace, off); to set a module's level write module=level"
                ));
            }
        }
        .to_string();
        directives.push(level);
    }
    if directives.is_empty() {
        return Err("empty: set a level such as info".into());
    }
    let filter = directives.join(",");
    tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| format!("`{value}` is not a log filter: {e}"))?;
    Ok(filter)
}

/// `LOG_LEVEL` (checked, see [`log_filter`]) and `LOG_FORMAT`.
pub(super) fn from_sources(env: &Env, file: &FileConfig) -> anyhow::Result<(String, LogFormat)> {
    let log_level =
        log_filter(&env.get("LOG_LEVEL").or_else(|| file.log_level.clone()).unwrap_or_else(|| "info".to_string()))
            .map_err(|e| anyhow::anyhow!("LOG_LEVEL: {e}"))?;
    let log_format = match env.get("LOG_FORMAT") {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            "auto" => LogFormat::Auto,
            other => bail!("LOG_FORMAT: `{other}` is not one of json, pretty, auto"),
        },
        None => file.log_format.unwrap_or(LogFormat::Auto),
    };
    Ok((log_level, log_format))
}
