//! Payload validation: a client event's payload is checked against the JSON Schema its spec
//! declares (standard JSON Schema, draft 2020-12 unless `$schema` says otherwise).
//!
//! The error a client receives names the offending field and what is wrong with it. Where the
//! generic wording would be unhelpful (an `anyOf`, say), a spec writes its own sentence in an
//! `errorMessage` keyword beside the failing keyword, the convention of ajv-errors.

use serde_json::Value;

/// Longest error text sent to a client; the schema library quotes offending values.
const MAX_MESSAGE_LEN: usize = 300;

/// A compiled payload schema.
pub struct PayloadSchema {
    validator: jsonschema::Validator,
    raw: Value,
}

impl std::fmt::Debug for PayloadSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadSchema").field("raw", &self.raw).finish()
    }
}

impl PayloadSchema {
    /// Compiles a schema; the error says what is wrong with it.
    pub fn compile(raw: &Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(raw).map_err(|e| format!("invalid JSON Schema: {e}"))?;
        Ok(Self { validator, raw: raw.clone() })
    }

    /// The schema as written.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// Checks a payload; the error is a sentence for the client.
    pub fn check(&self, payload: &Value) -> Result<(), String> {
        let Err(error) = self.validator.validate(payload) else {
            return Ok(());
        };
        let schema_path = error.schema_path().as_str().to_string();
        if let Some(custom) = self.error_message_for(&schema_path) {
            return Err(custom);
        }
        let field = pointer_to_dotted(error.instance_path().as_str());
        let what = match error.kind() {
            // The library abbreviates long option lists; a client developer wants them all.
            jsonschema::error::ValidationErrorKind::Enum { options } => {
                let options: Vec<String> = options.as_array().into_iter().flatten().map(|o| o.to_string()).collect();
                format!("must be one of {}, not {}", options.join(", "), error.instance())
            }
            _ => error.to_string(),
        };
        let mut message = if field.is_empty() { format!("payload: {what}") } else { format!("{field}: {what}") };
        if message.len() > MAX_MESSAGE_LEN {
            let mut cut = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        Err(message)
    }

    /// The `errorMessage` of the schema object holding the failing keyword, if it has one.
    fn error_message_for(&self, schema_path: &str) -> Option<String> {
        let parent = schema_path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        self.raw.pointer(parent)?.get("errorMessage")?.as_str().map(str::to_string)
    }
}

/// `/filters/logLevel` → `filters.logLevel`; `/items/0` → `items[0]`.
fn pointer_to_dotted(pointer: &str) -> String {
    let mut out = String::new();
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> PayloadSchema {
        PayloadSchema::compile(&json!({
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": { "enum": ["workflow", "logs"] },
                "filters": { "type": "object", "properties": { "stepId": { "type": "string", "maxLength": 3 } } }
            }
        }))
        .unwrap()
    }

    #[test]
    fn valid_payloads_pass() {
        assert!(schema().check(&json!({ "type": "logs", "filters": { "stepId": "s1" } })).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let err = schema().check(&json!({ "type": "nope" })).unwrap_err();
        assert_eq!(err, r#"type: must be one of "workflow", "logs", not "nope""#);
        let err = schema().check(&json!({ "type": "logs", "filters": { "stepId": 42 } })).unwrap_err();
        assert!(err.starts_with("filters.stepId: "), "{err}");
        let err = schema().check(&json!({})).unwrap_err();
        assert!(err.contains("\"type\" is a required property"), "{err}");
        let err = schema().check(&json!("text")).unwrap_err();
        assert!(err.starts_with("payload: "), "{err}");
    }

    #[test]
    fn error_message_replaces_generic_wording() {
        let s = PayloadSchema::compile(&json!({
            "type": "object",
            "anyOf": [{ "required": ["a"] }, { "required": ["b"] }],
            "errorMessage": "give a or b"
        }))
        .unwrap();
        assert_eq!(s.check(&json!({})).unwrap_err(), "give a or b");
        assert!(s.check(&json!({ "b": 1 })).is_ok());
    }

    #[test]
    fn invalid_schemas_are_refused() {
        assert!(PayloadSchema::compile(&json!({ "type": "nonsense" })).unwrap_err().contains("invalid JSON Schema"));
    }
}
