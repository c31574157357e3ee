//! `facegate doctor`: checks that a node is ready, one line per check with a fix hint. The exit
//! code says whether the node is ready (0) or not (1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::act::door::{Driver, open_output};
use crate::act::store::Store;
use crate::capture::camera::make_source;
use crate::capture::source::{Next, Shutdown, SourceContext};
use crate::config::Config;
use crate::decide::clock::{Clock, MonotonicClock};
use crate::vision::models::{Manifest, ModelEntry, Role};
use crate::vision::runtime::Runtime;

mod broker;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Seconds to wait for each camera's first frame.
    #[arg(long, default_value_t = 10.0)]
    pub camera_timeout: f64,
    /// Seconds to wait for the MQTT broker's answer (CONNACK).
    #[arg(long, default_value_t = 5.0)]
    pub mqtt_timeout: f64,
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    /// The node works, but something is weaker than it should be.
    Warn,
    Fail,
    /// Not checked (the feature is off, or the part is in use by the running node).
    Skip,
}

/// One line of `facegate doctor` (and of the console's health page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub level: Level,
    pub detail: String,
}

impl Check {
    fn of(name: &str, result: Result<String>) -> Check {
        match result {
            Ok(detail) => Check { name: name.into(), level: Level::Ok, detail },
            Err(e) => Check { name: name.into(), level: Level::Fail, detail: format!("{e:#}") },
        }
    }

    fn other(name: &str, level: Level, detail: &str) -> Check {
        Check { name: name.into(), level, detail: detail.into() }
    }
}

/// Every check of `facegate doctor`, in order. `in_service`: asked by the running node (the
/// console's health page), whose cameras and relay pins are in use by the service: probing them
/// again would fail or disturb them, so they are skipped (the page shows their live state).
pub fn checks(config: &Config, args: &DoctorArgs, in_service: bool) -> Vec<Check> {
    // The config was loaded and validated before we got here: a bad one never reaches this line.
    let mut out =
        vec![Check::of("config", Ok(format!("{} camera(s), {} door(s)", config.cameras.len(), config.doors.len())))];
    out.push(Check::of("clock", check_clock()));
    out.push(Check::of("onnxruntime", Runtime::load(config.runtime.clone()).map(|r| describe_runtime(&r))));
    out.push(Check::of("models", check_models(config)));
    out.push(Check::of("matching", check_matching(config)));
    out.push(Check::of("liveness", check_liveness(config)));
    if config.analyze.enabled {
        out.push(Check::of("analyze", check_analyze(config)));
    } else {
        out.push(Check::other("analyze", Level::Skip, "[analyze] enabled = false (attribute models not needed)"));
    }
    out.push(Check::of("database", check_store(config)));
    if let Some(w) = store_permissions(config) {
        out.push(Check::other("database", Level::Warn, &w));
    }
    for camera in &config.cameras {
        let name = format!("camera {}", camera.name);
        out.push(if in_service {
            Check::other(&name, Level::Skip, "in use by the service: its state and frame rate are shown above")
        } else {
            Check::of(&name, check_camera(camera, args.camera_timeout))
        });
    }
    for door in &config.doors {
        let name = format!("door {}", door.name);
        let result = match door.relay.driver {
            Driver::DryRun => Ok("dry run (logs only; no relay is switched)".to_string()),
            _ if in_service => {
                out.push(Check::other(
                    &name,
                    Level::Skip,
                    "relay pin held by the service: use \"Test door\" to pulse it",
                ));
                continue;
            }
            _ => open_output(&door.relay, &door.name).map(|_| "relay pin claimed and released".to_string()),
        };
        out.push(Check::of(&name, result));
    }
    if config.mqtt.enabled {
        let mut reached = Check::of("mqtt broker", broker::check(&config.mqtt, seconds(args.mqtt_timeout)));
        // A broker that takes anyone works, but it is not "ok": anyone on the network can
        // publish commands to it.
        if reached.level == Level::Ok && config.mqtt.username.is_none() {
            reached.level = Level::Warn;
        }
        out.push(reached);
        for w in broker::warnings(&config.mqtt) {
            out.push(Check::other("mqtt security", Level::Warn, &w));
        }
    } else {
        out.push(Check::other("mqtt", Level::Skip, "[mqtt] enabled = false"));
    }
    out
}

/// Whether the node is ready: no check failed.
pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.level != Level::Fail)
}

pub fn run(config: &Config, args: DoctorArgs) -> Result<i32> {
    let checks = checks(config, &args, false);
    for c in &checks {
        let tag = match c.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
            Level::Skip => "skip",
        };
        println!("{tag}  {}: {}", c.name, c.detail);
    }
    let ok = ready(&checks);
    println!("{}", if ok { "node ready" } else { "node NOT ready: fix the FAIL lines above" });
    Ok(if ok { 0 } else { 1 })
}

/// Version, library and the execution provider in use, with the reason when it is not the
/// configured one (a CUDA request served by the CPU still works, only slower).
fn describe_runtime(runtime: &Runtime) -> String {
    let mut line = format!(
        "version {} from {}; execution provider {}",
        runtime.version(),
        runtime.library().display(),
        runtime.execution_provider()
    );
    if let Some(why) = runtime.fallback_reason() {
        line.push_str(&format!(
            " (runtime.execution_provider = \"{}\" but {why})",
            runtime.options().execution_provider
        ));
    }
    line
}

fn check_clock() -> Result<String> {
    let now = jiff::Timestamp::now();
    if now.as_second() < 1_735_689_600 {
        bail!(
            "the system clock says {now}, before 2025: attendance times would be wrong; enable NTP (timedatectl set-ntp true) or set a real-time clock"
        );
    }
    Ok(format!("{now}"))
}

/// Every model file the node may load matches its checksum. Face-attribute models count only
/// where `[analyze]` is on: a site that keeps them off may leave those files out.
fn check_models(config: &Config) -> Result<String> {
    use crate::vision::attributes::is_attribute_model;
    let manifest = Manifest::load(&config.models_dir())?;
    let mut checked = 0;
    let needed = |m: &&ModelEntry| config.analyze.enabled || !is_attribute_model(m);
    for entry in manifest.models.iter().filter(|m| m.variant == config.models.variant).filter(needed) {
        manifest.read_verified(entry)?;
        checked += 1;
    }
    if checked == 0 {
        bail!("no {} models in {}", config.models.variant, manifest.dir.display());
    }
    Ok(format!("{checked} {} model file(s) match their SHA-256 in {}", config.models.variant, manifest.dir.display()))
}

/// The face-attribute models load (checksums, ONNX Runtime) where `[analyze]` is on.
fn check_analyze(config: &Config) -> Result<String> {
    use crate::vision::attributes::Attributes;
    let runtime = Runtime::load(config.runtime.clone())?;
    let manifest = Manifest::load(&config.models_dir())?;
    let attributes = Attributes::load(&runtime, &manifest)?;
    let ids: Vec<&str> = attributes.entries().iter().map(|e| e.id.as_str()).collect();
    Ok(format!("on: {} loaded", ids.join(" + ")))
}

/// The threshold and margin that decide who is "someone enrolled": refused below the embedder's floor.
fn check_matching(config: &Config) -> Result<String> {
    let manifest = Manifest::load(&config.models_dir())?;
    let embedder = manifest.entry(Role::Embedder, config.models.variant)?;
    let policy = crate::engine::match_policy(&config.matching, embedder)?;
    Ok(format!(
        "threshold {} (floor {}), margin {}",
        policy.threshold,
        embedder.min_threshold.unwrap_or(policy.threshold),
        policy.margin
    ))
}

/// The presentation-attack models load (checksums, ONNX Runtime) when the check is in force.
fn check_liveness(config: &Config) -> Result<String> {
    use crate::vision::liveness::{Liveness, LivenessMode};
    match config.liveness.effective_mode(!config.doors.is_empty()) {
        LivenessMode::Off if config.doors.is_empty() => Ok("off (no door configured)".into()),
        LivenessMode::Off => {
            Ok("off: a photo or a screen of an enrolled person opens the door; set `[liveness] mode = \"passive\"` \
             to refuse them"
                .into())
        }
        LivenessMode::Passive => {
            let runtime = Runtime::load(config.runtime.clone())?;
            let manifest = Manifest::load(&config.models_dir())?;
            let liveness = Liveness::load(&runtime, &manifest, config.liveness.threshold)?;
            let ids: Vec<&str> = liveness.entries().iter().map(|e| e.id.as_str()).collect();
            Ok(format!("passive: {} loaded, threshold {:.3}", ids.join(" + "), liveness.threshold()))
        }
    }
}

fn check_store(config: &Config) -> Result<String> {
    let mut store = Store::open_config(&config.store)?;
    store.integrity_check()?;
    // Opening can succeed on a file this user may only read; the service then fails at its
    // first decision and never opens the door. A real write, rolled back, tells.
    store.check_writable()?;
    Ok(format!("{} passes the integrity check; {} people enrolled", store.path().display(), store.people()?.len()))
}

/// A database others can read leaks client keys and face templates.
fn store_permissions(config: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config.store.path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} has mode {:o}: other users can read its client keys and face templates; chmod 600 it",
            config.store.path.display(),
            mode & 0o777
        )
    })
}

fn check_camera(camera: &crate::capture::CameraConfig, timeout_s: f64) -> Result<String> {
    let mut source = make_source(camera)?;
    let ctx = SourceContext {
        clock: Arc::new(MonotonicClock::default()) as Arc<dyn Clock>,
        shutdown: Arc::new(Shutdown::default()),
    };
    source.open(&ctx)?;
    let started = Instant::now();
    let timeout = seconds(timeout_s);
    while started.elapsed() < timeout {
        match source.next_frame(&ctx)? {
            Next::Frame { image, .. } => {
                return Ok(format!(
                    "first frame {}x{} after {} ms",
                    image.width(),
                    image.height(),
                    started.elapsed().as_millis()
                ));
            }
            Next::End => bail!("the source ended before delivering a frame"),
            Next::Corrupt(why) => log::warn!("camera {}: corrupt frame: {why}", camera.name),
            Next::Idle => {}
        }
    }
    bail!("no frame within {timeout_s} s: check the camera's power, cable or network, and its settings")
}

/// A user-given number of seconds as a duration, at least 0.1 s (NaN and negatives included).
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.1)).unwrap_or(Duration::from_secs(3600))
}
