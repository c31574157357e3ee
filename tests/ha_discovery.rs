//! `facegate run` and Home Assistant's side of the broker (in-process rumqttd, or
//! FACEGATE_TEST_BROKER): the discovery configs as HA parses them (JSON, per entity), a config
//! left on the broker by an earlier version (the old door button) cleared at start, the door
//! contact's first state and the lock state (`locked` -> `unlocked` during a face pulse ->
//! `locked`) retained for HA, and trackers following people added and removed while it runs. `.ci/step-ha` checks the same against a real Home Assistant.

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod mqtt_broker;
#[path = "common/node_config.rs"]
mod node_config;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};

use node_config::NodeConfig;

struct Message {
    topic: String,
    payload: Vec<u8>,
}

fn subscribe(filters: &[String]) -> (Client, Receiver<Message>) {
    let (host, port) = mqtt_broker::broker();
    let mut options = MqttOptions::new(format!("ha-test-{}", fastrand::u32(..)), host, port);
    options.set_keep_alive(Duration::from_secs(10));
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut connection) = Client::new(options, 100);
    for f in filters {
        client.subscribe(f.clone(), QoS::AtLeastOnce).unwrap();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let m = Message { topic: p.topic.clone(), payload: p.payload.to_vec() };
                    if tx.send(m).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    (client, rx)
}

fn wait_for(rx: &Receiver<Message>, what: &str, timeout: Duration, mut pick: impl FnMut(&Message) -> bool) -> Message {
    let deadline = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(m) if pick(&m) => return m,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no {what} within {timeout:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the subscriber stopped while waiting for {what}"),
        }
    }
}

fn json_of(m: &Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap_or(Value::Null)
}

fn write_config(path: &Path, node: &str, db: &Path) {
    let mut config = NodeConfig::walkup(node, mqtt_broker::broker(), db);
    config.location = Some("Main entrance".to_string());
    config.cooldown_ms = Some(60000);
    config.discovery = true;
    config.pulse_ms = 1500;
    config.door_lines = vec![r#"contact = { driver = "dry_run" }"#.to_string()];
    config.extra = "[[door]]\nname = \"back\"\nrelay = { driver = \"dry_run\" }\n".to_string();
    config.write(path);
}

#[test]
fn home_assistant_sees_parsed_configs_no_stale_ones_the_first_contact_state_and_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("ha{}", fastrand::u32(..));
    let base = format!("facegate/{node}");
    let (client, rx) = subscribe(&[format!("homeassistant/+/{node}/+/config"), format!("{base}/#")]);

    // An earlier version's button, retained on the broker: the node must clear it.
    let stale = format!("homeassistant/button/{node}/door_front_open/config");
    let old = json!({ "name": "Open front", "unique_id": format!("facegate_{node}_door_front_open") });
    client.publish(stale.clone(), QoS::AtLeastOnce, true, old.to_string()).unwrap();
    wait_for(&rx, "the stale config on the broker", Duration::from_secs(10), |m| m.topic == stale);

    let config = dir.path().join("node.toml");
    write_config(&config, &node, &dir.path().join("node.db"));
    let log = dir.path().join("node.log");
    let child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _node = mqtt_broker::NodeGuard(Some(child), log);

    // Discovery: every config parses, and the set of entities is what this node has.
    let mut configs: HashMap<String, Value> = HashMap::new();
    let mut lock_states = Vec::new();
    let mut stale_cleared = false;
    let mut contact = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(stale_cleared
        && lock_states.ends_with(&["unlocked".to_string(), "locked".to_string()])
        && contact.is_some())
    {
        let m = wait_for(
            &rx,
            "discovery, the contact and a lock cycle",
            deadline.saturating_duration_since(Instant::now()),
            |_| true,
        );
        let relative = m.topic.strip_prefix(&format!("{base}/")).unwrap_or("");
        if m.topic == stale {
            stale_cleared |= m.payload.is_empty();
        } else if m.topic.starts_with("homeassistant/") && !m.payload.is_empty() {
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("{}: not JSON: {e}", m.topic));
            configs.insert(m.topic.clone(), v);
        } else if relative == "door/front/lock" {
            let state = json_of(&m)["state"].as_str().unwrap_or("?").to_string();
            if lock_states.last() != Some(&state) {
                lock_states.push(state);
            }
        } else if relative == "door/front/contact" && contact.is_none() {
            contact = Some(json_of(&m)["state"].clone());
        }
        if Instant::now() >= deadline {
            panic!("stale cleared {stale_cleared}, lock states {lock_states:?}, contact {contact:?}");
        }
    }
    assert_eq!(lock_states.first().map(String::as_str), Some("locked"), "{lock_states:?}");
    assert_eq!(contact, Some(json!("closed")), "the contact's first reading reached the broker");

    let mut objects: Vec<String> = configs.keys().map(|t| t.split('/').nth(3).unwrap().to_string()).collect();
    objects.sort();
    let mut expected: Vec<String> = [
        "camera_entrance_face",
        "camera_entrance_fps",
        "camera_entrance_online",
        "decision",
        "door_back_event",
        "door_back_lock",
        "door_front_contact",
        "door_front_event",
        "door_front_lock",
        "last_person",
        "model",
        "outbox_dropped",
        "outbox_waiting",
        "person_1",
        "person_2",
        "similarity",
        "store_errors",
        "uptime",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(objects, expected, "no contact for door back (none wired), no image (snapshots off), no button");
    let lock = &configs[&format!("homeassistant/lock/{node}/door_front_lock/config")];
    assert_eq!(lock["command_topic"], json!(format!("{base}/cmd/open_door")));
    assert_eq!(lock["state_topic"], json!(format!("{base}/door/front/lock")));
    assert_eq!(lock["device"]["suggested_area"], json!("Main entrance"));
    let tracker = &configs[&format!("homeassistant/device_tracker/{node}/person_1/config")];
    assert_eq!(tracker["state_topic"], json!(format!("{base}/person/1/location")));
    for (topic, v) in &configs {
        assert_eq!(v["availability_topic"], json!(format!("{base}/status")), "{topic}");
    }

    // The person recognised at the pulse is now at the camera's location (plain text, retained).
    let location = wait_for(&rx, "a person location", Duration::from_secs(30), |m| {
        m.topic.starts_with(&format!("{base}/person/")) && m.topic.ends_with("/location")
    });
    assert_eq!(location.payload.as_slice(), b"Main entrance".as_slice());

    // Someone added while the node runs gets a tracker; someone removed loses theirs.
    let cli = |args: &[&str]| {
        let out =
            Command::new(env!("CARGO_BIN_EXE_facegate")).arg("--config").arg(&config).args(args).output().unwrap();
        assert!(out.status.success(), "facegate {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    cli(&["people", "add", "Carol"]);
    let added = wait_for(&rx, "a tracker for Carol", Duration::from_secs(60), |m| {
        m.topic.starts_with(&format!("homeassistant/device_tracker/{node}/")) && json_of(m)["name"] == json!("Carol")
    });
    cli(&["people", "remove", "hopper"]);
    wait_for(&rx, "hopper's tracker cleared", Duration::from_secs(60), |m| {
        m.topic == format!("homeassistant/device_tracker/{node}/person_2/config") && m.payload.is_empty()
    });
    assert!(added.topic.ends_with("/config"));
}
