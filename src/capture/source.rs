//! The one interface every camera kind implements, so reconnecting, backoff, counting and
//! shutdown are written once (in [`super::camera`]) for replay, V4L2 and RTSP alike.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use image::RgbImage;

use crate::decide::clock::Clock;

/// What a source produced when asked for its next frame.
#[derive(Debug)]
pub enum Next {
    /// A decoded frame and `clock.now()` when it was captured or received (before decoding).
    Frame { image: RgbImage, captured: Duration },
    /// A frame arrived but could not be decoded; it is skipped and counted. The text says why.
    Corrupt(String),
    /// Nothing yet; ask again (lets the supervisor check for shutdown).
    Idle,
    /// A finite source has no more frames.
    End,
}

/// A camera: opened (again after any failure) and then read frame by frame by one thread.
/// Errors are returned, never panicked: the supervisor reports them and reopens with backoff.
pub trait FrameSource: Send {
    /// What this source reads, for logs (credentials removed).
    fn name(&self) -> String;
    /// Connects to / opens the camera. Called again after every failure.
    fn open(&mut self, ctx: &SourceContext) -> anyhow::Result<()>;
    /// The next frame. Should return within about a second (use [`Next::Idle`]) so shutdown
    /// is prompt; an error means the source is broken and must be reopened.
    fn next_frame(&mut self, ctx: &SourceContext) -> anyhow::Result<Next>;
}

/// What a source may use while running: the clock for timestamps and pacing, and the stop flag.
#[derive(Clone)]
pub struct SourceContext {
    pub clock: Arc<dyn Clock>,
    pub shutdown: Arc<Shutdown>,
}

impl SourceContext {
    pub fn new(clock: Arc<dyn Clock>) -> SourceContext {
        SourceContext { clock, shutdown: Arc::new(Shutdown::default()) }
    }

    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    pub fn stopping(&self) -> bool {
        self.shutdown.is_set()
    }

    /// Waits until the clock reads at least `due`; false if shutdown came first. Works with a
    /// simulated clock too: it re-reads the clock at least every 20 ms of real time.
    pub fn wait_until(&self, due: Duration) -> bool {
        loop {
            if self.stopping() {
                return false;
            }
            let now = self.clock.now();
            if now >= due {
                return true;
            }
            if !self.shutdown.sleep((due - now).min(Duration::from_millis(20))) {
                return false;
            }
        }
    }
}

/// A stop flag that also interrupts sleeps at once.
#[derive(Debug, Default)]
pub struct Shutdown {
    set: Mutex<bool>,
    wake: Condvar,
}

impl Shutdown {
    pub fn trigger(&self) {
        *self.set.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps for `duration` of real time; false if shutdown was triggered (before or during).
    pub fn sleep(&self, duration: Duration) -> bool {
        let guard = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self.wake.wait_timeout_while(guard, duration, |set| !*set).unwrap_or_else(|p| p.into_inner());
        !*guard
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::decide::clock::SimulatedClock;

    #[test]
    fn wait_until_follows_a_simulated_clock_and_stops_on_shutdown() {
        let clock = SimulatedClock::default();
        let ctx = SourceContext::new(Arc::new(clock.clone()));
        let waiter = {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.wait_until(Duration::from_secs(3600)))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "an hour of simulated time has not passed");
        clock.advance(Duration::from_secs(3600));
        assert!(waiter.join().unwrap());

        let waiter = {
            let ctx = ctx.clone();
            std::thread::spawn(move || ctx.wait_until(Duration::from_secs(7200)))
        };
        let start = Instant::now();
        ctx.shutdown.trigger();
        assert!(!waiter.join().unwrap());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!ctx.shutdown.sleep(Duration::from_secs(100)), "sleep returns at once once stopped");
    }
}
