//! Issue 9's attack table, against the real node API, the real SQLite store and a real broker
//! (rumqttd in-process, or mosquitto with `FACEGATE_TEST_BROKER=mosquitto`): nobody without a
//! key of the right scope changes who gets in, replays stay refused across a restart, no field
//! can be changed under a signature, and no queued event is silently lost.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use facegate::access::{Actor, Keyring, Scopes, Via, sign_payload};
use facegate::act::door::{Door, DoorConfig};
use facegate::act::events::EventBuilder;
use facegate::act::mqtt::{DiscoveryInfo, MqttConfig, MqttService, RemoteOpen};
use facegate::act::store::{PersonRecord, Store};
use facegate::act::{Outbox, OutboxEvent};
use facegate::api::{NodeApi, Reload};
use facegate::config::Config;
use facegate::decide::clock::MonotonicClock;
use facegate::decide::policy::{Role, Schedule};
use rumqttc::QoS;
use serde_json::{Map, Value, json};

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod common;
use common::{Message, Subscriber, broker};

const OPS: &[u8] = b"ops-secret-0123456789abcdef";
const LOCK: &[u8] = b"lock-secret-0123456789abcdef";
const HR: &[u8] = b"hr-secret-0123456789abcdef";
const ADM: &[u8] = b"adm-secret-0123456789abcdef";

fn unique(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

fn node_config(prefix: &str, db: &Path) -> Config {
    let mut c = Config::default();
    c.store.path = db.to_path_buf();
    c.mqtt = MqttConfig {
        enabled: true,
        host: broker().0,
        port: broker().1,
        node: Some("door1".into()),
        client_id: Some(format!("{prefix}-node")),
        prefix: prefix.into(),
        discovery: false,
        remote_open: RemoteOpen::Signed,
        reconnect_min_ms: 50,
        reconnect_max_ms: 400,
        ..MqttConfig::default()
    };
    // A dry-run relay (the only faked part) that never trips the stall guard during a test.
    c.doors = vec![DoorConfig { name: "main".into(), stall_timeout_ms: 3_600_000, ..DoorConfig::default() }];
    c
}

/// The node's API as the service builds it.
fn api(config: &Config) -> NodeApi {
    let mut doors = HashMap::new();
    for d in &config.doors {
        doors.insert(d.name.clone(), Arc::new(Door::open(d, Arc::new(MonotonicClock::default())).unwrap()));
    }
    let same = config.clone();
    NodeApi::new(
        config.clone(),
        Store::open_config(&config.store).unwrap(),
        doors,
        Reload { source: Some(Arc::new(move || Ok(same.clone()))), control: Default::default() },
        Arc::default(),
    )
}

/// One running node: its MQTT service over the store at `db`, and a client on its topics.
struct Node {
    svc: MqttService,
    sub: Subscriber,
    base: String,
    /// Messages seen while waiting for others, still to be matched.
    backlog: RefCell<Vec<Message>>,
}

impl Node {
    fn start(config: &Config) -> Node {
        let base = format!("{}/door1", config.mqtt.prefix);
        let sub = Subscriber::new(broker(), &[format!("{base}/#")]);
        let db = &config.store.path;
        let keyring = Keyring::new(Store::open(db).unwrap(), "door1", 30);
        let svc = MqttService::start(
            &config.mqtt,
            Box::new(Store::open(db).unwrap()),
            keyring,
            Box::new(api(config)),
            DiscoveryInfo::default(),
        )
        .unwrap();
        let node = Node { svc, sub, base, backlog: RefCell::new(Vec::new()) };
        node.wait_for(|t, p, _| t == "status" && p == b"online");
        node
    }

    /// Waits (up to 30 s) for a message on this node's topics that `pick` accepts.
    fn wait_for(&self, mut pick: impl FnMut(&str, &[u8], bool) -> bool) -> Message {
        let mut backlog = self.backlog.borrow_mut();
        if let Some(i) = backlog.iter().position(|(t, p, r)| pick(t, p, *r)) {
            return backlog.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((t, p, r)) = self.sub.rx.recv_timeout(left) else { break };
            let Some(rel) = t.strip_prefix(self.base.as_str()).and_then(|t| t.strip_prefix('/')) else { continue };
            if pick(rel, &p, r) {
                return (rel.to_string(), p, r);
            }
            if backlog.len() < 10_000 {
                backlog.push((rel.to_string(), p, r));
            }
        }
        panic!("nothing expected arrived on {}/#", self.base);
    }

    /// Publishes on `cmd/<name>` and returns the reply (on `reply/<request id>`, or
    /// `reply/_invalid` / `reply/_unsigned` when the payload names none).
    fn send(&self, name: &str, payload: impl Into<Vec<u8>>, retain: bool) -> Value {
        let payload = payload.into();
        let id = serde_json::from_slice::<Value>(&payload)
            .ok()
            .and_then(|v| v.get("request_id").and_then(Value::as_str).map(str::to_string));
        self.sub.client.publish(format!("{}/cmd/{name}", self.base), QoS::AtLeastOnce, retain, payload).unwrap();
        let (_, reply, _) = self.wait_for(|t, _, _| {
            t.strip_prefix("reply/").is_some_and(|r| Some(r) == id.as_deref() || r == "_invalid" || r == "_unsigned")
        });
        serde_json::from_slice(&reply).unwrap()
    }
}

static NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn sign_with(key: &str, secret: &[u8], name: &str, args: Value, ts: i64) -> Map<String, Value> {
    let mut p = args.as_object().unwrap().clone();
    let n = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sign_payload("door1", name, &mut p, key, secret, ts, &format!("nonce-{}-{n}", std::process::id()));
    p
}

fn signed(key: &str, name: &str, args: Value) -> String {
    let secret = match key {
        "ops" => OPS,
        "hr" => HR,
        "adm" => ADM,
        _ => LOCK,
    };
    Value::Object(sign_with(key, secret, name, args, jiff::Timestamp::now().as_second())).to_string()
}

/// A database with Ann (employee), Eve (watchlist) and keys `ops` (manage, admin), `hr`
/// (manage), `adm` (admin) and `lock` (door only).
fn seeded(dir: &Path) -> (PathBuf, Vec<PersonRecord>) {
    let db = dir.join("node.db");
    let mut s = Store::open(&db).unwrap();
    s.add_person("Ann", Role::Employee, &Schedule::default()).unwrap();
    s.add_person("Eve", Role::Watchlist, &Schedule::default()).unwrap();
    s.add_key("ops", OPS, "manage,admin").unwrap();
    s.add_key("lock", LOCK, "door").unwrap();
    s.add_key("hr", HR, "manage").unwrap();
    s.add_key("adm", ADM, "admin").unwrap();
    let people = s.people().unwrap();
    (db, people)
}

const JPEG_B64: &str = "/9j/4AAQSkZJRgABAQ==";

#[test]
fn unsigned_or_wrongly_scoped_commands_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = seeded(dir.path());
    let prefix = unique("auth");
    let node = Node::start(&node_config(&prefix, &db));
    let attacks: Vec<(&str, Value)> = vec![
        ("enroll", json!({"request_id":"a1","name":"Mallory","images":[JPEG_B64]})),
        ("enroll", json!({"request_id":"a2","name":"Ann","images":[JPEG_B64]})),
        ("enroll", json!({"request_id":"a3","name":"Eve","role":"employee","images":[JPEG_B64]})),
        ("set_role", json!({"request_id":"a4","person":"Eve","role":"employee"})),
        ("remove", json!({"request_id":"a5","person":"Ann"})),
        ("rename", json!({"request_id":"a6","person":"Ann","name":"Ann2"})),
        ("set_schedule", json!({"request_id":"a7","person":"Eve","schedule":"always"})),
        ("set_doors", json!({"request_id":"a8","person":"Eve","doors":"all"})),
        ("forget", json!({"request_id":"a9","person":"Ann"})),
        ("list_people", json!({"request_id":"a10"})),
        ("reload_config", json!({"request_id":"a11"})),
        ("snapshot", json!({"request_id":"a12"})),
        ("open_door", json!({"request_id":"a13"})),
    ];
    for (name, args) in &attacks {
        let r = node.send(name, args.to_string(), false);
        assert_eq!((r["ok"].clone(), r["rejected"].clone()), (json!(false), json!(true)), "unsigned {name}: {r}");
        assert!(r["error"].as_str().unwrap().contains("unsigned"), "{r}");
        // The door key may open the door and nothing else.
        if *name != "open_door" {
            let r = node.send(name, signed("lock", name, args.clone()), false);
            assert_eq!(r["forbidden"], json!(true), "{name} with the door key: {r}");
        }
    }
    // Enrolment by a manage key still cannot graft photos onto an existing person or change a
    // role by the back door (checked before any photo is decoded).
    let r = node.send("enroll", signed("ops", "enroll", attacks[1].1.clone()), false);
    assert!(r["error"].as_str().unwrap().contains("already enrolled"), "{r}");
    let r = node.send(
        "enroll",
        signed(
            "hr",
            "enroll",
            json!({"request_id":"a14","name":"Eve","role":"employee","images":[JPEG_B64],"append":true}),
        ),
        false,
    );
    assert!(r["error"].as_str().unwrap().contains("set_role"), "{r}");

    let store = Store::open(&db).unwrap();
    assert_eq!(store.people().unwrap(), before, "no refused command changed the people table");

    // The same command with the right key works, and its audit event names the key.
    let r = node.send(
        "set_role",
        signed("ops", "set_role", json!({"request_id":"ok1","person":"Eve","role":"visitor"})),
        false,
    );
    assert_eq!(r["ok"], json!(true), "{r}");
    assert_eq!(store.find_person("Eve").unwrap().unwrap().role, Role::Visitor);
    let (_, audit, _) =
        node.wait_for(|t, p, _| t == "audit" && serde_json::from_slice::<Value>(p).unwrap()["ok"] == json!(true));
    let audit: Value = serde_json::from_slice(&audit).unwrap();
    assert_eq!((audit["actor"].clone(), audit["command"].clone()), (json!("ops"), json!("set_role")), "{audit}");
    assert!(audit["seq"].as_u64().is_some(), "events carry a sequence number: {audit}");
    // The door key opens the door.
    let r = node.send("open_door", signed("lock", "open_door", json!({"request_id":"ok2"})), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    // Snapshots are rate-limited per key: the second within 2 s is refused and says so.
    node.send("snapshot", signed("ops", "snapshot", json!({"request_id":"s1"})), false);
    let r = node.send("snapshot", signed("ops", "snapshot", json!({"request_id":"s2"})), false);
    assert_eq!(r["rate_limited"], json!(true), "{r}");
    assert!(r["error"].as_str().unwrap().contains("rate limited"), "{r}");
    // The limits are per key and per command: the limited key may still run other commands, and
    // another key the limited command. reload_config: one per key per 30 s.
    let r = node.send("list_people", signed("ops", "list_people", json!({"request_id":"s3"})), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = node.send("reload_config", signed("ops", "reload_config", json!({"request_id":"l1"})), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    let r = node.send("reload_config", signed("ops", "reload_config", json!({"request_id":"l2"})), false);
    assert_eq!((r["rate_limited"].clone(), r["rejected"].clone()), (json!(true), json!(true)), "{r}");
    assert!(r["retry_after_s"].as_u64().is_some_and(|s| (1..=30).contains(&s)), "{r}");
    assert!(r["error"].as_str().unwrap().contains("too many reload_config requests"), "{r}");
    let r = node.send("reload_config", signed("adm", "reload_config", json!({"request_id":"l3"})), false);
    assert_eq!(r["ok"], json!(true), "another key has its own budget: {r}");
    node.svc.stop();
}

fn photo_b64(rel: &str) -> String {
    use base64::Engine as _;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

/// Enrolling an employee's photo under a decoy name would lock the employee out through the
/// margin rule (two people too close to call): the enrolment is refused, and the employee's face
/// is still recognised as them.
#[test]
fn an_employees_photo_under_a_decoy_name_is_refused_and_the_employee_still_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seeded(dir.path());
    Store::open(&db).unwrap().add_key("hr2", HR, "manage").unwrap();
    let prefix = unique("decoy");
    let config = node_config(&prefix, &db);
    let node = Node::start(&config);
    let args = json!({"request_id":"d1","name":"Grace","role":"employee","images":[photo_b64("faces/hopper/01.jpg")]});
    let r = node.send("enroll", signed("ops", "enroll", args), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    let before = Store::open(&db).unwrap().people().unwrap();

    // The decoy: another rendering of her photo, under a new name (another key: enroll is
    // rate-limited per key).
    let args = json!({"request_id":"d2","name":"Decoy","role":"visitor","images":[photo_b64("faces/hopper/02.jpg")]});
    let r = node.send("enroll", signed("hr", "enroll", args), false);
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("matches `Grace`"), "{r}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.people().unwrap(), before, "nobody was added");
    // Even with force: the quality check can be overridden, the look-alike rule cannot.
    let args = json!({"request_id":"d3","name":"Decoy","images":[photo_b64("faces/hopper/02.jpg")],"force":true});
    let forced = sign_with("hr2", HR, "enroll", args, jiff::Timestamp::now().as_second());
    let r = node.send("enroll", Value::Object(forced).to_string(), false);
    assert!(r["error"].as_str().unwrap_or_default().contains("matches `Grace`"), "{r}");
    assert_eq!(store.people().unwrap(), before, "nobody was added");

    // Grace still gets in: her other photo is identified as her, clearing threshold and margin.
    let mut engine = facegate::engine::Engine::open(&config).unwrap();
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces/hopper/02.jpg");
    let (face, _) = engine.largest_face(&photo).unwrap();
    let gallery = store.gallery(&engine.template_model()).unwrap();
    let matcher = facegate::gallery::matcher::Matcher::new(engine.template_model().dim, &gallery);
    match matcher.identify(&face.embedding, &engine.policy) {
        facegate::gallery::matcher::Identification::Match { person, .. } => assert_eq!(person, "Grace"),
        other => panic!("Grace is locked out: {other:?}"),
    }
    let grace = store.find_person("Grace").unwrap().unwrap();
    assert_eq!((grace.role, grace.templates), (Role::Employee, 1));
    node.svc.stop();
}

#[test]
fn a_signed_command_replayed_after_a_restart_or_changed_under_its_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = seeded(dir.path());
    let prefix = unique("replay");
    let config = node_config(&prefix, &db);
    let node = Node::start(&config);

    let genuine = signed("ops", "set_role", json!({"request_id":"r1","person":"Ann","role":"visitor"}));
    let mut changed: Value = serde_json::from_str(&genuine).unwrap();
    changed["person"] = json!("Eve");
    changed["role"] = json!("employee");
    assert_eq!(node.send("set_role", changed.to_string(), false)["error"], json!("bad signature"));
    let mut added: Value = serde_json::from_str(&genuine).unwrap();
    added["request_id"] = json!("r2");
    assert_eq!(node.send("set_role", added.to_string(), false)["error"], json!("bad signature"));
    // A timestamp that would wrap the freshness check (ts = now + i64::MIN).
    let now = jiff::Timestamp::now().as_second();
    let wrap = sign_with("lock", LOCK, "open_door", json!({"request_id":"w1"}), now.wrapping_add(i64::MIN));
    let r = node.send("open_door", Value::Object(wrap).to_string(), false);
    assert!(r["error"].as_str().unwrap().contains("timestamp"), "{r}");
    assert_eq!(Store::open(&db).unwrap().people().unwrap(), before);

    assert_eq!(node.send("set_role", genuine.clone(), false)["ok"], json!(true));
    assert!(node.send("set_role", genuine.clone(), false)["error"].as_str().unwrap().contains("replayed"));
    node.svc.stop();

    // Undo the change locally. While the node is down someone leaves a validly signed command
    // retained on the broker: it reaches the restarted node flagged retained, and is refused.
    Store::open(&db).unwrap().set_role("Ann", Role::Employee).unwrap();
    let planted = signed("ops", "set_role", json!({"request_id":"p1","person":"Eve","role":"employee"}));
    let cmd_topic = format!("{prefix}/door1/cmd/set_role");
    let planter = Subscriber::new(broker(), std::slice::from_ref(&cmd_topic));
    planter.client.publish(&cmd_topic, QoS::AtLeastOnce, true, planted).unwrap();
    // Its echo means the broker holds it retained before the node subscribes.
    planter.rx.recv_timeout(Duration::from_secs(20)).expect("the planted command is on the broker");
    let node = Node::start(&config);
    // Refused on the request id it names (a refusal is answered on the caller's reply topic).
    let (_, r, _) = node.wait_for(|t, _, _| t == "reply/p1");
    let r: Value = serde_json::from_slice(&r).unwrap();
    assert!(r["error"].as_str().unwrap().contains("retain"), "{r}");
    // Clearing it is itself an (empty, refused) command.
    let r = node.send("set_role", Vec::new(), true);
    assert!(r["error"].as_str().unwrap().contains("not JSON"), "{r}");
    // ...and the captured command stays dead after the restart.
    let r = node.send("set_role", genuine, false);
    assert!(r["error"].as_str().unwrap().contains("replayed"), "after a restart: {r}");
    assert_eq!(Store::open(&db).unwrap().people().unwrap(), before);
    // A revoked key is refused from the next command on.
    Store::open(&db).unwrap().revoke_key("ops").unwrap();
    let r = node.send("list_people", signed("ops", "list_people", json!({"request_id":"r3"})), false);
    assert!(r["error"].as_str().unwrap().contains("revoked"), "{r}");
    node.svc.stop();
}

#[test]
fn remove_during_an_outage_keeps_queued_events_and_forget_clears_last_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (db, people) = seeded(dir.path());
    let ann = people.iter().find(|p| p.name == "Ann").unwrap().id;
    let eve = people.iter().find(|p| p.name == "Eve").unwrap().id;
    let prefix = unique("loss");
    let config = node_config(&prefix, &db);

    // The node is offline (no MQTT service yet): Ann's and Eve's decisions wait in the outbox.
    let mut store = Store::open(&db).unwrap();
    let b = EventBuilder::new("door1");
    let (row, out) = common::recorded(&b, 0, ann);
    store.record_event(&row, &out).unwrap();
    let (row, out) = common::recorded(&b, 1, eve);
    store.record_event(&row, &out).unwrap();
    let queued: Vec<OutboxEvent> = store.pending(0, 100).unwrap().into_iter().map(|p| p.event).collect();
    let ann_events: Vec<String> = queued
        .iter()
        .filter(|e| e.topic == "decision" || e.topic.starts_with(&format!("person/{ann}/")))
        .map(|e| e.event_id.clone())
        .collect();

    let cli = Actor::new("cli:test", Scopes::all(), Via::Cli);
    let mut local = api(&config);
    local.remove(&cli, "Ann").unwrap();
    assert_eq!(store.waiting().unwrap(), queued.len() as u64 + 1, "remove keeps the queue (plus its audit event)");

    // The broker comes back: every queued event of the removed person is delivered.
    let node = Node::start(&config);
    let mut seen = std::collections::HashSet::new();
    while !ann_events.iter().all(|id| seen.contains(id)) {
        let (_, p, _) = node.wait_for(|_, p, _| p.first() == Some(&b'{'));
        if let Some(id) =
            serde_json::from_slice::<Value>(&p).ok().and_then(|v| v["event_id"].as_str().map(str::to_string))
        {
            seen.insert(id);
        }
    }
    let last_seen = format!("person/{eve}/last_seen");
    node.wait_for(|t, p, _| t == last_seen && !p.is_empty());

    // forget erases Eve and clears her retained last_seen on the broker (through the outbox).
    let r = node.send("forget", signed("ops", "forget", json!({"request_id":"f1","person":"Eve"})), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    node.wait_for(|t, p, _| t == last_seen && p.is_empty());
    assert!(store.find_person("Eve").unwrap().is_none());
    // A new person never gets a removed or forgotten person's id.
    let id = store.add_person("Newcomer", Role::Employee, &Schedule::default()).unwrap();
    assert!(id > ann.max(eve), "#{id} reuses an old id");
    assert_eq!(store.outbox_dropped().unwrap(), 0, "nothing was dropped");
    node.svc.stop();
}

/// A few thousand hostile messages over every command topic: the node stays up, every message
/// gets a refusal reply (none is dropped at this pace), and the people table does not change.
#[test]
fn a_bounded_fuzz_over_every_command_topic_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, before) = seeded(dir.path());
    let prefix = unique("fuzz");
    let node = Node::start(&node_config(&prefix, &db));
    let mut rng = fastrand::Rng::with_seed(9);
    let names: Vec<&str> = facegate::act::mqtt::commands::COMMANDS.to_vec();
    let fields = [
        "person", "name", "role", "images", "door", "camera", "schedule", "doors", "append", "key", "ts", "nonce",
        "sig",
    ];
    let values = [
        json!(1),
        json!("Ann"),
        json!("employee"),
        json!(null),
        json!([JPEG_B64]),
        json!(-1),
        json!(i64::MIN),
        json!("\u{202E}x"),
        json!({"a": 1}),
        json!(true),
    ];
    let total = 2000;
    for i in 0..total {
        let name = names[rng.usize(..names.len())];
        let args = json!({"request_id": format!("f{i}"), "person": "Eve", "role": "employee", "name": "Ann"});
        let payload: Vec<u8> = match rng.u8(..5) {
            // Signed by a real key, then one field changed or added.
            0 | 1 => {
                let mut p = sign_with("ops", OPS, name, args, jiff::Timestamp::now().as_second());
                p.insert(fields[rng.usize(..fields.len())].into(), values[rng.usize(..values.len())].clone());
                Value::Object(p).to_string().into_bytes()
            }
            // Unsigned with random fields.
            2 => {
                let mut p = Map::new();
                p.insert("request_id".into(), json!(format!("f{i}")));
                for _ in 0..rng.usize(..4) {
                    p.insert(fields[rng.usize(..fields.len())].into(), values[rng.usize(..values.len())].clone());
                }
                Value::Object(p).to_string().into_bytes()
            }
            // Truncated JSON.
            3 => {
                let text = signed("ops", name, args);
                text.as_bytes()[..rng.usize(..text.len())].to_vec()
            }
            // Random bytes.
            _ => (0..rng.usize(..200)).map(|_| rng.u8(..)).collect(),
        };
        // In batches of 16 (the node queues up to 32 commands; more would be dropped, counted).
        node.sub.client.publish(format!("{}/cmd/{name}", node.base), QoS::AtLeastOnce, false, payload).unwrap();
        if i % 16 == 15 || i == total - 1 {
            for _ in 0..=(i % 16) {
                let (t, r, _) = node.wait_for(|t, _, _| t.starts_with("reply/"));
                let r: Value = serde_json::from_slice(&r).unwrap();
                assert_eq!(r["ok"], json!(false), "a message was accepted on {t}: {r}");
            }
        }
    }
    assert_eq!(Store::open(&db).unwrap().people().unwrap(), before, "the people table is unchanged");
    // Still alive and answering.
    let r = node.send("list_people", signed("ops", "list_people", json!({"request_id":"alive"})), false);
    assert_eq!(r["ok"], json!(true), "{r}");
    assert!(node.svc.stats().rejected_commands >= total, "{:?}", node.svc.stats());
    node.svc.stop();
}
