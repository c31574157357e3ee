//! `facegate run` talking to a real broker (in-process rumqttd, or FACEGATE_TEST_BROKER): the
//! events the running service publishes (face presence, decisions with face snapshots, camera
//! frame rates, heartbeats with outbox counters), the `snapshot` command, and config reloads by
//! the `reload_config` command and by SIGHUP, including a broken config that must be refused
//! and a config that cannot start, after which the node goes back to the one it had.

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod mqtt_broker;
#[path = "common/node_config.rs"]
mod node_config;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

use node_config::{NodeConfig, start_node};

/// One message seen by the test's subscriber.
struct Message {
    topic: String,
    payload: Vec<u8>,
}

impl Message {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A subscriber on the node's whole topic tree, and a publisher for commands.
struct Listener {
    client: Client,
    rx: Receiver<Message>,
    prefix: String,
    node: String,
    /// Messages passed over while waiting for another (a command's events can arrive before
    /// its reply), still to be matched.
    backlog: std::cell::RefCell<Vec<Message>>,
}

/// The secret of every test key (`k-<request id>`, scope admin: one key per request, so the
/// per-key rate limits of snapshot and reload_config do not interfere).
const SECRET: &[u8] = b"service-test-secret-0123456789";

/// Adds a key `k-<id>` for each request id to the node's database.
fn add_keys(db: &Path, ids: &[&str]) {
    let mut store = facegate::act::store::Store::open(db).unwrap();
    for id in ids {
        store.add_key(&format!("k-{id}"), SECRET, "admin").unwrap();
    }
}

impl Listener {
    fn new(node: &str) -> Listener {
        let (host, port) = mqtt_broker::broker();
        let mut options = MqttOptions::new(format!("test-{node}"), host, port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut connection) = Client::new(options, 100);
        let prefix = format!("facegate/{node}/");
        client.subscribe(format!("{prefix}#"), QoS::AtLeastOnce).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let message = Message { topic: p.topic.clone(), payload: p.payload.to_vec() };
                        if tx.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        Listener { client, rx, prefix, node: node.to_string(), backlog: Default::default() }
    }

    /// Waits for the first message (topic relative to the node) that `pick` accepts.
    fn wait_for(&self, what: &str, timeout: Duration, mut pick: impl FnMut(&str, &Message) -> bool) -> Message {
        let relative = |m: &Message| m.topic.strip_prefix(&self.prefix).unwrap_or(&m.topic).to_string();
        let mut backlog = self.backlog.borrow_mut();
        if let Some(i) = backlog.iter().position(|m| pick(&relative(m), m)) {
            return backlog.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(m) => {
                    if pick(&relative(&m), &m) {
                        return m;
                    }
                    // Door events and replies only: a later wait for them must not miss one that
                    // came early, while heartbeats and decisions must be new to count.
                    let rel = relative(&m);
                    if (rel.starts_with("door/") || rel.starts_with("reply/")) && backlog.len() < 1000 {
                        backlog.push(m);
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the subscriber stopped while waiting for {what}"),
            }
        }
    }

    /// Sends a command (signed with key `k-<request_id>`, except the unsigned `open_door` that
    /// `remote_open = "broker_acl"` allows) and returns its reply.
    fn command(&self, name: &str, request_id: &str, mut args: Value) -> Value {
        args["request_id"] = json!(request_id);
        if name != "open_door" {
            let mut map = args.as_object().unwrap().clone();
            let now = jiff::Timestamp::now().as_second();
            let key = format!("k-{request_id}");
            facegate::access::sign_payload(
                &self.node,
                name,
                &mut map,
                &key,
                SECRET,
                now,
                &format!("nonce-{request_id}"),
            );
            args = Value::Object(map);
        }
        let topic = format!("{}cmd/{name}", self.prefix);
        self.client.publish(topic, QoS::AtLeastOnce, false, args.to_string()).unwrap();
        let reply_topic = format!("reply/{request_id}");
        self.wait_for(&format!("reply to {name}"), Duration::from_secs(20), |t, _| t == reply_topic).json()
    }

    /// Waits for a decision event made at a camera whose location is `location`.
    fn decision_at(&self, location: &str) -> Value {
        let m = self.wait_for(&format!("a decision at `{location}`"), Duration::from_secs(60), |t, m| {
            t == "decision" && m.json()["location"] == json!(location)
        });
        m.json()
    }
}

const DRY_RUN: &str = r#"{ driver = "dry_run" }"#;

fn write_config(path: &Path, node: &str, db: &Path, location: &str, relay: &str) {
    let mut config = NodeConfig::walkup(node, mqtt_broker::broker(), db);
    config.location = Some(location.to_string());
    config.cooldown_ms = Some(60000);
    config.mqtt_lines =
        ["snapshots = true", "remote_open = true", "remote_open_require_hmac = false"].map(String::from).to_vec();
    config.relay = relay.to_string();
    config.write(path);
}

fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -s {signal} failed");
}

#[test]
fn the_running_node_publishes_snapshots_presence_and_reloads_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("svc{}", fastrand::u32(..));
    let config = dir.path().join("node.toml");
    let db = dir.path().join("node.db");
    write_config(&config, &node, &db, "Lobby", DRY_RUN);
    add_keys(&db, &["snap1", "snap2", "reload1", "reload2", "reload3"]);
    let listener = Listener::new(&node);
    let log = dir.path().join("node.log");
    let mut node_process = mqtt_broker::NodeGuard(Some(start_node(&config, &log)), log.clone());

    // Face presence goes up when someone walks in.
    listener.wait_for("face presence", Duration::from_secs(60), |t, m| {
        t == "camera/entrance/face" && m.json()["present"] == json!(true) && m.json()["faces"].as_u64() >= Some(1)
    });

    // A decision, and the face crop published under its event id, before it.
    let mut snapshots = std::collections::HashMap::new();
    let decision = listener.wait_for("a decision", Duration::from_secs(60), |t, m| {
        if let Some(id) = t.strip_prefix("snapshot/entrance/") {
            snapshots.insert(id.to_string(), m.payload.clone());
        }
        t == "decision"
    });
    let decision = decision.json();
    assert_eq!(decision["location"], json!("Lobby"), "{decision}");
    let id = decision["event_id"].as_str().unwrap();
    let crop = snapshots.get(id).unwrap_or_else(|| panic!("no snapshot for decision {id}: {:?}", snapshots.keys()));
    let crop = image::load_from_memory_with_format(crop, image::ImageFormat::Jpeg).expect("the snapshot is a JPEG");
    let (w, h) = (crop.width(), crop.height());
    assert!((40..640).contains(&w) && h < 480, "a face crop, not the whole frame: {w}x{h}");

    // The door pulse says who opened it: a face here, a remote command below.
    let pulse = listener.wait_for("a pulse", Duration::from_secs(10), |t, m| {
        t == "door/front/event" && m.json()["kind"] == json!("pulse")
    });
    assert_eq!(pulse.json()["by"], json!("face"), "{}", pulse.json());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let reply = listener.command("open_door", "open1", json!({ "door": "front", "ts": now, "nonce": "n-0123456789" }));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let pulse = listener.wait_for("the remote pulse", Duration::from_secs(10), |t, m| {
        t == "door/front/event" && m.json()["by"] == json!("remote")
    });
    assert_eq!(pulse.json()["pulse_ms"], json!(200));

    // Periodic camera state with the frame rate, and heartbeats with the outbox counters.
    listener.wait_for("camera fps", Duration::from_secs(10), |t, m| {
        t == "camera/entrance/state" && m.json()["fps"].as_f64().is_some_and(|f| f > 5.0)
    });
    let beat = listener.wait_for("heartbeat", Duration::from_secs(10), |t, _| t == "heartbeat").json();
    assert!(beat["counters"]["outbox_waiting"].is_u64() && beat["counters"]["outbox_dropped"] == json!(0), "{beat}");

    // The snapshot command: the reply names the topic, the whole frame arrives there.
    let reply = listener.command("snapshot", "snap1", json!({ "camera": "entrance" }));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let topic = reply["result"]["snapshots"][0]["topic"].as_str().unwrap().to_string();
    let frame = listener.wait_for("the requested snapshot", Duration::from_secs(20), |_, m| m.topic == topic);
    let frame = image::load_from_memory(&frame.payload).expect("the snapshot is a JPEG");
    assert_eq!((frame.width(), frame.height()), (640, 480), "the whole frame");
    let reply = listener.command("snapshot", "snap2", json!({ "camera": "garage" }));
    assert_eq!(reply["ok"], json!(false), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("entrance"), "the error lists the cameras: {reply}");

    // A broken config is refused and the node keeps running on the old one.
    std::fs::write(&config, "[decide]\nwindow = 0\n").unwrap();
    let reply = listener.command("reload_config", "reload1", json!({}));
    assert_eq!(reply["ok"], json!(false), "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("decide.window"), "the error names the key: {reply}");
    listener.wait_for("a heartbeat after the refused reload", Duration::from_secs(10), |t, _| t == "heartbeat");

    // reload_config applies a new location: later decisions carry it.
    write_config(&config, &node, &db, "Back door", DRY_RUN);
    let reply = listener.command("reload_config", "reload2", json!({}));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    assert_eq!(reply["result"]["changed"], json!(["camera"]), "{reply}");
    listener.decision_at("Back door");

    // A config that is valid but cannot start (its GPIO chip does not exist): the node goes back
    // to the config it had and keeps deciding.
    let missing_chip = r#"{ driver = "gpiocdev", chip = "/dev/gpiochip-test-missing", line = 17 }"#;
    write_config(&config, &node, &db, "Nowhere", missing_chip);
    let reply = listener.command("reload_config", "reload3", json!({}));
    assert_eq!(reply["ok"], json!(true), "{reply}");
    listener.decision_at("Back door");

    // SIGHUP does the same (systemctl reload).
    write_config(&config, &node, &db, "Side door", DRY_RUN);
    signal(node_process.0.as_ref().unwrap(), "HUP");
    listener.decision_at("Side door");

    let child = node_process.0.take().unwrap();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(out.status.success(), "the node failed: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["config_reloads"], json!(2), "{summary}");
    assert!(stderr.contains("new config is invalid"), "{stderr}");
    assert!(stderr.contains("could not start, going back to the previous one"), "{stderr}");
}
