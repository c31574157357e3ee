//! `[service]`: how `facegate run` behaves as a whole.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Enroll from this folder (one sub-folder of photos per person) when the store has nobody
    /// yet: a first start that needs no separate enroll step.
    pub enroll_dir: Option<PathBuf>,
    /// Stop by itself once every camera has ended (finite replays): for demos and benchmarks.
    pub stop_when_cameras_end: bool,
    /// Seconds between status lines in the log (0 = never).
    pub status_interval_s: u64,
    /// Time zone for schedules and attendance days (IANA name such as `Europe/Berlin`);
    /// default: the system's.
    pub timezone: Option<String>,
    /// Seconds between checks of the store for people changed by another process (the CLI).
    pub gallery_refresh_s: f64,
    /// Decisions waiting for the store and the door before vision waits (bounded, never grows).
    pub decision_queue: usize,
    /// Vision threads, each with its own models, taking every n-th camera (a camera always goes
    /// to the same worker, so its tracks and votes stay in one place). 2 on a 2-core board with
    /// several cameras puts the second core to work; 1 (default) for a single camera.
    pub vision_workers: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            enroll_dir: None,
            stop_when_cameras_end: false,
            status_interval_s: 30,
            timezone: None,
            gallery_refresh_s: 2.0,
            decision_queue: 64,
            vision_workers: 1,
        }
    }
}

impl ServiceConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(tz) = &self.timezone {
            jiff::tz::TimeZone::get(tz).map_err(|e| {
                anyhow::anyhow!(
                    "service.timezone `{tz}` is not a known time zone ({e}); use an IANA name like Europe/Berlin"
                )
            })?;
        }
        if !(self.gallery_refresh_s > 0.0 && self.gallery_refresh_s <= 3600.0) {
            bail!("service.gallery_refresh_s must be between 0 and 3600 seconds (got {})", self.gallery_refresh_s);
        }
        if self.decision_queue == 0 || self.decision_queue > 10_000 {
            bail!("service.decision_queue must be between 1 and 10000 (got {})", self.decision_queue);
        }
        if !(1..=16).contains(&self.vision_workers) {
            bail!(
                "service.vision_workers must be between 1 and 16 (got {}); one per CPU core is the most that pays",
                self.vision_workers
            );
        }
        Ok(())
    }

    /// The site's time zone (`timezone`, else the system's): for schedules, the console and the
    /// CLI's attendance alike.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone> {
        crate::decide::policy::site_time_zone(self.timezone.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vision_workers_are_bounded_and_named_when_refused() {
        assert!(ServiceConfig::default().validate().is_ok());
        assert_eq!(ServiceConfig::default().vision_workers, 1);
        for bad in [0, 17] {
            let err = ServiceConfig { vision_workers: bad, ..ServiceConfig::default() }.validate().unwrap_err();
            assert!(err.to_string().contains("service.vision_workers"), "{err}");
        }
        assert!(ServiceConfig { vision_workers: 2, ..ServiceConfig::default() }.validate().is_ok());
    }
}
