//! One writer for the configs that the end-to-end tests start `facegate run` with: a camera
//! replaying a clip, one dry-run door, MQTT on the test broker, heartbeats every second. Each test
//! changes only the fields its scenario is about, so the differences are what a reader sees.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A node's config, rendered to TOML by [`NodeConfig::write`].
pub struct NodeConfig {
    pub node: String,
    pub broker: (String, u16),
    pub db: PathBuf,
    /// `[service] enroll_dir`: people enrolled from a folder at start.
    pub enroll_dir: Option<PathBuf>,
    pub clip: PathBuf,
    pub fps: f32,
    pub looping: bool,
    /// The camera's `location`.
    pub location: Option<String>,
    pub min_face: Option<f32>,
    /// `[decide] window = 5, needed = 3` plus this cooldown when set.
    pub cooldown_ms: Option<u64>,
    /// `[liveness] mode = "off"`. The walk-up clip pastes scanned photographs into a synthetic
    /// corridor, which the liveness check rightly refuses as prints (tests/liveness.rs covers
    /// liveness); tests about something else that need face pulses turn it off.
    pub liveness_off: bool,
    /// `[mqtt] discovery` (Home Assistant).
    pub discovery: bool,
    /// Further `key = value` lines of `[mqtt]`.
    pub mqtt_lines: Vec<String>,
    /// The first door's relay, as a TOML inline table.
    pub relay: String,
    pub pulse_ms: u32,
    /// Further `key = value` lines of the first door.
    pub door_lines: Vec<String>,
    /// Sections appended verbatim (more doors, `[models]`, ...).
    pub extra: String,
}

impl NodeConfig {
    /// The looping walk-up clip at 15 fps with the fixture faces enrolled, liveness off, a
    /// dry-run door pulsing 200 ms, no discovery.
    pub fn walkup(node: &str, broker: (String, u16), db: &Path) -> NodeConfig {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        NodeConfig {
            node: node.to_string(),
            broker,
            db: db.to_path_buf(),
            enroll_dir: Some(repo.join("tests/fixtures/faces")),
            clip: repo.join("tests/fixtures/clips/walkup.mjpeg"),
            fps: 15.0,
            looping: true,
            location: None,
            min_face: Some(40.0),
            cooldown_ms: None,
            liveness_off: true,
            discovery: false,
            mqtt_lines: Vec::new(),
            relay: r#"{ driver = "dry_run" }"#.to_string(),
            pulse_ms: 200,
            door_lines: Vec::new(),
            extra: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut t = String::from("[service]\nstatus_interval_s = 1\nstop_when_cameras_end = false\n");
        if let Some(dir) = &self.enroll_dir {
            let _ = writeln!(t, "enroll_dir = {}", quoted(dir));
        }
        let _ = writeln!(t, "[store]\npath = {}", quoted(&self.db));
        if let Some(min_face) = self.min_face {
            let _ = writeln!(t, "[detector]\nmin_face = {min_face:.1}");
        }
        t.push_str("[decide]\nwindow = 5\nneeded = 3\n");
        if let Some(ms) = self.cooldown_ms {
            let _ = writeln!(t, "cooldown_ms = {ms}");
        }
        if self.liveness_off {
            t.push_str("[liveness]\nmode = \"off\"\n");
        }
        let (host, port) = &self.broker;
        let _ = writeln!(
            t,
            "[mqtt]\nenabled = true\nhost = \"{host}\"\nport = {port}\nnode = \"{}\"\ndiscovery = {}",
            self.node, self.discovery
        );
        for line in &self.mqtt_lines {
            let _ = writeln!(t, "{line}");
        }
        t.push_str("[[camera]]\nname = \"entrance\"\ndoor = \"front\"\n");
        if let Some(location) = &self.location {
            let _ = writeln!(t, "location = \"{location}\"");
        }
        let _ = writeln!(
            t,
            "source = {{ kind = \"replay\", path = {}, fps = {:.1}, looping = {} }}",
            quoted(&self.clip),
            self.fps,
            self.looping
        );
        let _ = writeln!(t, "[[door]]\nname = \"front\"\nrelay = {}\npulse_ms = {}", self.relay, self.pulse_ms);
        for line in &self.door_lines {
            let _ = writeln!(t, "{line}");
        }
        t.push_str(&self.extra);
        t
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.render()).expect("the test's temporary folder is writable");
    }
}

/// A path as a TOML basic string (Debug quoting escapes what TOML needs escaped here).
fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// Starts `facegate run --json` on `config` with `RUST_LOG=info`; its log goes to `log`.
pub fn start_node(config: &Path, log: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(config)
        .args(["run", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the test's temporary folder is writable"))
        .spawn()
        .expect("the facegate binary starts")
}
