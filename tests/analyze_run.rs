//! `[analyze]` in `facegate run`, through a real broker (in-process rumqttd, or
//! FACEGATE_TEST_BROKER) and the real models, on the walk-up clip (astronaut and hopper enrolled,
//! the cameraman a stranger in between):
//! - on: the stranger's `unknown` decision carries attributes, the enrolled people's decisions
//!   carry none (`per_person = false`) and are not counted, and the camera's hourly counts are
//!   published (retained) with a Home Assistant sensor, and stored;
//! - off: nothing of it appears and the attribute models are never read (their files are
//!   corrupted in a copy of the models folder, which only an enabled node refuses, naming the fix).

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod mqtt_broker;
#[path = "common/node_config.rs"]
mod node_config;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facegate::vision::models::{Manifest, Role};
use mqtt_broker::{NodeGuard, Subscriber};
use node_config::{NodeConfig, start_node};
use serde_json::{Value, json};

/// The node's config: the looping walk-up clip with the fixture faces enrolled, MQTT on with
/// discovery under `<node>ha`, the given models folder and `[analyze]` lines.
fn write_config(path: &Path, node: &str, db: &Path, models: &Path, analyze: &str) {
    let mut config = NodeConfig::walkup(node, mqtt_broker::broker(), db);
    config.location = Some("Lobby".into());
    config.cooldown_ms = Some(60_000);
    config.discovery = true;
    config.mqtt_lines.push(format!("discovery_prefix = \"{node}ha\""));
    config.extra = format!("[models]\ndir = {:?}\n[analyze]\n{analyze}", models.display().to_string());
    config.write(path);
}

fn stop(guard: &mut NodeGuard) -> String {
    let child = guard.0.take().unwrap();
    let ok = Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -s TERM failed");
    let out = child.wait_with_output().unwrap();
    let log = std::fs::read_to_string(&guard.1).unwrap();
    assert!(out.status.success(), "the node failed: {log}");
    log
}

/// Every message on the node's topics (relative topic, JSON payload, retained) and on its
/// discovery prefix, until `done` says enough or `timeout` passes.
fn collect(
    sub: &Subscriber,
    base: &str,
    timeout: Duration,
    mut done: impl FnMut(&[(String, Value, bool)]) -> bool,
) -> Vec<(String, Value, bool)> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((topic, payload, retain)) = sub.rx.recv_timeout(left) else {
            let topics: Vec<&str> = seen.iter().map(|(t, _, _)| t.as_str()).collect();
            panic!("not everything arrived within {timeout:?}; seen: {topics:?}");
        };
        let relative = topic.strip_prefix(base).unwrap_or(&topic).to_string();
        seen.push((relative, serde_json::from_slice(&payload).unwrap_or(Value::Null), retain));
    }
    seen
}

fn decisions<'a>(seen: &'a [(String, Value, bool)], kind: &str) -> Vec<&'a Value> {
    seen.iter().filter(|(t, v, _)| t == "decision" && v["kind"] == json!(kind)).map(|(_, v, _)| v).collect()
}

/// A copy of the models folder whose attribute models (age, gender, emotion) are garbage;
/// returns how many were spoilt.
fn models_with_broken_attributes(dir: &Path) -> (PathBuf, usize) {
    let repo_models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let copy = dir.join("models");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&repo_models).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
        }
    }
    let manifest = Manifest::load(&copy).unwrap();
    let mut spoilt = 0;
    for m in &manifest.models {
        if matches!(m.role, Role::Age | Role::Gender | Role::Emotion | Role::AgeGender) {
            std::fs::write(copy.join(&m.file), b"not an onnx model").unwrap();
            spoilt += 1;
        }
    }
    (copy, spoilt)
}

#[test]
fn strangers_get_attributes_and_an_hourly_count_and_identified_people_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("attr{}", fastrand::u32(..));
    let (config, db, log) = (dir.path().join("node.toml"), dir.path().join("node.db"), dir.path().join("node.log"));
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    write_config(&config, &node, &db, &models, "enabled = true\n");
    let base = format!("facegate/{node}/");
    let sub = Subscriber::new(mqtt_broker::broker(), &[format!("{base}#"), format!("{node}ha/#")]);
    let mut guard = NodeGuard(Some(start_node(&config, &log)), log.clone());

    let seen = collect(&sub, &base, Duration::from_secs(120), |seen| {
        !decisions(seen, "unknown").is_empty()
            && !decisions(seen, "granted").is_empty()
            && seen.iter().any(|(t, _, _)| t == "camera/entrance/attributes")
    });
    let log_text = stop(&mut guard);
    assert!(log_text.contains("analyze: age, gender and expression estimated"), "{log_text}");

    // The stranger's decision carries a DeepFace-shaped estimate, within the models' ranges.
    for unknown in decisions(&seen, "unknown") {
        let a = &unknown["attributes"];
        let age = a["age"].as_f64().unwrap_or_else(|| panic!("no attributes on {unknown}"));
        assert!((0.0..=120.0).contains(&age), "{a}");
        assert!(["Woman", "Man"].contains(&a["dominant_gender"].as_str().unwrap()), "{a}");
        let (w, m) = (a["gender"]["Woman"].as_f64().unwrap(), a["gender"]["Man"].as_f64().unwrap());
        assert!((w + m - 1.0).abs() < 1e-3, "{a}");
        let emotion = a["emotion"].as_object().unwrap();
        assert_eq!(emotion.len(), 7, "{a}");
        let sum: f64 = emotion.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 0.01, "{a}");
        let dominant = a["dominant_emotion"].as_str().unwrap();
        let best = emotion.iter().max_by(|x, y| x.1.as_f64().partial_cmp(&y.1.as_f64()).unwrap()).unwrap().0;
        assert_eq!(dominant, best, "{a}");
        assert!(a.get("race").is_none(), "the race head is never exposed: {a}");
    }
    // Identified people: no attributes (per_person = false).
    for granted in decisions(&seen, "granted") {
        assert!(granted.get("attributes").is_none(), "{granted}");
    }

    // The hourly counts: retained, this hour, strangers only.
    let (_, hour, retained) = seen.iter().rev().find(|(t, _, _)| t == "camera/entrance/attributes").unwrap();
    assert!(*retained || hour["kind"] == json!("attributes_hour"), "{hour}");
    assert_eq!((hour["kind"].clone(), hour["counted"].clone()), (json!("attributes_hour"), json!("unknown")), "{hour}");
    assert_eq!(hour["location"], json!("Lobby"));
    let faces = hour["faces"].as_u64().unwrap();
    assert!(faces >= 1, "{hour}");
    for dimension in ["age", "gender", "emotion"] {
        let sum: u64 = hour[dimension].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(sum, faces, "every face counted once in {dimension}: {hour}");
    }
    let start: jiff::Timestamp = hour["hour_start"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = hour["hour_end"].as_str().unwrap().parse().unwrap();
    let now = jiff::Timestamp::now();
    assert!(start <= now && now.duration_since(start) < jiff::SignedDuration::from_hours(2), "{hour}");
    assert_eq!(end.duration_since(start), jiff::SignedDuration::from_hours(1), "{hour}");

    // Home Assistant gets the camera's sensor.
    let sensor = format!("{node}ha/sensor/{node}/camera_entrance_attributes/config");
    let config_msg = seen.iter().find(|(t, _, _)| *t == sensor).unwrap_or_else(|| panic!("no {sensor}"));
    assert_eq!(config_msg.1["state_topic"], json!(format!("{base}camera/entrance/attributes")));

    // The store counted exactly the unknown decisions it recorded, none of the granted ones.
    let store = facegate::act::store::Store::open(&db).unwrap();
    let hours = store.attribute_hours(Some("entrance"), jiff::Timestamp::UNIX_EPOCH, 100).unwrap();
    let counted: u64 = hours.iter().map(|h| h.faces).sum();
    let filter = facegate::act::store::EventFilter::default();
    let events = store.recent_events(&filter, 10_000).unwrap();
    let unknown = events.iter().filter(|(_, e)| e.kind == facegate::act::store::EventKind::Unknown).count() as u64;
    let granted = events.iter().filter(|(_, e)| e.kind == facegate::act::store::EventKind::Granted).count();
    assert!(granted >= 1 && unknown >= 1, "{events:?}");
    assert_eq!(counted, unknown, "one count per unknown decision, none for the {granted} granted: {hours:?}");
}

#[test]
fn switched_off_nothing_is_estimated_published_or_counted_and_the_models_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (models, spoilt) = models_with_broken_attributes(dir.path());
    assert!(spoilt >= 1, "the manifest lists no attribute model to spoil");
    let node = format!("attroff{}", fastrand::u32(..));
    let (config, db, log) = (dir.path().join("node.toml"), dir.path().join("node.db"), dir.path().join("node.log"));
    write_config(&config, &node, &db, &models, "enabled = false\n");
    let base = format!("facegate/{node}/");
    let sub = Subscriber::new(mqtt_broker::broker(), &[format!("{base}#"), format!("{node}ha/#")]);
    let mut guard = NodeGuard(Some(start_node(&config, &log)), log.clone());
    // Both kinds of decision, then two more heartbeats for anything that would follow them.
    let mut beats_after = 0;
    let seen = collect(&sub, &base, Duration::from_secs(120), |seen| {
        let both = !decisions(seen, "unknown").is_empty() && !decisions(seen, "granted").is_empty();
        if both && seen.last().is_some_and(|(t, _, _)| t == "heartbeat") {
            beats_after += 1;
        }
        beats_after >= 2
    });
    let log_text = stop(&mut guard);
    assert!(log_text.contains("analyze: off"), "{log_text}");
    for (topic, v, _) in &seen {
        assert!(!topic.contains("attributes"), "{topic}: {v}");
        assert!(v.get("attributes").is_none(), "{topic}: {v}");
    }
    let store = facegate::act::store::Store::open(&db).unwrap();
    assert!(store.attribute_hours(None, jiff::Timestamp::UNIX_EPOCH, 10).unwrap().is_empty());

    // The same node with analyze on refuses to start on those models, and says what to do.
    write_config(&config, &node, &db, &models, "enabled = true\n");
    let out = Command::new(env!("CARGO_BIN_EXE_facegate")).arg("--config").arg(&config).arg("run").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with corrupt attribute models: {stderr}");
    assert!(stderr.contains("[analyze] enabled = false") && stderr.contains("models/README.md"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
