//! THE authorised service API: every interface (MQTT commands, the web console, Home Assistant,
//! the CLI) changes or reads the node only through [`NodeApi`], as an [`Actor`].
//!
//! Each method checks the actor's scope first (one rule for every interface: [`Request::scope`]),
//! applies the per-actor rate limit where one exists, does the work and records an audit event
//! (log line and `audit` MQTT event) naming the actor. Interfaces parse and authenticate; they
//! never reach into the store or the stages themselves.

mod attributes;
mod inbox;
mod limits;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use anyhow::Context;
use serde_json::{Value, json};

pub use crate::access::{Actor, Scope, Scopes, Via};
use crate::act::door::Door;
use crate::act::events::{AuditInfo, DoorKind, EventBuilder};
use crate::act::store::Store;
use crate::config::Config;
use crate::decide::policy::{Doors, Role, Schedule};
use crate::engine::Engine;
use crate::service::ConfigSource;
use crate::service::vision_stage::SnapshotRequests;
pub use limits::RateLimits;

/// One request, with checked arguments (interfaces validate shapes; the API validates meaning).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Pulse a door (`None`: the node's only door).
    OpenDoor {
        door: Option<String>,
    },
    Enroll(EnrollRequest),
    Remove {
        person: String,
    },
    Rename {
        person: String,
        name: String,
    },
    SetRole {
        person: String,
        role: Role,
    },
    SetSchedule {
        person: String,
        schedule: Schedule,
    },
    SetDoors {
        person: String,
        doors: Doors,
    },
    /// Erasure: the person, templates, events and undelivered events.
    Forget {
        person: String,
    },
    ListPeople,
    ReloadConfig,
    /// A frame of one camera (`None`: every camera).
    Snapshot {
        camera: Option<String>,
    },
    /// The faces of one unknown-faces inbox group become templates of a person: an existing one
    /// (`role: None`), or a new one with `role`. The group leaves the inbox.
    LabelUnknown {
        group: i64,
        person: String,
        role: Option<Role>,
    },
    /// Erases one inbox group.
    DismissUnknown {
        group: i64,
    },
    /// Delete one template of a person (a wrong photo). The console's; not an MQTT command.
    DeleteTemplate {
        person: String,
        template: i64,
    },
    /// A new person without photos (the CLI's `people add`; photos come with `enroll`). Not an
    /// MQTT command: enrolment there carries the photos.
    AddPerson {
        name: String,
        role: Role,
        schedule: Schedule,
    },
    /// The hourly age, gender and expression counts (`[analyze]`) of the last `hours` hours
    /// (`None`: every camera). The console's; MQTT gets them as `camera/<camera>/attributes`.
    AttributeStats {
        camera: Option<String>,
        hours: u32,
    },
}

/// `enroll`: photos (JPEG/PNG bytes) of one person.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollRequest {
    pub name: String,
    /// Only for a new person; changing a role is `set_role`.
    pub role: Option<Role>,
    pub images: Vec<Vec<u8>>,
    /// Add the photos to an existing person instead of creating one.
    pub append: bool,
    /// Keep photos the enrolment quality check refuses (the CLI's `--force`; MQTT's `force`).
    pub force: bool,
}

impl Request {
    /// The command name (as in MQTT topics and the audit log).
    pub fn name(&self) -> &'static str {
        match self {
            Request::OpenDoor { .. } => "open_door",
            Request::Enroll(_) => "enroll",
            Request::Remove { .. } => "remove",
            Request::Rename { .. } => "rename",
            Request::SetRole { .. } => "set_role",
            Request::SetSchedule { .. } => "set_schedule",
            Request::SetDoors { .. } => "set_doors",
            Request::Forget { .. } => "forget",
            Request::ListPeople => "list_people",
            Request::ReloadConfig => "reload_config",
            Request::Snapshot { .. } => "snapshot",
            Request::LabelUnknown { .. } => "label_unknown",
            Request::DismissUnknown { .. } => "dismiss_unknown",
            Request::DeleteTemplate { .. } => "delete_template",
            Request::AttributeStats { .. } => "attribute_stats",
            Request::AddPerson { .. } => "add_person",
        }
    }

    /// The one rule of who may do what.
    pub fn scope(&self) -> Scope {
        match self {
            Request::OpenDoor { .. } => Scope::Door,
            Request::ReloadConfig | Request::Snapshot { .. } => Scope::Admin,
            _ => Scope::Manage,
        }
    }
}

/// Every request name MQTT accepts as a command, in the order of [`Request`] (the inbox's
/// `label_unknown` and `dismiss_unknown`, and `delete_template`, are the console's only:
/// strangers' faces are not sent over MQTT).
pub const REQUESTS: [&str; 11] = [
    "open_door",
    "enroll",
    "remove",
    "rename",
    "set_role",
    "set_schedule",
    "set_doors",
    "forget",
    "list_people",
    "reload_config",
    "snapshot",
];

/// Why a request was not done. Interfaces map the kind to their own status (HTTP 403/429/400/500,
/// MQTT `rejected`), and show the message, which names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The actor's key lacks the scope.
    Forbidden,
    /// Too many of these requests from this actor; retry after `retry_after_s`.
    RateLimited { retry_after_s: u64 },
    /// The request cannot be done as asked (unknown person, name taken, feature off...).
    Failed,
}

impl ApiError {
    pub fn failed(e: anyhow::Error) -> ApiError {
        ApiError { kind: ErrorKind::Failed, message: format!("{e:#}") }
    }

    /// Refused before any work (forbidden or rate-limited), as opposed to failed while working.
    pub fn is_refusal(&self) -> bool {
        !matches!(self.kind, ErrorKind::Failed)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::failed(e)
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// What interfaces hold: the node behind one call. [`NodeApi`] is the real one; tests of an
/// interface may use a stand-in (and must still pass an [`Actor`]).
pub trait Api: Send {
    fn execute(&mut self, actor: &Actor, request: Request) -> ApiResult;
}

/// How `reload_config` checks the new config and asks the service to restart on it.
pub struct Reload {
    pub source: Option<ConfigSource>,
    pub control: crate::service::Control,
}

/// The node's API over the store, the doors and the running service.
pub struct NodeApi {
    config: Config,
    store: Store,
    doors: HashMap<String, Arc<Door>>,
    reload: Reload,
    snapshot_requests: Arc<SnapshotRequests>,
    limits: RateLimits,
    events: EventBuilder,
    /// Loaded on the first `enroll` only: most nodes never enroll remotely.
    engine: Option<Engine>,
}

impl NodeApi {
    pub fn new(
        config: Config,
        store: Store,
        doors: HashMap<String, Arc<Door>>,
        reload: Reload,
        snapshot_requests: Arc<SnapshotRequests>,
    ) -> NodeApi {
        let events = EventBuilder::new(&config.mqtt.node());
        NodeApi { config, store, doors, reload, snapshot_requests, limits: RateLimits::default(), events, engine: None }
    }

    /// Replaces the rate limits (tests, or a site that needs others).
    pub fn with_limits(mut self, limits: RateLimits) -> NodeApi {
        self.limits = limits;
        self
    }

    /// Scope, then rate limit: the gate in front of every method.
    fn admit(&mut self, actor: &Actor, request: &Request) -> Result<(), ApiError> {
        let scope = request.scope();
        if !actor.may(scope) {
            return Err(ApiError {
                kind: ErrorKind::Forbidden,
                message: format!(
                    "key `{}` may not {} (it needs scope `{}`; it has `{}`): use a key with that scope",
                    crate::access::loggable(&actor.name),
                    request.name(),
                    scope.as_str(),
                    actor.scopes
                ),
            });
        }
        if let Some(wait) = self.limits.check(&actor.name, request.name(), std::time::Instant::now()) {
            let retry_after_s = wait.as_secs().max(1);
            return Err(ApiError {
                kind: ErrorKind::RateLimited { retry_after_s },
                message: format!("rate limited: too many {} requests; try again in {retry_after_s} s", request.name()),
            });
        }
        Ok(())
    }

    /// Logs and queues the audit event of one request (a failure to queue is logged only: the
    /// request itself already happened or was refused).
    fn audit(&mut self, actor: &Actor, command: &str, outcome: &ApiResult) {
        let error = outcome.as_ref().err().map(|e| e.message.clone());
        let who = crate::access::loggable(&actor.name);
        match &error {
            None => log::info!("audit: {who} via {} ran {command}", actor.via.as_str()),
            Some(e) => {
                log::warn!("audit: {who} via {} {command} refused: {}", actor.via.as_str(), crate::access::loggable(e))
            }
        }
        let info = AuditInfo {
            actor: actor.name.clone(),
            via: actor.via.as_str().into(),
            command: command.into(),
            ok: error.is_none(),
            error,
        };
        if let Err(e) = self.store.enqueue(&[self.events.audit(&info, jiff::Timestamp::now())]) {
            log::error!("audit event of {command} could not be queued: {e:#}");
        }
    }

    pub fn open_door(&mut self, actor: &Actor, door: Option<&str>) -> ApiResult {
        self.execute(actor, Request::OpenDoor { door: door.map(str::to_string) })
    }
    pub fn enroll(&mut self, actor: &Actor, request: EnrollRequest) -> ApiResult {
        self.execute(actor, Request::Enroll(request))
    }
    pub fn remove(&mut self, actor: &Actor, person: &str) -> ApiResult {
        self.execute(actor, Request::Remove { person: person.into() })
    }
    pub fn add_person(&mut self, actor: &Actor, name: &str, role: Role, schedule: Schedule) -> ApiResult {
        self.execute(actor, Request::AddPerson { name: name.into(), role, schedule })
    }
    pub fn rename(&mut self, actor: &Actor, person: &str, name: &str) -> ApiResult {
        self.execute(actor, Request::Rename { person: person.into(), name: name.into() })
    }
    pub fn set_role(&mut self, actor: &Actor, person: &str, role: Role) -> ApiResult {
        self.execute(actor, Request::SetRole { person: person.into(), role })
    }
    pub fn set_schedule(&mut self, actor: &Actor, person: &str, schedule: Schedule) -> ApiResult {
        self.execute(actor, Request::SetSchedule { person: person.into(), schedule })
    }
    pub fn set_doors(&mut self, actor: &Actor, person: &str, doors: Doors) -> ApiResult {
        self.execute(actor, Request::SetDoors { person: person.into(), doors })
    }
    pub fn forget(&mut self, actor: &Actor, person: &str) -> ApiResult {
        self.execute(actor, Request::Forget { person: person.into() })
    }
    pub fn list_people(&mut self, actor: &Actor) -> ApiResult {
        self.execute(actor, Request::ListPeople)
    }
    pub fn reload_config(&mut self, actor: &Actor) -> ApiResult {
        self.execute(actor, Request::ReloadConfig)
    }
    pub fn snapshot(&mut self, actor: &Actor, camera: Option<&str>) -> ApiResult {
        self.execute(actor, Request::Snapshot { camera: camera.map(str::to_string) })
    }
    pub fn delete_template(&mut self, actor: &Actor, person: &str, template: i64) -> ApiResult {
        self.execute(actor, Request::DeleteTemplate { person: person.into(), template })
    }

    fn run(&mut self, actor: &Actor, request: Request) -> anyhow::Result<Value> {
        match request {
            Request::OpenDoor { door } => self.do_open_door(actor, door.as_deref()),
            Request::Enroll(r) => self.do_enroll(r),
            Request::Remove { person } => {
                let Some(p) = self.store.find_person(&person)? else {
                    anyhow::bail!(
                        "no person `{person}` in {}; `facegate people list` (or list_people) shows who is enrolled",
                        self.store.path().display()
                    )
                };
                self.store.remove_person(&format!("#{}", p.id))?;
                Ok(json!({ "removed": p.id }))
            }
            Request::AddPerson { name, role, schedule } => {
                let id = self.store.add_person(&name, role, &schedule)?;
                Ok(json!({ "added": id, "name": name.trim(), "role": role.as_str(), "schedule": schedule.to_string() }))
            }
            Request::Rename { person, name } => {
                self.store.rename(&person, &name)?;
                Ok(json!({ "renamed": person, "to": name.trim() }))
            }
            Request::SetRole { person, role } => {
                self.store.set_role(&person, role)?;
                Ok(json!({ "person": person, "role": role.as_str() }))
            }
            Request::SetSchedule { person, schedule } => {
                self.store.set_schedule(&person, &schedule)?;
                Ok(json!({ "person": person, "schedule": schedule.to_string() }))
            }
            Request::SetDoors { person, doors } => {
                let names: Vec<&String> = match &doors {
                    Doors::All => Vec::new(),
                    Doors::Only(names) => names.iter().collect(),
                };
                // A node that knows its doors refuses names it does not have (a typo would lock
                // the person out); a database edited without any [[door]] (the CLI with only
                // --db) has nothing to check them against.
                let known = !self.doors.is_empty() || !self.config.doors.is_empty();
                for name in names.into_iter().filter(|_| known) {
                    if !self.doors.contains_key(name) && !self.config.doors.iter().any(|d| &d.name == name) {
                        anyhow::bail!("no door named `{name}` on this node");
                    }
                }
                self.store.set_doors(&person, &doors)?;
                Ok(json!({ "person": person, "doors": doors.to_string() }))
            }
            Request::Forget { person } => Ok(serde_json::to_value(self.store.forget(&person)?)?),
            Request::ListPeople => Ok(serde_json::to_value(self.store.people()?)?),
            Request::ReloadConfig => self.do_reload(),
            Request::Snapshot { camera } => self.do_snapshot(camera.as_deref()),
            Request::LabelUnknown { group, person, role } => self.do_label_unknown(group, &person, role),
            Request::DismissUnknown { group } => self.do_dismiss_unknown(group),
            Request::DeleteTemplate { person, template } => self.do_delete_template(&person, template),
            Request::AttributeStats { camera, hours } => self.do_attribute_stats(camera.as_deref(), hours),
        }
    }

    /// Refuses to delete a person's last template: that would lock them out of every door
    /// without a word (the person stays listed but never matches). An administrator replacing a
    /// bad photo enrols the new one first; one who wants them out removes the person.
    fn do_delete_template(&mut self, person: &str, template: i64) -> anyhow::Result<Value> {
        let Some(p) = self.store.find_person(person)? else { anyhow::bail!("no person `{person}`") };
        let who = format!("#{}", p.id);
        let templates = self.store.templates_of(&who)?;
        if !templates.iter().any(|(id, _, _)| *id == template) {
            anyhow::bail!("{} has no template #{template} (deleted already?)", p.name);
        }
        if templates.len() == 1 {
            anyhow::bail!(
                "this is {}'s only template: deleting it would stop them being recognised at any door; enrol a \
                 better photo first and then delete this one, or remove the person to stop them getting in",
                p.name
            );
        }
        self.store.delete_template(&who, template)?;
        Ok(json!({ "person": p.id, "deleted_template": template }))
    }

    fn do_open_door(&mut self, actor: &Actor, door: Option<&str>) -> anyhow::Result<Value> {
        let door = match door {
            Some(name) => self.doors.get(name).with_context(|| format!("no door named `{name}`"))?,
            None if self.doors.len() == 1 => self.doors.values().next().context("no door configured")?,
            None => anyhow::bail!("this node has {} doors: say which one with `door`", self.doors.len()),
        };
        let receipt = door.pulse(None)?;
        log::info!(
            "door {}: opened by {} via {}",
            door.name(),
            crate::access::loggable(&actor.name),
            actor.via.as_str()
        );
        let pulse = DoorKind::Pulse { ms: receipt.length.as_millis() as u64, by: "remote".into() };
        let event = self.events.door(door.name(), &pulse, jiff::Timestamp::now());
        if let Err(e) = self.store.enqueue(&[event]) {
            log::error!("door {}: the remote opening could not be queued for MQTT: {e:#}", door.name());
        }
        Ok(json!({ "door": door.name(), "pulse_ms": receipt.length.as_millis() as u64 }))
    }

    fn do_enroll(&mut self, r: EnrollRequest) -> anyhow::Result<Value> {
        let mode = if r.append { crate::enroll::Mode::Append } else { crate::enroll::Mode::New };
        crate::enroll::check_target(&self.store, &r.name, r.role, mode)?;
        self.load_engine()?;
        let engine = self.engine.as_mut().context("engine not loaded")?;
        let photos: Vec<(String, Vec<u8>)> =
            r.images.into_iter().enumerate().map(|(i, b)| (format!("photo {}", i + 1), b)).collect();
        let templates = crate::enroll::templates_from_photos(engine, &photos, r.force)?;
        let done = crate::enroll::enroll(&mut self.store, engine, &r.name, r.role, &templates, mode)?;
        Ok(serde_json::to_value(done)?)
    }

    /// Loads the face models on first use (most nodes never enroll remotely).
    fn load_engine(&mut self) -> anyhow::Result<()> {
        if self.engine.is_none() {
            self.engine = Some(Engine::open(&self.config)?);
        }
        Ok(())
    }

    /// Checks the new config first, models included (a model whose hash no longer matches is
    /// refused here), so a broken one is answered with its error while the node keeps running;
    /// a valid one restarts the pipeline on it (this reply goes out first).
    fn do_reload(&mut self) -> anyhow::Result<Value> {
        let source = self.reload.source.as_ref().context(
            "this node was started without a config file, so there is nothing to re-read: start it with --config",
        )?;
        let new = source().context("the new config is invalid; nothing changed")?;
        Engine::open(&new).context("the new config's models cannot be loaded; nothing changed")?;
        let changed = changed_sections(&self.config, &new)?;
        self.reload.control.request_reload();
        log::info!("reload_config: restarting on the new config (changed: {})", changed.join(", "));
        Ok(json!({ "reloading": true, "changed": changed }))
    }

    /// Asks the vision stage for the next frame of a camera (every camera without `camera`); each
    /// JPEG is published (through the outbox) on `snapshot/<camera>/<id>`, which the reply names.
    fn do_snapshot(&mut self, camera: Option<&str>) -> anyhow::Result<Value> {
        if !self.config.mqtt.snapshots {
            anyhow::bail!(
                "snapshots are off on this node (privacy); set mqtt.snapshots = true in the config to allow them"
            );
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

impl Api for NodeApi {
    fn execute(&mut self, actor: &Actor, request: Request) -> ApiResult {
        let command = request.name();
        let outcome = match self.admit(actor, &request) {
            Ok(()) => self.run(actor, request).map_err(ApiError::failed),
            Err(e) => Err(e),
        };
        self.audit(actor, command, &outcome);
        outcome
    }
}

/// The top-level config sections that differ between two configs (what a reload changes).
fn changed_sections(old: &Config, new: &Config) -> anyhow::Result<Vec<String>> {
    let (old, new) = (serde_json::to_value(old)?, serde_json::to_value(new)?);
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else { return Ok(Vec::new()) };
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect())
}
