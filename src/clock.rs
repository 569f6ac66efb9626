//! Timestamps in the format the seeds' JavaScript produced (`new Date().toISOString()`).

use std::time::SystemTime;

/// Now, as `2024-01-15T10:30:00.123Z`.
pub(crate) fn iso_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The last second the format can show: 9999-12-31T23:59:59Z.
const LAST_SHOWN_SECS: u64 = 253_402_300_799;

/// A Unix time in seconds, as an ISO 8601 string. A later time (a token's `exp` of `1e300`)
/// shows as the last second of year 9999, which the format (and JavaScript's `Date`) can hold.
pub(crate) fn iso_from_secs(secs: u64) -> String {
    let shown = std::time::Duration::from_secs(secs.min(LAST_SHOWN_SECS));
    humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + shown).to_string()
}

/// Milliseconds since the epoch.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_past_year_9999_show_as_its_last_second() {
        assert_eq!(iso_from_secs(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_secs(LAST_SHOWN_SECS), "9999-12-31T23:59:59.000Z");
        assert_eq!(iso_from_secs(LAST_SHOWN_SECS + 1), "9999-12-31T23:59:59.000Z");
        assert_eq!(iso_from_secs(u64::MAX), "9999-12-31T23:59:59.000Z");
    }
}
