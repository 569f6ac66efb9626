//! The events backends publish (`POST /api/v1/events`), as the served specs know them: one entry
//! per event-type pattern that a route or a state rule names (`commission:calculated`,
//! `workflow.*`), with the data fields the specs require (`require`: a non-empty string or number,
//! or the API answers 400) and those their routes and state rules read (`{data.x}`: optional,
//! `string | number | null` where every reader uses it as a room id, `unknown` otherwise). Any
//! other field is allowed: the data is open.
//!
//! An event goes to every namespace whose routes take it, each using its first matching route, so
//! what an event of type `t` must carry is the union of those routes' requirements. A pattern's
//! entry says what holds for every type it matches (an intersection over representative types,
//! one per pattern), so that TypeScript, which gives a type matched by several patterns all of
//! their entries at once, never asks for more than the gateway does.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    template::DataView,
    ts::{Field, Obj, Ty, pascal_case, pattern_type},
};
use crate::spec::{
    NamespaceSpec, StoreOp, TypeMatcher,
    template::{Path, Root, Segment, StrTemplate, ValueTemplate},
};

/// One published event-type pattern and the data its events carry.
#[derive(Debug)]
pub(crate) struct PublishedType {
    /// As the specs write it: `log.created`, `workflow.*`.
    pub(crate) pattern: String,
    /// The generated interface's name: `LogCreatedData`, `WorkflowAnyData`.
    pub(crate) name: String,
    /// The interface.
    pub(crate) data: Obj,
    /// The namespaces that take these events (as `served_as` names them).
    pub(crate) namespaces: Vec<String>,
}

/// What one event type needs and what reads it, over every namespace.
#[derive(Debug, Default, Clone)]
struct Needs {
    /// Fields some route requires.
    required: BTreeSet<String>,
    /// Fields read, with whether the reader uses it as a room id, and which namespaces read it.
    read: BTreeMap<String, (bool, BTreeSet<String>)>,
    /// The namespaces that take the type.
    namespaces: BTreeSet<String>,
}

/// Every published type pattern of `specs`, sorted by pattern.
pub(crate) fn published_types(specs: &[&NamespaceSpec]) -> Vec<PublishedType> {
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    for spec in specs {
        for route in &spec.routes {
            patterns.extend(route.types.patterns());
        }
        for store in &spec.stores {
            patterns.extend(store.rules.iter().filter(|r| !r.types.is_catch_all()).flat_map(|r| r.types.patterns()));
        }
    }
    // `*` has no entry of its own: any type not named otherwise is open.
    patterns.remove("*");
    // One type per pattern that matches it and no more specific pattern (`a.` plus a character no
    // event type has), and the exact names themselves.
    let representatives: Vec<String> = patterns
        .iter()
        .map(|p| p.strip_suffix('*').map(|prefix| format!("{prefix}\u{0}")).unwrap_or(p.clone()))
        .collect();
    let needs: Vec<Needs> = representatives.iter().map(|t| needs_of(specs, t)).collect();

    let mut used_names: BTreeSet<String> = BTreeSet::new();
    patterns
        .iter()
        .map(|pattern| {
            let matcher = TypeMatcher::parse(std::slice::from_ref(pattern)).expect("patterns of loaded specs parse");
            let under: Vec<&Needs> =
                representatives.iter().zip(&needs).filter(|(t, _)| matcher.matches(t)).map(|(_, n)| n).collect();
            PublishedType {
                pattern: pattern.clone(),
                name: unique_name(&mut used_names, pattern),
                data: data_interface(&under),
                namespaces: under
                    .iter()
                    .flat_map(|n| n.namespaces.iter().cloned())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            }
        })
        .collect()
}

/// What the events of some patterns carry, for templates that render their data: the generated
/// names (`Record<string, unknown>` for `*`), and the fields every one of them has.
pub(crate) fn data_view(published: &[PublishedType], patterns: &[String]) -> DataView {
    let mut members = Vec::new();
    let mut fields: Option<BTreeMap<String, (Ty, bool)>> = None;
    for pattern in patterns {
        let Some(entry) = published.iter().find(|p| &p.pattern == pattern) else {
            members.push(Ty::open_object());
            fields = Some(BTreeMap::new());
            continue;
        };
        members.push(Ty::Raw(entry.name.clone()));
        let these: BTreeMap<String, (Ty, bool)> =
            entry.data.fields.iter().map(|f| (f.name.clone(), (f.ty.clone(), !f.optional))).collect();
        fields = Some(match fields {
            None => these,
            // A field of some of the patterns only is, for the others, any value or none.
            Some(known) => known
                .into_iter()
                .map(|(name, (ty, required))| match these.get(&name) {
                    Some((other, also)) => (name, (Ty::union([ty, other.clone()]), required && *also)),
                    None => (name, (Ty::Unknown, false)),
                })
                .collect(),
        });
    }
    DataView { ty: Ty::union(members), fields: fields.unwrap_or_default() }
}

/// Calls its argument with every path of some template.
type PathVisitor<'a> = dyn FnMut(&mut dyn FnMut(&Path)) + 'a;

fn needs_of(specs: &[&NamespaceSpec], event_type: &str) -> Needs {
    let mut needs = Needs::default();
    for spec in specs {
        let ns = spec.served_as();
        let mut read = |template_paths: &mut PathVisitor, id: bool| {
            template_paths(&mut |path| {
                if let Some(field) = data_field(path) {
                    let entry = needs.read.entry(field.to_string()).or_insert((true, BTreeSet::new()));
                    entry.0 &= id;
                    entry.1.insert(ns.clone());
                }
            });
        };
        let mut taken = false;
        if let Some(route) = spec.routes.iter().find(|r| r.types.matches(event_type)) {
            taken = true;
            for target in &route.targets {
                for param in target.params.iter().flatten() {
                    read(&mut |f| param.for_each_path(f), true);
                }
                for filter in target.filters.iter().flatten() {
                    read(&mut |f| filter.for_each_path(f), false);
                }
            }
            read(&mut |f| str_paths(&route.emit.event, f), false);
            if let Some(data) = &route.emit.data {
                read(&mut |f| data.for_each_path(f), false);
            }
            needs.required.extend(route.require.iter().cloned());
        }
        for rule in spec.stores.iter().flat_map(|s| &s.rules).filter(|r| r.types.matches(event_type)) {
            taken |= !rule.types.is_catch_all();
            read(&mut |f| rule.key.for_each_path(f), false);
            let templates: &[ValueTemplate] = match &rule.op {
                StoreOp::Merge(ts) | StoreOp::Append(ts) => ts,
                StoreOp::Replace(t) => std::slice::from_ref(t),
                StoreOp::Delete => &[],
            };
            for t in templates {
                read(&mut |f| t.for_each_path(f), false);
            }
        }
        if taken {
            needs.namespaces.insert(ns);
        }
    }
    needs
}

fn str_paths(template: &StrTemplate, f: &mut dyn FnMut(&Path)) {
    template.for_each_path(f);
}

/// `x` of `{data.x}` or `{event.data.x}`.
fn data_field(path: &Path) -> Option<&str> {
    match (path.root, path.segments.as_slice()) {
        (Root::Data, [Segment::Field(name), ..]) => Some(name),
        (Root::Event, [Segment::Field(data), Segment::Field(name), ..]) if data == "data" => Some(name),
        _ => None,
    }
}

/// The data interface of a pattern, from the needs of every type it matches.
fn data_interface(under: &[&Needs]) -> Obj {
    let required: BTreeSet<&String> = match under.split_first() {
        Some((first, rest)) => first.required.iter().filter(|f| rest.iter().all(|n| n.required.contains(*f))).collect(),
        None => BTreeSet::new(),
    };
    let names: BTreeSet<&String> = under.iter().flat_map(|n| n.required.iter().chain(n.read.keys())).collect();
    let id_or_null = Ty::union([Ty::String, Ty::Number, Ty::Null]);
    let fields = names
        .into_iter()
        .map(|name| {
            let requirers: BTreeSet<&String> =
                under.iter().filter(|n| n.required.contains(name)).flat_map(|n| &n.namespaces).collect();
            let readers: BTreeSet<&String> =
                under.iter().filter_map(|n| n.read.get(name)).flat_map(|(_, ns)| ns).collect();
            if required.contains(name) {
                let mut field = Field::new(name.as_str(), Ty::union([Ty::String, Ty::Number]), false);
                field.doc = Some(format!("Required (a non-empty string or number) by {}.", join(&requirers)));
                return field;
            }
            // An id wherever it is read or required: the gateway refuses an object or a list.
            let always_id = under.iter().all(|n| match n.read.get(name) {
                Some((id, _)) => *id,
                None => n.required.contains(name),
            });
            let mut field = Field::new(name.as_str(), if always_id { id_or_null.clone() } else { Ty::Unknown }, true);
            let readers = readers.into_iter().chain(requirers).collect::<BTreeSet<_>>();
            field.doc = Some(format!("Read by {}.", join(&readers)));
            field
        })
        .collect();
    Obj { fields, rest: Some(Box::new(Ty::Unknown)) }
}

fn join(names: &BTreeSet<&String>) -> String {
    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

fn unique_name(used: &mut BTreeSet<String>, pattern: &str) -> String {
    let base = match pattern.strip_suffix(".*") {
        Some(prefix) => format!("{}AnyData", pascal_case(prefix)),
        None => format!("{}Data", pascal_case(pattern)),
    };
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}

/// The key of a pattern in `PublishedEvents`: `'log.created'`, `` [type: `workflow.${string}`] ``.
pub(crate) fn map_key(pattern: &str) -> String {
    match pattern_type(pattern) {
        Ty::Raw(text) if text.starts_with('`') => format!("[type: {text}]"),
        ty => ty.render(0),
    }
}
