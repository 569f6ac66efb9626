//! What a value that does not parse is told as, in the terms of whoever wrote it: an operator's
//! config file and environment, a spec writer's YAML, a client's JSON. Parsers say `invalid u32`
//! or `expected number at 0`; people are told what was expected (`a whole number from 0 to
//! 4294967295`, `milliseconds or a number with a unit`) and where. One place for that wording.

pub(crate) mod suggest;

use std::borrow::Cow;

use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};

/// What a value of the Rust type named `type_name` (`u32`, `bool`, ...) is, in words; other
/// names as they are.
pub(crate) fn expected(type_name: &str) -> Cow<'static, str> {
    let words = match type_name.rsplit("::").next().unwrap_or(type_name) {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" | "floating point" => "a number",
        "bool" | "boolean" => "true or false",
        "char" => "a single character",
        "string" | "a string" | "String" => "text",
        other => return Cow::Owned(other.to_string()),
    };
    Cow::Borrowed(words)
}

/// A YAML error's message, without its location (the caller shows the file, line and column).
pub(crate) fn yaml(e: &YamlError) -> String {
    let message = PlainWords.format_message(e);
    // The renderer would neutralize control characters; this message is shown as is.
    message.chars().flat_map(|c| if c.is_control() { c.escape_debug().collect() } else { vec![c] }).collect()
}

/// serde-saphyr's messages for people, with type names and unknown fields said in their terms.
struct PlainWords;

impl MessageFormatter for PlainWords {
    fn format_message<'a>(&self, err: &'a YamlError) -> Cow<'a, str> {
        match err {
            YamlError::WithSnippet { error, .. } => self.format_message(error),
            YamlError::InvalidScalar { ty, .. } => Cow::Owned(format!("expected {}", expected(ty))),
            YamlError::Unexpected { expected: "string scalar" | "scalar", .. } => {
                Cow::Borrowed("expected a single value here, not a list or a map")
            }
            YamlError::Unexpected { expected: "sequence start", .. } => Cow::Borrowed("expected a list here"),
            YamlError::Unexpected { expected: "mapping start", .. } => {
                Cow::Borrowed("expected a map (`key: value` lines) here")
            }
            YamlError::SerdeInvalidType { unexpected, expected: wanted, .. }
            | YamlError::SerdeInvalidValue { unexpected, expected: wanted, .. } => {
                Cow::Owned(format!("expected {}, not {unexpected}", expected(wanted)))
            }
            YamlError::SerdeUnknownField { field, expected: known, .. } => {
                Cow::Owned(crate::parse_errors::suggest::unknown_field(field, known))
            }
            other => UserMessageFormatter.format_message(other),
        }
    }
}

/// Why `text` is not JSON, for the client that sent it: where it stops making sense.
pub(crate) fn json(text: &[u8], e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "it ends before the JSON is complete".to_string(),
        Category::Io => "it could not be read".to_string(),
        Category::Syntax | Category::Data => {
            let line = text.split(|b| *b == b'\n').nth(e.line().saturating_sub(1)).unwrap_or_default();
            let found = String::from_utf8_lossy(line).chars().nth(e.column().saturating_sub(1));
            match found {
                Some(c) if !c.is_control() => {
                    format!("unexpected `{c}` at line {}, column {}", e.line(), e.column())
                }
                _ => format!("unexpected input at line {}, column {}", e.line(), e.column()),
            }
        }
    }
}

/// Why `text` is not a duration (milliseconds, or humantime's `30s`, `1m`, `1h 30m`).
pub(crate) fn duration(text: &str, e: &humantime::DurationError) -> String {
    let how = "write milliseconds (60000) or a number with a unit (500ms, 30s, 1m, 2h)";
    match e {
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!("`{text}` is not a duration: `{unit}` is not a unit of time; {how}")
        }
        humantime::DurationError::NumberOverflow => format!("`{text}` is too long a duration"),
        _ => format!("`{text}` is not a duration: {how}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        port: Option<u16>,
        count: Option<u32>,
        ratio: Option<f64>,
        on: Option<bool>,
        api_keys: Option<Vec<String>>,
    }

    fn yaml_error(text: &str) -> String {
        yaml(&serde_saphyr::from_str::<Settings>(text).unwrap_err())
    }

    #[test]
    fn yaml_numbers_and_booleans_say_what_was_expected() {
        assert_eq!(yaml_error("port: 99999"), "expected a whole number from 0 to 65535");
        assert_eq!(yaml_error("count: many"), "expected a whole number from 0 to 4294967295");
        assert_eq!(yaml_error("count: -1"), "expected a whole number from 0 to 4294967295");
        assert_eq!(yaml_error("ratio: half"), "expected a number");
        assert_eq!(yaml_error("on: maybe"), "expected true or false");
        assert_eq!(yaml_error("port: [1]"), "expected a single value here, not a list or a map");
        assert_eq!(yaml_error("api_keys: {a: 1}"), "expected a list here");
        for text in ["port: 99999", "count: many", "ratio: half", "on: maybe", "port: [1]"] {
            let message = yaml_error(text);
            assert!(!message.contains("u16") && !message.contains("u32") && !message.contains("invalid"), "{message}");
        }
    }

    #[test]
    fn an_unknown_yaml_field_suggests_the_one_meant() {
        assert_eq!(
            yaml_error("api_key: k1"),
            "unknown field `api_key`, expected one of port, count, ratio, on, api_keys (did you mean `api_keys`?)"
        );
        assert_eq!(yaml_error("zzz: 1"), "unknown field `zzz`, expected one of port, count, ratio, on, api_keys");
    }

    #[test]
    fn json_errors_say_where_the_text_stops_being_json() {
        let why = |text: &str| json(text.as_bytes(), &serde_json::from_str::<serde_json::Value>(text).unwrap_err());
        assert_eq!(why(r#"{"type": "subscribe","#), "it ends before the JSON is complete");
        assert_eq!(why("{not json"), "unexpected `n` at line 1, column 2");
        assert_eq!(why("{\"a\": 1}\n}"), "unexpected `}` at line 2, column 1");
        assert_eq!(why(""), "it ends before the JSON is complete");
    }

    #[test]
    fn durations_say_how_to_write_one() {
        let why = |text: &str| duration(text, &humantime::parse_duration(text).unwrap_err());
        assert_eq!(
            why("soon"),
            "`soon` is not a duration: write milliseconds (60000) or a number with a unit (500ms, 30s, 1m, 2h)"
        );
        assert!(why("5 parsecs").contains("`parsecs` is not a unit of time"), "{}", why("5 parsecs"));
        assert!(!why("soon").contains("expected number at"));
    }
}
