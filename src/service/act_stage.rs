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
use super::vision_stage::CameraDecision;
use crate::act::OutboxEvent;
use crate::act::door::Door;
use crate::act::store::{AccessEvent, EventKind, Store};
use crate::capture::CameraConfig;
use crate::decide::clock::Clock;
use crate::decide::policy::{Access, DenyReason, evaluate};
use crate::decide::voter::Outcome;

/// Everything the stage owns; runs until its input channel closes.
pub struct ActStage {
    pub store: Store,
    pub cameras: Vec<CameraConfig>,
    pub doors: HashMap<String, Arc<Door>>,
    pub clock: Arc<dyn Clock>,
    pub tz: jiff::tz::TimeZone,
    pub stats: Arc<ServiceStats>,
    pub heartbeat: Heartbeat,
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
    pub fn run(mut self, input: Receiver<CameraDecision>) -> Result<()> {
        loop {
            self.heartbeat.beat();
            match input.recv_timeout(Duration::from_millis(200)) {
                Ok(decision) => self.handle(decision),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
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
        };
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
        match evaluate(record.role, &record.schedule, local) {
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
        let outbox: Vec<OutboxEvent> = Vec::new();
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
        let who = e.person_name.as_deref().unwrap_or("unknown face");
        let evidence = match (e.similarity, e.margin) {
            (Some(s), Some(m)) => format!("similarity {s:.2}, margin {m:.2}, "),
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
        if let Some(door_name) = &verdict.open {
            let Some(door) = self.doors.get(door_name) else {
                log::error!("act: camera {} names door `{door_name}`, which is not configured", e.camera);
                return;
            };
            match door.pulse(None) {
                Ok(receipt) => {
                    ServiceStats::add(&self.stats.pulses, 1);
                    let latency = receipt.started.saturating_sub(input.decision.at);
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
    }
}

/// The stored and published text of a denial reason.
fn deny_reason(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::OutsideSchedule => "outside_schedule",
        DenyReason::UnknownFace => "unknown_face",
    }
}
