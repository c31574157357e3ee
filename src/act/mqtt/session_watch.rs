//! Spots a client id shared by two nodes: an MQTT broker drops the older of two connections with
//! one client id, so both nodes reconnect and drop each other in turn, and every Home Assistant
//! entity flaps between available and unavailable. The sign is a run of sessions that the
//! broker closes within seconds of accepting them.

use std::time::{Duration, Instant};

/// A session closed sooner than this after its CONNACK counts as short.
const SHORT: Duration = Duration::from_secs(10);
/// This many short sessions in a row raise the warning.
const RUN: u32 = 3;

#[derive(Debug, Default)]
pub struct SessionWatch {
    connected_at: Option<Instant>,
    short_in_a_row: u32,
}

impl SessionWatch {
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// A session ended; returns the warning (with the fix) once a run of short sessions says
    /// another client uses the same id. Failed connection attempts (no CONNACK) do not count.
    pub fn closed(&mut self, now: Instant, client_id: &str) -> Option<String> {
        let since = self.connected_at.take()?;
        if now.saturating_duration_since(since) >= SHORT {
            self.short_in_a_row = 0;
            return None;
        }
        self.short_in_a_row += 1;
        (self.short_in_a_row >= RUN).then(|| {
            format!(
                "the broker closed {} connections in a row within {} s of accepting them: another client \
                 probably uses the same client id `{client_id}` (two nodes with the same mqtt.node or \
                 mqtt.client_id?). Give every node its own mqtt.node (or mqtt.client_id)",
                self.short_in_a_row,
                SHORT.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_short_sessions_names_the_client_id() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = SessionWatch::default();
        assert_eq!(w.closed(t0, "facegate-door1"), None, "never connected: a failed attempt");
        for i in 0..2 {
            w.connected(t0 + s(i * 2));
            assert_eq!(w.closed(t0 + s(i * 2 + 1), "facegate-door1"), None);
        }
        w.connected(t0 + s(5));
        let warning = w.closed(t0 + s(6), "facegate-door1").unwrap();
        assert!(warning.contains("`facegate-door1`") && warning.contains("mqtt.node"), "{warning}");
        // A long session in between resets the run.
        let mut w = SessionWatch::default();
        for (up, down) in [(0, 1), (2, 3), (4, 60), (61, 62), (63, 64)] {
            w.connected(t0 + s(up));
            assert_eq!(w.closed(t0 + s(down), "x"), None);
        }
    }
}
