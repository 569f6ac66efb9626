//! Timestamps in the format the seeds' JavaScript produced (`new Date().toISOString()`).

use std::time::SystemTime;

/// Now, as `2024-01-15T10:30:00.123Z`.
pub fn iso_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A Unix time in seconds, as an ISO 8601 string.
pub fn iso_from_secs(secs: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}
