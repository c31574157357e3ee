//! `facegate doctor`: checks that a node is ready, one line per check with a fix hint. The exit
//! code says whether the node is ready (0) or not (1).

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use crate::act::door::{Driver, open_output};
use crate::act::store::Store;
use crate::capture::camera::make_source;
use crate::capture::source::{Next, Shutdown, SourceContext};
use crate::config::Config;
use crate::decide::clock::{Clock, MonotonicClock};
use crate::vision::models::Manifest;
use crate::vision::runtime::Runtime;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Seconds to wait for each camera's first frame.
    #[arg(long, default_value_t = 10.0)]
    pub camera_timeout: f64,
}

/// Prints one check's result; returns whether it passed.
fn report(name: &str, result: Result<String>) -> bool {
    match result {
        Ok(detail) => {
            println!("ok    {name}: {detail}");
            true
        }
        Err(e) => {
            println!("FAIL  {name}: {e:#}");
            false
        }
    }
}

pub fn run(config: &Config, args: DoctorArgs) -> Result<i32> {
    // The config was loaded and validated before we got here: a bad one never reaches this line.
    let mut ok = report("config", Ok(format!("{} camera(s), {} door(s)", config.cameras.len(), config.doors.len())));
    ok &= report("clock", check_clock());
    ok &= report(
        "onnxruntime",
        Runtime::load(config.runtime.clone())
            .map(|r| format!("version {} from {}", r.version(), r.library().display())),
    );
    ok &= report("models", check_models(config));
    ok &= report("database", check_store(config));
    for camera in &config.cameras {
        ok &= report(&format!("camera {}", camera.name), check_camera(camera, args.camera_timeout));
    }
    for door in &config.doors {
        let result = match door.relay.driver {
            Driver::DryRun => Ok("dry run (logs only; no relay is switched)".to_string()),
            _ => open_output(&door.relay, &door.name).map(|_| "relay pin claimed and released".to_string()),
        };
        ok &= report(&format!("door {}", door.name), result);
    }
    if config.mqtt.enabled {
        ok &= report("mqtt broker", check_broker(&config.mqtt.host, config.mqtt.port));
    } else {
        println!("skip  mqtt: [mqtt] enabled = false");
    }
    println!("{}", if ok { "node ready" } else { "node NOT ready: fix the FAIL lines above" });
    Ok(if ok { 0 } else { 1 })
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

fn check_models(config: &Config) -> Result<String> {
    let manifest = Manifest::load(&config.models_dir())?;
    let mut checked = 0;
    for entry in manifest.models.iter().filter(|m| m.variant == config.models.variant) {
        manifest.read_verified(entry)?;
        checked += 1;
    }
    if checked == 0 {
        bail!("no {} models in {}", config.models.variant, manifest.dir.display());
    }
    Ok(format!("{checked} {} model file(s) match their SHA-256 in {}", config.models.variant, manifest.dir.display()))
}

fn check_store(config: &Config) -> Result<String> {
    let store = Store::open_config(&config.store)?;
    store.integrity_check()?;
    Ok(format!("{} passes the integrity check; {} people enrolled", store.path().display(), store.people()?.len()))
}

fn check_camera(camera: &crate::capture::CameraConfig, timeout_s: f64) -> Result<String> {
    let mut source = make_source(camera)?;
    let ctx = SourceContext {
        clock: Arc::new(MonotonicClock::default()) as Arc<dyn Clock>,
        shutdown: Arc::new(Shutdown::default()),
    };
    source.open(&ctx)?;
    let started = Instant::now();
    let timeout = Duration::from_secs_f64(timeout_s.max(0.1));
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

fn check_broker(host: &str, port: u16) -> Result<String> {
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("cannot resolve {host}: {e}; check mqtt.host"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host} has no address; check mqtt.host"))?;
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| anyhow::anyhow!("cannot reach {addr}: {e}; check mqtt.host/port and that the broker runs"))?;
    Ok(format!("{addr} accepts connections (credentials are checked when the service connects)"))
}
