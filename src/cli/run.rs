//! `facegate run`: the appliance's main job (see `service`). Without `--config` it runs the
//! built-in demo, `board/demo.toml`: a replayed clip, people enrolled from the bundled photos, a
//! dry-run relay and a local database.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::config::Config;
use crate::service::{ConfigSource, RunOptions, RunSummary, run as run_service};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stop after this many seconds (default: run until SIGTERM/SIGINT, or the end of a
    /// finite replay when `service.stop_when_cameras_end` is set).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, args: RunArgs, reload: ConfigSource) -> Result<i32> {
    let duration = match args.duration {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--duration must be a positive number of seconds (got {s})"),
        None => None,
    };
    let summary = run_service(config, RunOptions { duration, reload: Some(reload) })?;
    if args.json {
        println!("{}", summary_json(&summary));
    } else {
        print_summary(&summary);
    }
    Ok(0)
}

fn summary_json(s: &RunSummary) -> serde_json::Value {
    let cameras: Vec<_> = s
        .cameras
        .iter()
        .map(|(name, c)| {
            serde_json::json!({
                "name": name, "frames": c.frames, "corrupt": c.corrupt, "dropped_stale": c.stale_drops,
                "reconnects": c.reconnects, "fps": c.fps,
            })
        })
        .collect();
    serde_json::json!({
        "seconds": s.seconds, "cameras": cameras, "frames_processed": s.frames, "faces": s.faces,
        "embeddings": s.embeddings, "granted": s.granted, "denied": s.denied, "unknown": s.unknown,
        "alerts": s.alerts, "pulses": s.pulses, "config_reloads": s.reloads,
        "inference_ms": { "count": s.inference_ms.count, "p50": s.inference_ms.p50, "p95": s.inference_ms.p95 },
        "latency_ms": { "count": s.latency_ms.count, "p50": s.latency_ms.p50, "p95": s.latency_ms.p95, "max": s.latency_ms.max },
    })
}

fn print_summary(s: &RunSummary) {
    println!("\nsummary after {:.1} s:", s.seconds);
    for (name, c) in &s.cameras {
        println!(
            "  camera {name}: {} frames captured, {} dropped as stale, {} corrupt, {} reconnects",
            c.frames, c.stale_drops, c.corrupt, c.reconnects
        );
    }
    println!(
        "  vision: {} frames processed, {} faces, {} embedded; {:.1} ms per frame (median), {:.1} ms p95",
        s.frames, s.faces, s.embeddings, s.inference_ms.p50, s.inference_ms.p95
    );
    println!(
        "  decisions: {} granted, {} denied, {} unknown, {} alerts; {} door pulses",
        s.granted, s.denied, s.unknown, s.alerts, s.pulses
    );
    if s.reloads > 0 {
        println!("  config reloaded {} time(s); timings below are from the last config", s.reloads);
    }
    if s.latency_ms.count > 0 {
        println!(
            "  latency from the deciding frame's capture to the relay: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} pulses)",
            s.latency_ms.p50, s.latency_ms.p95, s.latency_ms.max, s.latency_ms.count
        );
    }
}
