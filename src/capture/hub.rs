//! The hand-over point between cameras and vision: one slot per camera holding only its newest
//! frame, so a slow consumer drops stale frames (counted) instead of queueing latency, and a
//! fair pick so one fast camera cannot starve the others.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Frame;

/// How many recent capture times are kept per camera to compute its frame rate.
const FPS_WINDOW: usize = 32;

/// What a camera is doing right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraState {
    /// Opening the source for the first time.
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// The source failed (the error says why, credentials removed) and is being retried.
    Reconnecting { error: String },
    /// A finite source (a replay that does not loop) played its last frame.
    Ended,
}

/// A snapshot of one camera's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraStats {
    pub name: String,
    /// Frames published to the hub.
    pub frames: u64,
    /// Frames that could not be decoded and were skipped.
    pub corrupt: u64,
    /// Frames replaced by a newer one before the consumer took them.
    pub stale_drops: u64,
    /// Times the source was reopened after a failure.
    pub reconnects: u64,
    pub state: CameraState,
    /// Frame rate over the last few frames (by capture time); 0 before two frames arrived.
    pub fps: f64,
}

struct Slot {
    frame: Option<Frame>,
    /// Ticket taken when the slot went from empty to full; the lowest ticket has waited longest.
    ticket: u64,
    recent: VecDeque<Duration>,
    stats: CameraStats,
}

struct Inner {
    slots: Vec<Slot>,
    next_ticket: u64,
    closed: bool,
}

/// Shared by all cameras and the consumer. Cheap to lock: every operation is O(cameras).
pub struct FrameHub {
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl FrameHub {
    /// A hub with one slot per camera name, in configuration order.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> FrameHub {
        let slots = names
            .into_iter()
            .map(|name| Slot {
                frame: None,
                ticket: 0,
                recent: VecDeque::with_capacity(FPS_WINDOW),
                stats: CameraStats {
                    name: name.into(),
                    frames: 0,
                    corrupt: 0,
                    stale_drops: 0,
                    reconnects: 0,
                    state: CameraState::Connecting,
                    fps: 0.0,
                },
            })
            .collect();
        FrameHub { inner: Mutex::new(Inner { slots, next_ticket: 0, closed: false }), ready: Condvar::new() }
    }

    /// A hub for these configured cameras.
    pub fn for_cameras(cameras: &[super::CameraConfig]) -> FrameHub {
        FrameHub::new(cameras.iter().map(|c| c.name.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the slots half-updated in a way that
        // matters (each field is written whole), so keep going rather than spread the panic.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of camera slots.
    pub fn cameras(&self) -> usize {
        self.lock().slots.len()
    }

    /// Puts a camera's newest frame in its slot, replacing (and counting as stale) one that
    /// nobody took. Frames for an unknown camera index are ignored.
    pub fn publish(&self, frame: Frame) {
        let mut inner = self.lock();
        let ticket = inner.next_ticket;
        let Some(slot) = inner.slots.get_mut(frame.camera) else { return };
        if slot.recent.len() == FPS_WINDOW {
            slot.recent.pop_front();
        }
        slot.recent.push_back(frame.captured);
        slot.stats.frames += 1;
        slot.stats.state = CameraState::Streaming;
        let fresh = match slot.frame.replace(frame) {
            Some(_) => {
                slot.stats.stale_drops += 1;
                false
            }
            None => {
                slot.ticket = ticket;
                true
            }
        };
        if fresh {
            inner.next_ticket += 1;
        }
        drop(inner);
        // Every waiter: with several vision workers, each waits for its own cameras only.
        self.ready.notify_all();
    }

    /// Takes the newest frame of the camera that has waited longest, waiting up to `timeout`.
    /// `None` after a timeout, after [`close`](Self::close), or at once when every source has
    /// ended and no frame is left.
    pub fn next(&self, timeout: Duration) -> Option<Frame> {
        self.next_of(|_| true, timeout)
    }

    /// [`next`](Self::next) among the cameras (indices) `mine` accepts: a vision worker's share.
    pub fn next_of(&self, mine: impl Fn(usize) -> bool, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return None;
            }
            let oldest = inner
                .slots
                .iter_mut()
                .enumerate()
                .filter(|(i, s)| mine(*i) && s.frame.is_some())
                .map(|(_, s)| s)
                .min_by_key(|s| s.ticket);
            if let Some(slot) = oldest {
                return slot.frame.take();
            }
            if all_ended(&inner) {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            inner = self.ready.wait_timeout(inner, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Wakes every waiting consumer; from now on [`next`](Self::next) returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// True when there is at least one camera and every one of them reported end of stream.
    pub fn all_ended(&self) -> bool {
        all_ended(&self.lock())
    }

    /// Sets a camera's state (`Streaming` is set by [`publish`](Self::publish)).
    pub fn set_state(&self, camera: usize, state: CameraState) {
        let ended = state == CameraState::Ended;
        if let Some(slot) = self.lock().slots.get_mut(camera) {
            slot.stats.state = state;
        }
        if ended {
            // A consumer waiting for frames may now be done.
            self.ready.notify_all();
        }
    }

    /// Counts a frame that could not be decoded and was skipped.
    pub fn count_corrupt(&self, camera: usize) {
        if let Some(slot) = self.lock().slots.get_mut(camera) {
            slot.stats.corrupt += 1;
        }
    }

    /// Counts a reopen of the source after a failure.
    pub fn count_reconnect(&self, camera: usize) {
        if let Some(slot) = self.lock().slots.get_mut(camera) {
            slot.stats.reconnects += 1;
        }
    }

    /// Every camera's counters, in configuration order.
    pub fn stats(&self) -> Vec<CameraStats> {
        self.lock()
            .slots
            .iter()
            .map(|slot| {
                let mut stats = slot.stats.clone();
                stats.fps = recent_fps(&slot.recent);
                stats
            })
            .collect()
    }
}

fn all_ended(inner: &Inner) -> bool {
    !inner.slots.is_empty() && inner.slots.iter().all(|s| s.stats.state == CameraState::Ended && s.frame.is_none())
}

fn recent_fps(times: &VecDeque<Duration>) -> f64 {
    match (times.front(), times.back()) {
        (Some(first), Some(last)) if times.len() >= 2 && last > first => {
            (times.len() - 1) as f64 / (*last - *first).as_secs_f64()
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn frame(camera: usize, seq: u64) -> Frame {
        Frame { camera, seq, captured: Duration::from_millis(seq * 100), image: image::RgbImage::new(2, 2) }
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn only_the_newest_frame_is_kept_and_stale_ones_are_counted() {
        let hub = FrameHub::new(["a"]);
        for seq in 0..5 {
            hub.publish(frame(0, seq));
        }
        assert_eq!(hub.next(NOW).map(|f| f.seq), Some(4));
        assert_eq!(hub.next(NOW), None);
        let stats = &hub.stats()[0];
        assert_eq!((stats.frames, stats.stale_drops), (5, 4));
        assert_eq!(stats.state, CameraState::Streaming);
        assert!((stats.fps - 10.0).abs() < 1e-9, "{}", stats.fps);
    }

    #[test]
    fn the_camera_that_waited_longest_goes_first() {
        let hub = FrameHub::new(["fast", "slow", "idle"]);
        hub.publish(frame(1, 0)); // slow camera's frame waits first
        for seq in 0..10 {
            hub.publish(frame(0, seq)); // the fast camera keeps replacing its frame
        }
        assert_eq!(hub.next(NOW).map(|f| (f.camera, f.seq)), Some((1, 0)));
        hub.publish(frame(1, 1));
        // The fast camera's slot has been full since before slow's second frame.
        assert_eq!(hub.next(NOW).map(|f| (f.camera, f.seq)), Some((0, 9)));
        assert_eq!(hub.next(NOW).map(|f| (f.camera, f.seq)), Some((1, 1)));
        assert_eq!(hub.next(NOW), None);
    }

    #[test]
    fn fairness_holds_under_a_flood() {
        let hub = FrameHub::new(["a", "b", "c"]);
        let mut taken = [0u32; 3];
        for round in 0..30u64 {
            // Camera 0 publishes ten times as often as the others.
            for k in 0..10 {
                hub.publish(frame(0, round * 10 + k));
            }
            hub.publish(frame(1, round));
            hub.publish(frame(2, round));
            if let Some(f) = hub.next(NOW) {
                taken[f.camera] += 1;
            }
        }
        assert!(taken.iter().all(|&n| n == 10), "{taken:?}");
    }

    #[test]
    fn a_waiting_consumer_wakes_on_publish_and_on_close() {
        let hub = Arc::new(FrameHub::new(["a"]));
        let consumer = {
            let hub = hub.clone();
            std::thread::spawn(move || hub.next(Duration::from_secs(10)))
        };
        std::thread::sleep(Duration::from_millis(20));
        hub.publish(frame(0, 7));
        assert_eq!(consumer.join().unwrap().map(|f| f.seq), Some(7));

        let consumer = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                (hub.next(Duration::from_secs(10)), start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        hub.close();
        let (got, waited) = consumer.join().unwrap();
        assert_eq!(got, None);
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        hub.publish(frame(0, 8));
        assert_eq!(hub.next(NOW), None, "a closed hub hands out nothing");
        assert!(hub.is_closed());
    }

    #[test]
    fn workers_take_only_their_own_cameras() {
        let hub = Arc::new(FrameHub::new(["a", "b", "c"]));
        hub.publish(frame(0, 1));
        hub.publish(frame(1, 2));
        hub.publish(frame(2, 3));
        let odd = |c: usize| c % 2 == 1;
        assert_eq!(hub.next_of(odd, NOW).map(|f| f.camera), Some(1));
        assert_eq!(hub.next_of(odd, NOW), None, "cameras 0 and 2 are another worker's");
        assert_eq!(hub.next_of(|c| c % 2 == 0, NOW).map(|f| f.camera), Some(0));
        // A worker waiting for its camera is woken by that camera's frame even while another
        // worker waits too (publish wakes every waiter).
        let waiter = |want: usize| {
            let hub = hub.clone();
            std::thread::spawn(move || hub.next_of(move |c| c == want, Duration::from_secs(30)).map(|f| f.seq))
        };
        let (w0, w1) = (waiter(0), waiter(1));
        hub.publish(frame(1, 5));
        hub.publish(frame(0, 4));
        assert_eq!((w0.join().unwrap(), w1.join().unwrap()), (Some(4), Some(5)));
        assert_eq!(hub.next(NOW).map(|f| f.camera), Some(2));
    }

    #[test]
    fn next_times_out_without_frames() {
        let hub = FrameHub::new(["a"]);
        let start = Instant::now();
        assert_eq!(hub.next(Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn all_ended_only_when_every_camera_ended_and_was_drained() {
        let hub = FrameHub::new(["a", "b"]);
        hub.publish(frame(0, 0));
        hub.set_state(0, CameraState::Ended);
        assert!(!hub.all_ended());
        hub.set_state(1, CameraState::Ended);
        assert!(!hub.all_ended(), "a frame is still waiting");
        assert_eq!(hub.next(NOW).map(|f| f.seq), Some(0));
        assert!(hub.all_ended());
        let start = Instant::now();
        assert_eq!(hub.next(Duration::from_secs(10)), None);
        assert!(start.elapsed() < Duration::from_secs(5), "returns at once when everything ended");
        assert!(!FrameHub::new(Vec::<String>::new()).all_ended());
    }

    #[test]
    fn counters_and_states_are_per_camera() {
        let hub = FrameHub::new(["a", "b"]);
        hub.count_corrupt(1);
        hub.count_corrupt(1);
        hub.count_reconnect(0);
        hub.set_state(0, CameraState::Reconnecting { error: "connection refused".into() });
        hub.publish(frame(9, 0)); // unknown camera: ignored
        let stats = hub.stats();
        assert_eq!((stats[0].reconnects, stats[0].corrupt), (1, 0));
        assert_eq!((stats[1].reconnects, stats[1].corrupt), (0, 2));
        assert_eq!(stats[0].state, CameraState::Reconnecting { error: "connection refused".into() });
        assert_eq!(stats[1].state, CameraState::Connecting);
        assert_eq!(stats[1].name, "b");
        assert_eq!(stats[1].fps, 0.0);
    }
}
