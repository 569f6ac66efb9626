//! What a spec does without a client: publish routes (`publish:`, which rooms a published event
//! goes to and what is emitted there) and timers (`every:`).

use serde_saphyr::Spanned;

use super::{
    Checker,
    place::{Ctx, Place},
};
use crate::spec::{
    RoomFamily, Route, RouteTarget, TimerInterval, TimerSpec,
    raw::{RawEmit, RawRoute, RawTarget, RawTimer},
};

impl Checker<'_> {
    pub(super) fn route(
        &mut self,
        route: &Spanned<RawRoute>,
        default_emit: Option<&RawEmit>,
        rooms: &[RoomFamily],
    ) -> Option<Route> {
        let (at, r) = (route.referenced, &route.value);
        let place = Place::new(Ctx::Route);
        let types = self.types(&r.types, at, "types");
        let Some(raw_emit) = r.emit.as_ref().or(default_emit) else {
            self.error(at, "this route emits nothing: give it an `emit`, or give `publish` a default `emit`");
            return None;
        };
        let emit = self.emit(raw_emit, &place, at);
        if r.to.is_empty() {
            self.error(at, "a route needs at least one room in `to`");
        }
        let targets = r.to.iter().filter_map(|t| self.route_target(t, &place, rooms)).collect();
        Some(Route { types: types?, require: r.require.clone(), targets, emit: emit? })
    }

    pub(super) fn route_target(
        &mut self,
        target: &Spanned<RawTarget>,
        place: &Place,
        rooms: &[RoomFamily],
    ) -> Option<RouteTarget> {
        let t = &target.value;
        let room = self.room_id(&t.room, rooms)?;
        let pattern = &rooms[room].pattern;
        let mut params = vec![None; pattern.params().len()];
        for (name, value) in &t.params {
            if let Some(i) = self.param_index(&t.room.value, pattern, name) {
                params[i] = self.str_template(value, place, &format!("params.{}", name.value));
            }
        }
        for (i, p) in pattern.params().iter().enumerate() {
            if !p.optional && params[i].is_none() {
                self.error(target.referenced, format!("room `{}` needs parameter `{}`", t.room.value, p.name));
            }
        }
        let family = &rooms[room];
        let given = self.filter_templates(&t.filters, Some(family), place);
        let filters =
            family.filters.iter().map(|f| given.iter().find(|(name, _)| name == f).map(|(_, t)| t.clone())).collect();
        Some(RouteTarget { room, params, exact: t.exact, filters })
    }

    pub(super) fn timer(&mut self, timer: &Spanned<RawTimer>, rooms: &[RoomFamily]) -> Option<TimerSpec> {
        let t = &timer.value;
        let interval = self.interval(&t.interval);
        let room = self.room_id(&t.room, rooms);
        if let Some(id) = room
            && rooms[id].pattern.params().iter().any(|p| !p.optional)
        {
            self.error(
                t.room.referenced,
                format!("timers emit into rooms without required parameters; `{}` has some", t.room.value),
            );
        }
        let emit = self.emit(&t.emit, &Place::new(Ctx::Timer), timer.referenced);
        Some(TimerSpec { interval: interval?, room: room?, emit: emit? })
    }

    pub(super) fn interval(&mut self, raw: &Spanned<String>) -> Option<TimerInterval> {
        if raw.value == "metrics_interval" {
            return Some(TimerInterval::Metrics);
        }
        match crate::spec::durations::parse_duration(&raw.value) {
            Ok(d) if d >= std::time::Duration::from_millis(100) => Some(TimerInterval::Fixed(d)),
            Ok(_) => {
                self.error(raw.referenced, "a timer interval must be at least 100ms");
                None
            }
            Err(e) => {
                self.error(raw.referenced, format!("interval: {e}, or `metrics_interval`"));
                None
            }
        }
    }
}
