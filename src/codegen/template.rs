//! What a spec's templates render to, as TypeScript types: the data of the events the gateway
//! sends. A field a template may leave unset is optional (the gateway leaves it out); the type of
//! a placeholder is what its variable is (`{now}` a string, `{user.id}` a string or null), what
//! the payload schema says of `{payload.x}`, what the routes require of `{data.x}`, and `unknown`
//! where nothing says more (`{state.*}`, `{room.snapshot}`, fields nobody states).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    schema,
    ts::{Field, Obj, Ty},
};
use crate::spec::template::{Expr, Path, Root, Segment, StrTemplate, ValueTemplate};

/// The published data a route or state rule renders: its type (the generated names) and what is
/// known of its fields.
#[derive(Debug, Clone)]
pub(crate) struct DataView {
    /// The data's type, such as `ExecutionAnyData | StepAnyData`.
    pub(crate) ty: Ty,
    /// Fields known: their type, and whether every event of these types has them.
    pub(crate) fields: BTreeMap<String, (Ty, bool)>,
}

/// Where a template is rendered, as far as types go.
#[derive(Debug, Default)]
pub(crate) struct Ctx<'a> {
    /// The client event's payload schema (`None`: the payload is not described).
    pub(crate) payload: Option<&'a Value>,
    /// The published event's data, in routes.
    pub(crate) data: Option<&'a DataView>,
    /// The published event's type (`{event.type}`), in routes.
    pub(crate) event_type: Option<Ty>,
}

/// A type, and whether the value may be unset (so a field holding it is left out).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Typed {
    /// The type when set.
    pub(crate) ty: Ty,
    /// The value may be unset.
    pub(crate) maybe_unset: bool,
}

impl Typed {
    fn set(ty: Ty) -> Self {
        Self { ty, maybe_unset: false }
    }

    fn maybe(ty: Ty) -> Self {
        Self { ty, maybe_unset: true }
    }
}

/// The type of a rendered value template.
pub(crate) fn value_type(template: &ValueTemplate, ctx: &Ctx) -> Typed {
    match template {
        ValueTemplate::Const(value) => Typed::set(Ty::of_json(value)),
        ValueTemplate::Str(text) => str_type(text, ctx),
        ValueTemplate::Object(entries) => {
            let mut obj = Obj::default();
            let mut rest: Vec<Ty> = Vec::new();
            for (key, value) in entries {
                let typed = value_type(value, ctx);
                match key.as_literal() {
                    Some(name) => obj.fields.push(Field::new(name, typed.ty, typed.maybe_unset)),
                    // A key rendered from the event: any name, of this value's type.
                    None => rest.push(typed.ty),
                }
            }
            if !rest.is_empty() {
                obj.rest = Some(Box::new(Ty::union(rest)));
            }
            Typed::set(Ty::Object(obj))
        }
        // Unset items render as null.
        ValueTemplate::Array(items) => Typed::set(Ty::Tuple(
            items
                .iter()
                .map(|item| {
                    let typed = value_type(item, ctx);
                    if typed.maybe_unset { Ty::union([typed.ty, Ty::Null]) } else { typed.ty }
                })
                .collect(),
        )),
    }
}

/// The type of a rendered template string: a lone placeholder keeps its value's type; any other
/// template is text.
pub(crate) fn str_type(template: &StrTemplate, ctx: &Ctx) -> Typed {
    if let Some(text) = template.as_literal() {
        return Typed::set(Ty::string_literal(text));
    }
    match template.as_single_expr() {
        Some(expr) => expr_type(expr, ctx),
        None => Typed::set(Ty::String),
    }
}

fn expr_type(expr: &Expr, ctx: &Ctx) -> Typed {
    match expr {
        Expr::Literal(value) => Typed::set(Ty::of_json(value)),
        Expr::Path(path) => path_type(path, ctx),
        // The first alternative that is set and not null: a later one is reached only when the
        // earlier ones are unset or null.
        Expr::Coalesce(alternatives) => {
            let mut members = Vec::new();
            let mut maybe_unset = true;
            for (i, alternative) in alternatives.iter().enumerate() {
                let typed = expr_type(alternative, ctx);
                let last = i + 1 == alternatives.len();
                members.push(if last { typed.ty.clone() } else { without_null(typed.ty.clone()) });
                if !typed.maybe_unset && (last || !has_null(&typed.ty)) {
                    maybe_unset = false;
                    break;
                }
                maybe_unset = typed.maybe_unset;
            }
            Typed { ty: Ty::union(members), maybe_unset }
        }
    }
}

fn path_type(path: &Path, ctx: &Ctx) -> Typed {
    let fields: Vec<Option<&str>> = path
        .segments
        .iter()
        .map(|s| match s {
            Segment::Field(name) => Some(name.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    let string_or_null = || Ty::union([Ty::String, Ty::Null]);
    match (path.root, fields.as_slice()) {
        (Root::Now, []) => Typed::set(Ty::String),
        (Root::Socket, [Some("id" | "transport")]) => Typed::set(Ty::String),
        (Root::Socket, [Some("rooms")]) => Typed::set(Ty::Array(Box::new(Ty::String))),
        (Root::User, [Some("id" | "tenantId")]) => Typed::set(string_or_null()),
        (Root::User, [Some("roles")]) => Typed::set(Ty::Array(Box::new(Ty::String))),
        (Root::User, [Some("authenticated")]) => Typed::set(Ty::Boolean),
        (Root::User, [Some("expiresAt")]) => Typed::set(Ty::union([Ty::Number, Ty::Null])),
        (Root::Room, [Some("key" | "name")]) => Typed::set(Ty::String),
        // Left out when the room takes no such parameter, or it was not given.
        (Root::Room, [Some("params"), Some(_)]) => Typed::maybe(Ty::String),
        (Root::Room, [Some("params")]) => {
            Typed::set(Ty::Object(Obj { fields: vec![], rest: Some(Box::new(Ty::String)) }))
        }
        (Root::Tenant, [Some("id")]) => Typed::set(Ty::String),
        (Root::Tenant, [Some("stats")]) => Typed::set(Ty::Object(Obj {
            fields: ["connections", "users", "subscriptions", "eventsPublished"]
                .into_iter()
                .map(|f| Field::new(f, Ty::Number, false))
                .collect(),
            rest: None,
        })),
        (Root::Event, [Some("type")]) => Typed::set(ctx.event_type.clone().unwrap_or(Ty::String)),
        (Root::Event, [Some("tenantId")]) => Typed::set(string_or_null()),
        (Root::Event, [Some("timestamp")]) => Typed::set(Ty::String),
        (Root::Event, [Some("data"), rest @ ..]) | (Root::Data, rest) => data_type(rest, ctx),
        (Root::Payload, rest) => payload_type(rest, ctx),
        // `room.snapshot`, `state.*`, `gateway.stats`, `entry`: the spec does not say what they hold.
        _ => Typed::maybe(Ty::Unknown),
    }
}

fn data_type(fields: &[Option<&str>], ctx: &Ctx) -> Typed {
    let Some(data) = ctx.data else { return Typed::maybe(Ty::Unknown) };
    match fields {
        [] => Typed::set(data.ty.clone()),
        [Some(name)] => match data.fields.get(*name) {
            Some((ty, true)) => Typed::set(ty.clone()),
            Some((ty, false)) => Typed::maybe(ty.clone()),
            None => Typed::maybe(Ty::Unknown),
        },
        _ => Typed::maybe(Ty::Unknown),
    }
}

fn payload_type(fields: &[Option<&str>], ctx: &Ctx) -> Typed {
    let Some(mut schema) = ctx.payload else { return Typed::maybe(Ty::Unknown) };
    // A missing payload is `null`, which is set.
    let mut maybe_unset = false;
    for field in fields {
        let Some((sub, required)) = field.and_then(|name| schema::property(schema, name)) else {
            return Typed::maybe(Ty::Unknown);
        };
        maybe_unset |= !required;
        schema = sub;
    }
    Typed { ty: schema::schema_type(schema), maybe_unset }
}

fn has_null(ty: &Ty) -> bool {
    match ty {
        Ty::Null | Ty::Unknown => true,
        Ty::Union(members) => members.iter().any(has_null),
        _ => false,
    }
}

fn without_null(ty: Ty) -> Ty {
    match ty {
        Ty::Null => Ty::Union(Vec::new()),
        Ty::Union(members) => Ty::union(members.into_iter().filter(|m| *m != Ty::Null)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn typed(template: Value, ctx: &Ctx) -> (String, bool) {
        let t = value_type(&ValueTemplate::parse(&template).unwrap(), ctx);
        (t.ty.render(0), t.maybe_unset)
    }

    #[test]
    fn fields_that_may_be_unset_are_optional() {
        let schema = json!({
            "type": "object",
            "required": ["type"],
            "properties": { "type": { "enum": ["a", "b"] }, "resourceId": { "type": "string" } }
        });
        let ctx = Ctx { payload: Some(&schema), ..Ctx::default() };
        let (text, unset) = typed(
            json!({ "type": "{payload.type}", "resourceId": "{room.params.resourceId}", "at": "{now}", "ok": true, "who": "{user.id}", "s": "{state.x[payload.resourceId]}" }),
            &ctx,
        );
        assert!(!unset);
        assert_eq!(
            text,
            "{\n  type: 'a' | 'b';\n  resourceId?: string;\n  at: string;\n  ok: true;\n  who: string | null;\n  s?: unknown;\n}"
        );
    }

    #[test]
    fn coalesce_stops_at_an_alternative_always_set() {
        let ctx = Ctx::default();
        assert_eq!(typed(json!("{state.a ?? null}"), &ctx), ("unknown".into(), false));
        assert_eq!(typed(json!("{user.id ?? 'anon'}"), &ctx), ("string | 'anon'".into(), false));
        assert_eq!(typed(json!("x-{now}"), &ctx), ("string".into(), false));
    }

    #[test]
    fn data_fields_are_what_the_routes_say() {
        let mut fields = BTreeMap::new();
        fields.insert("jobId".to_string(), (Ty::union([Ty::String, Ty::Number]), true));
        let data = DataView { ty: Ty::Raw("JobData".into()), fields };
        let ctx = Ctx { data: Some(&data), event_type: Some(Ty::string_literal("job")), ..Ctx::default() };
        assert_eq!(
            typed(json!({ "t": "{event.type}", "id": "{data.jobId}", "all": "{data}", "x": "{data.x}" }), &ctx).0,
            "{\n  t: 'job';\n  id: string | number;\n  all: JobData;\n  x?: unknown;\n}"
        );
    }
}
