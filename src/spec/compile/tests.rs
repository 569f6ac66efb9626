//! What the checker reports, through the loader: every error at the value it is about, once,
//! with the closest existing name when one is close.

use crate::spec::load::{errors_of, spec_lines};

/// Whether an error on `line` says `message` (whatever its column).
fn has(errs: &[String], line: u32, message: &str) -> bool {
    errs.iter().any(|e| e.starts_with(&format!("{line}:")) && e.ends_with(&format!(": {message}")))
}

#[test]
fn fields_of_template_variables_are_checked_with_a_suggestion() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: \"a:{id}\", snapshot: { store: s, key: \"{room.params.id}\" } }",
        "  t: { pattern: t }",
        "state:",
        "  s:",
        "    records: { max_per_tenant: 10 }",
        "    on:",
        "      - types: [t]",
        "        key: \"{data.id}\"",
        "        merge: [\"{data}\", { at: \"{event.timestamp}\", by: \"{event.tenant}\" }]",
        "events:",
        "  e:",
        "    do:",
        "      - join: { room: a, params: { id: \"{user.id}\" } }",
        "      - reply: { data: { s: \"{room.snapshott}\", t: \"{user.tenant}\", r: \"{socket.room}\" } }",
        "      - emit: { event: clock, data: \"{now.date}\" }",
        "every:",
        "  - { interval: 5s, room: t, emit: { event: n, data: \"{tenant.stat} {gateway.stats}\" } }",
    ]));
    assert!(has(&errs, 11, "merge[1].by: unknown field `tenant` of `event` (did you mean `event.tenantId`?)"));
    assert!(has(&errs, 16, "data.s: unknown field `snapshott` of `room` (did you mean `room.snapshot`?)"));
    assert!(has(&errs, 16, "data.t: unknown field `tenant` of `user` (did you mean `user.tenantId`?)"));
    assert!(has(&errs, 16, "data.r: unknown field `room` of `socket` (did you mean `socket.rooms`?)"));
    assert!(has(&errs, 17, "data: `now` has no fields: `now.date` is always unset"));
    assert!(has(&errs, 19, "data: unknown field `stat` of `tenant` (did you mean `tenant.stats`?)"));
    assert_eq!(errs.len(), 6, "{errs:?}");
}

#[test]
fn a_room_has_at_most_four_filters() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: a, filters: [f1, f2, f3, f4] }",
        "  b: { pattern: b, filters: [f1, f2, f3, f4, f5, f6] }",
    ]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(has(&errs, 4, "a room has at most 4 filters (an event reaches 2^filters variants of it)"), "{errs:?}");
}

#[test]
fn an_unknown_field_without_a_close_one_lists_the_known_ones() {
    let errs =
        errors_of(&spec_lines(&["namespace: /x", "on_connect:", "  - emit: { event: e, data: \"{user.email}\" }"]));
    assert_eq!(
        errs,
        ["3:29: data: unknown field `email` of `user` (known: id, tenantId, roles, authenticated, expiresAt)"]
    );
}

#[test]
fn fields_of_free_form_variables_are_not_checked() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: \"a:{id?}\" }",
        "state:",
        "  s:",
        "    records: { max_per_tenant: 10 }",
        "    on:",
        "      - { types: [t], key: \"{data.any.thing}\", merge: \"{event.data.other}\" }",
        "events:",
        "  e:",
        "    do:",
        "      - join: { room: a, params: { id: \"{payload.whatever}\" } }",
        "      - reply: { data: [\"{state.s[payload.x].field}\", \"{user.roles[0]}\", \"{room.params}\"] }",
    ]));
    assert_eq!(errs, Vec::<String>::new());
}

#[test]
fn room_params_must_be_parameters_of_a_family_the_room_can_be_of() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: \"a:{id}\" }",
        "  b: { pattern: \"b:{key}:{part?}\" }",
        "events:",
        "  fixed:",
        "    do:",
        "      - join: { room: a, params: { id: \"{payload.id}\" } }",
        "      - reply: { data: \"{room.params.idd}\" }",
        "  dynamic:",
        "    payload: { properties: { type: { enum: [a, b] } } }",
        "    do:",
        "      - join: { room: \"{payload.type}\", params: { id: \"{payload.id}\", key: \"{payload.id}\" } }",
        "      - reply: { data: [\"{room.params.id}\", \"{room.params.part}\", \"{room.params.nope}\"] }",
        "  named:",
        "    do:",
        "      - join: { name: \"{payload.room}\" }",
        "      - reply: { data: \"{room.params.anything}\" }",
    ]));
    assert_eq!(
        errs,
        [
            "9:24: data: room `a` has no parameter `idd` (did you mean `room.params.id`?)",
            "14:67: data[2]: rooms `a`, `b` have no parameter `nope`",
        ]
    );
}

#[test]
fn room_snapshot_must_exist_and_cannot_be_used_to_build_itself() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: a }",
        "  l: { pattern: \"l:{id}\", snapshot: { store: s, key: \"{room.snapshot}\", match: { x: \"{room.params.di}\" } } }",
        "state:",
        "  s:",
        "    lists: { keep: 10, max_keys_per_tenant: 10 }",
        "on_connect:",
        "  - join: { room: a }",
        "  - emit: { event: x, data: \"{room.snapshot}\" }",
    ]));
    assert!(has(&errs, 4, "key: `room.snapshot` is the snapshot being built; its own key and filters cannot use it"));
    assert!(has(&errs, 4, "match.x: room `l` has no parameter `di` (did you mean `room.params.id`?)"));
    assert!(has(&errs, 10, "data: room `a` has no `snapshot`, so `room.snapshot` is always unset"));
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn unknown_names_come_with_the_closest_known_one() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  tenant: { pattern: \"t:{resourceId?}\", scope: globl, snapshot: { store: executons } }",
        "state:",
        "  executions: { records: { max_per_tenant: 1 } }",
        "on_connect:",
        "  - join: { room: tenent, params: {} }",
        "  - join: { room: tenant, params: { resourceid: \"{user.id}\" } }",
        "  - emit: { event: e, data: \"{paylod.x} {state.executon}\" }",
    ]));
    assert!(has(&errs, 3, "scope `globl` must be `tenant` or `global` (did you mean `global`?)"));
    assert!(has(&errs, 3, "unknown store `executons` (known: executions) (did you mean `executions`?)"));
    assert!(has(&errs, 7, "unknown room `tenent` (known: tenant) (did you mean `tenant`?)"));
    assert!(has(&errs, 8, "room `tenant` has no parameter `resourceid` (did you mean `resourceId`?)"));
    assert!(
        errs.iter().any(|e| e.starts_with("9:")
            && e.contains("unknown variable `paylod`")
            && e.ends_with("(did you mean `payload`?)")),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn errors_point_at_the_offending_value_not_at_what_holds_it() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "auth:",
        "  refresh_event: error",
        "  connections_per_ip:",
        "    max: 0",
        "    per: 1m",
        "rooms:",
        "  a:",
        "    pattern: \"a:{id?}\"",
        "    access:",
        "      - params:",
        "          idd: \"{user.id}\"",
        "events:",
        "  error:",
        "    rate_limit:",
        "      max: 0",
        "      per: 1s",
        "    do:",
        "      - leave:",
        "          room: a",
        "          optional: true",
        "      - emit:",
        "          event: deep",
        "          data:",
        "            outer:",
        "              inner: \"{payload.x} {paylod.y}\"",
        "publish:",
        "  routes:",
        "    - types:",
        "        - ok.*",
        "        - \"bad*type\"",
        "      to:",
        "        - room: nope",
        "      emit: { event: x }",
        "every:",
        "  - interval: 5 parsecs",
        "    room: a",
        "    emit: { event: t }",
    ]));
    let at: Vec<&str> = errs.iter().map(|e| e.split(": ").next().unwrap()).collect();
    assert_eq!(at, ["3:18", "5:5", "12:11", "14:3", "16:7", "21:21", "26:22", "31:11", "33:17", "36:15"], "{errs:?}");
    assert!(errs[0].ends_with("refresh_event `error` is reserved"));
    assert!(errs[1].ends_with("connections_per_ip needs max >= 1 and a non-zero `per`"));
    assert!(errs[2].ends_with("room `a` has no parameter `idd` (did you mean `id`?)"));
    assert!(errs[3].ends_with("`error` is reserved and cannot be a client event"));
    assert!(errs[4].ends_with("rate_limit needs max >= 1 and a non-zero `per`"));
    assert!(errs[5].ends_with("`optional` only applies to `join`"));
    assert!(errs[6].contains("data.outer.inner: in `{paylod.y}`: unknown variable `paylod`"));
    assert!(errs[7].contains("types: `bad*type` is not a type pattern"));
    assert!(errs[8].contains("unknown room `nope`"));
    assert!(errs[9].contains("interval: "));
}

#[test]
fn errors_in_flow_collections_point_at_their_value() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms: { a: { pattern: \"a:{id}\" } }",
        "on_connect: [ { join: { room: a, params: { id: \"{user.id}\", di: x } } }, \
         { emit: { event: e, data: [1, \"{user.rols}\"] } } ]",
    ]));
    assert_eq!(
        errs,
        [
            "3:61: room `a` has no parameter `di` (did you mean `id`?)",
            "3:104: data[1]: unknown field `rols` of `user` (did you mean `user.roles`?)",
        ]
    );
}

#[test]
fn an_error_in_the_default_emit_is_reported_once_where_it_is() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms: { a: { pattern: a } }",
        "publish:",
        "  emit:",
        "    event: update",
        "    data: \"{evnt.type}\"",
        "  routes:",
        "    - { types: [one], to: [{ room: a }] }",
        "    - { types: [two], to: [{ room: a }] }",
    ]));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("6:11: data: in `{evnt.type}`: unknown variable `evnt`"), "{errs:?}");
}

#[test]
fn an_action_does_exactly_one_thing() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "on_connect:",
        "  - {}",
        "  - emit: { event: a }",
        "    reply: { event: b }",
    ]));
    assert_eq!(
        errs,
        [
            "3:5: an action needs one of `join`, `leave`, `emit`, `reply`, `relay` or `forward`",
            "4:5: an action does one thing: give one of `join`, `leave`, `emit`, `reply`, `relay` or `forward` per item",
        ]
    );
}

#[test]
fn presence_names_an_event_outside_socketio_and_not_on_a_plain_endpoint() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  a: { pattern: a, presence: { online: connect } }",
        "  b: { pattern: b, presence: { max_per_second: 0, offline: gone } }",
        "  c: { pattern: c, presence: {} }",
    ]));
    assert!(has(&errs, 3, "`connect` cannot be a presence event: name another"), "{errs:?}");
    assert!(has(&errs, 4, "max_per_second is at least 1"), "{errs:?}");
    assert!(has(&errs, 5, "presence: name its `online` event, its `offline` event, or both"), "{errs:?}");
    assert_eq!(errs.len(), 3, "{errs:?}");

    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "transport: websocket",
        "rooms:",
        "  a: { pattern: a, presence: { online: here } }",
    ]));
    assert!(
        has(&errs, 4, "`presence` events are not available on plain WebSocket endpoints (`transport: websocket`)"),
        "{errs:?}"
    );
}

#[test]
fn forwards_are_checked_where_they_are_written() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "on_connect:",
        "  - forward: { to: users }",
        "events:",
        "  a:",
        "    do:",
        "      - forward: { to: users, timeout: 2s, event: user:info:result, data: { id: \"{payload.id}\" } }",
        "      - reply: { data: 1 }",
        "  b:",
        "    do:",
        "      - forward: { to: stream, reply: true, timeout: 1s }",
        "  c:",
        "    do:",
        "      - forward: { to: audit, reply: false, event: done, timeout: 3m }",
        "      - forward: { to: users, data: \"{user.mail}\" }",
    ]));
    assert!(has(&errs, 3, "`forward` sends a client's event on; it belongs in a client event's `do`"), "{errs:?}");
    assert!(has(&errs, 8, "only one `reply` per event: it is also the ack"), "{errs:?}");
    assert!(has(&errs, 11, "the backend event stream does not answer: `reply: true` needs a backend"), "{errs:?}");
    assert!(has(&errs, 11, "`timeout` bounds a backend's call; the event stream has none"), "{errs:?}");
    assert!(has(&errs, 14, "`event` carries the backend's answer: it needs `reply: true`"), "{errs:?}");
    assert!(has(&errs, 14, "`timeout` must be from 1ms to 2m"), "{errs:?}");
    assert!(
        has(&errs, 15, "data: unknown field `mail` of `user` (known: id, tenantId, roles, authenticated, expiresAt)"),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 7, "{errs:?}");
}

#[test]
fn a_forward_that_answers_is_the_reply_and_the_stream_is_fire_and_forget() {
    use crate::spec::{Action, check_destinations, load_sources};
    let text = spec_lines(&[
        "namespace: /x",
        "events:",
        "  user:info:",
        "    do:",
        "      - forward: { to: users, timeout: 2s }",
        "      - forward: { to: stream }",
        "  audit:",
        "    do:",
        "      - forward: { to: udit, reply: false }",
    ]);
    let specs = load_sources(vec![("t.yaml".into(), text)]).unwrap();
    let actions = &specs[0].events["user:info"].actions;
    let [Action::Forward(rpc), Action::Forward(stream)] = actions.as_slice() else { panic!("{actions:?}") };
    assert!(rpc.reply && !stream.reply);
    assert_eq!(rpc.timeout, Some(std::time::Duration::from_secs(2)));
    let known = ["users".to_string(), "audit".to_string(), "stream".to_string()];
    let errors = check_destinations(&specs, &known, &[]).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let shown = errors.to_string();
    assert!(
        shown.starts_with("t.yaml:9:24: unknown backend `udit` (known: users, audit, stream: backends come from BACKENDS_FILE) (did you mean `audit`?)"),
        "{shown}"
    );
    assert!(shown.contains("| ") && shown.contains("to: udit"), "{shown}");
    let known = ["users".to_string(), "udit".to_string(), "stream".to_string()];
    assert!(check_destinations(&specs, &known, &[]).is_ok());
    // A database or Kafka destination never answers: `users` waits for one, `udit` does not.
    let errors = check_destinations(&specs, &known, &["users".into(), "udit".into()]).unwrap_err();
    assert_eq!(errors.0.len(), 1, "{errors}");
    let shown = errors.to_string();
    assert!(shown.starts_with("t.yaml:5:24: backend `users` is a database or Kafka destination"), "{shown}");
    assert!(shown.contains("reply: false"), "{shown}");
}

#[test]
fn joins_read_history_with_since_or_replay_only_from_rooms_that_keep_it() {
    let errs = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  kept: { pattern: \"kept:{id?}\", history: { size: 10, ttl: 1m } }",
        "  plain: { pattern: plain }",
        "events:",
        "  sub:",
        "    do:",
        "      - join: { room: kept, params: { id: \"{payload.id}\" }, since: \"{payload.since}\", replay: 5 }",
        "      - join: { room: plain, since: \"{payload.since}\" }",
        "      - join: { room: kept, replay: 0 }",
        "      - join: { room: kept, since: \"{payload.since.nope}\", replay: 1001 }",
        "      - leave: { room: kept, since: \"{payload.since}\" }",
        "      - join: { room: kept, since: \"{user.since}\" }",
    ]));
    assert!(has(&errs, 9, "room `plain` keeps no history to read: give the family `history: {size, ttl}`"), "{errs:?}");
    assert!(has(&errs, 10, "replay must be 1 to 1000 events"), "{errs:?}");
    assert!(has(&errs, 11, "replay must be 1 to 1000 events"), "{errs:?}");
    assert!(has(&errs, 12, "`since` and `replay` only apply to `join`"), "{errs:?}");
    assert!(errs.iter().any(|e| e.starts_with("13:") && e.contains("`since` of `user`")), "{errs:?}");
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn socketio_namespaces_keep_history_and_plain_endpoints_take_since_from_the_message() {
    let socketio = errors_of(&spec_lines(&[
        "namespace: /x",
        "rooms:",
        "  kept: { pattern: kept, history: {} }",
        "events:",
        "  sub: { do: [ { join: { room: kept, since: \"{payload.since}\" } } ] }",
    ]));
    assert!(socketio.is_empty(), "{socketio:?}");
    let plain = errors_of(&spec_lines(&[
        "namespace: /p",
        "transport: websocket",
        "rooms:",
        "  kept: { pattern: kept, history: {} }",
        "events:",
        "  sub: { do: [ { join: { room: kept, since: \"{payload.since}\", replay: 3 } } ] }",
    ]));
    assert_eq!(plain.len(), 1, "{plain:?}");
    assert!(plain[0].starts_with("6:") && plain[0].contains("plain WebSocket endpoints read `since`"), "{plain:?}");
}
