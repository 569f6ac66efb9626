//! A client event's payload schema (JSON Schema) as a TypeScript type: what the schema states
//! (`type`, `properties`, `required`, `enum`, `const`, `items`, `additionalProperties: false`,
//! and `allOf`/`anyOf`/`oneOf` over them), and `unknown` for what it does not. Constraints a type
//! cannot say (lengths, patterns, ranges) stay the gateway's to check at run time.

use serde_json::{Map, Value};

use super::ts::{Field, Obj, Ty};

/// The type of the values `schema` accepts.
pub(crate) fn schema_type(schema: &Value) -> Ty {
    let Value::Object(map) = schema else {
        // `true` accepts anything; `false` nothing, which is still best said as `unknown` here.
        return Ty::Unknown;
    };
    // allOf: every branch holds, so they are one schema together.
    if let Some(Value::Array(all)) = map.get("allOf") {
        let mut merged = without(map, "allOf");
        for branch in all {
            if let Value::Object(b) = branch {
                merged = merge(&merged, b);
            }
        }
        return schema_type(&Value::Object(merged));
    }
    // anyOf / oneOf: one of the branches, each with what the schema says beside them (the
    // usual `anyOf: [{required: [a]}, {required: [b]}]` gives "a set, or b set").
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = map.get(key) {
            let base = without(map, key);
            return Ty::union(branches.iter().map(|branch| match branch {
                Value::Object(b) => schema_type(&Value::Object(merge(&base, b))),
                _ => schema_type(&Value::Object(base.clone())),
            }));
        }
    }
    if let Some(value) = map.get("const") {
        return Ty::of_json(value);
    }
    if let Some(Value::Array(options)) = map.get("enum") {
        return Ty::union(options.iter().map(Ty::of_json));
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ if map.contains_key("properties") || map.contains_key("required") => vec!["object"],
        _ if map.contains_key("items") => vec!["array"],
        _ => return Ty::Unknown,
    };
    Ty::union(types.into_iter().map(|t| match t {
        "string" => Ty::String,
        "number" | "integer" => Ty::Number,
        "boolean" => Ty::Boolean,
        "null" => Ty::Null,
        "array" => array_type(map),
        "object" => Ty::Object(object_type(map)),
        _ => Ty::Unknown,
    }))
}

/// Whether `schema` accepts `null` (so a client may leave the payload out).
pub(crate) fn accepts_null(schema: &Value) -> bool {
    fn has_null(ty: &Ty) -> bool {
        match ty {
            Ty::Null | Ty::Unknown => true,
            Ty::Union(members) => members.iter().any(has_null),
            _ => false,
        }
    }
    has_null(&schema_type(schema))
}

/// The schema of property `name` of an object schema, and whether it is required; `None` when
/// the schema names no such property.
pub(crate) fn property<'a>(schema: &'a Value, name: &str) -> Option<(&'a Value, bool)> {
    let sub = schema.get("properties")?.get(name)?;
    let required =
        schema.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|f| f.as_str() == Some(name)));
    Some((sub, required))
}

fn array_type(map: &Map<String, Value>) -> Ty {
    match map.get("items") {
        Some(items @ Value::Object(_)) => Ty::Array(Box::new(schema_type(items))),
        _ => Ty::Array(Box::new(Ty::Unknown)),
    }
}

fn object_type(map: &Map<String, Value>) -> Obj {
    let required: Vec<&str> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = map.get("properties").and_then(Value::as_object);
    let mut fields: Vec<Field> = Vec::new();
    // Properties in the schema's order; required fields it does not describe after them.
    for (name, sub) in properties.into_iter().flatten() {
        let mut field = Field::new(name, schema_type(sub), !required.contains(&name.as_str()));
        field.doc = sub.get("description").and_then(Value::as_str).map(str::to_string);
        fields.push(field);
    }
    for name in required {
        if !fields.iter().any(|f| f.name == name) {
            fields.push(Field::new(name, Ty::Unknown, false));
        }
    }
    let rest = match map.get("additionalProperties") {
        Some(Value::Bool(false)) => None,
        Some(extra @ Value::Object(_)) => Some(Box::new(schema_type(extra))),
        _ => Some(Box::new(Ty::Unknown)),
    };
    Obj { fields, rest }
}

fn without(map: &Map<String, Value>, key: &str) -> Map<String, Value> {
    let mut out = map.clone();
    out.remove(key);
    out
}

/// `base` and `branch` as one schema: properties and required fields of both (a branch's
/// property replacing the base's), any other keyword of the branch replacing the base's.
fn merge(base: &Map<String, Value>, branch: &Map<String, Value>) -> Map<String, Value> {
    let mut out = base.clone();
    for (key, value) in branch {
        match (key.as_str(), out.get_mut(key), value) {
            ("properties", Some(Value::Object(props)), Value::Object(more)) => {
                props.extend(more.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            ("required", Some(Value::Array(names)), Value::Array(more)) => {
                for name in more {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
            ("errorMessage", _, _) => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ts(schema: Value) -> String {
        schema_type(&schema).render(0)
    }

    #[test]
    fn required_fields_are_required_and_the_rest_optional() {
        let text = ts(json!({
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": { "enum": ["workflow", "logs"] },
                "resourceId": { "type": "string", "minLength": 1 },
                "filters": { "type": "object", "properties": { "stepId": { "type": "string" } } }
            }
        }));
        assert_eq!(
            text,
            "{\n  type: 'workflow' | 'logs';\n  resourceId?: string;\n  filters?: {\n    stepId?: string;\n    [field: string]: unknown;\n  };\n  [field: string]: unknown;\n}"
        );
    }

    #[test]
    fn closed_objects_arrays_and_type_lists() {
        assert_eq!(
            ts(
                json!({ "type": "object", "additionalProperties": false, "properties": { "ids": { "type": "array", "items": { "type": "string" } } } })
            ),
            "{\n  ids?: string[];\n}"
        );
        assert_eq!(ts(json!({ "type": ["string", "integer"] })), "string | number");
        assert_eq!(ts(json!({ "type": ["object", "null"] })), "Record<string, unknown> | null");
        assert_eq!(ts(json!({ "type": "object" })), "Record<string, unknown>");
        assert_eq!(ts(json!({ "minLength": 3 })), "unknown", "a schema that states no type gives none");
        assert_eq!(ts(json!({ "const": "x" })), "'x'");
    }

    #[test]
    fn any_of_required_gives_one_object_per_branch() {
        let text = ts(json!({
            "type": "object",
            "properties": { "a": { "type": "string" }, "b": { "type": "string" } },
            "anyOf": [{ "required": ["a"] }, { "required": ["b"] }],
            "additionalProperties": false
        }));
        assert_eq!(text, "{\n  a: string;\n  b?: string;\n} | {\n  a?: string;\n  b: string;\n}");
    }

    #[test]
    fn null_acceptance_decides_whether_a_payload_may_be_left_out() {
        assert!(accepts_null(&json!({ "type": ["object", "null"] })));
        assert!(!accepts_null(&json!({ "type": "object" })));
        assert!(accepts_null(&json!({})));
    }
}
