//! Reading spec files: from a folder (`NAMESPACES_DIR`, `check DIR`) or from the copies embedded
//! in the binary at build time, so the gateway runs from any directory.
//!
//! Every error of a file is reported in one run, in file order: its unknown fields (found by
//! `tolerant` wherever they are), then either the shape error that stopped the read (a value of
//! the wrong type, a missing required field, broken YAML) or everything `compile` finds. Errors
//! carry the file, line and column, and print as `file:line:col: message` followed by the
//! offending line, the way compilers do.

use std::path::Path;

use include_dir::{Dir, include_dir};

use super::{
    NamespaceSpec,
    compile::compile,
    error::{SpecError, SpecErrors},
    raw::RawSpec,
    tolerant,
};

/// The `namespaces/` folder as it was when the binary was built.
static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/namespaces");

/// Loads the specs embedded in the binary.
pub fn load_embedded() -> Result<Vec<NamespaceSpec>, SpecErrors> {
    let sources: Vec<(String, String)> = EMBEDDED
        .files()
        .filter(|f| is_spec_file(f.path()))
        .map(|f| {
            let name = format!("namespaces/{}", f.path().display());
            (name, f.contents_utf8().unwrap_or_default().to_string())
        })
        .collect();
    load_sources(sources)
}

/// Loads every `*.yaml` / `*.yml` file of `dir`.
pub fn load_dir(dir: &Path) -> Result<Vec<NamespaceSpec>, SpecErrors> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| SpecErrors(vec![SpecError::whole_file(&shown, format!("cannot read the folder: {e}"))]))?;
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_spec_file(p)).collect();
    paths.sort();
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((name, text)),
            Err(e) => errors.push(SpecError::whole_file(&name, format!("cannot read: {e}"))),
        }
    }
    if sources.is_empty() && errors.is_empty() {
        errors.push(SpecError::whole_file(&shown, "no namespace specs here (*.yaml or *.yml files)"));
    }
    match load_sources(sources) {
        Ok(specs) if errors.is_empty() => Ok(specs),
        Ok(_) => Err(SpecErrors(errors)),
        Err(SpecErrors(more)) => {
            errors.extend(more);
            Err(SpecErrors(errors))
        }
    }
}

/// Parses and checks `(file name, text)` pairs; also checks that namespaces are unique (per
/// transport: the Socket.IO namespace `/ws` and the plain WebSocket endpoint `/ws` never meet, the
/// first living under the Socket.IO path).
pub fn load_sources(sources: Vec<(String, String)>) -> Result<Vec<NamespaceSpec>, SpecErrors> {
    let mut specs: Vec<NamespaceSpec> = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in &sources {
        match load_one(name, text) {
            Ok(spec) => match specs.iter().find(|s| s.path == spec.path && s.transport == spec.transport) {
                Some(other) => errors.push(SpecError::whole_file(
                    name,
                    format!("namespace `{}` is already defined in {}", spec.path, other.file),
                )),
                None => specs.push(spec),
            },
            Err(file_errors) => errors.extend(file_errors),
        }
    }
    if errors.is_empty() { Ok(specs) } else { Err(SpecErrors(errors)) }
}

/// Parses and checks one file; the errors are in file order, with their source lines.
fn load_one(file: &str, text: &str) -> Result<NamespaceSpec, Vec<SpecError>> {
    let (raw, unknown_fields) = tolerant::from_str::<RawSpec>(text);
    let mut errors: Vec<SpecError> =
        unknown_fields.into_iter().map(|u| SpecError::at(file, u.at.line(), u.at.column(), u.message)).collect();
    match raw.map(|raw| compile(raw, file)) {
        Ok(Ok(mut spec)) if errors.is_empty() => {
            keep_source_lines(&mut spec, text);
            return Ok(spec);
        }
        Ok(Ok(_)) => {}
        Ok(Err(more)) => errors.extend(more),
        Err(e) => errors.push(yaml_error(file, &e)),
    }
    errors.sort_by_key(|e| (e.line, e.column));
    let lines: Vec<&str> = text.lines().collect();
    for e in &mut errors {
        if e.line > 0 {
            e.source_line = lines.get(e.line as usize - 1).map(|l| l.to_string());
        }
    }
    Err(errors)
}

/// Gives the places kept for checks made after loading (`forward` destinations) their lines.
fn keep_source_lines(spec: &mut NamespaceSpec, text: &str) {
    let events = spec.events.values_mut().map(|e| &mut e.actions);
    for action in events.chain([&mut spec.on_connect]).flatten() {
        if let crate::spec::Action::Forward(forward) = action {
            let line = usize::try_from(forward.to_at.line).unwrap_or(0);
            forward.to_at.source_line = line.checked_sub(1).and_then(|i| text.lines().nth(i)).map(str::to_string);
        }
    }
}

/// A YAML or shape error from the parser, as a [`SpecError`] (without the parser's own snippet).
fn yaml_error(file: &str, e: &serde_saphyr::Error) -> SpecError {
    let message = crate::parse_errors::yaml(e);
    match e.location() {
        Some(loc) => SpecError::at(file, loc.line(), loc.column(), message),
        None => SpecError::whole_file(file, message),
    }
}

fn is_spec_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// `line:col: message` for each error of `text` loaded as one spec file (none when it loads).
#[cfg(test)]
pub(super) fn errors_of(text: &str) -> Vec<String> {
    match load_sources(vec![("t.yaml".into(), text.into())]) {
        Ok(_) => vec![],
        Err(SpecErrors(errs)) => errs.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.message)).collect(),
    }
}

/// A spec file from its lines, so that a test reads which line an error should be on.
#[cfg(test)]
pub(super) fn spec_lines(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Transport;

    #[test]
    fn the_embedded_specs_load() {
        let specs = load_embedded().unwrap_or_else(|e| panic!("{e}"));
        let paths: Vec<(&str, Transport)> = specs.iter().map(|s| (s.path.as_str(), s.transport)).collect();
        assert_eq!(
            paths,
            [
                ("/ws", Transport::WebSocket),
                ("/", Transport::SocketIo),
                ("/realtime", Transport::SocketIo),
                ("/workflow", Transport::SocketIo),
                ("/ws", Transport::SocketIo),
            ]
        );
    }

    #[test]
    fn relays_replies_and_emits_are_checked() {
        let errs = errors_of(
            "namespace: /x\nrooms:\n  a: { pattern: a }\non_connect:\n  - relay: { event: e, rooms: a }\n  - emit: { data: 1 }\nevents:\n  e:\n    do:\n      - relay: { event: \"{payload.e}\", rooms: \"{payload.r}\", deny: [\"a*b\"] }\n      - reply: { data: { ok: true } }\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("5:") && e.contains("belongs in a client event")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("6:") && e.contains("needs an `event`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("10:") && e.contains("deny: `a*b`")), "{errs:?}");
        assert_eq!(errs.len(), 3, "a reply without an event is an ack-only reply: {errs:?}");
    }

    #[test]
    fn relays_may_not_use_names_the_server_sends() {
        let specs = load_sources(vec![(
            "t.yaml".into(),
            "namespace: /x\nrooms:\n  a: { pattern: a }\non_connect:\n  - emit: { event: hello }\npublish:\n  routes:\n    - types: [\"alert.*\"]\n      emit: { event: \"{event.type}\" }\n      to: [{ room: a }]\n".into(),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        let spec = &specs[0];
        for name in ["hello", "alert.fire", "error", "connect", "auth:refresh", "auth:refreshed", ""] {
            assert!(!spec.relayable(name, None), "{name}");
        }
        assert!(spec.relayable("typing", None));
        let deny = crate::spec::TypeMatcher::parse(&["typing".to_string()]).unwrap();
        assert!(!spec.relayable("typing", Some(&deny)));
    }

    #[test]
    fn a_name_belongs_to_the_first_family_that_parses_it() {
        let specs = load_sources(vec![(
            "t.yaml".into(),
            "namespace: /x\nrooms:\n  user: { pattern: \"user:{id}\", server_only: true }\n  channel: { pattern: \"{name}\" }\n".into(),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(specs[0].family_of("user:bob").map(|(id, _)| id), Some(0));
        assert_eq!(specs[0].family_of("news").map(|(id, _)| id), Some(1));
    }

    #[test]
    fn unknown_fields_are_reported_with_their_line() {
        let errs = errors_of("namespace: /x\nrooms:\n  a:\n    patern: x\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("4:5: unknown field `patern`"), "{errs:?}");
    }

    #[test]
    fn references_are_checked() {
        let errs = errors_of(
            "namespace: /x\nrooms:\n  a: { pattern: \"a:{id?}\" }\non_connect:\n  - join: { room: b }\nevents:\n  e:\n    do:\n      - join: { room: a, params: { nope: \"{payload.x}\" } }\n      - reply: { event: r, data: \"{room.key} {paylod.x}\" }\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("5:") && e.contains("unknown room `b`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("9:") && e.contains("no parameter `nope`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("10:") && e.contains("unknown variable `paylod`")), "{errs:?}");
    }

    #[test]
    fn room_before_join_and_wrong_context_variables_are_refused() {
        let errs = errors_of(
            "namespace: /x\nrooms:\n  a: { pattern: a }\nevents:\n  e:\n    do:\n      - emit: { event: x, data: \"{room.key}\" }\npublish:\n  routes:\n    - types: [t]\n      emit: { event: u, data: \"{payload.x}\" }\n      to: [{ room: a }]\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("7:") && e.contains("only set after a `join`")), "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("11:31:") && e.contains("`payload` is not available in a publish route")),
            "{errs:?}"
        );
    }

    #[test]
    fn enum_values_of_a_dynamic_room_must_be_rooms() {
        let errs = errors_of(
            "namespace: /x\nrooms:\n  a: { pattern: a }\n  s: { pattern: s, server_only: true }\nevents:\n  sub:\n    payload: { properties: { type: { enum: [a, b, s] } } }\n    do:\n      - join: { room: \"{payload.type}\" }\n",
        );
        assert!(errs.iter().any(|e| e.contains("`\"b\"`, which is not a room")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("`s`, a server_only room")), "{errs:?}");
    }

    #[test]
    fn duplicate_namespaces_are_refused() {
        let err = load_sources(vec![
            ("a.yaml".into(), "namespace: /x\n".into()),
            ("b.yaml".into(), "namespace: /x\n".into()),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("already defined in a.yaml"), "{err}");
    }

    #[test]
    fn errors_show_the_source_line() {
        let err = load_sources(vec![("t.yaml".into(), "namespace: nope\n".into())]).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("t.yaml:1:12: namespace `nope` must start with `/`"), "{shown}");
        assert!(shown.contains("| namespace: nope"), "{shown}");
    }

    #[test]
    fn every_unknown_field_of_a_file_is_reported_with_the_other_errors() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "descripton: typo at the top",
            "rooms:",
            "  a:",
            "    pattern: a",
            "    colour: red",
            "events:",
            "  e:",
            "    rate_limt: { max: 1, per: 1s }",
            "    do:",
            "      - join: { room: a, optinal: true }",
            "      - join: { room: b }",
        ]));
        assert_eq!(
            errs,
            [
                "2:1: unknown field `descripton`, expected one of namespace, transport, description, auth, rooms, \
                 on_connect, events, state, publish, every (did you mean `description`?)",
                "6:5: unknown field `colour`, expected one of pattern, scope, server_only, access, snapshot, filters, history, presence",
                "9:5: unknown field `rate_limt`, expected one of rate_limit, payload, max_size, do (did you mean \
                 `rate_limit`?)",
                "11:26: unknown field `optinal`, expected one of room, params, name, optional, filters, since, \
                 replay (did you mean `optional`?)",
                "12:23: unknown room `b` (known: a)",
            ]
        );
    }

    #[test]
    fn a_misspelt_required_field_is_read_as_the_field_so_the_rest_is_still_checked() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a:",
            "    patern: \"a:{id}\"",
            "on_connect:",
            "  - jion: { room: a }",
            "  - emit: { event: hi, data: \"{room.params.di}\" }",
        ]));
        assert_eq!(errs.len(), 4, "no `missing field pattern`: {errs:?}");
        assert!(errs[0].starts_with("4:5: unknown field `patern`") && errs[0].ends_with("(did you mean `pattern`?)"));
        assert!(errs[1].starts_with("6:5: unknown field `jion`") && errs[1].ends_with("(did you mean `join`?)"));
        // The pattern and the join were read as meant: the join's missing `id` and the misspelt
        // parameter are found in the same run.
        assert_eq!(errs[2], "6:19: room `a` needs parameter `id`");
        assert!(errs[3].starts_with("7:30: data: room `a` has no parameter `di`"), "{errs:?}");
    }

    #[test]
    fn a_misspelt_field_does_not_replace_the_field_given_too() {
        let errs = errors_of(&spec_lines(&["namespace: /x", "rooms:", "  a: { pattern: a, patern: b }"]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("3:20: unknown field `patern`"), "{errs:?}");
    }

    #[test]
    fn a_shape_error_ends_the_read_after_the_unknown_fields_before_it() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { patern: a, colour: red }",
            "events:",
            "  e:",
            "    max_size: lots",
        ]));
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].starts_with("3:8: unknown field `patern`"), "{errs:?}");
        assert!(errs[1].starts_with("3:19: unknown field `colour`"), "{errs:?}");
        assert!(errs[2].starts_with("6:15: "), "{errs:?}");
    }

    #[test]
    fn anchors_and_merge_keys_still_read() {
        let specs = load_sources(vec![(
            "t.yaml".into(),
            spec_lines(&[
                "namespace: /x",
                "rooms:",
                "  a: &base { pattern: \"a:{id?}\", scope: global, server_only: true }",
                "  b:",
                "    <<: *base",
                "    pattern: b",
            ]),
        )])
        .unwrap_or_else(|e| panic!("{e}"));
        let b = &specs[0].rooms[1];
        assert_eq!((b.pattern.params().len(), b.scope, b.server_only), (0, crate::rooms::RoomScope::Global, true));
    }

    #[test]
    fn errors_are_in_file_order() {
        let errs = errors_of(&spec_lines(&[
            "namespace: /x",
            "rooms:",
            "  a: { pattern: a }",
            "on_connect:",
            "  - join: { room: c }",
            "state:",
            "  s: {}",
            "every:",
            "  - { interval: 1s, room: b, emit: { event: t } }",
        ]));
        let lines: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
        assert_eq!(lines, ["5", "7", "9"], "{errs:?}");
    }
}
