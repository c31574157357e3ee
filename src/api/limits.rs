//! Per-actor rate limits for the requests that cost the node (snapshots, enrolment, reloads):
//! a flood from one client must not starve the door or fill the disk.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The least time between two requests of one command by one actor; commands without an entry
/// are not limited (besides their own checks).
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub every: HashMap<&'static str, Duration>,
    last: HashMap<(String, &'static str), Instant>,
}

impl Default for RateLimits {
    /// snapshot: one per 2 s; enroll: one per 2 s (each runs the detector on up to 20 photos);
    /// reload_config: one per 30 s (each loads every model and restarts the pipeline).
    fn default() -> Self {
        RateLimits::new(&[
            ("snapshot", Duration::from_secs(2)),
            ("enroll", Duration::from_secs(2)),
            ("reload_config", Duration::from_secs(30)),
        ])
    }
}

impl RateLimits {
    pub fn new(every: &[(&'static str, Duration)]) -> RateLimits {
        RateLimits { every: every.iter().cloned().collect(), last: HashMap::new() }
    }

    /// `None` when `actor` may run `command` at `now` (and it is counted); else how long to wait.
    pub fn check(&mut self, actor: &str, command: &'static str, now: Instant) -> Option<Duration> {
        let every = *self.every.get(command)?;
        let key = (actor.to_string(), command);
        if let Some(last) = self.last.get(&key) {
            let since = now.saturating_duration_since(*last);
            if since < every {
                return Some(every - since);
            }
        }
        // Bounded: entries older than the longest interval are of no use.
        if self.last.len() > 10_000 {
            let longest = self.every.values().max().copied().unwrap_or_default();
            self.last.retain(|_, t| now.saturating_duration_since(*t) < longest);
        }
        self.last.insert(key, now);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_actor_and_command() {
        let mut l = RateLimits::default();
        let t = Instant::now();
        assert_eq!(l.check("a", "snapshot", t), None);
        assert_eq!(l.check("a", "snapshot", t + Duration::from_millis(500)), Some(Duration::from_millis(1500)));
        assert_eq!(l.check("b", "snapshot", t), None, "another actor has its own budget");
        assert_eq!(l.check("a", "list_people", t), None, "unlimited command");
        assert_eq!(l.check("a", "snapshot", t + Duration::from_secs(2)), None);
    }
}
