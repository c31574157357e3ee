//! Remote commands: `<prefix>/<node>/cmd/<name>` in, `<prefix>/<node>/reply/<request_id>` out.
//!
//! This module does all the checking (size cap before parsing, JSON, each command's arguments,
//! base64 JPEGs, the `open_door` signature, timestamp and nonce) and calls the
//! [`CommandHandler`] only with valid arguments. Whatever a client sends, the answer is a reply
//! `{ok: false, error}` and a warning in the log, never a panic or a state change.

use std::collections::HashMap;

use anyhow::Result;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::act::events::SCHEMA_VERSION;
use crate::decide::policy::Role;

/// What the service does for each command, called with checked arguments only. `Ok` values go
/// into the reply's `result`; `Err` becomes `{ok: false, error}` with the error's text.
pub trait CommandHandler: Send {
    /// Pulse the door relay (`door`: which one, `None` for the node's only door).
    fn open_door(&mut self, door: Option<&str>) -> Result<Value>;
    /// Enroll a person from JPEG photos (each checked to start like a JPEG).
    fn enroll(&mut self, name: &str, role: Option<Role>, jpegs: Vec<Vec<u8>>) -> Result<Value>;
    /// Remove a person (`who`: id or name).
    fn remove(&mut self, who: &str) -> Result<Value>;
    fn rename(&mut self, who: &str, new_name: &str) -> Result<Value>;
    fn list_people(&mut self) -> Result<Value>;
    fn set_role(&mut self, who: &str, role: Role) -> Result<Value>;
    fn reload_config(&mut self) -> Result<Value>;
    /// Take a snapshot (`camera`: which one, `None` for all).
    fn snapshot(&mut self, camera: Option<&str>) -> Result<Value>;
}

/// Command names, as in the topic.
pub const COMMANDS: [&str; 8] =
    ["open_door", "enroll", "remove", "rename", "list_people", "set_role", "reload_config", "snapshot"];

/// The reply topic level used when the request had no readable `request_id`.
pub const NO_REQUEST_ID: &str = "_invalid";

/// Most photos in one `enroll`.
const MAX_ENROLL_IMAGES: usize = 20;
/// Most nonces remembered (each for the skew window); beyond that `open_door` is refused.
const MAX_NONCES: usize = 10_000;

/// Checking rules, from the `[mqtt]` config.
#[derive(Clone)]
pub struct CommandRules {
    pub node: String,
    pub max_payload_bytes: usize,
    pub remote_open: bool,
    pub require_hmac: bool,
    pub hmac_secret: Option<Vec<u8>>,
    pub max_clock_skew_s: u64,
}

impl CommandRules {
    pub fn from_config(c: &super::MqttConfig) -> CommandRules {
        CommandRules {
            node: c.node(),
            max_payload_bytes: c.max_payload_bytes,
            remote_open: c.remote_open,
            require_hmac: c.remote_open_require_hmac,
            hmac_secret: c.hmac_secret.as_ref().map(|s| s.as_bytes().to_vec()),
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
    /// Refused by the checks (as opposed to failed in the handler).
    pub rejected: bool,
    /// JSON: `{schema, request_id, command, ok, result | error}`.
    pub payload: Vec<u8>,
}

/// Why a command was refused before reaching the handler.
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
            PersonKey::Id(id) => Ok(id.to_string()),
            PersonKey::Name(name) => check_name("person", name).map(str::to_string),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenDoorArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    door: Option<String>,
    /// Unix seconds when the client signed the request.
    ts: i64,
    nonce: String,
    /// Hex HMAC-SHA256 of [`signed_message`].
    sig: Option<String>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainArgs {
    #[serde(rename = "request_id")]
    _request_id: String,
    /// `snapshot` only.
    camera: Option<String>,
}

/// The text an `open_door` signature covers: node, request id, door (empty for the default),
/// timestamp and nonce, one per line. Binding the node and request id stops a signed request
/// from being replayed to another node or under another id.
pub fn signed_message(node: &str, request_id: &str, door: Option<&str>, ts: i64, nonce: &str) -> String {
    format!("{node}\n{request_id}\n{}\n{ts}\n{nonce}", door.unwrap_or(""))
}

/// Hex HMAC-SHA256 of `message`: what a client puts in `sig`.
pub fn sign(secret: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn check_name<'a>(key: &str, s: &'a str) -> Result<&'a str, Rejected> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return rejected(format!("`{key}` must be 1 to 100 printable characters"));
    }
    Ok(t)
}

fn check_request_id(v: &Value) -> Result<String, Rejected> {
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

fn args<T: DeserializeOwned>(v: Value) -> Result<T, Rejected> {
    serde_json::from_value(v).map_err(|e| Rejected(format!("bad arguments: {e}")))
}

fn role(s: &str) -> Result<Role, Rejected> {
    s.parse().map_err(|e: anyhow::Error| Rejected(e.to_string()))
}

/// Checks commands and runs them on the handler; remembers recent `open_door` nonces.
pub struct Commands {
    rules: CommandRules,
    handler: Box<dyn CommandHandler>,
    /// Nonce -> unix time after which it may be forgotten.
    nonces: HashMap<String, i64>,
}

impl Commands {
    pub fn new(rules: CommandRules, handler: Box<dyn CommandHandler>) -> Commands {
        Commands { rules, handler, nonces: HashMap::new() }
    }

    /// Handles one message on `cmd/<name>`. `now` is this node's wall clock (for signatures).
    pub fn handle(&mut self, name: &str, payload: &[u8], retained: bool, now: Timestamp) -> Reply {
        let mut request_id = NO_REQUEST_ID.to_string();
        let outcome = self.check_and_run(name, payload, retained, now, &mut request_id);
        let rejected = matches!(outcome, Err(Rejected(_)));
        let (ok, body) = match outcome {
            Ok(Ok(result)) => (true, json!({ "result": result })),
            Ok(Err(e)) => {
                log::warn!("mqtt command {name} (request {request_id}) failed: {e:#}");
                (false, json!({ "error": format!("{e:#}") }))
            }
            Err(Rejected(e)) => {
                log::warn!("mqtt command {name:?} (request {request_id}) rejected: {e}");
                (false, json!({ "error": e, "rejected": true }))
            }
        };
        let mut reply = json!({ "schema": SCHEMA_VERSION, "request_id": request_id, "command": name, "ok": ok });
        if let (Value::Object(r), Value::Object(b)) = (&mut reply, body) {
            r.extend(b);
        }
        Reply { request_id, ok, rejected, payload: reply.to_string().into_bytes() }
    }

    /// `Err`: refused before the handler ran; `Ok(Err)`: the handler failed.
    fn check_and_run(
        &mut self,
        name: &str,
        payload: &[u8],
        retained: bool,
        now: Timestamp,
        request_id: &mut String,
    ) -> Result<Result<Value>, Rejected> {
        if payload.len() > self.rules.max_payload_bytes {
            return rejected(format!(
                "payload of {} bytes is over mqtt.max_payload_bytes ({})",
                payload.len(),
                self.rules.max_payload_bytes
            ));
        }
        if !COMMANDS.contains(&name) {
            return rejected(format!("unknown command `{name}`: use one of {}", COMMANDS.join(", ")));
        }
        if retained {
            return rejected("commands must not be published with the retain flag");
        }
        let v: Value = serde_json::from_slice(payload).map_err(|e| Rejected(format!("payload is not JSON: {e}")))?;
        if !v.is_object() {
            return rejected("payload must be a JSON object");
        }
        *request_id = check_request_id(&v)?;
        let h = &mut self.handler;
        Ok(match name {
            "open_door" => {
                let a: OpenDoorArgs = args(v)?;
                let door = a.door.as_deref().map(|d| check_name("door", d)).transpose()?;
                self.check_open_door(&a, door, request_id, now)?;
                self.handler.open_door(door)
            }
            "enroll" => {
                let a: EnrollArgs = args(v)?;
                let person = check_name("name", &a.name)?;
                let r = a.role.as_deref().map(role).transpose()?;
                h.enroll(person, r, decode_jpegs(&a.images)?)
            }
            "remove" | "rename" | "set_role" => {
                let a: PersonArgs = args(v)?;
                let who = a.person.text()?;
                match (name, &a.name, &a.role) {
                    ("remove", None, None) => h.remove(&who),
                    ("rename", Some(new), None) => h.rename(&who, check_name("name", new)?),
                    ("set_role", None, Some(r)) => h.set_role(&who, role(r)?),
                    ("rename", _, _) => return rejected("rename takes `person` and `name`"),
                    ("set_role", _, _) => return rejected("set_role takes `person` and `role`"),
                    _ => return rejected("remove takes only `person`"),
                }
            }
            _ => {
                let a: PlainArgs = args(v)?;
                let camera = a.camera.as_deref().map(|c| check_name("camera", c)).transpose()?;
                match (name, camera) {
                    ("snapshot", camera) => h.snapshot(camera),
                    (_, Some(_)) => return rejected(format!("{name} takes no `camera`")),
                    ("list_people", None) => h.list_people(),
                    _ => h.reload_config(),
                }
            }
        })
    }

    /// Remote open must be enabled, fresh, signed (unless configured otherwise) and not replayed.
    fn check_open_door(
        &mut self,
        a: &OpenDoorArgs,
        door: Option<&str>,
        request_id: &str,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        if !self.rules.remote_open {
            return rejected("remote opening is disabled on this node (mqtt.remote_open = false)");
        }
        let now_s = now.as_second();
        let skew = self.rules.max_clock_skew_s as i64;
        if (now_s - a.ts).abs() > skew {
            return rejected(format!(
                "timestamp {} is {} s away from this node's clock (allowed: {skew} s): sign with the current unix time",
                a.ts,
                now_s - a.ts
            ));
        }
        if a.nonce.len() < 8 || a.nonce.len() > 64 || !a.nonce.chars().all(|c| c.is_ascii_graphic()) {
            return rejected("`nonce` must be 8 to 64 printable ASCII characters, new for every request");
        }
        if self.rules.require_hmac {
            let (Some(secret), Some(sig)) = (&self.rules.hmac_secret, &a.sig) else {
                return rejected("`sig` is missing: open_door must be signed with HMAC-SHA256 (see docs/mqtt.md)");
            };
            let sig = hex::decode(sig).map_err(|_| Rejected("`sig` must be hex".into()))?;
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|e| Rejected(e.to_string()))?;
            mac.update(signed_message(&self.rules.node, request_id, door, a.ts, &a.nonce).as_bytes());
            // verify_slice compares in constant time.
            if mac.verify_slice(&sig).is_err() {
                return rejected("bad signature");
            }
        }
        self.nonces.retain(|_, forget_after| *forget_after >= now_s);
        if self.nonces.contains_key(&a.nonce) {
            return rejected("replayed request: this nonce was already used");
        }
        if self.nonces.len() >= MAX_NONCES {
            return rejected("too many open_door requests in the last minutes; try again later");
        }
        self.nonces.insert(a.nonce.clone(), a.ts + skew);
        Ok(())
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

    /// Records every call; `fail` makes each call return an error.
    #[derive(Clone, Default)]
    pub struct Recorder {
        pub calls: Arc<Mutex<Vec<String>>>,
    }

    impl Recorder {
        fn push(&self, s: String) -> Result<Value> {
            self.calls.lock().unwrap().push(s.clone());
            if s.contains("nobody") {
                anyhow::bail!("no person `nobody`");
            }
            Ok(json!({ "done": s }))
        }
    }

    impl CommandHandler for Recorder {
        fn open_door(&mut self, door: Option<&str>) -> Result<Value> {
            self.push(format!("open_door {door:?}"))
        }
        fn enroll(&mut self, name: &str, role: Option<Role>, jpegs: Vec<Vec<u8>>) -> Result<Value> {
            self.push(format!("enroll {name} {role:?} {}", jpegs.len()))
        }
        fn remove(&mut self, who: &str) -> Result<Value> {
            self.push(format!("remove {who}"))
        }
        fn rename(&mut self, who: &str, new_name: &str) -> Result<Value> {
            self.push(format!("rename {who} {new_name}"))
        }
        fn list_people(&mut self) -> Result<Value> {
            self.push("list_people".into())
        }
        fn set_role(&mut self, who: &str, role: Role) -> Result<Value> {
            self.push(format!("set_role {who} {role}"))
        }
        fn reload_config(&mut self) -> Result<Value> {
            self.push("reload_config".into())
        }
        fn snapshot(&mut self, camera: Option<&str>) -> Result<Value> {
            self.push(format!("snapshot {camera:?}"))
        }
    }

    const SECRET: &str = "0123456789abcdef-secret";

    fn rules(remote_open: bool) -> CommandRules {
        CommandRules {
            node: "door1".into(),
            max_payload_bytes: 4096,
            remote_open,
            require_hmac: true,
            hmac_secret: Some(SECRET.as_bytes().to_vec()),
            max_clock_skew_s: 30,
        }
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

    pub fn signed_open(request_id: &str, ts: i64, nonce: &str) -> String {
        let sig = sign(SECRET.as_bytes(), &signed_message("door1", request_id, Some("main"), ts, nonce));
        json!({"request_id": request_id, "door": "main", "ts": ts, "nonce": nonce, "sig": sig}).to_string()
    }

    const JPEG_B64: &str = "/9j/4AAQ"; // FF D8 FF E0 00 10

    #[test]
    fn valid_commands_reach_the_handler_with_parsed_arguments() {
        let rec = Recorder::default();
        let mut c = Commands::new(rules(true), Box::new(rec.clone()));
        let v = run(
            &mut c,
            "enroll",
            &format!(r#"{{"request_id":"r1","name":" Ada ","role":"visitor","images":["{JPEG_B64}","{JPEG_B64}"]}}"#),
        );
        assert_eq!((v["ok"].clone(), v["command"].clone()), (json!(true), json!("enroll")));
        assert_eq!(v["result"], json!({"done": "enroll Ada Some(Visitor) 2"}));
        run(&mut c, "remove", r#"{"request_id":"r2","person":7}"#);
        run(&mut c, "rename", r#"{"request_id":"r3","person":"Ada","name":"Ada L."}"#);
        run(&mut c, "set_role", r#"{"request_id":"r4","person":7,"role":"watchlist"}"#);
        run(&mut c, "list_people", r#"{"request_id":"r5"}"#);
        run(&mut c, "reload_config", r#"{"request_id":"r6"}"#);
        run(&mut c, "snapshot", r#"{"request_id":"r7","camera":"front"}"#);
        let v = run(&mut c, "open_door", &signed_open("r8", now().as_second(), "nonce-0001"));
        assert_eq!(v["ok"], json!(true), "{v}");
        assert_eq!(
            *rec.calls.lock().unwrap(),
            [
                "enroll Ada Some(Visitor) 2",
                "remove 7",
                "rename Ada Ada L.",
                "set_role 7 watchlist",
                "list_people",
                "reload_config",
                "snapshot Some(\"front\")",
                "open_door Some(\"main\")"
            ]
        );
    }

    #[test]
    fn handler_errors_become_error_replies() {
        let mut c = Commands::new(rules(false), Box::new(Recorder::default()));
        let v = run(&mut c, "remove", r#"{"request_id":"r1","person":"nobody"}"#);
        assert_eq!(v["ok"], json!(false));
        assert!(v["error"].as_str().unwrap().contains("nobody"), "{v}");
        assert!(v.get("rejected").is_none());
    }

    /// Every kind of bad command: rejected with a reply that says why, and the handler never runs.
    #[test]
    fn malformed_commands_are_rejected_without_touching_the_handler() {
        let rec = Recorder::default();
        let mut c = Commands::new(rules(true), Box::new(rec.clone()));
        let big = format!(r#"{{"request_id":"r","name":"x","images":["{}"]}}"#, "A".repeat(5000));
        let cases: Vec<(&str, String, &str)> = vec![
            ("enroll", big, "max_payload_bytes"),
            ("format_disk", r#"{"request_id":"r"}"#.into(), "unknown command"),
            ("enroll", "{not json".into(), "not JSON"),
            ("enroll", "[1,2]".into(), "JSON object"),
            ("enroll", r#"{"name":"x","images":[]}"#.into(), "request_id"),
            ("enroll", r#"{"request_id":"a/b#","name":"x"}"#.into(), "request_id"),
            ("enroll", r#"{"request_id":"r","name":"x"}"#.into(), "images"),
            ("enroll", r#"{"request_id":"r","name":"x","images":[]}"#.into(), "images"),
            ("enroll", r#"{"request_id":"r","name":"x","images":["!!!"]}"#.into(), "base64"),
            ("enroll", r#"{"request_id":"r","name":"x","images":["iVBORw0K"]}"#.into(), "not a JPEG"),
            ("enroll", format!(r#"{{"request_id":"r","name":"","images":["{JPEG_B64}"]}}"#), "name"),
            ("enroll", format!(r#"{{"request_id":"r","name":"x","role":"boss","images":["{JPEG_B64}"]}}"#), "role"),
            ("enroll", format!(r#"{{"request_id":"r","name":"x","imgs":["{JPEG_B64}"]}}"#), "imgs"),
            ("remove", r#"{"request_id":"r"}"#.into(), "person"),
            ("remove", r#"{"request_id":"r","person":true}"#.into(), "bad arguments"),
            ("remove", r#"{"request_id":"r","person":1,"name":"y"}"#.into(), "only `person`"),
            ("rename", r#"{"request_id":"r","person":1}"#.into(), "`name`"),
            ("set_role", r#"{"request_id":"r","person":1,"role":"king"}"#.into(), "role"),
            ("list_people", r#"{"request_id":"r","camera":"x"}"#.into(), "no `camera`"),
            ("reload_config", r#"{"request_id":"r","force":true}"#.into(), "force"),
        ];
        for (name, payload, expect) in cases {
            let v = run(&mut c, name, &payload);
            assert_eq!(v["ok"], json!(false), "{name} {payload}");
            assert_eq!(v["rejected"], json!(true), "{name} {payload}");
            let err = v["error"].as_str().unwrap();
            assert!(err.contains(expect), "{name}: expected `{expect}` in `{err}`");
        }
        let r = c.handle("list_people", br#"{"request_id":"r"}"#, true, now());
        assert!(!r.ok, "retained commands are refused");
        assert!(rec.calls.lock().unwrap().is_empty(), "{:?}", rec.calls.lock().unwrap());
    }

    #[test]
    fn open_door_needs_remote_open_a_fresh_signature_and_a_new_nonce() {
        let rec = Recorder::default();
        let mut off = Commands::new(rules(false), Box::new(rec.clone()));
        let v = run(&mut off, "open_door", &signed_open("r1", now().as_second(), "nonce-0001"));
        assert!(v["error"].as_str().unwrap().contains("remote_open"), "{v}");

        let mut c = Commands::new(rules(true), Box::new(rec.clone()));
        let t = now().as_second();
        let bad = |p: &str, expect: &str, c: &mut Commands| {
            let v = run(c, "open_door", p);
            assert_eq!(v["ok"], json!(false), "{p}");
            assert!(v["error"].as_str().unwrap().contains(expect), "{expect}: {v}");
        };
        bad(&signed_open("r2", t - 31, "nonce-0002"), "timestamp", &mut c);
        bad(&signed_open("r2", t + 120, "nonce-0002"), "timestamp", &mut c);
        bad(&signed_open("r2", t, "short"), "nonce", &mut c);
        bad(&json!({"request_id":"r2","door":"main","ts":t,"nonce":"nonce-0002"}).to_string(), "sig", &mut c);
        // A signature for another request id, another door or another secret does not verify.
        let mut other_id: Value = serde_json::from_str(&signed_open("r2", t, "nonce-0002")).unwrap();
        other_id["request_id"] = json!("r3");
        bad(&other_id.to_string(), "bad signature", &mut c);
        let mut other_door = other_id.clone();
        other_door["request_id"] = json!("r2");
        other_door["door"] = json!("side");
        bad(&other_door.to_string(), "bad signature", &mut c);
        let forged = sign(b"another-secret-0000", &signed_message("door1", "r2", Some("main"), t, "nonce-0002"));
        other_door["door"] = json!("main");
        other_door["sig"] = json!(forged);
        bad(&other_door.to_string(), "bad signature", &mut c);
        bad(
            &json!({"request_id":"r2","door":"main","ts":t,"nonce":"nonce-0002","sig":"zz"}).to_string(),
            "hex",
            &mut c,
        );
        assert!(rec.calls.lock().unwrap().is_empty());

        // The genuine request opens once; replaying it (same nonce) is refused.
        let good = signed_open("r2", t - 5, "nonce-0002");
        assert_eq!(run(&mut c, "open_door", &good)["ok"], json!(true));
        bad(&good, "replayed", &mut c);
        assert_eq!(rec.calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn unsigned_open_door_only_when_configured() {
        let rec = Recorder::default();
        let mut r = rules(true);
        r.require_hmac = false;
        r.hmac_secret = None;
        let mut c = Commands::new(r, Box::new(rec.clone()));
        let t = now().as_second();
        let p = json!({"request_id":"r1","ts":t,"nonce":"nonce-0001"}).to_string();
        assert_eq!(run(&mut c, "open_door", &p)["ok"], json!(true));
        assert_eq!(run(&mut c, "open_door", &p)["ok"], json!(false), "replay still refused");
        assert_eq!(*rec.calls.lock().unwrap(), ["open_door None"]);
    }
}
