//! Templates in a spec, checked where they are: each variable a template uses must exist in its
//! place (`payload` in a client event, `data` in a route...), `state` must name a store, and the
//! fields of fixed variables and of `room` must exist, with the closest name suggested.

use serde_saphyr::{Location, Spanned};

use super::{
    Checker,
    place::{FamilyView, Place, RoomVar},
    unknown,
};
use crate::{
    parse_errors::suggest,
    spec::{
        raw::{RawNode, RawValue},
        template::{Path, Root, Segment, StrTemplate, ValueTemplate},
    },
};

impl Checker<'_> {
    /// Parses a template string found at `at` and checks the variables it uses.
    pub(super) fn template(&mut self, text: &str, at: Location, place: &Place, what: &str) -> Option<StrTemplate> {
        match StrTemplate::parse(text) {
            Ok(t) => {
                let mut problems = Vec::new();
                t.for_each_path(&mut |p| problems.extend(self.path_problem(p, place)));
                for p in problems {
                    self.error(at, format!("{what}: {p}"));
                }
                Some(t)
            }
            Err(e) => {
                self.error(at, format!("{what}: {e}"));
                None
            }
        }
    }

    pub(super) fn str_template(&mut self, text: &Spanned<String>, place: &Place, what: &str) -> Option<StrTemplate> {
        self.template(&text.value, text.referenced, place, what)
    }

    /// A JSON-shaped template, each string and key checked where it is. Every error is reported,
    /// not only the first.
    pub(super) fn value_template(&mut self, raw: &RawValue, place: &Place, what: &str) -> Option<ValueTemplate> {
        match &raw.node {
            RawNode::Scalar(v) => Some(ValueTemplate::Const(v.clone())),
            RawNode::String(s) => self.template(s, raw.at, place, what).map(ValueTemplate::string),
            RawNode::Array(items) => {
                let items: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value_template(item, place, &format!("{what}[{i}]")))
                    .collect();
                items.into_iter().collect::<Option<_>>().map(ValueTemplate::array)
            }
            RawNode::Object(fields) => {
                let fields: Vec<_> = fields
                    .iter()
                    .map(|(k, v)| {
                        let key = self.str_template(k, place, &format!("{what}: key `{}`", k.value));
                        let value = self.value_template(v, place, &format!("{what}.{}", k.value));
                        key.zip(value)
                    })
                    .collect();
                fields.into_iter().collect::<Option<_>>().map(ValueTemplate::object)
            }
        }
    }

    /// Templates laid over each other: a list of them, or one.
    pub(super) fn value_parts(&mut self, raw: &RawValue, place: &Place, what: &str) -> Vec<ValueTemplate> {
        match &raw.node {
            RawNode::Array(parts) => parts
                .iter()
                .enumerate()
                .filter_map(|(i, part)| self.value_template(part, place, &format!("{what}[{i}]")))
                .collect(),
            _ => self.value_template(raw, place, what).into_iter().collect(),
        }
    }

    /// Why a template may not use `path` here, if it may not.
    pub(super) fn path_problem(&self, path: &Path, place: &Place) -> Option<String> {
        let root = path.root;
        if !place.ctx.allows(root) {
            return Some(format!("`{}` is not available in {}", root.name(), place.ctx.describe()));
        }
        if root == Root::Room && matches!(place.room, RoomVar::Unset) {
            return Some("`room` is only set after a `join` or `leave`".into());
        }
        if root == Root::State {
            return self.store_problem(path);
        }
        let (fields, Some(Segment::Field(field))) = (root.fields()?, path.segments.first()) else {
            return None;
        };
        if !fields.contains(&field.as_str()) {
            return Some(unknown_root_field(root, field, fields));
        }
        if root == Root::Room { room_field_problem(path, &place.room) } else { None }
    }

    /// `state` must be followed by one of the spec's stores.
    pub(super) fn store_problem(&self, path: &Path) -> Option<String> {
        match path.segments.first() {
            Some(Segment::Field(store)) if self.store_names.contains(store) => None,
            Some(Segment::Field(store)) => Some(unknown("store", store, &self.store_names)),
            _ => Some("`state` must be followed by a store name, as in `state.executions[..]`".into()),
        }
    }
}

/// `root.field` where `root` has fixed fields and `field` is not one of them.
fn unknown_root_field(root: Root, field: &str, fields: &[&str]) -> String {
    let root = root.name();
    if fields.is_empty() {
        return format!("`{root}` has no fields: `{root}.{field}` is always unset");
    }
    match suggest::closest(field, fields.iter().copied()) {
        Some(close) => {
            format!("unknown field `{field}` of `{root}`{}", suggest::did_you_mean(Some(format!("{root}.{close}"))))
        }
        None => format!("unknown field `{field}` of `{root}` (known: {})", fields.join(", ")),
    }
}

/// `room.snapshot` and `room.params.<name>`, checked against the families `room` can be of.
fn room_field_problem(path: &Path, room: &RoomVar) -> Option<String> {
    let families = match room {
        RoomVar::Joined(families) if !families.is_empty() => families.as_slice(),
        RoomVar::Snapshotting(family) => std::slice::from_ref(family),
        RoomVar::Joined(_) | RoomVar::Unset => return None,
    };
    match path.segments.as_slice() {
        [Segment::Field(field), ..] if field == "snapshot" => {
            if matches!(room, RoomVar::Snapshotting(_)) {
                // Rendering it would build the snapshot again, and again.
                Some("`room.snapshot` is the snapshot being built; its own key and filters cannot use it".into())
            } else if families.iter().any(|f| f.has_snapshot) {
                None
            } else {
                Some(format!("{} no `snapshot`, so `room.snapshot` is always unset", families_have(families)))
            }
        }
        [Segment::Field(field), Segment::Field(param), ..] if field == "params" => {
            if families.iter().any(|f| f.params.contains(param)) {
                return None;
            }
            let known = families.iter().flat_map(|f| f.params.iter().map(String::as_str));
            let hint = suggest::closest(param, known).map(|p| format!("room.params.{p}"));
            Some(format!("{} no parameter `{param}`{}", families_have(families), suggest::did_you_mean(hint)))
        }
        _ => None,
    }
}

/// `room `a` has` or `rooms `a`, `b` have`.
fn families_have(families: &[FamilyView]) -> String {
    match families {
        [one] => format!("room `{}` has", one.name),
        many => {
            let names: Vec<String> = many.iter().map(|f| format!("`{}`", f.name)).collect();
            format!("rooms {} have", names.join(", "))
        }
    }
}
