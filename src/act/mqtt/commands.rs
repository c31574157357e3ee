//! Remote commands: `<prefix>/<node>/cmd/<name>` in, `<prefix>/<node>/reply/<request_id>` out.
//!
//! This module is MQTT's front door to [`crate::api`]: size cap before parsing, retained
//! messages refused, JSON and each command's argument shapes, then the signature
//! ([`crate::access::Keyring`]: key, timestamp, nonce, HMAC over every field) that makes the
//! caller an [`Actor`], then [`Api::execute`], which checks the actor's scope. Unsigned commands
//! are refused, except `open_door` under `mqtt.remote_open = "broker_acl"`. Whatever a client
//! sends, the answer is a reply `{ok: false, error}` (on `reply/_invalid` when no request id
//! could be read) and a warning in the log with outside text escaped, never a panic or a state
//! change. (A command arriving while 32 others wait is dropped without a reply, counted in
//! `rejected_commands`.) Retained commands are refused when the broker flags them retained, i.e.
//! whenever one would re-run on a (re)subscribe; MQTT 3.1.1 does not flag a live delivery, but
//! a signed command runs at most once anyway (its nonce is spent).

use anyhow::Result;
use base64::Engine as _;
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::RemoteOpen;
use crate::access::{Actor, BROKER_ACL_ACTOR, Keyring, Scope, Scopes, Via, loggable};
use crate::act::events::SCHEMA_VERSION;
use crate::api::{Api, ApiError, EnrollRequest, ErrorKind, REQUESTS, Request};
use crate::decide::policy::Role;

/// Command names, as in the topic.
pub const COMMANDS: [&str; 11] = REQUESTS;

/// The reply topic level used when the request had no readable `request_id`.
pub const NO_REQUEST_ID: &str = "_invalid";

/// The reply topic level of a plain (non-JSON) `open_door` press under `broker_acl`.
pub const UNSIGNED_REQUEST_ID: &str = "_unsigned";

/// Most photos in one `enroll`.
const MAX_ENROLL_IMAGES: usize = 20;

/// Checking rules, from the `[mqtt]` config.
#[derive(Clone)]
pub struct CommandRules {
    pub node: String,
    pub max_payload_bytes: usize,
    pub remote_open: RemoteOpen,
    pub max_clock_skew_s: u64,
}

impl CommandRules {
    pub fn from_config(c: &super::MqttConfig) -> CommandRules {
        CommandRules {
            node: c.node(),
            max_payload_bytes: c.max_payload_bytes,
            remote_open: c.remote_open(),
            max_clock_skew_s: c.max_clock_skew_s,
        }
    }
}

/// The answer to one command: publish `payload` on `reply/<request_id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Topic level after `reply/` ([`NO_REQUEST_ID`] when none could be read).
    pub request_id: String,
    pub ok: bool,
    /// Refused before any work: by the checks, the signature, the scope or a rate limit.
    pub rejected: bool,
    /// JSON: `{schema, request_id, command, ok, result | error [, rejected, retry_after_s]}`.
    pub payload: Vec<u8>,
}

/// Why a command was refused before reaching the API.
struct Rejected(String);

fn rejected<T>(msg: impl Into<String>) -> Result<T, Rejected> {
    Err(Rejected(msg.into()))
}

/// A person by numeric id or by name.
#[derive(Deserialize)]
#[serde(untagged)]
enum PersonKey {
    Id(i64),
    Name(String),
}

impl PersonKey {
    fn text(&self) -> Result<String, Rejected> {
        match self {
            PersonKey::Id(id) => Ok(format!("#{id}")),
            PersonKey::Name(name) => check_text("person", name).map(str::to_string),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDoorArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    door: Option<String>,
    /// Sent by older unsigned clients under `broker_acl`; not checked (the broker decides).
    #[serde(rename = "ts")]
    _ts: Option<Value>,
    #[serde(rename = "nonce")]
    _nonce: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    name: String,
    role: Option<String>,
    /// Base64 JPEGs.
    images: Vec<String>,
    /// Add the photos to an existing person (never changes their role).
    #[serde(default)]
    append: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    person: PersonKey,
    /// New name (`rename`).
    name: Option<String>,
    /// New role (`set_role`).
    role: Option<String>,
    /// `set_schedule`: e.g. `mon-fri 08:00-18:00` or `always`.
    schedule: Option<String>,
    /// `set_doors`: `all` or door names separated by commas.
    doors: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    /// `snapshot` only.
    camera: Option<String>,
}

/// Shape check for names and other short texts (the store applies the full name rule).
fn check_text<'a>(key: &str, s: &'a str) -> Result<&'a str, Rejected> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return rejected(format!("`{key}` must be 1 to 100 printable characters"));
    }
    Ok(t)
}

fn check_request_id(v: &Map<String, Value>) -> Result<String, Rejected> {
    let Some(id) = v.get("request_id") else {
        return rejected("`request_id` is missing: every command needs one (the reply goes to reply/<request_id>)");
    };
    match id.as_str() {
        Some(s)
            if !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok(s.to_string())
        }
        _ => rejected("`request_id` must be a string of 1 to 64 letters, digits, '-', '_' or '.'"),
    }
}

fn args<T: DeserializeOwned>(v: Map<String, Value>) -> Result<T, Rejected> {
    serde_json::from_value(Value::Object(v)).map_err(|e| Rejected(format!("bad arguments: {e}")))
}

fn role(s: &str) -> Result<Role, Rejected> {
    s.parse().map_err(|e: anyhow::Error| Rejected(e.to_string()))
}

/// Whether a payload claims a signature (then it must verify; never silently treated as unsigned).
fn claims_signature(v: &Map<String, Value>) -> bool {
    v.contains_key("sig") || v.contains_key("key")
}

/// Reads the arguments of command `name` into an API request.
fn request(name: &str, v: Map<String, Value>) -> Result<Request, Rejected> {
    Ok(match name {
        "open_door" => {
            let a: OpenDoorArgs = args(v)?;
            Request::OpenDoor { door: a.door.as_deref().map(|d| check_text("door", d)).transpose()?.map(Into::into) }
        }
        "enroll" => {
            let a: EnrollArgs = args(v)?;
            Request::Enroll(EnrollRequest {
                name: check_text("name", &a.name)?.to_string(),
                role: a.role.as_deref().map(role).transpose()?,
                images: decode_jpegs(&a.images)?,
                append: a.append,
                // The quality check stands for remote enrolment: no one sees the photo.
                force: false,
            })
        }
        "remove" | "rename" | "set_role" | "set_schedule" | "set_doors" | "forget" => {
            let a: PersonArgs = args(v)?;
            let person = a.person.text()?;
            let given = [a.name.is_some(), a.role.is_some(), a.schedule.is_some(), a.doors.is_some()];
            let only = |i: Option<usize>, what: &str| -> Result<(), Rejected> {
                let extra = given.iter().enumerate().any(|(j, g)| *g && Some(j) != i);
                if extra || i.is_some_and(|i| !given[i]) {
                    return rejected(format!("{name} takes {what}"));
                }
                Ok(())
            };
            match name {
                "remove" | "forget" => {
                    only(None, "only `person`")?;
                    if name == "remove" { Request::Remove { person } } else { Request::Forget { person } }
                }
                "rename" => {
                    only(Some(0), "`person` and `name`")?;
                    Request::Rename { person, name: check_text("name", a.name.as_deref().unwrap_or(""))?.into() }
                }
                "set_role" => {
                    only(Some(1), "`person` and `role`")?;
                    Request::SetRole { person, role: role(a.role.as_deref().unwrap_or(""))? }
                }
                "set_schedule" => {
                    only(Some(2), "`person` and `schedule`")?;
                    let schedule = a
                        .schedule
                        .as_deref()
                        .unwrap_or("")
                        .parse()
                        .map_err(|e: anyhow::Error| Rejected(e.to_string()))?;
                    Request::SetSchedule { person, schedule }
                }
                _ => {
                    only(Some(3), "`person` and `doors`")?;
                    let doors =
                        a.doors.as_deref().unwrap_or("").parse().map_err(|e: anyhow::Error| Rejected(e.to_string()))?;
                    Request::SetDoors { person, doors }
                }
            }
        }
        _ => {
            let a: PlainArgs = args(v)?;
            let camera = a.camera.as_deref().map(|c| check_text("camera", c)).transpose()?;
            match (name, camera) {
                ("snapshot", camera) => Request::Snapshot { camera: camera.map(Into::into) },
                (_, Some(_)) => return rejected(format!("{name} takes no `camera`")),
                ("list_people", None) => Request::ListPeople,
                _ => Request::ReloadConfig,
            }
        }
    })
}

/// Checks commands, authenticates them and runs them through the API.
pub struct Commands {
    rules: CommandRules,
    keyring: Keyring,
    api: Box<dyn Api>,
}

impl Commands {
    pub fn new(rules: CommandRules, keyring: Keyring, api: Box<dyn Api>) -> Commands {
        Commands { rules, keyring, api }
    }

    /// Handles one message on `cmd/<name>`. `now` is this node's wall clock (for signatures).
    pub fn handle(&mut self, name: &str, payload: &[u8], retained: bool, now: Timestamp) -> Reply {
        let mut request_id = NO_REQUEST_ID.to_string();
        let outcome = self.check_and_run(name, payload, retained, now, &mut request_id);
        let name_shown = loggable(name);
        let (ok, rejected, body) = match outcome {
            Ok(result) => (true, false, json!({ "result": result })),
            Err(Refusal::Checks(e)) => {
                log::warn!("mqtt command {name_shown} (request {request_id}) rejected: {}", loggable(&e));
                (false, true, json!({ "error": e, "rejected": true }))
            }
            Err(Refusal::Api(e)) => {
                let body = match e.kind {
                    ErrorKind::Forbidden => json!({ "error": e.message, "rejected": true, "forbidden": true }),
                    ErrorKind::RateLimited { retry_after_s } => {
                        json!({ "error": e.message, "rejected": true, "rate_limited": true, "retry_after_s": retry_after_s })
                    }
                    ErrorKind::Failed => json!({ "error": e.message }),
                };
                (false, e.is_refusal(), body)
            }
        };
        let mut reply = json!({ "schema": SCHEMA_VERSION, "request_id": request_id, "command": name, "ok": ok });
        if let (Value::Object(r), Value::Object(b)) = (&mut reply, body) {
            r.extend(b);
        }
        Reply { request_id, ok, rejected, payload: reply.to_string().into_bytes() }
    }

    fn check_and_run(
        &mut self,
        name: &str,
        payload: &[u8],
        retained: bool,
        now: Timestamp,
        request_id: &mut String,
    ) -> Result<Value, Refusal> {
        if payload.len() > self.rules.max_payload_bytes {
            return Err(Refusal::Checks(format!(
                "payload of {} bytes is over mqtt.max_payload_bytes ({})",
                payload.len(),
                self.rules.max_payload_bytes
            )));
        }
        if !COMMANDS.contains(&name) {
            return Err(Refusal::Checks(format!("unknown command `{name}`: use one of {}", COMMANDS.join(", "))));
        }
        if retained {
            return Err(Refusal::Checks("commands must not be published with the retain flag".into()));
        }
        if name == "open_door" && self.rules.remote_open == RemoteOpen::Off {
            return Err(Refusal::Checks("remote opening is disabled on this node (mqtt.remote_open = \"off\")".into()));
        }
        let broker_acl = name == "open_door" && self.rules.remote_open == RemoteOpen::BrokerAcl;
        // Home Assistant's button and lock send a fixed word, not JSON. (Never the empty payload:
        // that is what clears a retained message.)
        if broker_acl && ["PRESS", "UNLOCK", "OPEN"].contains(&String::from_utf8_lossy(payload).trim()) {
            *request_id = UNSIGNED_REQUEST_ID.into();
            let actor = Actor::new(BROKER_ACL_ACTOR, Scopes::of(&[Scope::Door]), Via::Mqtt);
            return self.api.execute(&actor, Request::OpenDoor { door: None }).map_err(Refusal::Api);
        }
        let v: Value =
            serde_json::from_slice(payload).map_err(|e| Refusal::Checks(format!("payload is not JSON: {e}")))?;
        let Value::Object(mut v) = v else { return Err(Refusal::Checks("payload must be a JSON object".into())) };
        *request_id = check_request_id(&v).map_err(Refusal::from)?;
        let actor = if claims_signature(&v) {
            self.keyring.verify(name, &mut v, now.as_second(), Via::Mqtt).map_err(Refusal::Checks)?
        } else if broker_acl {
            Actor::new(BROKER_ACL_ACTOR, Scopes::of(&[Scope::Door]), Via::Mqtt)
        } else {
            return Err(Refusal::Checks(format!(
                "unsigned {name} refused: every command must be signed with a client key (`facegate keys add NAME \
                 --scope ...` makes one; `facegate cmd {name} --key NAME` signs and sends)"
            )));
        };
        let request = request(name, v).map_err(Refusal::from)?;
        self.api.execute(&actor, request).map_err(Refusal::Api)
    }
}

/// A command not done: refused by this module's checks, or by the API (scope, rate, failure).
enum Refusal {
    Checks(String),
    Api(ApiError),
}

impl From<Rejected> for Refusal {
    fn from(r: Rejected) -> Refusal {
        Refusal::Checks(r.0)
    }
}

fn decode_jpegs(images: &[String]) -> Result<Vec<Vec<u8>>, Rejected> {
    if images.is_empty() || images.len() > MAX_ENROLL_IMAGES {
        return rejected(format!("`images` must hold 1 to {MAX_ENROLL_IMAGES} base64 JPEGs (got {})", images.len()));
    }
    images
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| Rejected(format!("images[{i}] is not valid base64: {e}")))?;
            if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
                return rejected(format!("images[{i}] is not a JPEG (it must start with FF D8 FF)"));
            }
            Ok(bytes)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::access::sign_payload;
    use crate::act::store::Store;
    use crate::api::ApiResult;

    /// Records every request that reached the API, with its actor; checks scopes like NodeApi.
    #[derive(Clone, Default)]
    pub struct Recorder {
        pub calls: Arc<Mutex<Vec<String>>>,
    }

    impl Api for Recorder {
        fn execute(&mut self, actor: &Actor, request: Request) -> ApiResult {
            if !actor.may(request.scope()) {
                return Err(ApiError { kind: ErrorKind::Forbidden, message: "forbidden".into() });
            }
            let s = format!("{} {}", actor.name, request.name());
            self.calls.lock().unwrap().push(s.clone());
            Ok(json!({ "done": s }))
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef-secret";

    fn commands(remote_open: RemoteOpen, dir: &tempfile::TempDir) -> (Commands, Recorder) {
        let mut store = Store::open(&dir.path().join("c.db")).unwrap();
        store.add_key("ops", SECRET, "manage,admin").unwrap();
        store.add_key("door", SECRET, "door").unwrap();
        let rules = CommandRules { node: "door1".into(), max_payload_bytes: 4096, remote_open, max_clock_skew_s: 30 };
        let rec = Recorder::default();
        (Commands::new(rules, Keyring::new(store, "door1", 30), Box::new(rec.clone())), rec)
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn run(c: &mut Commands, name: &str, payload: &str) -> Value {
        let r = c.handle(name, payload.as_bytes(), false, now());
        let v: Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(v["ok"], json!(r.ok));
        assert_eq!(v["request_id"], json!(r.request_id));
        v
    }

    static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    pub fn signed(key: &str, name: &str, payload: Value) -> String {
        let mut p = payload.as_object().unwrap().clone();
        let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sign_payload("door1", name, &mut p, key, SECRET, now().as_second(), &format!("nonce-{n:06}"));
        Value::Object(p).to_string()
    }

    const JPEG_B64: &str = "/9j/4AAQ"; // FF D8 FF E0 00 10

    #[test]
    fn signed_commands_reach_the_api_as_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, rec) = commands(RemoteOpen::Signed, &dir);
        let v = run(
            &mut c,
            "enroll",
            &signed("ops", "enroll", json!({"request_id":"r1","name":" Ada ","role":"visitor","images":[JPEG_B64]})),
        );
        assert_eq!(v["ok"], json!(true), "{v}");
        for (name, p) in [
            ("remove", json!({"request_id":"r2","person":7})),
            ("rename", json!({"request_id":"r3","person":"Ada","name":"Ada L."})),
            ("set_role", json!({"request_id":"r4","person":7,"role":"watchlist"})),
            ("set_schedule", json!({"request_id":"r5","person":7,"schedule":"always"})),
            ("set_doors", json!({"request_id":"r6","person":7,"doors":"main"})),
            ("forget", json!({"request_id":"r7","person":"Ada"})),
            ("list_people", json!({"request_id":"r8"})),
            ("reload_config", json!({"request_id":"r9"})),
            ("snapshot", json!({"request_id":"r10","camera":"front"})),
        ] {
            let v = run(&mut c, name, &signed("ops", name, p));
            assert_eq!(v["ok"], json!(true), "{name}: {v}");
        }
        let v = run(&mut c, "open_door", &signed("door", "open_door", json!({"request_id":"r11","door":"main"})));
        assert_eq!(v["ok"], json!(true), "{v}");
        assert_eq!(rec.calls.lock().unwrap().len(), 11);
        assert_eq!(rec.calls.lock().unwrap()[10], "door open_door");
    }

    /// Unsigned, wrongly scoped, replayed or altered commands never reach the API.
    #[test]
    fn unsigned_wrong_scope_replayed_and_altered_commands_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, rec) = commands(RemoteOpen::Signed, &dir);
        for (name, p) in [
            ("enroll", json!({"request_id":"r","name":"x","images":[JPEG_B64]})),
            ("set_role", json!({"request_id":"r","person":1,"role":"employee"})),
            ("remove", json!({"request_id":"r","person":1})),
            ("open_door", json!({"request_id":"r"})),
        ] {
            let v = run(&mut c, name, &p.to_string());
            assert!(v["error"].as_str().unwrap().contains("unsigned"), "{name}: {v}");
        }
        let v = run(
            &mut c,
            "set_role",
            &signed("door", "set_role", json!({"request_id":"r","person":1,"role":"employee"})),
        );
        assert_eq!((v["ok"].clone(), v["forbidden"].clone()), (json!(false), json!(true)), "{v}");
        let good = signed("ops", "remove", json!({"request_id":"r","person":1}));
        assert_eq!(run(&mut c, "remove", &good)["ok"], json!(true));
        assert!(run(&mut c, "remove", &good)["error"].as_str().unwrap().contains("replayed"));
        let mut altered: Value =
            serde_json::from_str(&signed("ops", "remove", json!({"request_id":"r","person":1}))).unwrap();
        altered["person"] = json!(2);
        assert_eq!(run(&mut c, "remove", &altered.to_string())["error"], json!("bad signature"));
        let mut added: Value =
            serde_json::from_str(&signed("ops", "enroll", json!({"request_id":"r","name":"x","images":[JPEG_B64]})))
                .unwrap();
        added["role"] = json!("employee");
        assert_eq!(run(&mut c, "enroll", &added.to_string())["error"], json!("bad signature"));
        let r =
            c.handle("list_people", signed("ops", "list_people", json!({"request_id":"r"})).as_bytes(), true, now());
        assert!(!r.ok && r.rejected, "retained commands are refused even when signed");
        assert_eq!(*rec.calls.lock().unwrap(), ["ops remove"]);
    }

    /// Every kind of bad command: rejected with a reply that says why, and the API never runs.
    #[test]
    fn malformed_commands_are_rejected_without_touching_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, rec) = commands(RemoteOpen::Signed, &dir);
        let big = format!(r#"{{"request_id":"r","name":"x","images":["{}"]}}"#, "A".repeat(5000));
        let s = |name: &str, p: Value| signed("ops", name, p);
        let cases: Vec<(&str, String, &str)> = vec![
            ("enroll", big, "max_payload_bytes"),
            ("format_disk", r#"{"request_id":"r"}"#.into(), "unknown command"),
            ("enroll", "{not json".into(), "not JSON"),
            ("enroll", "[1,2]".into(), "JSON object"),
            ("enroll", r#"{"name":"x","images":[]}"#.into(), "request_id"),
            ("enroll", r#"{"request_id":"a/b#","name":"x"}"#.into(), "request_id"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x"})), "images"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x","images":[]})), "images"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x","images":["!!!"]})), "base64"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x","images":["iVBORw0K"]})), "not a JPEG"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"","images":[JPEG_B64]})), "name"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x","role":"boss","images":[JPEG_B64]})), "role"),
            ("enroll", s("enroll", json!({"request_id":"r","name":"x","imgs":[JPEG_B64]})), "imgs"),
            ("remove", s("remove", json!({"request_id":"r"})), "person"),
            ("remove", s("remove", json!({"request_id":"r","person":true})), "bad arguments"),
            ("remove", s("remove", json!({"request_id":"r","person":1,"name":"y"})), "only `person`"),
            ("rename", s("rename", json!({"request_id":"r","person":1})), "`name`"),
            ("set_role", s("set_role", json!({"request_id":"r","person":1,"role":"king"})), "role"),
            ("set_doors", s("set_doors", json!({"request_id":"r","person":1,"doors":""})), "door"),
            ("list_people", s("list_people", json!({"request_id":"r","camera":"x"})), "no `camera`"),
            ("reload_config", s("reload_config", json!({"request_id":"r","force":true})), "force"),
            ("remove", json!({"request_id":"r","person":1,"key":"ops"}).to_string(), "sig"),
        ];
        for (name, payload, expect) in cases {
            let v = run(&mut c, name, &payload);
            assert_eq!(v["ok"], json!(false), "{name} {payload}");
            assert_eq!(v["rejected"], json!(true), "{name} {payload}");
            let err = v["error"].as_str().unwrap();
            assert!(err.contains(expect), "{name}: expected `{expect}` in `{err}`");
        }
        assert!(rec.calls.lock().unwrap().is_empty(), "{:?}", rec.calls.lock().unwrap());
    }

    #[test]
    fn open_door_follows_remote_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut off, rec) = commands(RemoteOpen::Off, &dir);
        let v = run(&mut off, "open_door", &signed("door", "open_door", json!({"request_id":"r1"})));
        assert!(v["error"].as_str().unwrap().contains("remote_open"), "{v}");
        assert!(rec.calls.lock().unwrap().is_empty());

        let dir = tempfile::tempdir().unwrap();
        let (mut acl, rec) = commands(RemoteOpen::BrokerAcl, &dir);
        assert_eq!(run(&mut acl, "open_door", r#"{"request_id":"r1"}"#)["ok"], json!(true));
        assert_eq!(run(&mut acl, "open_door", "PRESS")["request_id"], json!(UNSIGNED_REQUEST_ID));
        // Only open_door goes unsigned; a bad signature is never taken as "unsigned".
        assert!(
            run(&mut acl, "remove", r#"{"request_id":"r","person":1}"#)["error"].as_str().unwrap().contains("unsigned")
        );
        let v = run(&mut acl, "open_door", r#"{"request_id":"r2","key":"door","sig":"00"}"#);
        assert_eq!(v["ok"], json!(false), "{v}");
        assert_eq!(*rec.calls.lock().unwrap(), ["broker-acl open_door", "broker-acl open_door"]);
    }
}
