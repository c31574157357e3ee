//! The console's one door into the node: every change made from the web goes through here, with
//! the administrator as the actor, and leaves an audit event.
//!
//! This is a thin adapter: once the authorised service API (`api::NodeApi`, issue 9) is merged,
//! the mutating calls below forward to it instead of to the store, and nothing else in `web`
//! changes. Operations that API does not have (deleting one template, enrolling from a frame of
//! the door camera) stay here as calls into the store and the engine.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use image::RgbImage;

use crate::act::door::Door;
use crate::act::events::{DoorKind, EventBuilder};
use crate::act::store::{ForgetReport, NewTemplate, Store};
use crate::config::Config;
use crate::decide::policy::{Doors, Role, Schedule};
use crate::engine::Engine;

/// Who asks (the logged-in administrator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
}

/// What happened to one uploaded photo.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoResult {
    pub name: String,
    /// `Ok(())` when it became a template; else the reason, for the person to read.
    pub outcome: std::result::Result<(), String>,
}

pub struct Console {
    config: Config,
    events: EventBuilder,
    doors: HashMap<String, Arc<Door>>,
    /// Loaded on the first enrolment: most visits never enroll.
    engine: Option<Engine>,
}

impl Console {
    pub fn new(config: Config, doors: HashMap<String, Arc<Door>>) -> Console {
        let events = EventBuilder::new(&config.mqtt.node());
        Console { config, events, doors, engine: None }
    }

    fn audit(&self, store: &mut Store, actor: &Actor, action: &str, target: &str) {
        log::info!("audit: {} (web) {action} {target}", actor.name);
        let event = self.events.audit(&actor.name, "web", action, target, jiff::Timestamp::now());
        if let Err(e) = store.enqueue(&[event]) {
            log::error!("audit: could not queue the audit event: {e:#}");
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
        let id = store.add_person(name, role, schedule)?;
        self.audit(store, actor, "add", name.trim());
        Ok(id)
    }

    pub fn rename(&self, store: &mut Store, actor: &Actor, who: &str, new_name: &str) -> Result<()> {
        store.rename(who, new_name)?;
        self.audit(store, actor, "rename", &format!("{who} -> {}", new_name.trim()));
        Ok(())
    }

    pub fn set_role(&self, store: &mut Store, actor: &Actor, who: &str, role: Role) -> Result<()> {
        store.set_role(who, role)?;
        self.audit(store, actor, "set_role", &format!("{who}: {role}"));
        Ok(())
    }

    pub fn set_schedule(&self, store: &mut Store, actor: &Actor, who: &str, schedule: &Schedule) -> Result<()> {
        store.set_schedule(who, schedule)?;
        self.audit(store, actor, "set_schedule", &format!("{who}: {schedule}"));
        Ok(())
    }

    pub fn set_doors(&self, store: &mut Store, actor: &Actor, who: &str, doors: &Doors) -> Result<()> {
        if let Doors::Only(names) = doors
            && let Some(name) = names.iter().find(|n| !self.config.doors.iter().any(|d| &d.name == *n))
        {
            let known: Vec<&str> = self.config.doors.iter().map(|d| d.name.as_str()).collect();
            bail!("no door named `{name}` on this node (doors: {}); use `all` or those names", known.join(", "));
        }
        store.set_doors(who, doors)?;
        self.audit(store, actor, "set_doors", &format!("{who}: {doors}"));
        Ok(())
    }

    pub fn remove(&self, store: &mut Store, actor: &Actor, who: &str) -> Result<()> {
        if !store.remove_person(who)? {
            bail!("no person `{who}`");
        }
        self.audit(store, actor, "remove", who);
        Ok(())
    }

    pub fn forget(&self, store: &mut Store, actor: &Actor, who: &str) -> Result<ForgetReport> {
        let report = store.forget(who)?;
        self.audit(store, actor, "forget", who);
        Ok(report)
    }

    pub fn delete_template(&self, store: &mut Store, actor: &Actor, who: &str, template: i64) -> Result<()> {
        if !store.delete_template(who, template)? {
            bail!("{who} has no template #{template}");
        }
        self.audit(store, actor, "delete_template", &format!("{who} #{template}"));
        Ok(())
    }

    fn engine(&mut self) -> Result<&mut Engine> {
        if self.engine.is_none() {
            self.engine = Some(Engine::open(&self.config).context("cannot load the face models to enroll")?);
        }
        self.engine.as_mut().context("engine not loaded")
    }

    /// Enrolls `who` (created as an employee if new) from photos, each of which must decode
    /// within the decoder's limits and show exactly one face. Good photos become templates even
    /// when others are refused; each photo gets its own result.
    pub fn enroll_photos(
        &mut self,
        store: &mut Store,
        actor: &Actor,
        who: &str,
        photos: &[(String, Vec<u8>)],
    ) -> Result<Vec<PhotoResult>> {
        crate::act::store::check_person_name(who)?;
        let mut results = Vec::new();
        let mut templates = Vec::new();
        for (name, bytes) in photos {
            let outcome = match crate::capture::image_file::decode_rgb(bytes, name) {
                Ok(image) => self.one_face(&image).map(|embedding| {
                    templates.push(NewTemplate { embedding, source_sha256: crate::vision::models::sha256_hex(bytes) })
                }),
                Err(e) => Err(format!("{e}; upload a JPEG or PNG photo")),
            };
            results.push(PhotoResult { name: name.clone(), outcome });
        }
        if !templates.is_empty() {
            let model = self.engine()?.template_model();
            store.add_templates(who, &model, &templates)?;
            self.audit(store, actor, "enroll", &format!("{who}: {} photo(s)", templates.len()));
        }
        Ok(results)
    }

    /// Enrolls `who` from a frame of a camera: the face in front of it must be the only one.
    pub fn enroll_frame(
        &mut self,
        store: &mut Store,
        actor: &Actor,
        who: &str,
        camera: &str,
        frame: &RgbImage,
    ) -> Result<()> {
        crate::act::store::check_person_name(who)?;
        let embedding = self.one_face(frame).map_err(|e| anyhow::anyhow!("camera {camera}: {e}"))?;
        let mut sha_input = format!("{camera}:{}", jiff::Timestamp::now()).into_bytes();
        sha_input.extend_from_slice(&frame.as_raw()[..frame.as_raw().len().min(4096)]);
        let template = NewTemplate { embedding, source_sha256: crate::vision::models::sha256_hex(&sha_input) };
        let model = self.engine()?.template_model();
        store.add_templates(who, &model, &[template])?;
        self.audit(store, actor, "enroll", &format!("{who}: frame of camera {camera}"));
        Ok(())
    }

    fn one_face(&mut self, image: &RgbImage) -> std::result::Result<Vec<f32>, String> {
        let engine = self.engine().map_err(|e| format!("{e:#}"))?;
        let (mut faces, _) = engine.pipeline.analyse(image).map_err(|e| format!("cannot analyse it: {e:#}"))?;
        match faces.len() {
            1 => Ok(faces.remove(0).embedding),
            0 => Err("no face found; use a sharp, front-facing photo where the face is at least 80 px wide".into()),
            n => Err(format!("{n} faces found; an enrolment photo must show exactly one person")),
        }
    }

    /// Pulses a door once, as `facegate door test` does (the relay's own caps apply).
    pub fn test_door(&self, store: &mut Store, actor: &Actor, door: &str) -> Result<u64> {
        let d = self.doors.get(door).with_context(|| format!("no door named `{door}` on this node"))?;
        let receipt = d.pulse(None)?;
        let ms = receipt.length.as_millis() as u64;
        let pulse = DoorKind::Pulse { ms, by: format!("web:{}", actor.name) };
        let event = self.events.door(door, &pulse, jiff::Timestamp::now());
        if let Err(e) = store.enqueue(&[event]) {
            log::error!("door {door}: the test pulse could not be queued for MQTT: {e:#}");
        }
        self.audit(store, actor, "test_door", door);
        Ok(ms)
    }
}
