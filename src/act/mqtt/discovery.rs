//! Home Assistant MQTT discovery: retained configs under
//! `<discovery_prefix>/<component>/<node>/<object>/config`, all tied to the node's status topic
//! for availability. Keys follow Home Assistant's MQTT discovery documentation and were checked
//! against Home Assistant Core 2025.4 (`.ci/step-ha` runs one).
//!
//! Devices: the node itself (decisions, people, diagnostics), one per door (lock, door events,
//! contact) and one per camera (connectivity, frame rate, face present, snapshots), the last two
//! `via_device` the node and with `suggested_area` set from the camera's `location`.
//!
//! Measurements that have no value (the similarity of a stranger, the frame rate of a camera
//! that has not delivered yet) render `None`, which Home Assistant stores as "unknown" rather
//! than as a 0 in its long-term statistics.

use serde_json::{Value, json};

use super::Topics;
use crate::act::events::topic_level;

/// A door as Home Assistant sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DoorInfo {
    pub name: String,
    /// A door contact is configured (otherwise no contact sensor is announced).
    pub contact: bool,
    /// Where it is: the location of the first camera that opens it.
    pub location: Option<String>,
}

/// A camera as Home Assistant sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CameraInfo {
    pub name: String,
    pub location: String,
}

/// An enrolled person who gets a presence entity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonInfo {
    pub id: i64,
    pub name: String,
}

/// What the devices and entities describe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveryInfo {
    /// Device name shown in Home Assistant (e.g. `facegate door1`).
    pub name: String,
    pub model: String,
    pub sw_version: String,
    pub doors: Vec<DoorInfo>,
    pub cameras: Vec<CameraInfo>,
    /// People with a presence (`device_tracker`) entity.
    pub people: Vec<PersonInfo>,
    /// `mqtt.snapshots`: each camera gets an `image` entity showing its latest snapshot.
    pub snapshots: bool,
    /// `[analyze]` with hourly counts: each camera gets a sensor of the faces counted this hour,
    /// with the counts by age band, gender and expression as its attributes.
    pub attributes: bool,
    /// Shown as "Visit" on the device page (the web console, when there is one).
    pub configuration_url: Option<String>,
}

/// The `open_door` request a lock press sends: unsigned JSON with a fresh request id (so the
/// reply has its own topic), made of the time in microseconds and a random number (HA refuses
/// ranges over 100,000 items). Whether it opens is the node's `mqtt.remote_open` policy's call
/// (`broker_acl`: the broker's ACL decides who may publish). `LOCK` sends a request the node
/// refuses with a reply (the door locks itself when the pulse ends), so it never opens.
fn lock_command_template(door: &str) -> String {
    let id = "ha-{{ (now().timestamp() * 1000000) | int }}-{{ range(10000, 99999) | random }}";
    let door = serde_json::to_string(door).unwrap_or_else(|_| "\"\"".into());
    format!(
        "{{% if value == 'LOCK' %}}{{\"request_id\":\"{id}\",\"door\":{door},\"lock\":true}}\
         {{% else %}}{{\"request_id\":\"{id}\",\"door\":{door}}}{{% endif %}}"
    )
}

/// Retained discovery messages: (full topic, JSON payload).
pub fn configs(t: &Topics, discovery_prefix: &str, info: &DiscoveryInfo) -> Vec<(String, Vec<u8>)> {
    let node = &t.node;
    let node_id = format!("facegate_{node}");
    let with_url = |mut device: Value| {
        if let Some(url) = &info.configuration_url {
            device["configuration_url"] = json!(url);
        }
        device
    };
    let node_device = with_url(json!({
        "identifiers": [node_id],
        "name": info.name,
        "manufacturer": "facegate",
        "model": info.model,
        "sw_version": info.sw_version,
    }));
    let sub_device = |kind: &str, name: &str, label: String, area: Option<&str>| {
        let mut d = with_url(json!({
            "identifiers": [format!("{node_id}_{kind}_{}", topic_level(name))],
            "name": label,
            "manufacturer": "facegate",
            "model": info.model,
            "via_device": node_id,
        }));
        if let Some(area) = area {
            d["suggested_area"] = json!(area);
        }
        d
    };
    let entity = |component: &str, object: &str, name: &str, device: &Value, mut extra: Value| {
        let common = json!({
            "name": name,
            "unique_id": format!("{node_id}_{object}"),
            "object_id": format!("{node_id}_{object}"),
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
    let heartbeat = t.full("heartbeat");
    let dev = &node_device;
    let mut out = vec![
        entity(
            "event",
            "decision",
            "Decision",
            dev,
            json!({ "state_topic": decision, "event_types": ["granted", "denied", "unknown", "alert"], "icon": "mdi:face-recognition" }),
        ),
        entity(
            "sensor",
            "last_person",
            "Last person",
            dev,
            json!({
                "state_topic": decision,
                // A stranger is "Stranger", never HA's own "unknown".
                "value_template": "{{ value_json.person.name if value_json.person else 'Stranger' }}",
                "icon": "mdi:account",
            }),
        ),
        entity(
            "sensor",
            "similarity",
            "Similarity",
            dev,
            json!({
                "state_topic": decision,
                "value_template": "{{ value_json.similarity if value_json.similarity is not none else 'None' }}",
                "state_class": "measurement",
                "suggested_display_precision": 2,
                "icon": "mdi:percent",
            }),
        ),
    ];
    let diagnostic = |object: &str, name: &str, template: &str, extra: Value| {
        let mut v = json!({
            "state_topic": heartbeat,
            "value_template": template,
            "entity_category": "diagnostic",
        });
        if let (Value::Object(v), Value::Object(e)) = (&mut v, extra) {
            v.extend(e);
        }
        entity("sensor", object, name, dev, v)
    };
    out.push(diagnostic(
        "uptime",
        "Uptime",
        "{{ value_json.uptime_s }}",
        json!({ "device_class": "duration", "unit_of_measurement": "s", "icon": "mdi:timer-outline" }),
    ));
    out.push(diagnostic(
        "outbox_waiting",
        "Events waiting",
        "{{ value_json.counters.outbox_waiting if value_json.counters.outbox_waiting is defined else 'None' }}",
        json!({ "state_class": "measurement", "icon": "mdi:tray-full" }),
    ));
    out.push(diagnostic(
        "outbox_dropped",
        "Events dropped",
        "{{ value_json.counters.outbox_dropped if value_json.counters.outbox_dropped is defined else 'None' }}",
        json!({ "state_class": "total_increasing", "icon": "mdi:tray-remove" }),
    ));
    out.push(diagnostic(
        "store_errors",
        "Store errors",
        "{{ value_json.counters.store_errors if value_json.counters.store_errors is defined else 'None' }}",
        json!({ "state_class": "total_increasing", "icon": "mdi:database-alert" }),
    ));
    out.push(diagnostic(
        "model",
        "Model",
        "{{ value_json.model if value_json.model else 'None' }}",
        json!({ "icon": "mdi:brain" }),
    ));
    for p in &info.people {
        out.push(entity(
            "device_tracker",
            &format!("person_{}", p.id),
            &p.name,
            dev,
            json!({
                // Plain text: HA's MQTT tracker takes the raw payload as the location name.
                "state_topic": t.full(&format!("person/{}/location", p.id)),
                "json_attributes_topic": t.full(&format!("person/{}/last_seen", p.id)),
                "json_attributes_template":
                    "{{ {'camera': value_json.camera, 'similarity': value_json.similarity, 'seen': value_json.time} | tojson }}",
                "icon": "mdi:account-badge",
            }),
        ));
    }
    for door in &info.doors {
        let d = topic_level(&door.name);
        let device = sub_device("door", &door.name, format!("Door {}", door.name), door.location.as_deref());
        out.push(entity(
            "lock",
            &format!("door_{d}_lock"),
            "Lock",
            &device,
            json!({
                "state_topic": t.full(&format!("door/{d}/lock")),
                "value_template": "{{ value_json.state }}",
                "state_locked": "locked",
                "state_unlocked": "unlocked",
                "state_open": "open",
                "command_topic": t.full("cmd/open_door"),
                "command_template": lock_command_template(&door.name),
                "payload_lock": "LOCK",
                "payload_unlock": "UNLOCK",
                "payload_open": "OPEN",
            }),
        ));
        out.push(entity(
            "event",
            &format!("door_{d}_event"),
            "Door event",
            &device,
            json!({
                "state_topic": t.full(&format!("door/{d}/event")),
                "event_types": ["pulse", "forced", "held_open", "stalled"],
                "icon": "mdi:door-sliding-lock",
            }),
        ));
        if door.contact {
            out.push(entity(
                "binary_sensor",
                &format!("door_{d}_contact"),
                "Contact",
                &device,
                json!({
                    "state_topic": t.full(&format!("door/{d}/contact")),
                    "value_template": "{{ value_json.state }}",
                    "payload_on": "open",
                    "payload_off": "closed",
                    "device_class": "door",
                }),
            ));
        }
    }
    for camera in &info.cameras {
        let c = topic_level(&camera.name);
        let device = sub_device("camera", &camera.name, format!("Camera {}", camera.name), Some(&camera.location));
        let state = t.full(&format!("camera/{c}/state"));
        out.push(entity(
            "binary_sensor",
            &format!("camera_{c}_online"),
            "Connected",
            &device,
            json!({
                "state_topic": state,
                "value_template": "{{ 'ON' if value_json.kind == 'online' else 'OFF' }}",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
            }),
        ));
        out.push(entity(
            "sensor",
            &format!("camera_{c}_fps"),
            "Frame rate",
            &device,
            json!({
                "state_topic": state,
                "value_template": "{{ value_json.fps if value_json.fps is not none else 'None' }}",
                "unit_of_measurement": "fps",
                "state_class": "measurement",
                "suggested_display_precision": 1,
                "icon": "mdi:camera-timer",
            }),
        ));
        out.push(entity(
            "binary_sensor",
            &format!("camera_{c}_face"),
            "Face present",
            &device,
            json!({
                "state_topic": t.full(&format!("camera/{c}/face")),
                "value_template": "{{ 'ON' if value_json.present else 'OFF' }}",
                "device_class": "occupancy",
            }),
        ));
        if info.attributes {
            out.push(entity(
                "sensor",
                &format!("camera_{c}_attributes"),
                "Faces counted this hour",
                &device,
                json!({
                    "state_topic": t.full(&format!("camera/{c}/attributes")),
                    "value_template": "{{ value_json.faces }}",
                    "json_attributes_topic": t.full(&format!("camera/{c}/attributes")),
                    "json_attributes_template":
                        "{{ {'hour_start': value_json.hour_start, 'complete': value_json.complete, 'counted': value_json.counted, \
                         'age': value_json.age, 'gender': value_json.gender, 'emotion': value_json.emotion} | tojson }}",
                    "state_class": "measurement",
                    "icon": "mdi:account-group",
                }),
            ));
        }
        if info.snapshots {
            out.push(entity(
                "image",
                &format!("camera_{c}_snapshot"),
                "Snapshot",
                &device,
                json!({ "image_topic": t.full(&format!("snapshot/{c}/+")), "content_type": "image/jpeg" }),
            ));
        }
    }
    out
}

/// Whether `topic` is a discovery config topic of `node` (`<prefix>/<component>/<node>/<object>/config`).
pub fn is_config_topic(discovery_prefix: &str, node: &str, topic: &str) -> bool {
    let Some(rest) = topic.strip_prefix(discovery_prefix).and_then(|r| r.strip_prefix('/')) else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [_, n, _, "config"] if *n == node)
}

/// The subscription that brings back every retained config of this node.
pub fn config_filter(discovery_prefix: &str, node: &str) -> String {
    format!("{discovery_prefix}/+/{node}/+/config")
}

/// Whether a retained config seen on the broker is one this node published earlier and no
/// longer has, so it must be cleared (an empty retained payload). Only configs whose
/// `unique_id` is this node's are touched: another program's config on a colliding topic stays.
pub fn is_stale(current: &[(String, Vec<u8>)], node: &str, topic: &str, payload: &[u8]) -> bool {
    if payload.is_empty() || current.iter().any(|(t, _)| t == topic) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(payload) else { return false };
    let ours = format!("facegate_{node}_");
    v.get("unique_id").and_then(Value::as_str).is_some_and(|id| id.starts_with(&ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> DiscoveryInfo {
        DiscoveryInfo {
            name: "facegate door1".into(),
            model: "facegate".into(),
            sw_version: "0.1.0".into(),
            doors: vec![
                DoorInfo { name: "main".into(), contact: true, location: Some("Main entrance".into()) },
                DoorInfo { name: "side".into(), contact: false, location: None },
            ],
            cameras: vec![
                CameraInfo { name: "front".into(), location: "Main entrance".into() },
                CameraInfo { name: "lobby".into(), location: "Lobby".into() },
            ],
            people: vec![PersonInfo { id: 7, name: "Ada".into() }],
            snapshots: false,
            attributes: false,
            configuration_url: None,
        }
    }

    fn parsed(all: &[(String, Vec<u8>)]) -> Vec<(String, Value)> {
        all.iter().map(|(t, p)| (t.clone(), serde_json::from_slice(p).unwrap())).collect()
    }

    fn get<'a>(all: &'a [(String, Value)], topic: &str) -> &'a Value {
        &all.iter().find(|(t, _)| t == topic).unwrap_or_else(|| panic!("no {topic}")).1
    }

    #[test]
    fn every_entity_carries_home_assistant_keys_and_a_device() {
        let t = Topics::new("facegate", "door1");
        let all = parsed(&configs(&t, "homeassistant", &info()));
        let mut ids = std::collections::HashSet::new();
        for (topic, v) in &all {
            assert!(is_config_topic("homeassistant", "door1", topic), "{topic}");
            for key in ["name", "unique_id", "availability_topic", "payload_available", "payload_not_available"] {
                assert!(v.get(key).is_some(), "{topic} lacks {key}");
            }
            assert!(ids.insert(v["unique_id"].as_str().unwrap().to_string()), "duplicate unique_id in {topic}");
            assert_eq!(v["availability_topic"], json!("facegate/door1/status"));
            let device = &v["device"];
            assert!(device["identifiers"][0].as_str().unwrap().starts_with("facegate_door1"), "{topic}");
            assert!(device["name"].as_str().is_some_and(|n| !n.is_empty()), "{topic}");
            let state = v.get("state_topic").or(v.get("image_topic")).and_then(Value::as_str).unwrap();
            assert!(state.starts_with("facegate/door1/"), "{topic}: {state}");
            // No template may build a range HA refuses (more than 100,000 items).
            assert!(!v.to_string().contains("100000000"), "{topic}");
        }
        assert_eq!(
            get(&all, "homeassistant/event/door1/decision/config")["device"]["identifiers"],
            json!(["facegate_door1"])
        );
    }

    #[test]
    fn doors_get_a_lock_an_event_entity_and_a_contact_only_when_wired() {
        let t = Topics::new("facegate", "door1");
        let all = parsed(&configs(&t, "homeassistant", &info()));
        let lock = get(&all, "homeassistant/lock/door1/door_main_lock/config");
        assert_eq!(lock["command_topic"], json!("facegate/door1/cmd/open_door"));
        assert_eq!(lock["state_topic"], json!("facegate/door1/door/main/lock"));
        assert_eq!(
            (&lock["state_locked"], &lock["state_unlocked"], &lock["state_open"]),
            (&json!("locked"), &json!("unlocked"), &json!("open"))
        );
        assert_eq!(lock["payload_open"], json!("OPEN"), "without payload_open HA offers no open");
        assert_eq!(lock["device"]["suggested_area"], json!("Main entrance"));
        assert_eq!(lock["device"]["via_device"], json!("facegate_door1"));
        let template = lock["command_template"].as_str().unwrap();
        assert!(template.contains("\"door\":\"main\"") && template.contains("request_id"), "{template}");
        let events = get(&all, "homeassistant/event/door1/door_main_event/config");
        assert_eq!(events["event_types"], json!(["pulse", "forced", "held_open", "stalled"]));
        let contact = get(&all, "homeassistant/binary_sensor/door1/door_main_contact/config");
        assert_eq!((&contact["payload_on"], &contact["device_class"]), (&json!("open"), &json!("door")));
        assert!(all.iter().any(|(t, _)| t == "homeassistant/lock/door1/door_side_lock/config"));
        assert!(!all.iter().any(|(t, _)| t.contains("door_side_contact")), "side has no contact");
        assert!(!all.iter().any(|(t, _)| t.contains("/button/")), "the button is gone");
    }

    #[test]
    fn measurements_without_a_value_are_none_not_zero() {
        let t = Topics::new("facegate", "door1");
        let all = parsed(&configs(&t, "homeassistant", &info()));
        let similarity = get(&all, "homeassistant/sensor/door1/similarity/config");
        let fps = get(&all, "homeassistant/sensor/door1/camera_front_fps/config");
        for v in [similarity, fps] {
            let template = v["value_template"].as_str().unwrap();
            assert!(template.contains("'None'") && !template.contains("else 0"), "{template}");
            assert_eq!(v["state_class"], json!("measurement"));
        }
        assert_eq!(fps["unit_of_measurement"], json!("fps"));
        assert_eq!(fps["device"]["suggested_area"], json!("Main entrance"));
        let last = get(&all, "homeassistant/sensor/door1/last_person/config");
        assert!(last["value_template"].as_str().unwrap().contains("'Stranger'"));
        let online = get(&all, "homeassistant/binary_sensor/door1/camera_lobby_online/config");
        assert_eq!(
            (&online["device_class"], &online["entity_category"]),
            (&json!("connectivity"), &json!("diagnostic"))
        );
        for object in ["uptime", "outbox_waiting", "outbox_dropped", "store_errors", "model"] {
            let v = get(&all, &format!("homeassistant/sensor/door1/{object}/config"));
            assert_eq!(v["entity_category"], json!("diagnostic"), "{object}");
            assert_eq!(v["state_topic"], json!("facegate/door1/heartbeat"));
        }
        let uptime = get(&all, "homeassistant/sensor/door1/uptime/config");
        assert_eq!((&uptime["device_class"], &uptime["unit_of_measurement"]), (&json!("duration"), &json!("s")));
    }

    #[test]
    fn people_get_a_tracker_and_snapshots_an_image() {
        let t = Topics::new("facegate", "door1");
        let mut i = info();
        i.snapshots = true;
        i.configuration_url = Some("http://door1.local:8080/".into());
        let all = parsed(&configs(&t, "ha", &i));
        let ada = get(&all, "ha/device_tracker/door1/person_7/config");
        assert_eq!(ada["name"], json!("Ada"));
        assert_eq!(ada["state_topic"], json!("facegate/door1/person/7/location"));
        assert_eq!(ada["json_attributes_topic"], json!("facegate/door1/person/7/last_seen"));
        let image = get(&all, "ha/image/door1/camera_lobby_snapshot/config");
        assert_eq!(image["image_topic"], json!("facegate/door1/snapshot/lobby/+"));
        assert_eq!(image["content_type"], json!("image/jpeg"));
        for (topic, v) in &all {
            assert_eq!(v["device"]["configuration_url"], json!("http://door1.local:8080/"), "{topic}");
        }
        let without = parsed(&configs(&t, "ha", &info()));
        assert!(!without.iter().any(|(t, _)| t.contains("/image/")));
        assert!(without.iter().all(|(_, v)| v["device"].get("configuration_url").is_none()));
    }

    #[test]
    fn hourly_attribute_counts_get_a_sensor_per_camera_only_when_on() {
        let t = Topics::new("facegate", "door1");
        let without = parsed(&configs(&t, "ha", &info()));
        assert!(!without.iter().any(|(t, _)| t.contains("attributes")), "off: no entity");
        let mut i = info();
        i.attributes = true;
        let all = parsed(&configs(&t, "ha", &i));
        let front = get(&all, "ha/sensor/door1/camera_front_attributes/config");
        assert_eq!(front["state_topic"], json!("facegate/door1/camera/front/attributes"));
        assert_eq!(front["json_attributes_topic"], front["state_topic"]);
        assert_eq!(front["value_template"], json!("{{ value_json.faces }}"));
        assert_eq!(front["device"]["suggested_area"], json!("Main entrance"));
        let template = front["json_attributes_template"].as_str().unwrap();
        for key in ["age", "gender", "emotion", "hour_start", "complete"] {
            assert!(template.contains(&format!("value_json.{key}")), "{template}");
        }
        assert!(all.iter().any(|(t, _)| t == "ha/sensor/door1/camera_lobby_attributes/config"));
        // Turned off again, the retained config is ours and no longer published: it is cleared.
        let (topic, payload) =
            configs(&t, "ha", &i).into_iter().find(|(t, _)| t.contains("camera_front_attributes")).unwrap();
        assert!(is_stale(&configs(&t, "ha", &info()), "door1", &topic, &payload));
    }

    #[test]
    fn stale_configs_are_ours_and_no_longer_published() {
        let t = Topics::new("facegate", "door1");
        let current = configs(&t, "homeassistant", &info());
        let old_button = json!({"unique_id": "facegate_door1_door_main_open", "name": "Open"}).to_string();
        let topic = "homeassistant/button/door1/door_main_open/config";
        assert!(is_config_topic("homeassistant", "door1", topic));
        assert!(is_stale(&current, "door1", topic, old_button.as_bytes()));
        assert!(!is_stale(&current, "door1", topic, b""), "already cleared");
        let foreign = json!({"unique_id": "zigbee_thing"}).to_string();
        assert!(!is_stale(&current, "door1", topic, foreign.as_bytes()), "not ours");
        assert!(!is_stale(&current, "door1", topic, b"not json"));
        let (live, payload) = &current[0];
        assert!(!is_stale(&current, "door1", live, payload), "still published");
        assert!(!is_config_topic("homeassistant", "door1", "homeassistant/button/door2/x/config"));
        assert!(!is_config_topic("homeassistant", "door1", "homeassistant/status"));
        assert_eq!(config_filter("homeassistant", "door1"), "homeassistant/+/door1/+/config");
    }
}
