//! The namespace-wide settings of a spec: its transport, its auth policy, and what a plain
//! WebSocket endpoint cannot do.

use serde_saphyr::Spanned;

use super::Checker;
use crate::{
    parse_errors::suggest,
    spec::{
        AuthPolicy, DEFAULT_REFRESH_EVENT, RESERVED_EVENTS, Transport,
        raw::{RawAuth, RawSpec},
    },
};

impl Checker<'_> {
    pub(super) fn transport(&mut self, raw: Option<&Spanned<String>>) -> Transport {
        match raw.map(|t| (t.value.as_str(), t.referenced)) {
            None | Some(("socketio", _)) => Transport::SocketIo,
            Some(("websocket", _)) => Transport::WebSocket,
            Some((other, at)) => {
                let hint = suggest::did_you_mean(suggest::closest(other, ["socketio", "websocket"]));
                self.error(at, format!("transport `{other}` is not `socketio` or `websocket`{hint}"));
                Transport::SocketIo
            }
        }
    }

    /// What a plain WebSocket endpoint cannot do: relay (its clients have no rooms of each other
    /// to speak to) and periodic emits.
    pub(super) fn websocket_limits(&mut self, raw: &RawSpec) {
        let actions = raw.on_connect.iter().chain(raw.events.values().flat_map(|e| e.value.actions.iter()));
        for action in actions.filter(|a| a.value.relay.is_some()) {
            self.error(
                action.referenced,
                "`relay` is not available on plain WebSocket endpoints (`transport: websocket`)",
            );
        }
        if let Some(timer) = raw.every.first() {
            self.error(
                timer.referenced,
                "`every` is not available on plain WebSocket endpoints (`transport: websocket`)",
            );
        }
        // Presence events are sent through the Socket.IO front's raw emits; the plain endpoint's
        // rooms can still be counted, not announced.
        for room in raw.rooms.values().filter_map(|r| r.value.presence.as_ref()) {
            self.error(
                room.referenced,
                "`presence` events are not available on plain WebSocket endpoints (`transport: websocket`)",
            );
        }
    }

    pub(super) fn auth(&mut self, raw: Option<&Spanned<RawAuth>>) -> AuthPolicy {
        let Some(a) = raw.map(|a| &a.value) else {
            return AuthPolicy {
                required: true,
                require_tenant: false,
                refresh_event: DEFAULT_REFRESH_EVENT.to_string(),
                cookie: false,
                connections_per_ip: None,
                api_keys: false,
            };
        };
        let refresh_event = match &a.refresh_event {
            Some(event) => {
                if RESERVED_EVENTS.contains(&event.value.as_str()) || event.value.is_empty() {
                    self.error(event.referenced, format!("refresh_event `{}` is reserved", event.value));
                }
                event.value.clone()
            }
            None => DEFAULT_REFRESH_EVENT.to_string(),
        };
        AuthPolicy {
            required: a.required,
            require_tenant: a.require_tenant,
            refresh_event,
            cookie: a.cookie,
            connections_per_ip: self.rate_limit(a.connections_per_ip.as_ref(), "connections_per_ip"),
            api_keys: a.api_keys,
        }
    }
}
