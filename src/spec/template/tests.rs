//! Templates parsed and rendered against a scope made of one JSON value.

use std::borrow::Cow;

use super::*;
use serde_json::json;

struct TestScope(Value);
impl Scope for TestScope {
    fn root(&self, root: Root) -> Option<Cow<'_, Value>> {
        self.0.get(root.name()).map(Cow::Borrowed)
    }
    fn state(&self, store: &str, key: Option<&str>) -> Option<Value> {
        let s = self.0.get("state")?.get(store)?;
        match key {
            Some(k) => s.get(k).cloned(),
            None => Some(s.clone()),
        }
    }
}

fn scope() -> TestScope {
    TestScope(json!({
        "payload": { "type": "logs", "resourceId": "e1", "n": 3, "filters": { "logLevel": "error" } },
        "user": { "id": "u1", "roles": ["admin"] },
        "now": "2024-01-15T10:30:00.000Z",
        "state": { "executions": { "e1": { "status": "running" } } }
    }))
}

fn render(t: Value) -> Option<Value> {
    ValueTemplate::parse(&t).unwrap().render(&scope())
}

#[test]
fn a_lone_placeholder_keeps_the_type_of_its_value() {
    assert_eq!(render(json!("{payload.n}")), Some(json!(3)));
    assert_eq!(render(json!("{user.roles}")), Some(json!(["admin"])));
    assert_eq!(render(json!("{payload.filters}")), Some(json!({ "logLevel": "error" })));
}

#[test]
fn mixed_text_interpolates() {
    assert_eq!(render(json!("user {user.id} has {payload.n}")), Some(json!("user u1 has 3")));
    assert_eq!(render(json!("{{literal}} {payload.type}")), Some(json!("{literal} logs")));
}

#[test]
fn unset_fields_are_left_out_of_objects() {
    let out = render(json!({ "type": "{payload.type}", "resourceId": "{payload.missing}", "t": "{now}" }));
    assert_eq!(out, Some(json!({ "type": "logs", "t": "2024-01-15T10:30:00.000Z" })));
}

#[test]
fn state_lookups_take_a_key_expression() {
    assert_eq!(render(json!("{state.executions[payload.resourceId].status}")), Some(json!("running")));
    assert_eq!(render(json!("{state.executions[payload.type]}")), None);
}

#[test]
fn coalesce_takes_the_first_set_alternative() {
    assert_eq!(render(json!("{payload.nope ?? payload.type}")), Some(json!("logs")));
    assert_eq!(render(json!("{payload.nope ?? state.executions[payload.nope] ?? null}")), Some(Value::Null));
    assert_eq!(render(json!("{payload.nope ?? 'fallback'}")), Some(json!("fallback")));
}

#[test]
fn templated_keys_render() {
    assert_eq!(
        render(json!({ "steps": { "{payload.resourceId}": "{payload.n}" } })),
        Some(json!({ "steps": { "e1": 3 } }))
    );
}

#[test]
fn constants_are_recognised() {
    assert!(matches!(ValueTemplate::parse(&json!({ "a": [1, "x"] })).unwrap(), ValueTemplate::Const(_)));
    assert_eq!(
        ValueTemplate::parse(&json!({ "{{k}}": ["{{x}}", null] })).unwrap(),
        ValueTemplate::Const(json!({ "{k}": ["{x}", null] })),
        "escaped braces are literal text"
    );
    let ValueTemplate::Object(fields) = ValueTemplate::parse(&json!({ "c": { "d": 1 }, "t": "{now}" })).unwrap() else {
        panic!("a template")
    };
    assert_eq!(fields[0].1, ValueTemplate::Const(json!({ "d": 1 })), "constant parts of a template are folded");
}

#[test]
fn syntax_errors_say_what_is_wrong() {
    assert!(StrTemplate::parse("{payload.type").unwrap_err().contains("unclosed"));
    assert!(StrTemplate::parse("{paylod.type}").unwrap_err().contains("unknown variable `paylod`"));
    assert!(StrTemplate::parse("{paylod.type}").unwrap_err().ends_with("(did you mean `payload`?)"));
    assert!(StrTemplate::parse("{payload.}").unwrap_err().contains("expected a name"));
    assert!(StrTemplate::parse("a } b").unwrap_err().contains("unmatched"));
    assert!(StrTemplate::parse("{payload.a[payload.b}").unwrap_err().contains("expected `]`"));
}

#[test]
fn merging_a_template_in_place_is_merging_what_it_renders() {
    let targets = [
        json!(null),
        json!("text"),
        json!({ "status": "running", "steps": { "s1": { "x": 1 } }, "filters": [1] }),
        json!({ "e1": { "status": "done" }, "n": 3 }),
    ];
    let templates = [
        json!("{payload}"),
        json!("{payload.filters}"),
        json!("{payload.missing}"),
        json!("{payload.missing ?? user}"),
        json!("id {user.id}"),
        json!({ "status": "{state.executions.e1.status}", "steps": { "{payload.resourceId}": "{payload}" } }),
        json!({ "n": "{payload.n}", "unset": "{payload.missing}", "filters": ["{user.id}"] }),
        json!({ "constant": { "a": [1, 2] } }),
        json!(["{payload.n}", "{payload.missing}"]),
    ];
    let scope = scope();
    for template in &templates {
        let parsed = ValueTemplate::parse(template).unwrap();
        for target in &targets {
            let mut rendered = target.clone();
            if let Some(patch) = parsed.render(&scope) {
                deep_merge(&mut rendered, patch);
            }
            let mut in_place = target.clone();
            parsed.merge_into(&mut in_place, &scope);
            assert_eq!(in_place, rendered, "{template} into {target}");
        }
    }
}

#[test]
fn deep_merge_merges_objects_and_replaces_the_rest() {
    let mut v = json!({ "a": 1, "steps": { "s1": { "x": 1 } } });
    deep_merge(&mut v, json!({ "a": 2, "steps": { "s2": { "y": 2 } } }));
    assert_eq!(v, json!({ "a": 2, "steps": { "s1": { "x": 1 }, "s2": { "y": 2 } } }));
}

#[test]
fn serializing_as_rendered_writes_what_rendering_makes() {
    let templates = [
        json!("{payload}"),
        json!("{payload.missing}"),
        json!("id {user.id}"),
        json!({ "type": "{payload.type}", "payload": "{payload}", "unset": "{payload.missing}", "at": "{now}" }),
        json!({ "steps": { "{payload.resourceId}": "{payload}" }, "{user.id}": 1, "u1": 2 }),
        json!({ "nested": { "n": "{payload.n}", "gone": "{payload.missing}" }, "list": ["{user.id}", "{payload.missing}"] }),
        json!({ "constant": { "a": [1, 2] } }),
        json!(["{payload.n}", "{payload.missing}", { "x": "{user.roles}" }]),
    ];
    let scope = scope();
    for template in &templates {
        let parsed = ValueTemplate::parse(template).unwrap();
        let rendered = parsed.render(&scope).unwrap_or(Value::Null);
        let written = serde_json::to_string(&parsed.rendered(&scope)).unwrap();
        assert_eq!(written, rendered.to_string(), "{template}");
    }
}
