//! What facegate tells the building: one builder per event kind, each returning an
//! [`OutboxEvent`] ready to be written to the outbox together with the state it reports.
//!
//! Every JSON payload carries `schema` (bumped on incompatible changes), a fresh `event_id`
//! (UUID v4; a redelivery after a crash repeats it, so consumers can drop duplicates), `time`
//! (ISO-8601 UTC), `node` and `kind`. Topics are relative to `<prefix>/<node>/`; docs/mqtt.md
//! lists each with an example. The input structs are plain data so callers map their own types.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::OutboxEvent;
use crate::analytics::HourCounts;
use crate::vision::attributes::{EMOTIONS, FaceAttributes};

/// Version of the payload layout; bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionKind {
    /// A known, allowed person: the door opens.
    Granted,
    /// A known person who may not pass now; `reason` says why (e.g. `outside_schedule`).
    Denied { reason: String },
    /// A face that matches nobody enrolled.
    Unknown,
    /// A watchlist match: never opens the door.
    Alert,
}

impl DecisionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DecisionKind::Granted => "granted",
            DecisionKind::Denied { .. } => "denied",
            DecisionKind::Unknown => "unknown",
            DecisionKind::Alert => "alert",
        }
    }
}

/// The person a decision or sighting is about.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRef {
    pub id: i64,
    pub name: String,
    /// `employee`, `visitor` or `watchlist`.
    pub role: String,
}

/// One decision with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionInfo {
    pub kind: DecisionKind,
    pub camera: String,
    /// Human label of where the camera is (e.g. `Main entrance`).
    pub location: String,
    /// The door this camera guards, if any.
    pub door: Option<String>,
    /// `None` for unknown faces.
    pub person: Option<PersonRef>,
    /// Cosine similarity of the best match.
    pub similarity: Option<f32>,
    /// Lead of the best match over the runner-up.
    pub margin: Option<f32>,
    pub votes: u32,
    pub window: u32,
    /// Face box in the frame: x, y, width, height in pixels.
    pub bbox: [f32; 4],
    /// From the frame's capture to the decision, in milliseconds.
    pub latency_ms: f64,
    /// The failed liveness score of a `spoof_suspected` denial (0-1), else `None`.
    pub liveness: Option<f32>,
}

/// What happened at a door.
#[derive(Debug, Clone, PartialEq)]
pub enum DoorKind {
    /// The relay was pulsed for `ms` milliseconds (`by`: `face`, `remote`, ...).
    Pulse { ms: u64, by: String },
    /// The door contact reports open.
    Open,
    /// The door contact reports closed.
    Closed,
    /// The door stayed open longer than allowed.
    HeldOpen { seconds: f64 },
    /// The door opened without a pulse.
    Forced,
    /// The decision loop stalled and the relay was released (fail secure).
    Stalled,
}

impl DoorKind {
    fn as_str(&self) -> &'static str {
        match self {
            DoorKind::Pulse { .. } => "pulse",
            DoorKind::Open => "open",
            DoorKind::Closed => "closed",
            DoorKind::HeldOpen { .. } => "held_open",
            DoorKind::Forced => "forced",
            DoorKind::Stalled => "stalled",
        }
    }
}

/// A camera's state, published retained so a newcomer sees it at once.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraState {
    pub camera: String,
    pub location: String,
    pub online: bool,
    /// Why it is offline (`None` when online).
    pub reason: Option<String>,
    /// Frames per second over the last interval.
    pub fps: Option<f32>,
}

/// One audited request (see [`EventBuilder::audit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInfo {
    pub actor: String,
    pub via: String,
    pub command: String,
    pub ok: bool,
    pub error: Option<String>,
}

/// Counters for the periodic heartbeat (names are free; e.g. `frames`, `decisions`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Heartbeat {
    pub uptime_s: u64,
    pub counters: BTreeMap<String, u64>,
    /// The recognition model in use (e.g. `fp32`), for Home Assistant's diagnostics.
    pub model: Option<String>,
}

/// Where a person was last seen.
#[derive(Debug, Clone, PartialEq)]
pub struct LastSeen {
    pub person: PersonRef,
    pub camera: String,
    pub location: String,
    pub similarity: f32,
}

/// One face's estimate as decision events carry it, keyed like DeepFace's `analyze` (`age`,
/// `dominant_gender`, `gender`, `dominant_emotion`, `emotion`), with probabilities 0-1 (DeepFace
/// gives percentages).
pub fn attributes_json(a: &FaceAttributes) -> Value {
    let p = |v: f32| round(v as f64, 4);
    let emotion: Map<String, Value> =
        EMOTIONS.iter().zip(a.emotion).map(|(name, v)| (name.to_string(), json!(p(v)))).collect();
    json!({
        "age": round(a.age as f64, 1),
        "age_spread": a.age_spread.map(|s| round(s as f64, 1)),
        "dominant_gender": a.dominant_gender(),
        "gender": { "Woman": p(a.woman), "Man": p(1.0 - a.woman) },
        "dominant_emotion": a.dominant_emotion(),
        "emotion": emotion,
    })
}

/// Builds events for one node.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    node: String,
}

/// Rounds for JSON: 0.7100000381 becomes 0.71.
fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// Replaces characters that would break a topic level (`/`, `+`, `#`).
pub fn topic_level(s: &str) -> String {
    s.chars().map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }).collect()
}

fn person_json(p: &PersonRef) -> Value {
    json!({ "id": p.id, "name": p.name, "role": p.role })
}

impl EventBuilder {
    pub fn new(node: &str) -> EventBuilder {
        EventBuilder { node: node.to_string() }
    }

    /// Wraps a body with the common envelope and makes the outbox event.
    fn event(&self, topic: String, kind: &str, at: Timestamp, body: Value, retain: bool) -> OutboxEvent {
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut map = Map::new();
        map.insert("schema".into(), json!(SCHEMA_VERSION));
        map.insert("event_id".into(), json!(event_id));
        map.insert("time".into(), json!(at.to_string()));
        map.insert("node".into(), json!(self.node));
        map.insert("kind".into(), json!(kind));
        if let Value::Object(body) = body {
            map.extend(body);
        }
        OutboxEvent { event_id, topic, payload: Value::Object(map).to_string().into_bytes(), retain }
    }

    /// `decision`: granted, denied (with `reason`), unknown or alert, with the evidence.
    /// `event_type` repeats `kind` for Home Assistant's event entity.
    pub fn decision(&self, d: &DecisionInfo, at: Timestamp) -> OutboxEvent {
        let reason = match &d.kind {
            DecisionKind::Denied { reason } => json!(reason),
            _ => Value::Null,
        };
        let mut body = json!({
            "event_type": d.kind.as_str(),
            "reason": reason,
            "camera": d.camera,
            "location": d.location,
            "door": d.door,
            "person": d.person.as_ref().map(person_json),
            "similarity": d.similarity.map(|s| round(s as f64, 4)),
            "margin": d.margin.map(|m| round(m as f64, 4)),
            "votes": d.votes,
            "window": d.window,
            "bbox": d.bbox.map(|v| round(v as f64, 1)),
            "latency_ms": round(d.latency_ms, 1),
        });
        if let (Some(score), Some(map)) = (d.liveness, body.as_object_mut()) {
            map.insert("liveness".into(), json!(round(score as f64, 4)));
        }
        self.event("decision".into(), d.kind.as_str(), at, body, false)
    }

    /// Door events. Contact changes (`open`/`closed`) go retained to `door/<door>/contact`, so the
    /// broker always holds the door's current state; the rest go to `door/<door>/event`.
    pub fn door(&self, door: &str, kind: &DoorKind, at: Timestamp) -> OutboxEvent {
        let mut body = json!({ "door": door });
        let (sub, retain) = match kind {
            DoorKind::Open | DoorKind::Closed => {
                body["state"] = json!(kind.as_str());
                ("contact", true)
            }
            DoorKind::Pulse { ms, by } => {
                body["pulse_ms"] = json!(ms);
                body["by"] = json!(by);
                ("event", false)
            }
            DoorKind::HeldOpen { seconds } => {
                body["open_s"] = json!(round(*seconds, 1));
                ("event", false)
            }
            DoorKind::Forced | DoorKind::Stalled => ("event", false),
        };
        if sub == "event" {
            // For Home Assistant's event entity, like `decision`.
            body["event_type"] = json!(kind.as_str());
        }
        self.event(format!("door/{}/{sub}", topic_level(door)), kind.as_str(), at, body, retain)
    }

    /// A `pulse` given because `person` was recognised: the door event says who went in.
    pub fn pulse_for(&self, door: &str, ms: u64, person: &PersonRef, at: Timestamp) -> OutboxEvent {
        let mut e = self.door(door, &DoorKind::Pulse { ms, by: "face".into() }, at);
        if let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&e.payload) {
            body.insert("person".into(), person_json(person));
            e.payload = Value::Object(body).to_string().into_bytes();
        }
        e
    }

    /// `door/<door>/lock` (retained): `locked`, `unlocked` (relay energised) or `open` (energised
    /// and the contact reads open), the state of Home Assistant's lock entity.
    pub fn lock_state(&self, door: &str, state: &str, at: Timestamp) -> OutboxEvent {
        let body = json!({ "door": door, "state": state });
        self.event(format!("door/{}/lock", topic_level(door)), "lock", at, body, true)
    }

    /// `person/<id>/location` (retained, plain text): the location of the camera that last saw
    /// the person, the state of Home Assistant's presence entity.
    pub fn person_location(&self, person_id: i64, location: &str) -> OutboxEvent {
        OutboxEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            topic: format!("person/{person_id}/location"),
            payload: location.as_bytes().to_vec(),
            retain: true,
        }
    }

    /// `camera/<camera>/state` (retained): online or offline with the reason, and the frame rate.
    pub fn camera_state(&self, c: &CameraState, at: Timestamp) -> OutboxEvent {
        let kind = if c.online { "online" } else { "offline" };
        let body = json!({
            "camera": c.camera,
            "location": c.location,
            "reason": c.reason,
            "fps": c.fps.map(|f| round(f as f64, 2)),
        });
        self.event(format!("camera/{}/state", topic_level(&c.camera)), kind, at, body, true)
    }

    /// `camera/<camera>/face` (retained): whether a face is in view now, and how many.
    pub fn face_presence(&self, camera: &str, faces: u32, at: Timestamp) -> OutboxEvent {
        let body = json!({ "camera": camera, "present": faces > 0, "faces": faces });
        self.event(format!("camera/{}/face", topic_level(camera)), "face_presence", at, body, true)
    }

    /// `heartbeat`: uptime and counters, published periodically by the service.
    pub fn heartbeat(&self, h: &Heartbeat, at: Timestamp) -> OutboxEvent {
        let body = json!({ "uptime_s": h.uptime_s, "counters": h.counters, "model": h.model });
        self.event("heartbeat".into(), "heartbeat", at, body, false)
    }

    /// `audit`: who (key name and interface) did what to the node, and whether it worked. No
    /// names of people: `target` is what the request named (person id or name as given).
    pub fn audit(&self, a: &AuditInfo, at: Timestamp) -> OutboxEvent {
        let body = json!({
            "actor": a.actor,
            "via": a.via,
            "command": a.command,
            "ok": a.ok,
            "error": a.error,
        });
        self.event("audit".into(), "audit", at, body, false)
    }

    /// `audit` by the node itself: a template learnt from a confident recognition
    /// (`[matching] auto_update`), with the camera and the person's id (never the name: the
    /// journal keeps no names), so changes to who the door recognises are all on the record.
    pub fn template_learnt(
        &self,
        camera: &str,
        person_id: i64,
        learnt: usize,
        cap: usize,
        at: Timestamp,
    ) -> OutboxEvent {
        let body = json!({
            "actor": "auto_update",
            "via": format!("camera {camera} (person #{person_id}, learnt {learnt} of {cap})"),
            "command": "learn_template",
            "ok": true,
            "error": null,
            "camera": camera,
            "person_id": person_id,
            "learnt": learnt,
            "cap": cap,
        });
        self.event("audit".into(), "audit", at, body, false)
    }

    /// `person/<id>/last_seen` (retained): any client can ask where someone was last seen.
    pub fn last_seen(&self, s: &LastSeen, at: Timestamp) -> OutboxEvent {
        let body = json!({
            "person": person_json(&s.person),
            "camera": s.camera,
            "location": s.location,
            "similarity": round(s.similarity as f64, 4),
        });
        self.event(format!("person/{}/last_seen", s.person.id), "last_seen", at, body, true)
    }

    /// A `decision` event with the face's estimated attributes added (`[analyze]`; the caller
    /// decides which decisions get them: `unknown` ones, identified people's only with
    /// `analyze.per_person`).
    pub fn with_attributes(&self, mut decision: OutboxEvent, a: &FaceAttributes) -> OutboxEvent {
        if let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&decision.payload) {
            body.insert("attributes".into(), attributes_json(a));
            decision.payload = Value::Object(body).to_string().into_bytes();
        }
        decision
    }

    /// `camera/<camera>/attributes` (retained): one camera's counts for one local hour, sent
    /// after each face counted (`complete: false`) and once more when the hour is over
    /// (`complete: true`, final). `counted` says whose faces: `unknown` (strangers only) or `all`
    /// (`analyze.per_person`).
    pub fn attribute_hour(&self, h: &HourCounts, location: &str, counted: &str, at: Timestamp) -> OutboxEvent {
        let body = json!({
            "camera": h.camera,
            "location": location,
            "hour_start": h.start.to_string(),
            "hour_end": h.end.to_string(),
            "complete": h.complete,
            "counted": counted,
            "faces": h.faces,
            "age": h.age,
            "gender": h.gender,
            "emotion": h.emotion,
        });
        self.event(format!("camera/{}/attributes", topic_level(&h.camera)), "attributes_hour", at, body, true)
    }

    /// `snapshot/<camera>/<id>`: a raw JPEG (not JSON), either the face crop of the decision
    /// with event id `id` or the whole frame asked for by the `snapshot` command with request id
    /// `id`. Only when `mqtt.snapshots` is on; the caller checks that.
    pub fn snapshot(&self, camera: &str, id: &str, jpeg: Vec<u8>) -> OutboxEvent {
        OutboxEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            topic: format!("snapshot/{}/{}", topic_level(camera), topic_level(id)),
            payload: jpeg,
            retain: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-11-23T14:30:05.250Z".parse().unwrap()
    }

    fn parse(e: &OutboxEvent) -> Value {
        serde_json::from_slice(&e.payload).unwrap()
    }

    fn ada() -> PersonRef {
        PersonRef { id: 7, name: "Ada".into(), role: "employee".into() }
    }

    fn decision(kind: DecisionKind, person: Option<PersonRef>) -> DecisionInfo {
        DecisionInfo {
            kind,
            camera: "front".into(),
            location: "Main entrance".into(),
            door: Some("main".into()),
            person,
            similarity: Some(0.71),
            margin: Some(0.2),
            votes: 4,
            window: 5,
            bbox: [10.0, 20.0, 64.0, 80.0],
            latency_ms: 95.04,
            liveness: None,
        }
    }

    fn assert_envelope(v: &Value, e: &OutboxEvent, kind: &str) {
        assert_eq!(v["schema"], json!(SCHEMA_VERSION));
        assert_eq!(v["event_id"], json!(e.event_id));
        assert!(uuid::Uuid::parse_str(&e.event_id).is_ok());
        assert_eq!(v["time"], json!("2026-11-23T14:30:05.25Z"));
        assert_eq!(v["node"], json!("door1"));
        assert_eq!(v["kind"], json!(kind));
    }

    #[test]
    fn decisions_carry_evidence_and_kind() {
        let b = EventBuilder::new("door1");
        let e = b.decision(&decision(DecisionKind::Granted, Some(ada())), at());
        let v = parse(&e);
        assert_envelope(&v, &e, "granted");
        assert_eq!((e.topic.as_str(), e.retain), ("decision", false));
        assert_eq!(v["event_type"], json!("granted"));
        assert_eq!(v["person"], json!({"id": 7, "name": "Ada", "role": "employee"}));
        assert_eq!(v["similarity"], json!(0.71));
        assert_eq!(v["bbox"], json!([10.0, 20.0, 64.0, 80.0]));
        assert_eq!((v["votes"].clone(), v["window"].clone()), (json!(4), json!(5)));
        assert_eq!(v["latency_ms"], json!(95.0));
        assert_eq!(v["reason"], Value::Null);

        let e = b.decision(&decision(DecisionKind::Denied { reason: "outside_schedule".into() }, Some(ada())), at());
        let v = parse(&e);
        assert_envelope(&v, &e, "denied");
        assert_eq!(v["reason"], json!("outside_schedule"));

        let mut unknown = decision(DecisionKind::Unknown, None);
        unknown.similarity = None;
        let v = parse(&b.decision(&unknown, at()));
        assert_eq!(
            (v["kind"].clone(), v["person"].clone(), v["similarity"].clone()),
            (json!("unknown"), Value::Null, Value::Null)
        );
        let v = parse(&b.decision(&decision(DecisionKind::Alert, Some(ada())), at()));
        assert_eq!(v["kind"], json!("alert"));
    }

    #[test]
    fn every_event_gets_its_own_id() {
        let b = EventBuilder::new("door1");
        let d = decision(DecisionKind::Unknown, None);
        assert_ne!(b.decision(&d, at()).event_id, b.decision(&d, at()).event_id);
    }

    #[test]
    fn door_contact_is_retained_and_other_door_events_are_not() {
        let b = EventBuilder::new("door1");
        let e = b.door("main", &DoorKind::Open, at());
        assert_eq!((e.topic.as_str(), e.retain), ("door/main/contact", true));
        let v = parse(&e);
        assert_envelope(&v, &e, "open");
        assert_eq!(v["state"], json!("open"));
        let e = b.door("main", &DoorKind::Pulse { ms: 3000, by: "face".into() }, at());
        assert_eq!((e.topic.as_str(), e.retain), ("door/main/event", false));
        assert_eq!(parse(&e)["pulse_ms"], json!(3000));
        let e = b.door("side/a", &DoorKind::HeldOpen { seconds: 31.26 }, at());
        assert_eq!(e.topic, "door/side_a/event");
        assert_eq!(parse(&e)["open_s"], json!(31.3));
        for (k, name) in [(DoorKind::Forced, "forced"), (DoorKind::Stalled, "stalled"), (DoorKind::Closed, "closed")] {
            assert_eq!(parse(&b.door("main", &k, at()))["kind"], json!(name));
        }
    }

    #[test]
    fn home_assistant_gets_event_types_lock_states_who_and_locations() {
        let b = EventBuilder::new("door1");
        let e = b.door("main", &DoorKind::Forced, at());
        assert_eq!(parse(&e)["event_type"], json!("forced"));
        assert!(parse(&b.door("main", &DoorKind::Open, at())).get("event_type").is_none(), "contact is a state");
        let e = b.pulse_for("main", 3000, &ada(), at());
        let v = parse(&e);
        assert_eq!(
            (e.topic.as_str(), v["event_type"].clone(), v["by"].clone()),
            ("door/main/event", json!("pulse"), json!("face"))
        );
        assert_eq!(v["person"]["name"], json!("Ada"));
        let e = b.lock_state("main", "unlocked", at());
        assert_eq!(
            (e.topic.as_str(), e.retain, parse(&e)["state"].clone()),
            ("door/main/lock", true, json!("unlocked"))
        );
        let e = b.person_location(7, "Main entrance");
        assert_eq!(
            (e.topic.as_str(), e.retain, e.payload.as_slice()),
            ("person/7/location", true, b"Main entrance".as_slice())
        );
    }

    #[test]
    fn camera_presence_heartbeat_and_last_seen() {
        let b = EventBuilder::new("door1");
        let cam = CameraState {
            camera: "front".into(),
            location: "Lobby".into(),
            online: false,
            reason: Some("rtsp timeout".into()),
            fps: None,
        };
        let e = b.camera_state(&cam, at());
        assert_eq!((e.topic.as_str(), e.retain), ("camera/front/state", true));
        let v = parse(&e);
        assert_envelope(&v, &e, "offline");
        assert_eq!(v["reason"], json!("rtsp timeout"));
        let v = parse(&b.camera_state(&CameraState { online: true, reason: None, fps: Some(14.96), ..cam }, at()));
        assert_eq!((v["kind"].clone(), v["fps"].clone()), (json!("online"), json!(14.96)));

        let e = b.face_presence("front", 2, at());
        assert_eq!((e.topic.as_str(), e.retain), ("camera/front/face", true));
        assert_eq!(parse(&e)["present"], json!(true));

        let h = Heartbeat { uptime_s: 60, counters: [("decisions".to_string(), 3)].into(), model: None };
        let e = b.heartbeat(&h, at());
        assert_eq!(e.topic, "heartbeat");
        assert_eq!(parse(&e)["counters"]["decisions"], json!(3));

        let s = LastSeen { person: ada(), camera: "front".into(), location: "Lobby".into(), similarity: 0.8 };
        let e = b.last_seen(&s, at());
        assert_eq!((e.topic.as_str(), e.retain), ("person/7/last_seen", true));
        let v = parse(&e);
        assert_envelope(&v, &e, "last_seen");
        assert_eq!((v["location"].clone(), v["similarity"].clone()), (json!("Lobby"), json!(0.8)));
    }

    #[test]
    fn attributes_ride_on_the_decision_and_hours_are_retained_per_camera() {
        let b = EventBuilder::new("door1");
        let a = FaceAttributes {
            age: 31.26,
            age_spread: Some(4.04),
            woman: 0.9,
            emotion: [0.0, 0.0, 0.0, 0.7, 0.1, 0.1, 0.1],
        };
        let e = b.with_attributes(b.decision(&decision(DecisionKind::Unknown, None), at()), &a);
        let v = parse(&e);
        assert_envelope(&v, &e, "unknown");
        let attrs = &v["attributes"];
        assert_eq!((attrs["age"].clone(), attrs["age_spread"].clone()), (json!(31.3), json!(4.0)));
        assert_eq!((attrs["dominant_gender"].clone(), attrs["gender"]["Man"].clone()), (json!("Woman"), json!(0.1)));
        assert_eq!(
            (attrs["dominant_emotion"].clone(), attrs["emotion"]["happy"].clone()),
            (json!("happy"), json!(0.7))
        );
        assert_eq!(attrs["emotion"].as_object().unwrap().len(), 7);
        assert!(attrs.get("race").is_none());

        let (start, end) = crate::analytics::hour_of(at(), &jiff::tz::TimeZone::UTC);
        let mut h = HourCounts::empty("front/a", start, end);
        h.add(&crate::analytics::Tally::of(&a).unwrap());
        let e = b.attribute_hour(&h, "Lobby", "unknown", at());
        assert_eq!((e.topic.as_str(), e.retain), ("camera/front_a/attributes", true));
        let v = parse(&e);
        assert_envelope(&v, &e, "attributes_hour");
        assert_eq!(v["hour_start"], json!("2026-11-23T14:00:00Z"));
        assert_eq!(v["hour_end"], json!("2026-11-23T15:00:00Z"));
        assert_eq!((v["faces"].clone(), v["complete"].clone()), (json!(1), json!(false)));
        assert_eq!((v["age"]["30_44"].clone(), v["age"]["under_18"].clone()), (json!(1), json!(0)));
        assert_eq!((v["gender"]["woman"].clone(), v["emotion"]["happy"].clone()), (json!(1), json!(1)));
        assert_eq!(v["counted"], json!("unknown"));
    }

    #[test]
    fn snapshot_is_the_raw_jpeg() {
        let e = EventBuilder::new("door1").snapshot("front", "abc", vec![0xFF, 0xD8, 0xFF, 0xD9]);
        assert_eq!(e.topic, "snapshot/front/abc");
        assert_eq!(e.payload, vec![0xFF, 0xD8, 0xFF, 0xD9]);
        assert!(!e.retain);
    }
}
