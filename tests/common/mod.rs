//! Shared helpers for the integration tests. They use the real ONNX Runtime (fetched by
//! scripts/setup.sh) and the real models in models/; nothing is mocked.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use facegate::config::Config;
use facegate::engine::Engine;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// The face pipeline with default settings (plus `edit`), or a panic that says how to fix set-up.
pub fn engine_with(edit: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::default();
    edit(&mut config);
    match Engine::open(&config) {
        Ok(engine) => engine,
        Err(e) => panic!("cannot open the face pipeline ({e:#}); run ./scripts/setup.sh first"),
    }
}

pub fn engine() -> Engine {
    engine_with(|_| {})
}

/// Runs the facegate binary with arguments.
pub fn facegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facegate")).args(args).output().expect("the facegate binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the process ended by its own decision, not by a panic or a signal.
pub fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "facegate panicked:\n{err}");
    assert!(o.status.code().is_some(), "facegate was killed by a signal:\n{err}");
}

/// A granted decision row as the act stage writes it (for attendance and event-log tests).
pub fn granted_event(at: &str, id: i64, name: &str) -> facegate::act::store::AccessEvent {
    facegate::act::store::AccessEvent {
        at: at.parse().unwrap(),
        camera: "entrance".into(),
        door: Some("front".into()),
        person_id: Some(id),
        person_name: Some(name.into()),
        kind: facegate::act::store::EventKind::Granted,
        reason: None,
        similarity: Some(0.8),
        margin: Some(0.3),
        votes: 3,
        window: 5,
        bbox: None,
        liveness: None,
    }
}
