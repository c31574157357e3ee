//! Home Assistant MQTT discovery: one device per node, retained configs under
//! `<discovery_prefix>/<component>/<node>/<object>/config`, all tied to the node's status topic
//! for availability. Keys follow Home Assistant's MQTT discovery documentation.

use serde_json::{Value, json};

use super::Topics;
use crate::act::events::topic_level;

/// What the device block and the per-door / per-camera entities describe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveryInfo {
    /// Device name shown in Home Assistant (e.g. `Front door`).
    pub name: String,
    pub model: String,
    pub sw_version: String,
    pub doors: Vec<String>,
    pub cameras: Vec<String>,
}

/// Retained discovery messages: (full topic, JSON payload).
pub fn configs(t: &Topics, discovery_prefix: &str, info: &DiscoveryInfo, open_button: bool) -> Vec<(String, Vec<u8>)> {
    let node = &t.node;
    let device = json!({
        "identifiers": [format!("facegate_{node}")],
        "name": info.name,
        "manufacturer": "facegate",
        "model": info.model,
        "sw_version": info.sw_version,
    });
    let entity = |component: &str, object: &str, name: &str, mut extra: Value| {
        let common = json!({
            "name": name,
            "unique_id": format!("facegate_{node}_{object}"),
            "availability_topic": t.status(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        });
        if let (Value::Object(e), Value::Object(c)) = (&mut extra, common) {
            e.extend(c);
        }
        (format!("{discovery_prefix}/{component}/{node}/{object}/config"), extra.to_string().into_bytes())
    };
    let decision = t.full("decision");
    let mut out = vec![
        entity(
            "event",
            "decision",
            "Decision",
            json!({ "state_topic": decision, "event_types": ["granted", "denied", "unknown", "alert"] }),
        ),
        entity(
            "sensor",
            "last_person",
            "Last person",
            json!({
                "state_topic": decision,
                "value_template": "{{ value_json.person.name if value_json.person else 'unknown' }}",
                "icon": "mdi:account",
            }),
        ),
        entity(
            "sensor",
            "similarity",
            "Similarity",
            json!({
                "state_topic": decision,
                "value_template": "{{ value_json.similarity if value_json.similarity is not none else 0 }}",
                "state_class": "measurement",
            }),
        ),
    ];
    for door in &info.doors {
        let d = topic_level(door);
        out.push(entity(
            "binary_sensor",
            &format!("door_{d}_contact"),
            &format!("Door {door}"),
            json!({
                "state_topic": t.full(&format!("door/{d}/contact")),
                "value_template": "{{ value_json.state }}",
                "payload_on": "open",
                "payload_off": "closed",
                "device_class": "door",
            }),
        ));
        if open_button {
            out.push(entity(
                "button",
                &format!("door_{d}_open"),
                &format!("Open {door}"),
                json!({
                    "command_topic": t.full("cmd/open_door"),
                    "command_template": format!(
                        "{{\"request_id\":\"ha-{{{{ now().timestamp() | int }}}}\",\"door\":\"{door}\",\
                         \"ts\":{{{{ now().timestamp() | int }}}},\"nonce\":\"ha-{{{{ range(100000000, 999999999) | random }}}}\"}}"
                    ),
                    "payload_press": "PRESS",
                    "icon": "mdi:door-open",
                }),
            ));
        }
    }
    for camera in &info.cameras {
        let c = topic_level(camera);
        out.push(entity(
            "binary_sensor",
            &format!("camera_{c}_face"),
            &format!("Face at {camera}"),
            json!({
                "state_topic": t.full(&format!("camera/{c}/face")),
                "value_template": "{{ 'ON' if value_json.present else 'OFF' }}",
                "device_class": "occupancy",
            }),
        ));
        out.push(entity(
            "sensor",
            &format!("camera_{c}_fps"),
            &format!("Camera {camera} fps"),
            json!({
                "state_topic": t.full(&format!("camera/{c}/state")),
                "value_template": "{{ value_json.fps if value_json.fps is not none else 0 }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
            }),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DiscoveryInfo {
        DiscoveryInfo {
            name: "Front door".into(),
            model: "facegate".into(),
            sw_version: "0.1.0".into(),
            doors: vec!["main".into()],
            cameras: vec!["front".into(), "lobby".into()],
        }
    }

    #[test]
    fn entities_carry_home_assistant_keys() {
        let t = Topics::new("facegate", "door1");
        let all = configs(&t, "homeassistant", &info(), false);
        let topics: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/event/door1/decision/config",
                "homeassistant/sensor/door1/last_person/config",
                "homeassistant/sensor/door1/similarity/config",
                "homeassistant/binary_sensor/door1/door_main_contact/config",
                "homeassistant/binary_sensor/door1/camera_front_face/config",
                "homeassistant/sensor/door1/camera_front_fps/config",
                "homeassistant/binary_sensor/door1/camera_lobby_face/config",
                "homeassistant/sensor/door1/camera_lobby_fps/config",
            ]
        );
        for (topic, payload) in &all {
            let v: Value = serde_json::from_slice(payload).unwrap();
            for key in ["name", "unique_id", "availability_topic", "payload_available", "payload_not_available"] {
                assert!(v.get(key).is_some(), "{topic} lacks {key}");
            }
            assert_eq!(v["availability_topic"], json!("facegate/door1/status"));
            assert_eq!(v["device"]["identifiers"], json!(["facegate_door1"]));
            for key in ["name", "model", "sw_version"] {
                assert!(v["device"].get(key).is_some(), "{topic} device lacks {key}");
            }
            assert!(v["state_topic"].as_str().unwrap().starts_with("facegate/door1/"));
        }
        let event: Value = serde_json::from_slice(&all[0].1).unwrap();
        assert_eq!(event["event_types"], json!(["granted", "denied", "unknown", "alert"]));
        assert_eq!(event["state_topic"], json!("facegate/door1/decision"));
        let contact: Value = serde_json::from_slice(&all[3].1).unwrap();
        assert_eq!((contact["payload_on"].clone(), contact["device_class"].clone()), (json!("open"), json!("door")));
    }

    #[test]
    fn open_button_only_when_asked() {
        let t = Topics::new("facegate", "door1");
        let all = configs(&t, "ha", &info(), true);
        let (topic, payload) = all.iter().find(|(t, _)| t.contains("/button/")).unwrap();
        assert_eq!(topic, "ha/button/door1/door_main_open/config");
        let v: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(v["command_topic"], json!("facegate/door1/cmd/open_door"));
        assert!(v["command_template"].as_str().unwrap().contains("\"door\":\"main\""));
        assert!(!configs(&t, "ha", &info(), false).iter().any(|(t, _)| t.contains("/button/")));
    }
}
