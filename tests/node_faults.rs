//! Issue 9's fault rows against a real `facegate run` child, the real SQLite store and a real
//! broker (in-process rumqttd, or FACEGATE_TEST_BROKER): a database the service user cannot
//! write (doctor fails and `run` refuses to start, naming the fix), a disk that fills up while
//! the node runs (heartbeats and `store_errors` keep coming, no door opens for an unrecorded
//! decision) and a model file corrupted while the node runs, then `reload_config` (the node
//! stays up on its old config, replies with an error naming the fix, and the door still opens).
//!
//! Nothing is mocked: the unwritable store is a root-owned file opened by an unprivileged uid
//! (`setpriv`, as root; a read-only file otherwise), the full disk is a small tmpfs mounted in
//! a private mount namespace of the child (`unshare -m`; `-r` as well when not root) and filled
//! with `dd`, so SQLite really answers SQLITE_FULL.

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod mqtt;
#[path = "common/node_config.rs"]
mod node_config;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use facegate::act::store::Store;
use rumqttc::QoS;
use serde_json::{Value, json};

use node_config::NodeConfig;

const SECRET: &[u8] = b"faults-test-secret-0123456789abc";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A node config: the looping walk-up clip at `fps`, a dry-run door, heartbeats every second.
fn write_config(path: &Path, node: &str, db: &Path, models: Option<&Path>, enroll: bool, fps: f32) {
    let mut config = NodeConfig::walkup(node, mqtt::broker(), db);
    config.location = Some("Lobby".to_string());
    config.cooldown_ms = Some(2000);
    config.fps = fps;
    if !enroll {
        config.enroll_dir = None;
    }
    if let Some(dir) = models {
        config.extra = format!("[models]\ndir = \"{}\"\n", dir.display());
    }
    config.write(path);
}

/// A subscriber on one node's topics.
struct Watch {
    sub: mqtt::Subscriber,
    base: String,
}

impl Watch {
    fn new(node: &str) -> Watch {
        let base = format!("facegate/{node}/");
        Watch { sub: mqtt::Subscriber::new(mqtt::broker(), &[format!("{base}#")]), base }
    }

    /// The next message (topic relative to the node) that `pick` accepts, within `within`.
    fn wait(&self, what: &str, within: Duration, mut pick: impl FnMut(&str, &Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        let rx: &Receiver<mqtt::Message> = &self.sub.rx;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((topic, payload, _)) = rx.recv_timeout(left) else { break };
            let Some(rel) = topic.strip_prefix(&self.base) else { continue };
            let v = serde_json::from_slice(&payload).unwrap_or(Value::Null);
            if pick(rel, &v) {
                return v;
            }
        }
        panic!("no {what} within {within:?}");
    }

    fn heartbeat(&self, what: &str, mut pick: impl FnMut(u64) -> bool) -> u64 {
        let beat = self.wait(what, Duration::from_secs(60), |t, v| {
            t == "heartbeat" && v["counters"]["store_errors"].as_u64().is_some_and(&mut pick)
        });
        beat["counters"]["store_errors"].as_u64().unwrap_or_default()
    }

    /// Sends `name` signed with key `admin` and returns the reply.
    fn command(&self, node: &str, name: &str, request_id: &str) -> Value {
        let mut args = json!({ "request_id": request_id }).as_object().unwrap().clone();
        let now = jiff::Timestamp::now().as_second();
        facegate::access::sign_payload(node, name, &mut args, "admin", SECRET, now, &format!("nonce-{request_id}"));
        let topic = format!("{}cmd/{name}", self.base);
        self.sub.client.publish(topic, QoS::AtLeastOnce, false, Value::Object(args).to_string()).unwrap();
        let reply = format!("reply/{request_id}");
        self.wait(&format!("reply to {name}"), Duration::from_secs(60), |t, _| t == reply)
    }
}

fn facegate_bin() -> &'static str {
    env!("CARGO_BIN_EXE_facegate")
}

/// A database the service user may read but not write: root-owned and opened as `nobody` when
/// this test runs as root (file modes do not stop root), else a read-only file.
#[test]
fn a_database_the_service_user_cannot_write_fails_doctor_and_run_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    Store::open(&db).unwrap().add_person("Ann", facegate::decide::policy::Role::Employee, &Default::default()).unwrap();
    let config = dir.path().join("node.toml");
    let node = format!("ro{}", fastrand::u32(..));
    write_config(&config, &node, &db, None, false, 5.0);
    // Readable by everyone (as a packaged database that lost its owner would be), writable by none
    // but root.
    for (path, mode) in [(dir.path(), 0o755), (db.as_path(), 0o644), (config.as_path(), 0o644)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let as_service_user = |args: &[&str]| {
        let mut c = if is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", facegate_bin()]);
            c
        } else {
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
            Command::new(facegate_bin())
        };
        c.arg("--config").arg(&config).args(args).stdin(Stdio::null());
        c.output().expect("setpriv (util-linux) runs")
    };
    let before = std::fs::read(&db).unwrap();

    let out = as_service_user(&["doctor"]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "doctor passed on an unwritable database:\n{text}");
    assert!(!text.contains("node ready"), "{text}");
    let line = text.lines().find(|l| l.contains("database")).unwrap_or_default();
    assert!(line.contains("cannot be written by this user") && line.contains("chown"), "doctor's line: {text}");

    let out = as_service_user(&["run", "--duration", "60"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "run started on an unwritable database:\n{text}");
    assert!(text.contains("cannot be written by this user") && text.contains("chown"), "{text}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was written");
}

/// The disk fills up under a running node: every write fails with SQLITE_FULL, and the node
/// keeps sending heartbeats whose `store_errors` grows, so the broker learns of it.
#[test]
fn a_full_disk_keeps_heartbeats_and_store_errors_coming() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("full{}", fastrand::u32(..));
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let db = disk.join("node.db");
    let config = dir.path().join("node.toml");
    write_config(&config, &node, &db, None, false, 3.0);
    let fifo = dir.path().join("fill");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success(), "mkfifo");
    let log = dir.path().join("node.log");
    // In the child's own mount namespace: a 4 MiB tmpfs holds the database; a filler waits for
    // the test's word, fills the tmpfs with dd and says so on stdout; the node is exec'd so its
    // pid is the child's.
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=4m facegate-test "{disk}"
( timeout 300 sh -c 'read go < "{fifo}"' && {{ dd if=/dev/zero of="{disk}/filler" bs=4k 2>/dev/null || true; echo filled; }} ) &
exec "{bin}" --config "{config}" run
"#,
        disk = disk.display(),
        fifo = fifo.display(),
        bin = facegate_bin(),
        config = config.display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.arg(if is_root() { "-m" } else { "-rm" }).args(["sh", "-c", &script]);
    cmd.env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap());
    let watch = Watch::new(&node);
    let mut child = mqtt::NodeGuard(Some(cmd.spawn().expect("unshare (util-linux) runs")), log.clone());

    watch.heartbeat("a first heartbeat with no store error", |e| e == 0);
    std::fs::OpenOptions::new().write(true).open(&fifo).unwrap().write_all(b"go\n").unwrap();
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "filled", "the filler did not run: {}", std::fs::read_to_string(&log).unwrap());

    let first = watch.heartbeat("a heartbeat counting store errors", |e| e > 0);
    watch.heartbeat("a later heartbeat, with more store errors", |e| e > first);
    assert!(child.0.as_mut().unwrap().try_wait().unwrap().is_none(), "the node is still running");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("database or disk is full"), "a real SQLITE_FULL:\n{text}");
}

/// A model file corrupted under a running node, then `reload_config`: refused with an error that
/// names the file and the fix, and the node keeps opening the door on the models it loaded.
#[test]
fn a_model_corrupted_while_running_then_reload_keeps_the_old_config_and_the_door_working() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(repo().join("models")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, models.join(path.file_name().unwrap())).unwrap();
    }
    let node = format!("model{}", fastrand::u32(..));
    let db = dir.path().join("node.db");
    Store::open(&db).unwrap().add_key("admin", SECRET, "admin").unwrap();
    let config = dir.path().join("node.toml");
    write_config(&config, &node, &db, Some(&models), true, 15.0);
    let log = dir.path().join("node.log");
    let watch = Watch::new(&node);
    let mut cmd = Command::new(facegate_bin());
    cmd.env("RUST_LOG", "info").arg("--config").arg(&config).arg("run");
    cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut child = mqtt::NodeGuard(Some(cmd.spawn().unwrap()), log.clone());
    let pulse = |what: &str| {
        watch.wait(what, Duration::from_secs(90), |t, v| t == "door/front/event" && v["by"] == json!("face"));
    };
    pulse("a door pulse for an enrolled face");

    // Corrupt the embedder the node is running with (half of it overwritten).
    let embedder: PathBuf = models.join("mobilefacenet.onnx");
    let len = std::fs::metadata(&embedder).unwrap().len() as usize;
    std::fs::write(&embedder, vec![0u8; len / 2]).unwrap();
    let reply = watch.command(&node, "reload_config", "reload-corrupt");
    assert_eq!(reply["ok"], json!(false), "{reply}");
    let error = reply["error"].as_str().unwrap_or_default();
    assert!(error.contains("nothing changed") && error.contains("mobilefacenet.onnx"), "{reply}");
    assert!(error.contains("corrupted") && error.contains("regenerate.sh"), "the error names the fix: {reply}");

    pulse("a door pulse after the refused reload");
    assert!(child.0.as_mut().unwrap().try_wait().unwrap().is_none(), "the node is still running");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("restarting the pipeline"), "the pipeline was not restarted:\n{text}");
}
