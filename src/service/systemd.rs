//! systemd integration: READY, STATUS, STOPPING and WATCHDOG messages over `$NOTIFY_SOCKET`.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op, so `facegate run` behaves the same
//! from a terminal. The watchdog is only fed by the caller when every stage of the service has
//! shown progress recently: a stalled decision loop is then restarted by systemd.

use std::time::Duration;

use sd_notify::NotifyState;

/// Talks to systemd's notify socket, if there is one.
#[derive(Debug, Clone, Copy)]
pub struct Systemd {
    watchdog: Option<Duration>,
}

impl Systemd {
    /// Reads `$NOTIFY_SOCKET` and `$WATCHDOG_USEC` (left in place for child processes).
    pub fn from_env() -> Systemd {
        let mut usec = 0u64;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec));
        Systemd { watchdog }
    }

    /// How often the watchdog must be fed: half of `WatchdogSec=`, as systemd recommends.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, state: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(false, state) {
            log::debug!("sd_notify failed: {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    pub fn watchdog(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Between this and the next `ready`, systemd shows the unit as reloading.
    pub fn reloading(&self) {
        self.send(&[NotifyState::Reloading, NotifyState::Status("reloading the config")]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;

    use super::*;

    /// One test owns the process environment (tests run in threads of one process).
    #[test]
    fn messages_reach_the_notify_socket_and_the_watchdog_interval_is_half() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        // SAFETY of set_var: no other test reads or writes these variables.
        unsafe {
            std::env::set_var("NOTIFY_SOCKET", &path);
            std::env::set_var("WATCHDOG_USEC", "10000000");
            std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        }
        let systemd = Systemd::from_env();
        assert_eq!(systemd.watchdog_interval(), Some(Duration::from_secs(5)));
        systemd.ready("watching 1 camera");
        systemd.watchdog();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        let first = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(first.contains("READY=1") && first.contains("STATUS=watching 1 camera"), "{first}");
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf[..n]).trim(), "WATCHDOG=1");
        unsafe {
            std::env::remove_var("NOTIFY_SOCKET");
            std::env::remove_var("WATCHDOG_USEC");
            std::env::remove_var("WATCHDOG_PID");
        }
        assert_eq!(Systemd::from_env().watchdog_interval(), None);
    }
}
