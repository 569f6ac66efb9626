//! One operation of the document (OpenAPI's Operation Object), built a line per fact: what it
//! takes, how it is authenticated, and each status it can answer with its body and headers.
//! Adding a status an endpoint can answer is one more `.error(..)` or `.json(..)` line.

use serde_json::{Map, Value, json};

use super::schemas::schema_ref;

/// An operation, as `operations` describes it and `Routes` files it under its method and path.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    value: Map<String, Value>,
}

impl Operation {
    /// An operation with an id unique in the document, a tag grouping it and a one-line summary.
    pub(crate) fn new(id: &str, tag: &str, summary: &str) -> Self {
        let mut value = Map::new();
        value.insert("operationId".into(), json!(id));
        value.insert("tags".into(), json!([tag]));
        value.insert("summary".into(), json!(summary));
        value.insert("responses".into(), json!({}));
        Self { value }
    }

    /// Longer text, Markdown.
    pub(crate) fn describe(mut self, text: &str) -> Self {
        self.value.insert("description".into(), json!(text));
        self
    }

    /// Needs one of `API_KEYS` (as `X-API-Key` or `Authorization: Bearer`): 401 without it, with
    /// `WWW-Authenticate`, as `ApiError::Unauthorized` answers.
    pub(crate) fn with_api_key(self) -> Self {
        self.security(&["apiKey", "bearer"]).error(401, "No API key, or not one of `API_KEYS`.").header(
            401,
            "WWW-Authenticate",
            "`Bearer`.",
            json!({ "type": "string" }),
        )
    }

    /// Authenticated by any one of these security schemes (`components.securitySchemes`).
    pub(crate) fn security(mut self, schemes: &[&str]) -> Self {
        let alternatives: Vec<Value> = schemes.iter().map(|s| json!({ (*s): [] })).collect();
        self.value.insert("security".into(), Value::Array(alternatives));
        self
    }

    /// Takes no credentials.
    pub(crate) fn public(mut self) -> Self {
        self.value.insert("security".into(), json!([]));
        self
    }

    /// A query parameter, optional.
    pub(crate) fn query(self, name: &str, description: &str, schema: Value) -> Self {
        self.parameter("query", name, false, description, schema)
    }

    /// A query parameter the operation cannot do without (400 when it is missing).
    pub(crate) fn required_query(self, name: &str, description: &str, schema: Value) -> Self {
        self.parameter("query", name, true, description, schema)
    }

    /// A parameter of the path (`{name}` in it), always required.
    pub(crate) fn path_param(self, name: &str, description: &str, schema: Value) -> Self {
        self.parameter("path", name, true, description, schema)
    }

    /// A request header, optional.
    pub(crate) fn request_header(self, name: &str, description: &str, schema: Value) -> Self {
        self.parameter("header", name, false, description, schema)
    }

    fn parameter(mut self, place: &str, name: &str, required: bool, description: &str, schema: Value) -> Self {
        let parameters = self.value.entry("parameters").or_insert_with(|| json!([]));
        if let Value::Array(list) = parameters {
            list.push(json!({ "name": name, "in": place, "required": required, "description": description, "schema": schema }));
        }
        self
    }

    /// A required JSON request body.
    pub(crate) fn json_body(mut self, description: &str, schema: Value) -> Self {
        self.value.insert(
            "requestBody".into(),
            json!({ "required": true, "description": description, "content": { "application/json": { "schema": schema } } }),
        );
        self
    }

    /// A named example of the request body (taken as it is: schemathesis sends each one).
    pub(crate) fn body_example(mut self, name: &str, value: Value) -> Self {
        let content = &mut self.value["requestBody"]["content"]["application/json"];
        assert!(content.is_object(), "describe the body before its examples");
        content["examples"][name] = json!({ "value": value });
        self
    }

    /// Answers `status` with a JSON body of `schema`.
    pub(crate) fn json(self, status: u16, description: &str, schema: Value) -> Self {
        self.response(
            status,
            json!({ "description": description, "content": { "application/json": { "schema": schema } } }),
        )
    }

    /// Answers `status` with a body of another media type (text, its schema a string).
    pub(crate) fn text(self, status: u16, description: &str, media_type: &str) -> Self {
        self.response(
            status,
            json!({ "description": description, "content": { (media_type): { "schema": { "type": "string" } } } }),
        )
    }

    /// Answers `status` with no body.
    pub(crate) fn empty(self, status: u16, description: &str) -> Self {
        self.response(status, json!({ "description": description }))
    }

    /// Answers `status` with the API's error body, `{"error": {"type", "message"}}`. A 503 or a
    /// 409 also carries `Retry-After`, as `ApiError` answers them.
    pub(crate) fn error(self, status: u16, description: &str) -> Self {
        let this = self.json(status, description, schema_ref("Error"));
        match status {
            409 | 503 => this.header(
                status,
                "Retry-After",
                "Seconds to wait before sending it again.",
                json!({ "type": "integer" }),
            ),
            _ => this,
        }
    }

    /// A header that the `status` answer (already described) always carries.
    pub(crate) fn header(self, status: u16, name: &str, description: &str, schema: Value) -> Self {
        self.response_header(status, name, true, description, schema)
    }

    /// A header that the `status` answer (already described) carries sometimes.
    pub(crate) fn optional_header(self, status: u16, name: &str, description: &str, schema: Value) -> Self {
        self.response_header(status, name, false, description, schema)
    }

    fn response_header(mut self, status: u16, name: &str, required: bool, description: &str, schema: Value) -> Self {
        let response = &mut self.value["responses"][status.to_string()];
        assert!(response.is_object(), "describe the {status} answer before its {name} header");
        response["headers"][name] = json!({ "description": description, "required": required, "schema": schema });
        self
    }

    /// A response, by status; a second one for the same status is a mistake in the description.
    fn response(mut self, status: u16, response: Value) -> Self {
        let responses = self.value.get_mut("responses").and_then(Value::as_object_mut).expect("made in `new`");
        let previous = responses.insert(status.to_string(), response);
        assert!(previous.is_none(), "the {status} answer is described twice");
        self
    }

    /// The Operation Object.
    pub(crate) fn into_json(self) -> Value {
        Value::Object(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_their_headers_are_one_line_each() {
        let op = Operation::new("publish", "API", "Publish")
            .with_api_key()
            .json(202, "Accepted.", json!({ "type": "object" }))
            .error(503, "Stopping.")
            .into_json();
        assert_eq!(op["security"], json!([{ "apiKey": [] }, { "bearer": [] }]));
        assert_eq!(op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"], json!(true));
        assert_eq!(op["responses"]["503"]["headers"]["Retry-After"]["schema"], json!({ "type": "integer" }));
        assert_eq!(
            op["responses"]["503"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        assert!(op["responses"]["202"]["headers"].is_null());
    }

    #[test]
    #[should_panic(expected = "described twice")]
    fn a_status_described_twice_is_a_mistake() {
        let _ = Operation::new("x", "API", "X").error(400, "One.").error(400, "Two.");
    }
}
