//! The environment as the section builders read it: one variable at a time, typed, with the
//! config file's value and the default behind it (`env` wins over the file, the file over the
//! default). Every error names the variable and says what was expected.
//!
//! The lookup itself is given (the process environment in `Config::load`, a map in tests), so
//! nothing here reads the process environment.

use std::time::Duration;

use anyhow::bail;

use super::file::DurationSetting;
use crate::spec::durations::parse_duration;

/// A lookup of one environment variable: its value when it is set and not blank.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The variable's value, when it is set and not blank.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// A duration: milliseconds, or with a unit (`60s`).
    pub(super) fn duration(
        &self,
        name: &str,
        file: Option<DurationSetting>,
        default_ms: u64,
    ) -> anyhow::Result<Duration> {
        match self.get(name) {
            Some(v) => parse_duration(&v).map_err(|e| anyhow::anyhow!("{name}: {e}")),
            None => Ok(file.map(|d| d.0).unwrap_or(Duration::from_millis(default_ms))),
        }
    }

    /// A number of type `T`; the error says which numbers `T` holds.
    pub(super) fn number<T: std::str::FromStr>(&self, name: &str, file: Option<T>, default: T) -> anyhow::Result<T> {
        match self.get(name) {
            Some(v) => v.trim().parse().map_err(|_| {
                anyhow::anyhow!("{name}: `{v}` is not {}", crate::parse_errors::expected(std::any::type_name::<T>()))
            }),
            None => Ok(file.unwrap_or(default)),
        }
    }

    /// A switch: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, in any case.
    pub(super) fn boolean(&self, name: &str, file: Option<bool>, default: bool) -> anyhow::Result<bool> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => bail!("{name}: `{v}` is not true or false"),
            None => Ok(file.unwrap_or(default)),
        }
    }
}

/// A comma-separated list, items trimmed, empty ones left out.
pub(super) fn list(v: String) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}
