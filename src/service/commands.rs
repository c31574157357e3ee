//! The node's answers to MQTT commands (parsing, size caps, HMAC and replay checks happen in
//! `act::mqtt::commands` before any of this runs).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::vision_stage::SnapshotRequests;
use super::{ConfigSource, Control};
use crate::act::door::Door;
use crate::act::events::{DoorKind, EventBuilder};
use crate::act::mqtt::CommandHandler;
use crate::act::store::{NewTemplate, Store};
use crate::config::Config;
use crate::decide::policy::Role;
use crate::engine::Engine;

/// Executes commands against the store and the doors. Changes to people reach the vision stage
/// through the store's change counter, like changes made from the CLI.
pub struct ServiceCommands {
    pub config: Config,
    pub store: Store,
    pub doors: HashMap<String, Arc<Door>>,
    pub reload: Reload,
    pub snapshot_requests: Arc<SnapshotRequests>,
    /// Loaded on the first `enroll` only: most nodes never enroll over MQTT.
    engine: Option<Engine>,
}

/// How `reload_config` checks the new config and asks the service to restart on it.
pub struct Reload {
    pub source: Option<ConfigSource>,
    pub control: Control,
}

impl ServiceCommands {
    pub fn new(
        config: Config,
        store: Store,
        doors: HashMap<String, Arc<Door>>,
        reload: Reload,
        snapshot_requests: Arc<SnapshotRequests>,
    ) -> ServiceCommands {
        ServiceCommands { config, store, doors, reload, snapshot_requests, engine: None }
    }
}

/// The top-level config sections that differ between two configs (what a reload changes).
fn changed_sections(old: &Config, new: &Config) -> Result<Vec<String>> {
    let (old, new) = (serde_json::to_value(old)?, serde_json::to_value(new)?);
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return Ok(Vec::new()) };
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect())
}

impl CommandHandler for ServiceCommands {
    fn open_door(&mut self, door: Option<&str>) -> Result<Value> {
        let door = match door {
            Some(name) => self.doors.get(name).with_context(|| format!("no door named `{name}`"))?,
            None if self.doors.len() == 1 => self.doors.values().next().context("no door configured")?,
            None => bail!("this node has {} doors: say which one with `door`", self.doors.len()),
        };
        let receipt = door.pulse(None)?;
        log::info!("door {}: opened by a remote command", door.name());
        let pulse = DoorKind::Pulse { ms: receipt.length.as_millis() as u64, by: "remote".into() };
        let event = EventBuilder::new(&self.config.mqtt.node()).door(door.name(), &pulse, jiff::Timestamp::now());
        if let Err(e) = self.store.enqueue(&[event]) {
            log::error!("door {}: the remote opening could not be queued for MQTT: {e:#}", door.name());
        }
        Ok(json!({ "door": door.name(), "pulse_ms": receipt.length.as_millis() as u64 }))
    }

    fn enroll(&mut self, name: &str, role: Option<Role>, jpegs: Vec<Vec<u8>>) -> Result<Value> {
        if self.engine.is_none() {
            self.engine = Some(Engine::open(&self.config)?);
        }
        let engine = self.engine.as_mut().context("engine not loaded")?;
        let mut templates = Vec::new();
        for (i, jpeg) in jpegs.iter().enumerate() {
            let image = crate::capture::image_file::decode_rgb(jpeg, &format!("photo {}", i + 1))?;
            let (mut faces, _) = engine.pipeline.analyse(&image)?;
            if faces.len() != 1 {
                bail!("photo {} shows {} faces; an enrolment photo must show exactly one", i + 1, faces.len());
            }
            let face = faces.remove(0);
            crate::engine::check_enrollment_quality(&face, &format!("photo {}", i + 1), false)?;
            templates.push(NewTemplate {
                embedding: face.embedding,
                source_sha256: crate::vision::models::sha256_hex(jpeg),
            });
        }
        let added = self.store.add_templates(name, &engine.template_model(), &templates)?;
        if let Some(role) = role {
            self.store.set_role(name, role)?;
        }
        Ok(json!({ "name": name, "templates_added": added }))
    }

    fn remove(&mut self, who: &str) -> Result<Value> {
        if !self.store.remove_person(who)? {
            bail!("no person `{who}`");
        }
        Ok(json!({ "removed": who }))
    }

    fn rename(&mut self, who: &str, new_name: &str) -> Result<Value> {
        self.store.rename(who, new_name)?;
        Ok(json!({ "renamed": who, "to": new_name }))
    }

    fn list_people(&mut self) -> Result<Value> {
        Ok(serde_json::to_value(self.store.people()?)?)
    }

    fn set_role(&mut self, who: &str, role: Role) -> Result<Value> {
        self.store.set_role(who, role)?;
        Ok(json!({ "person": who, "role": role.as_str() }))
    }

    /// Checks the new config first, so a broken file is answered with its error while the node
    /// keeps running; a valid one restarts the pipeline on it (this reply goes out first).
    fn reload_config(&mut self) -> Result<Value> {
        let source = self.reload.source.as_ref().context(
            "this node was started without a config file, so there is nothing to re-read: start it with --config",
        )?;
        let new = source().context("the new config is invalid; nothing changed")?;
        let changed = changed_sections(&self.config, &new)?;
        self.reload.control.request_reload();
        log::info!("reload_config: restarting on the new config (changed: {})", changed.join(", "));
        Ok(json!({ "reloading": true, "changed": changed }))
    }

    /// Asks the vision stage for the next frame of a camera (every camera without `camera`); each
    /// JPEG is published (through the outbox) on `snapshot/<camera>/<id>`, which the reply names.
    fn snapshot(&mut self, camera: Option<&str>) -> Result<Value> {
        if !self.config.mqtt.snapshots {
            bail!("snapshots are off on this node (privacy); set mqtt.snapshots = true in the config to allow them");
        }
        let cameras = &self.config.cameras;
        let wanted: Vec<usize> = match camera {
            Some(name) => vec![cameras.iter().position(|c| c.name == name).with_context(|| {
                let names: Vec<&str> = cameras.iter().map(|c| c.name.as_str()).collect();
                format!("no camera named `{name}` (cameras: {})", names.join(", "))
            })?],
            None => (0..cameras.len()).collect(),
        };
        let topics = crate::act::mqtt::Topics::new(&self.config.mqtt.prefix, &self.config.mqtt.node());
        let mut snapshots = Vec::new();
        for index in wanted {
            let id = uuid::Uuid::new_v4().to_string();
            self.snapshot_requests.request(index, &id);
            let name = &cameras[index].name;
            let topic = topics.full(&format!("snapshot/{}/{id}", crate::act::events::topic_level(name)));
            snapshots.push(json!({ "camera": name, "snapshot_id": id, "topic": topic }));
        }
        Ok(json!({ "snapshots": snapshots }))
    }
}
