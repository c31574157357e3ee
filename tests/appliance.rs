//! `facegate run` end to end on the built-in demo (board/demo.toml): a replayed clip, the real
//! models and ONNX Runtime, a real SQLite store and the dry-run relay. Then `kill -9` during a
//! run must leave a database that passes its integrity check with every reported decision in it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use facegate::act::store::{EventKind, Store};

#[path = "common/listen.rs"]
#[allow(dead_code)]
mod listen;

fn facegate() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facegate"));
    cmd.env("RUST_LOG", "info");
    cmd
}

#[test]
fn the_demo_grants_the_live_person_and_refuses_her_face_on_a_tablet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let out = facegate().arg("--db").arg(&db).args(["run", "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The clip (clips/liveness.mjpeg): amy live at the door, then amy's face on a tablet.
    assert!(summary["granted"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["denied"].as_u64().unwrap() >= 1, "the tablet must be refused: {summary}");
    assert_eq!(summary["pulses"], summary["granted"], "every grant pulses the door: {summary}");
    assert_eq!(summary["cameras"][0]["frames"], 170, "{summary}");
    assert!(summary["latency_ms"]["count"].as_u64().unwrap() >= 1);

    let store = Store::open(&db).unwrap();
    store.integrity_check().unwrap();
    let events = store.events(None, None, 100).unwrap();
    let granted: Vec<_> = events
        .iter()
        .filter(|(_, e)| e.kind == EventKind::Granted)
        .filter_map(|(_, e)| e.person_name.clone())
        .collect();
    assert!(granted.contains(&"amy".to_string()), "{events:?}");
    assert!(
        events.iter().any(|(_, e)| e.kind == EventKind::Denied && e.reason.as_deref() == Some("spoof_suspected")),
        "{events:?}"
    );
    // Attendance reads the same rows.
    let out = facegate().arg("--db").arg(&db).args(["attendance", "--csv"]).output().unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.contains("amy"), "{csv}");
}

#[test]
fn two_vision_workers_each_decide_their_own_camera() {
    // `service.vision_workers = 2`: each worker has its own models and every second camera. The
    // same clip on two cameras must be decided on both (a camera's frames never reach the other
    // worker's tracks), and the tablet refused on both.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("two.db");
    let root = env!("CARGO_MANIFEST_DIR");
    let clip = format!("{root}/tests/fixtures/clips/liveness.mjpeg");
    let config = dir.path().join("two.toml");
    let camera = |name: &str, door: &str| {
        format!(
            "[[camera]]\nname = \"{name}\"\ndoor = \"{door}\"\n\
             source = {{ kind = \"replay\", path = \"{clip}\", fps = 15.0, looping = false }}\n\
             [[door]]\nname = \"{door}\"\nrelay = {{ driver = \"dry_run\" }}\npulse_ms = 200\n"
        )
    };
    let text = format!(
        "[service]\nenroll_dir = \"{root}/tests/fixtures/liveness/people\"\nstop_when_cameras_end = true\n\
         vision_workers = 2\n[store]\npath = \"{}\"\n[detector]\nmin_face = 40.0\n[liveness]\nmode = \"passive\"\n\
         [decide]\nwindow = 5\nneeded = 3\ncooldown_ms = 5000\n{}{}",
        db.display(),
        camera("a", "front"),
        camera("b", "back")
    );
    std::fs::write(&config, text).unwrap();
    let out = facegate().arg("--config").arg(&config).args(["run", "--json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "run failed: {stderr}");
    assert!(stderr.contains("vision: 2 workers"), "no second worker in the log: {stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["cameras"][0]["frames"], 170, "{summary}");
    assert_eq!(summary["cameras"][1]["frames"], 170, "{summary}");
    let events = Store::open(&db).unwrap().events(None, None, 100).unwrap();
    for camera in ["a", "b"] {
        let on: Vec<_> = events.iter().map(|(_, e)| e).filter(|e| e.camera == camera).collect();
        assert!(
            on.iter().any(|e| e.kind == EventKind::Denied && e.reason.as_deref() == Some("spoof_suspected")),
            "the tablet on camera {camera} must be refused: {events:?}"
        );
        for e in &on {
            assert!(e.kind != EventKind::Granted || e.person_name.as_deref() == Some("amy"), "{e:?}");
        }
    }
}

#[test]
fn kill_9_during_runs_leaves_an_intact_database_with_every_logged_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut logged = 0usize;
    for round in 0..4 {
        let mut child =
            facegate().arg("--db").arg(&db).arg("run").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let wait = Duration::from_millis(2_500 + rng.u64(0..6_000));
        let started = Instant::now();
        while started.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill(); // SIGKILL
        let output = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        // A decision is logged only after its row is committed.
        let this_round = log
            .lines()
            .filter(|l| ["granted:", "denied:", "unknown:"].iter().any(|k| l.contains(&format!("act_stage] {k}"))))
            .count();
        logged += this_round;
        let store = Store::open(&db).unwrap_or_else(|e| panic!("round {round}: {e:#}"));
        store.integrity_check().unwrap();
        let stored = store.events(None, None, 10_000).unwrap().len();
        assert!(stored >= logged, "round {round}: {logged} decisions logged but only {stored} stored");
    }
    assert!(logged > 0, "no decision happened before the kills: the test would prove nothing");
}

#[test]
fn a_person_limited_to_another_door_is_denied_at_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doors.db");
    let faces = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/liveness/people");
    let ok = |out: std::process::Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ok(facegate().arg("--db").arg(&db).args(["enroll", "--from", faces]).output().unwrap());
    ok(facegate().arg("--db").arg(&db).args(["people", "set-doors", "amy", "garage"]).output().unwrap());
    let out = facegate().arg("--db").arg(&db).args(["run", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["pulses"], 0, "{summary}");

    let store = Store::open(&db).unwrap();
    let events: Vec<_> = store.events(None, None, 100).unwrap().into_iter().map(|(_, e)| e).collect();
    assert!(
        events.iter().any(|e| e.person_name.as_deref() == Some("amy")
            && (e.kind, e.reason.as_deref()) == (EventKind::Denied, Some("door_not_allowed"))),
        "amy walks up live in the clip: {events:?}"
    );
    assert!(events.iter().all(|e| e.kind != EventKind::Granted), "{events:?}");
}

#[test]
fn every_board_profile_is_a_valid_config() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = facegate::config::Config::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(!config.cameras.is_empty(), "{}: no camera", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 7, "expected the demo, bench and five board profiles, found {checked}");
}

/// A site that keeps `[analyze]` off may ship without the attribute models: doctor passes and
/// says they are not needed. Turned on, their absence is a FAIL naming the fix.
#[test]
fn doctor_checks_the_attribute_models_only_where_analyze_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(repo.join("models")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("faceres") || name.starts_with("emotion")) {
            std::fs::copy(&path, models.join(&name)).unwrap();
        }
    }
    let demo = std::fs::read_to_string(repo.join("board/demo.toml")).unwrap();
    assert!(demo.contains("[analyze]\nenabled = false"), "the demo keeps [analyze] off");
    let on = dir.path().join("on.toml");
    std::fs::write(&on, demo.replace("[analyze]\nenabled = false", "[analyze]\nenabled = true")).unwrap();
    let doctor = |config: &std::path::Path| {
        facegate()
            .current_dir(repo.join("board"))
            .arg("--config")
            .arg(config)
            .arg("--models")
            .arg(&models)
            .arg("--db")
            .arg(dir.path().join("doctor.db"))
            .arg("doctor")
            .output()
            .unwrap()
    };
    let out = doctor(&repo.join("board/demo.toml"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("analyze: [analyze] enabled = false"), "{text}");
    let out = doctor(&on);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  models") && text.contains("FAIL  analyze") && text.contains("regenerate.sh"),
        "{text}"
    );
}

#[test]
fn doctor_passes_the_demo_and_names_each_failing_part() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doctor.db");
    let board = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("board");
    let out =
        facegate().arg("--config").arg(board.join("demo.toml")).arg("--db").arg(&db).arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for check in [
        "onnxruntime: version",
        "models:",
        "liveness: passive",
        "database:",
        "camera entrance: first frame 640x480",
        "node ready",
    ] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
    // A board profile on a machine without its camera and GPIO chip, and a broker that is down.
    let config = dir.path().join("broken.toml");
    let (_reserved, port) = listen::closed_port();
    let profile =
        std::fs::read_to_string(board.join("rpi4.toml")).unwrap().replace("/dev/video0", "/dev/video-missing");
    std::fs::write(&config, format!("{profile}\n[mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\n"))
        .unwrap();
    let out = facegate()
        .arg("--config")
        .arg(&config)
        .arg("--db")
        .arg(&db)
        .args(["doctor", "--camera-timeout", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for check in ["FAIL  camera front", "FAIL  door front", "gpiodetect", "FAIL  mqtt broker", "node NOT ready"] {
        assert!(text.contains(check), "missing `{check}` in:\n{text}");
    }
    assert!(text.contains("ok    database"), "{text}");
}
