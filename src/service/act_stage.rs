//! The act stage: a decision -> access verdict (role, schedule) -> attendance row and outbox
//! events committed durably -> door pulse. Only this thread writes decisions to the store, so
//! every row is on disk before the door it reports opens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::Heartbeat;
use super::stats::ServiceStats;
use super::vision_stage::{CameraDecision, VisionOutput};
use crate::act::door::{ContactState, Door, DoorEvent, DoorEventKind};
use crate::act::events::{self, DecisionInfo, DecisionKind, DoorKind, EventBuilder, LastSeen, PersonRef};
use crate::act::store::{AccessEvent, EventKind, Store};
use crate::act::{Outbox, OutboxEvent};
use crate::analytics::{AnalyzeConfig, Tally, hour_of};
use crate::capture::{CameraConfig, CameraState, FrameHub};
use crate::decide::clock::Clock;
use crate::decide::policy::{Access, DenyReason, evaluate_at_door};
use crate::decide::voter::Outcome;
use crate::vision::attributes::FaceAttributes;

/// Everything the stage owns; runs until its input channel closes.
pub struct ActStage {
    pub store: Store,
    pub cameras: Vec<CameraConfig>,
    pub doors: HashMap<String, Arc<Door>>,
    pub clock: Arc<dyn Clock>,
    pub tz: jiff::tz::TimeZone,
    pub stats: Arc<ServiceStats>,
    pub heartbeat: Heartbeat,
    /// Builds the MQTT events written to the outbox beside each row.
    pub events: EventBuilder,
    pub door_events: Vec<std::sync::mpsc::Receiver<DoorEvent>>,
    pub hub: Arc<FrameHub>,
    /// Seconds between heartbeat events (0 = none).
    pub heartbeat_every: Duration,
    /// The recognition model variant, reported in the heartbeat.
    pub model: String,
    /// Heartbeats go this way (straight to the broker) when the store cannot queue them, so a
    /// full disk or a read-only database still shows up as `store_errors` growing.
    pub direct: Option<std::sync::mpsc::SyncSender<OutboxEvent>>,
    /// The unknown-faces inbox (`[web] unknown_inbox`, retention).
    pub inbox: crate::act::inbox::Inbox,
    /// `[analyze]`: attributes on decision events and the hourly counts.
    pub analyze: AttributeCounts,
}

/// What the act stage does with face attributes (`[analyze]`): which decision events carry
/// them, and the hourly counts, closed (final report) when their hour is over.
#[derive(Debug, Clone)]
pub struct AttributeCounts {
    config: AnalyzeConfig,
    /// The local hour whose end was last looked for (`None`: not yet since the start).
    checked_hour: Option<jiff::Timestamp>,
}

impl AttributeCounts {
    pub fn new(config: &AnalyzeConfig) -> AttributeCounts {
        AttributeCounts { config: config.clone(), checked_hour: None }
    }

    /// The estimate a decision recorded as `kind` may carry and be counted with: an identified
    /// person's only with `analyze.per_person`.
    fn of<'a>(&self, input: &'a CameraDecision, kind: EventKind) -> Option<&'a FaceAttributes> {
        input.attributes.as_deref().filter(|_| self.config.estimates(kind != EventKind::Unknown))
    }

    /// `counted` of the hourly reports: whose faces they count.
    fn counted(&self) -> &'static str {
        if self.config.per_person { "all" } else { "unknown" }
    }
}

/// What a door's lock state is made of, followed from its events (not read later, which would
/// miss a short pulse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DoorView {
    energised: bool,
    contact: Option<ContactState>,
}

impl DoorView {
    /// Home Assistant's lock state: `unlocked` while the relay is energised, `open` while it is
    /// and the door stands open, `locked` otherwise.
    fn lock_state(self) -> &'static str {
        match (self.energised, self.contact) {
            (true, Some(ContactState::Open)) => "open",
            (true, _) => "unlocked",
            (false, _) => "locked",
        }
    }
}

/// What the stage concluded about one decision.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub event: AccessEvent,
    /// The door to pulse, when access was granted at a camera that has one.
    pub open: Option<String>,
}

impl ActStage {
    /// Runs until the vision stage hangs up, then drains what is left.
    pub fn run(mut self, input: Receiver<VisionOutput>) -> Result<()> {
        let mut camera_states: Vec<Option<bool>> = vec![None; self.cameras.len()];
        let mut views = self.publish_door_states();
        let started = std::time::Instant::now();
        let mut last_heartbeat = std::time::Instant::now();
        loop {
            self.heartbeat.beat();
            self.inbox.expire_if_due(&mut self.store, jiff::Timestamp::now());
            let hung_up = match input.recv_timeout(Duration::from_millis(200)) {
                Ok(VisionOutput::Decision(decision)) => {
                    self.handle(decision);
                    false
                }
                Ok(VisionOutput::Presence { camera, faces }) => {
                    self.publish_presence(camera, faces);
                    false
                }
                Ok(VisionOutput::TemplateLearnt { camera, person_id, learnt, cap }) => {
                    if let Some(c) = self.cameras.get(camera) {
                        let event =
                            self.events.template_learnt(&c.name, person_id, learnt, cap, jiff::Timestamp::now());
                        self.enqueue(&[event]);
                    }
                    false
                }
                Ok(VisionOutput::Snapshot { camera, request_id, jpeg }) => {
                    if let Some(c) = self.cameras.get(camera) {
                        log::info!("snapshot {request_id} of camera {} ({} bytes) queued", c.name, jpeg.len());
                        let event = self.events.snapshot(&c.name, &request_id, jpeg);
                        self.enqueue(&[event]);
                    }
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            self.publish_door_events(&mut views);
            self.close_attribute_hours(jiff::Timestamp::now());
            let beat_due = !self.heartbeat_every.is_zero() && last_heartbeat.elapsed() >= self.heartbeat_every;
            // Every heartbeat also refreshes each camera's state and frame rate.
            self.publish_camera_states(&mut camera_states, beat_due);
            if beat_due {
                last_heartbeat = std::time::Instant::now();
                self.publish_heartbeat(started.elapsed());
            }
            if hung_up {
                return Ok(());
            }
        }
    }

    /// Queues events that report no stored state; a failure is logged, never fatal.
    fn enqueue(&mut self, events: &[OutboxEvent]) {
        if let Err(e) = self.store.enqueue(events) {
            ServiceStats::add(&self.stats.store_errors, 1);
            log::error!("act: could not queue {} event(s) for MQTT: {e:#}", events.len());
            if let Some(direct) = &self.direct {
                for event in events.iter().filter(|e| e.topic == "heartbeat") {
                    let _ = direct.try_send(event.clone());
                }
            }
        }
    }

    /// The doors' current lock and contact states, published (retained) at start. The door
    /// threads were subscribed to before this runs, so a contact reading made before is in
    /// `state()` and one made after arrives as an event: the first reading is never lost.
    fn publish_door_states(&mut self) -> HashMap<String, DoorView> {
        let mut out = Vec::new();
        let mut views = HashMap::new();
        let now = jiff::Timestamp::now();
        let mut names: Vec<&String> = self.doors.keys().collect();
        names.sort();
        for name in names {
            let state = self.doors[name].state();
            let view = DoorView { energised: state.energised, contact: state.contact };
            out.push(self.events.lock_state(name, view.lock_state(), now));
            if let Some(contact) = state.contact {
                let kind = if contact == ContactState::Open { DoorKind::Open } else { DoorKind::Closed };
                out.push(self.events.door(name, &kind, now));
            }
            views.insert(name.clone(), view);
        }
        if !out.is_empty() {
            self.enqueue(&out);
        }
        views
    }

    fn publish_door_events(&mut self, views: &mut HashMap<String, DoorView>) {
        let mut out = Vec::new();
        for rx in &self.door_events {
            while let Ok(event) = rx.try_recv() {
                let at = self.wall_time(event.at);
                if let Some(view) = views.get_mut(&event.door) {
                    let before = view.lock_state();
                    match event.kind {
                        DoorEventKind::Pulse { .. } => view.energised = true,
                        DoorEventKind::Released { .. } => view.energised = false,
                        DoorEventKind::ContactOpen => view.contact = Some(ContactState::Open),
                        DoorEventKind::ContactClosed => view.contact = Some(ContactState::Closed),
                        _ => {}
                    }
                    if view.lock_state() != before {
                        out.push(self.events.lock_state(&event.door, view.lock_state(), at));
                    }
                }
                let kind = match event.kind {
                    // Pulses are reported by whoever asked for them (a face here, a remote
                    // command in `commands`), so the event can say who opened the door.
                    DoorEventKind::Pulse { .. } => continue,
                    DoorEventKind::ContactOpen => DoorKind::Open,
                    DoorEventKind::ContactClosed => DoorKind::Closed,
                    DoorEventKind::HeldOpen { for_ms } => DoorKind::HeldOpen { seconds: for_ms as f64 / 1e3 },
                    DoorEventKind::Forced => DoorKind::Forced,
                    DoorEventKind::Stalled => DoorKind::Stalled,
                    DoorEventKind::Released { .. } | DoorEventKind::Recovered => continue,
                };
                if matches!(kind, DoorKind::Forced | DoorKind::HeldOpen { .. } | DoorKind::Stalled) {
                    log::warn!("door {}: {kind:?}", event.door);
                }
                out.push(self.events.door(&event.door, &kind, at));
            }
        }
        if !out.is_empty() {
            self.enqueue(&out);
        }
    }

    fn publish_presence(&mut self, camera: usize, faces: u32) {
        let Some(c) = self.cameras.get(camera) else { return };
        log::debug!("camera {}: {faces} face(s) present", c.name);
        let event = self.events.face_presence(&c.name, faces, jiff::Timestamp::now());
        self.enqueue(&[event]);
    }

    /// Publishes a camera's state when it went online or offline, and every camera's state
    /// (with its frame rate) when `all` is set.
    fn publish_camera_states(&mut self, last: &mut [Option<bool>], all: bool) {
        let mut out = Vec::new();
        for (i, stats) in self.hub.stats().into_iter().enumerate() {
            let online = matches!(stats.state, CameraState::Streaming);
            let (Some(camera), Some(previous)) = (self.cameras.get(i), last.get_mut(i)) else { continue };
            let changed = *previous != Some(online);
            if !(changed || all) || matches!(stats.state, CameraState::Connecting) {
                continue;
            }
            *previous = Some(online);
            let reason = match &stats.state {
                CameraState::Reconnecting { error } => Some(error.clone()),
                CameraState::Ended => Some("end of replay".to_string()),
                _ => None,
            };
            if !online && changed {
                log::warn!("camera {}: offline ({})", camera.name, reason.as_deref().unwrap_or("?"));
            }
            let state = events::CameraState {
                camera: camera.name.clone(),
                location: camera.location.clone(),
                online,
                reason,
                // No measurement yet (just started) or offline: no value, rather than a 0 in
                // Home Assistant's statistics.
                fps: (online && stats.fps > 0.0).then_some(stats.fps as f32),
            };
            out.push(self.events.camera_state(&state, jiff::Timestamp::now()));
        }
        if !out.is_empty() {
            self.enqueue(&out);
        }
    }

    fn publish_heartbeat(&mut self, uptime: Duration) {
        let s = &self.stats;
        let mut counters = std::collections::BTreeMap::new();
        for (name, value) in [
            ("frames", &s.frames),
            ("faces", &s.faces),
            ("granted", &s.granted),
            ("denied", &s.denied),
            ("unknown", &s.unknown),
            ("spoof_suspected", &s.spoof_suspected),
            ("alerts", &s.alerts),
            ("pulses", &s.pulses),
            ("store_errors", &s.store_errors),
        ] {
            counters.insert(name.to_string(), ServiceStats::get(value));
        }
        match (self.store.waiting(), self.store.outbox_dropped(), self.store.outbox_forgotten()) {
            (Ok(waiting), Ok(dropped), Ok(forgotten)) => {
                counters.insert("outbox_waiting".into(), waiting);
                counters.insert("outbox_dropped".into(), dropped);
                counters.insert("outbox_forgotten".into(), forgotten);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                log::warn!("act: cannot read the outbox counters: {e:#}")
            }
        }
        let beat = events::Heartbeat { uptime_s: uptime.as_secs(), counters, model: Some(self.model.clone()) };
        let event = self.events.heartbeat(&beat, jiff::Timestamp::now());
        self.enqueue(&[event]);
    }

    /// The outbox events that report a decision: the decision, and where the person was seen.
    fn outbox_for(&self, input: &CameraDecision, verdict: &Verdict, role: Option<String>) -> Vec<OutboxEvent> {
        let e = &verdict.event;
        let camera = &self.cameras[input.camera];
        let person = match (e.person_id, &e.person_name, role) {
            (Some(id), Some(name), Some(role)) => Some(PersonRef { id, name: name.clone(), role }),
            _ => None,
        };
        let kind = match e.kind {
            EventKind::Granted => DecisionKind::Granted,
            EventKind::Denied => DecisionKind::Denied { reason: e.reason.clone().unwrap_or_default() },
            EventKind::Unknown => DecisionKind::Unknown,
            EventKind::Alert => DecisionKind::Alert,
        };
        let b = input.decision.bbox;
        let info = DecisionInfo {
            kind,
            camera: camera.name.clone(),
            location: camera.location.clone(),
            door: camera.door.clone(),
            person: person.clone(),
            similarity: e.similarity,
            margin: e.margin,
            votes: e.votes,
            window: e.window,
            bbox: [b.x1, b.y1, b.width(), b.height()],
            latency_ms: self.clock.now().saturating_sub(input.decision.at).as_secs_f64() * 1e3,
            liveness: liveness_of(&input.decision),
        };
        let mut decision = self.events.decision(&info, e.at);
        if let Some(a) = self.analyze.of(input, e.kind).filter(|_| self.analyze.config.unknown_events) {
            decision = self.events.with_attributes(decision, a);
        }
        let mut out = Vec::new();
        if let Some(jpeg) = &input.snapshot {
            out.push(self.events.snapshot(&camera.name, &decision.event_id, jpeg.clone()));
        }
        out.push(decision);
        if let (Some(person), Some(similarity)) = (person, e.similarity) {
            out.push(self.events.person_location(person.id, &camera.location));
            let seen = LastSeen { person, camera: camera.name.clone(), location: camera.location.clone(), similarity };
            out.push(self.events.last_seen(&seen, e.at));
        }
        out
    }

    /// The wall-clock time of a clock reading (the clock is monotonic; events need UTC).
    fn wall_time(&self, at: Duration) -> jiff::Timestamp {
        let ago = self.clock.now().saturating_sub(at);
        jiff::Timestamp::try_from(SystemTime::now() - ago).unwrap_or_else(|_| jiff::Timestamp::now())
    }

    /// Judges a decision against the person's role and schedule.
    pub fn judge(&self, input: &CameraDecision) -> Result<Verdict> {
        let camera = &self.cameras[input.camera];
        let d = &input.decision;
        let at = self.wall_time(d.at);
        let mut event = AccessEvent {
            at,
            camera: camera.name.clone(),
            door: camera.door.clone(),
            person_id: None,
            person_name: None,
            kind: EventKind::Unknown,
            reason: None,
            similarity: None,
            margin: None,
            votes: d.votes as u32,
            window: d.window as u32,
            bbox: Some(d.bbox),
            liveness: liveness_of(d),
        };
        if let Outcome::SpoofSuspected { person, similarity, .. } = &d.outcome {
            // Never opens, whoever the face resembles; the person is named when known.
            event.kind = EventKind::Denied;
            event.reason = Some(SPOOF_SUSPECTED.into());
            event.similarity = *similarity;
            if let Some(name) = person {
                event.person_id = self.store.find_person(name)?.map(|p| p.id);
                event.person_name = Some(name.clone());
            }
            return Ok(Verdict { event, open: None });
        }
        let Outcome::Recognised { person, similarity, margin } = &d.outcome else {
            return Ok(Verdict { event, open: None });
        };
        event.similarity = Some(*similarity);
        event.margin = Some(*margin);
        event.person_name = Some(person.clone());
        let Some(record) = self.store.find_person(person)? else {
            // Removed between the gallery load and now: treat as unknown, never open.
            event.reason = Some("person no longer enrolled".into());
            return Ok(Verdict { event, open: None });
        };
        event.person_id = Some(record.id);
        let local = at.to_zoned(self.tz.clone()).datetime();
        let mut open = None;
        match evaluate_at_door(record.role, &record.schedule, &record.doors, camera.door.as_deref(), local) {
            Access::Granted => {
                event.kind = EventKind::Granted;
                open = camera.door.clone();
            }
            Access::Denied { reason } => {
                event.kind = EventKind::Denied;
                event.reason = Some(deny_reason(reason).to_string());
            }
            Access::Alert => {
                event.kind = EventKind::Alert;
                event.reason = Some("watchlist".into());
            }
        }
        Ok(Verdict { event, open })
    }

    fn handle(&mut self, input: CameraDecision) {
        let verdict = match self.judge(&input) {
            Ok(v) => v,
            Err(e) => {
                ServiceStats::add(&self.stats.store_errors, 1);
                log::error!("act: could not judge a decision (door stays closed): {e:#}");
                return;
            }
        };
        let role = match verdict.event.person_id {
            Some(_) => verdict
                .event
                .person_name
                .as_deref()
                .and_then(|n| self.store.find_person(n).ok().flatten())
                .map(|p| p.role.to_string()),
            None => None,
        };
        let person = match (verdict.event.person_id, &verdict.event.person_name, &role) {
            (Some(id), Some(name), Some(role)) => Some(PersonRef { id, name: name.clone(), role: role.clone() }),
            _ => None,
        };
        let outbox = self.outbox_for(&input, &verdict, role);
        if let Err(e) = self.store.record_event(&verdict.event, &outbox) {
            // Fail secure: a door never opens for an event that is not on disk.
            ServiceStats::add(&self.stats.store_errors, 1);
            log::error!("act: could not record the decision, so the door stays closed: {e:#}");
            return;
        }
        let e = &verdict.event;
        let counter = match e.kind {
            EventKind::Granted => &self.stats.granted,
            EventKind::Denied => &self.stats.denied,
            EventKind::Unknown => &self.stats.unknown,
            EventKind::Alert => &self.stats.alerts,
        };
        ServiceStats::add(counter, 1);
        if e.reason.as_deref() == Some(SPOOF_SUSPECTED) {
            ServiceStats::add(&self.stats.spoof_suspected, 1);
        }
        let who = e.person_name.as_deref().unwrap_or("unknown face");
        let evidence = match (e.similarity, e.margin, liveness_of(&input.decision)) {
            (_, _, Some(l)) => format!("liveness {l:.3}, "),
            (Some(s), Some(m), None) => format!("similarity {s:.2}, margin {m:.2}, "),
            _ => String::new(),
        };
        let reason = e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        log::info!(
            "{}: {who} at camera {}{reason}: {evidence}{} of {} frames",
            e.kind.as_str(),
            e.camera,
            e.votes,
            e.window
        );
        // Unknown faces never open a door, so keeping one delays no door.
        if let (EventKind::Unknown, Some(face)) = (e.kind, &input.unknown) {
            self.inbox.keep(&mut self.store, e.at, &e.camera, face);
        }
        if let Some(door_name) = &verdict.open {
            self.pulse_door(door_name, &e.camera, person.as_ref(), who, input.decision.at);
        }
        // After the door: counting never delays it.
        self.count_attributes(&input, e);
    }

    /// Opens the door of a granted decision (decided at `decided_at` on the service clock).
    fn pulse_door(
        &mut self,
        door_name: &str,
        camera: &str,
        person: Option<&PersonRef>,
        who: &str,
        decided_at: Duration,
    ) {
        let Some(door) = self.doors.get(door_name) else {
            log::error!("act: camera {camera} names door `{door_name}`, which is not configured");
            return;
        };
        match door.pulse(None) {
            Ok(receipt) => {
                ServiceStats::add(&self.stats.pulses, 1);
                let ms = receipt.length.as_millis() as u64;
                let at = self.wall_time(receipt.started);
                let event = match person {
                    Some(p) => self.events.pulse_for(door_name, ms, p, at),
                    None => self.events.door(door_name, &DoorKind::Pulse { ms, by: "face".into() }, at),
                };
                self.enqueue(&[event]);
                let latency = receipt.started.saturating_sub(decided_at);
                self.stats.record_latency(latency);
                log::info!(
                    "door {door_name}: opened for {who} ({} ms pulse), {:.0} ms after the deciding frame",
                    receipt.length.as_millis(),
                    latency.as_secs_f64() * 1e3
                );
            }
            Err(e) => log::error!("door {door_name}: could not open: {e:#}"),
        }
    }

    /// Counts a recorded decision's face in its camera's hour (`[analyze] hourly`) and queues
    /// the hour's new totals. A failure costs the count only.
    fn count_attributes(&mut self, input: &CameraDecision, event: &AccessEvent) {
        if !self.analyze.config.counts_hours() {
            return;
        }
        let Some(tally) = self.analyze.of(input, event.kind).and_then(Tally::of) else { return };
        let hour = hour_of(event.at, &self.tz);
        let location = self.cameras.get(input.camera).map(|c| c.location.clone()).unwrap_or_default();
        let (events, counted) = (&self.events, self.analyze.counted());
        let report =
            |h: &crate::analytics::HourCounts| events.attribute_hour(h, &location, counted, jiff::Timestamp::now());
        if let Err(e) = self.store.count_attributes(&event.camera, hour, &tally, report) {
            ServiceStats::add(&self.stats.store_errors, 1);
            log::error!("act: could not count a face in the hourly statistics: {e:#}");
        }
    }

    /// Once per local hour (and at the start, for hours left open by a stop): marks the hours
    /// that are over complete, queues their final counts, and erases the counts older than
    /// `analyze.keep_days`.
    fn close_attribute_hours(&mut self, now: jiff::Timestamp) {
        if !self.analyze.config.counts_hours() {
            return;
        }
        let hour = hour_of(now, &self.tz).0;
        if self.analyze.checked_hour == Some(hour) {
            return;
        }
        // Set first: a store that fails now is tried again next hour (the query takes every
        // hour that ended by then), not every loop.
        self.analyze.checked_hour = Some(hour);
        let (events, counted, cameras) = (&self.events, self.analyze.counted(), &self.cameras);
        let report = |h: &crate::analytics::HourCounts| {
            let location = cameras.iter().find(|c| c.name == h.camera).map(|c| c.location.as_str()).unwrap_or("");
            events.attribute_hour(h, location, counted, now)
        };
        match self.store.close_attribute_hours(now, report) {
            Ok(closed) => {
                for h in closed {
                    log::info!("attributes: hour {} of camera {} closed with {} face(s)", h.start, h.camera, h.faces);
                }
            }
            Err(e) => {
                ServiceStats::add(&self.stats.store_errors, 1);
                log::error!("act: could not close the hourly statistics (tried again next hour): {e:#}");
            }
        }
        let keep = jiff::SignedDuration::from_hours(24 * i64::from(self.analyze.config.keep_days));
        match now
            .checked_sub(keep)
            .map_err(anyhow::Error::from)
            .and_then(|before| self.store.prune_attribute_hours(before))
        {
            Ok(0) => {}
            Ok(n) => log::info!("attributes: {n} hour(s) older than {} days erased", self.analyze.config.keep_days),
            Err(e) => log::warn!("act: could not erase old hourly statistics: {e:#}"),
        }
    }
}

/// The denial reason of a face whose liveness vote failed.
pub const SPOOF_SUSPECTED: &str = "spoof_suspected";

/// The failed liveness score of a decision, if it is a spoof denial.
fn liveness_of(decision: &crate::decide::voter::Decision) -> Option<f32> {
    match decision.outcome {
        Outcome::SpoofSuspected { liveness, .. } => Some(liveness),
        _ => None,
    }
}

/// The stored and published text of a denial reason.
fn deny_reason(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::OutsideSchedule => "outside_schedule",
        DenyReason::UnknownFace => "unknown_face",
        DenyReason::DoorNotAllowed => "door_not_allowed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::voter::Decision;
    use crate::vision::bbox::BBox;

    fn decided(outcome: Outcome) -> CameraDecision {
        let bbox = BBox { x1: 0.0, y1: 0.0, x2: 80.0, y2: 96.0, score: 0.99 };
        let decision =
            Decision { camera: "front".into(), track: 1, at: Duration::ZERO, bbox, outcome, votes: 3, window: 5 };
        let attributes = Some(Box::new(FaceAttributes {
            age: 30.0,
            age_spread: None,
            woman: 0.6,
            emotion: [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        }));
        CameraDecision { camera: 0, decision, snapshot: None, unknown: None, attributes }
    }

    #[test]
    fn identified_peoples_estimates_are_dropped_unless_per_person() {
        let recognised = decided(Outcome::Recognised { person: "ann".into(), similarity: 0.8, margin: 0.3 });
        let stranger = decided(Outcome::Unknown);
        let on = AnalyzeConfig { enabled: true, ..AnalyzeConfig::default() };
        let counts = AttributeCounts::new(&on);
        assert!(counts.of(&stranger, EventKind::Unknown).is_some());
        for kind in [EventKind::Granted, EventKind::Denied, EventKind::Alert] {
            assert!(counts.of(&recognised, kind).is_none(), "{kind:?}: an estimate that reached the act stage anyway");
        }
        assert_eq!(counts.counted(), "unknown");
        let everyone = AttributeCounts::new(&AnalyzeConfig { per_person: true, ..on.clone() });
        assert!(everyone.of(&recognised, EventKind::Granted).is_some());
        assert_eq!(everyone.counted(), "all");
        let off = AttributeCounts::new(&AnalyzeConfig::default());
        assert!(off.of(&stranger, EventKind::Unknown).is_none());
    }
}
