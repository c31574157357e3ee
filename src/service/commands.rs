//! The node's answers to MQTT commands (parsing, size caps, HMAC and replay checks happen in
//! `act::mqtt::commands` before any of this runs).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::act::door::Door;
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
    /// Loaded on the first `enroll` only: most nodes never enroll over MQTT.
    engine: Option<Engine>,
}

impl ServiceCommands {
    pub fn new(config: Config, store: Store, doors: HashMap<String, Arc<Door>>) -> ServiceCommands {
        ServiceCommands { config, store, doors, engine: None }
    }
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

    fn reload_config(&mut self) -> Result<Value> {
        bail!("reloading the config in place is not supported yet: restart the service (systemctl restart facegate)")
    }

    fn snapshot(&mut self, _camera: Option<&str>) -> Result<Value> {
        bail!("snapshots are not available on this node yet")
    }
}
