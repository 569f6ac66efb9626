//! The value syntaxes specs and the gateway's settings share: durations (`60000` milliseconds, or
//! `60s`) and rates (`600/1m`). Here, and not in `crate::config`, so that `config` depends on
//! `spec` (for [`RateLimit`] and the misspelling finder) and never the other way round; config
//! re-exports them.

use std::time::Duration;

use serde::Deserialize;

use super::RateLimit;

/// Deserializes a duration written as milliseconds (`60000`) or with a unit (`60s`), for config
/// files and specs alike.
pub fn deserialize_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// Parses `60000` (milliseconds) or a humantime duration such as `60s`, `1m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s).map_err(|e| crate::parse_errors::duration(s, &e))
}

/// Parses a rate such as `600/1m` (600 per minute, burst 600); `0` or `off` turns it off.
pub fn parse_rate(s: &str) -> Result<Option<RateLimit>, String> {
    let s = s.trim();
    if s == "0" || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (max, per) = s.split_once('/').ok_or_else(|| format!("`{s}` is not a rate such as 600/1m (or 0 for none)"))?;
    let max: u32 = max.trim().parse().map_err(|_| format!("`{max}` in `{s}` is not a count"))?;
    let per = parse_duration(per)?;
    if max == 0 || per.is_zero() {
        return Err(format!("`{s}` needs a count and a period above zero (or 0 for none)"));
    }
    Ok(Some(RateLimit { max, per }))
}
