//! The console's one door into the node: every change made from the web goes through the
//! authorised service API ([`NodeApi`]) with the logged-in administrator as the actor (via web),
//! which checks the scope and records the audit event. The few operations that API does not have
//! (adding a person without photos, deleting one template) are small store calls here, audited
//! the same way. Photos are checked one by one first (with the shared enrolment rule), so each
//! gets its own message, before the good ones go to the API.

use anyhow::{Context, Result, bail};
use image::RgbImage;

use crate::act::events::{AuditInfo, EventBuilder};
use crate::act::store::Store;
use crate::api::{Actor, EnrollRequest, NodeApi, Scopes, Via};
use crate::config::Config;
use crate::decide::policy::{Doors, Role, Schedule};
use crate::engine::Engine;

/// The actor of an administrator logged in to the console: every scope, via the web.
pub fn web_actor(admin: &str) -> Actor {
    Actor::new(admin, Scopes::all(), Via::Web)
}

pub use crate::enroll::PhotoResult;

pub struct Console {
    config: Config,
    api: NodeApi,
    events: EventBuilder,
    /// Loaded on the first enrolment, for the per-photo checks: most visits never enroll.
    engine: Option<Engine>,
}

impl Console {
    pub fn new(config: Config, api: NodeApi) -> Console {
        let events = EventBuilder::new(&config.mqtt.node());
        Console { config, api, events, engine: None }
    }

    /// The audit event of an operation done here rather than in the API.
    fn audit(&self, store: &mut Store, actor: &Actor, command: &str, outcome: &Result<()>) {
        let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
        log::info!(
            "audit: {} via web ran {command}{}",
            actor.name,
            error.as_ref().map(|e| format!(" (refused: {e})")).unwrap_or_default()
        );
        let info = AuditInfo {
            actor: actor.name.clone(),
            via: actor.via.as_str().into(),
            command: command.into(),
            ok: error.is_none(),
            error,
        };
        if let Err(e) = store.enqueue(&[self.events.audit(&info, jiff::Timestamp::now())]) {
            log::error!("audit event of {command} could not be queued: {e:#}");
        }
    }

    pub fn add_person(
        &self,
        store: &mut Store,
        actor: &Actor,
        name: &str,
        role: Role,
        schedule: &Schedule,
    ) -> Result<i64> {
        let result = store.add_person(name, role, schedule);
        self.audit(store, actor, "add_person", &result.as_ref().map(|_| ()).map_err(|e| anyhow::anyhow!("{e:#}")));
        result
    }

    /// The API itself, for console features in their own modules (the inbox).
    pub(super) fn api(&mut self) -> &mut NodeApi {
        &mut self.api
    }

    pub fn rename(&mut self, actor: &Actor, who: &str, new_name: &str) -> Result<()> {
        self.api.rename(actor, who, new_name)?;
        Ok(())
    }

    pub fn set_role(&mut self, actor: &Actor, who: &str, role: Role) -> Result<()> {
        self.api.set_role(actor, who, role)?;
        Ok(())
    }

    pub fn set_schedule(&mut self, actor: &Actor, who: &str, schedule: Schedule) -> Result<()> {
        self.api.set_schedule(actor, who, schedule)?;
        Ok(())
    }

    pub fn set_doors(&mut self, actor: &Actor, who: &str, doors: Doors) -> Result<()> {
        self.api.set_doors(actor, who, doors)?;
        Ok(())
    }

    pub fn remove(&mut self, actor: &Actor, who: &str) -> Result<()> {
        self.api.remove(actor, who)?;
        Ok(())
    }

    /// Erases a person; returns what was erased, in words.
    pub fn forget(&mut self, actor: &Actor, who: &str) -> Result<String> {
        let r = self.api.forget(actor, who)?;
        let n = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let name = r.get("name").and_then(|v| v.as_str()).unwrap_or(who);
        Ok(format!(
            "erased {name}: {} template(s), {} event(s), {} undelivered MQTT event(s), {} unknown face(s)",
            n("templates"),
            n("events"),
            n("outbox"),
            n("unknown_faces")
        ))
    }

    /// Deletes one template through the API (which refuses the last one, and audits).
    pub fn delete_template(&mut self, actor: &Actor, who: &str, template: i64) -> Result<()> {
        self.api.delete_template(actor, who, template)?;
        Ok(())
    }

    fn engine(&mut self) -> Result<&mut Engine> {
        if self.engine.is_none() {
            self.engine = Some(Engine::open(&self.config).context("cannot load the face models to enroll")?);
        }
        self.engine.as_mut().context("engine not loaded")
    }

    /// Enrolls `who` from photos: each is checked alone (decodes within the decoder's limits,
    /// shows exactly one face of enrolment quality, unless `force`) and gets its own result; the
    /// good ones go to the API, which creates the person (or adds to them when `existing`) and
    /// applies its own rules.
    pub fn enroll_photos(
        &mut self,
        actor: &Actor,
        who: &str,
        existing: bool,
        force: bool,
        photos: &[(String, Vec<u8>)],
    ) -> Result<Vec<PhotoResult>> {
        crate::act::store::check_person_name(who)?;
        let engine = self.engine()?;
        let (_, results) = crate::enroll::check_photos(engine, photos, force);
        let good: Vec<Vec<u8>> = photos
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.outcome.is_ok())
            .map(|((_, bytes), _)| bytes.clone())
            .collect();
        if !good.is_empty() {
            let request = EnrollRequest { name: who.to_string(), role: None, images: good, append: existing, force };
            self.api.enroll(actor, request)?;
        }
        Ok(results)
    }

    /// Enrolls (adds to) `who` from a frame of a camera: the face in front of it must be the only one.
    pub fn enroll_frame(&mut self, actor: &Actor, who: &str, camera: &str, frame: &RgbImage) -> Result<()> {
        let jpeg = crate::service::vision_stage::encode_jpeg(frame)?;
        let request =
            EnrollRequest { name: who.to_string(), role: None, images: vec![jpeg], append: true, force: false };
        self.api.enroll(actor, request).map_err(|e| anyhow::anyhow!("camera {camera}: {e}"))?;
        Ok(())
    }

    /// Pulses a door once through the API's `open_door` (the relay's own caps apply, as in `door test`).
    pub fn test_door(&mut self, actor: &Actor, door: &str) -> Result<u64> {
        if !self.config.doors.iter().any(|d| d.name == door) {
            bail!("no door named `{door}` on this node");
        }
        let reply = self.api.open_door(actor, Some(door))?;
        Ok(reply.get("pulse_ms").and_then(|v| v.as_u64()).unwrap_or(0))
    }
}
