//! [`Door`]: one thread per door ticks the [`DoorLogic`], reads the contact and writes the relay
//! pin; callers pulse, send heartbeats and subscribe to events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::config::DoorConfig;
use super::logic::{ContactState, DoorEventKind, DoorLogic, DoorTimings, ReleaseReason};
use super::{InputPin, OutputPin, failsafe, open_input, open_output};
use crate::decide::clock::Clock;

/// The door thread wakes at least this often (sooner when a release is due).
const TICK: Duration = Duration::from_millis(10);
/// Attempts to release a relay whose pin write fails, when there is no next tick (drop, panic).
const RELEASE_ATTEMPTS: u32 = 20;

/// Something that happened at a named door, at a clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorEvent {
    pub door: String,
    pub at: Duration,
    pub kind: DoorEventKind,
}

/// A pulse that was given: when the relay was energised (clock time, after the pin write) and
/// for how long it stays energised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulseReceipt {
    pub started: Duration,
    pub length: Duration,
}

/// A snapshot of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorState {
    pub energised: bool,
    /// Clock time the relay releases, if energised.
    pub release_due: Option<Duration>,
    pub stalled: bool,
    /// `None` without a contact (or before its first reading).
    pub contact: Option<ContactState>,
    /// Released for good by `release_all` or a panic; pulses are refused.
    pub shut: bool,
}

/// The relay pin and what was last written to it. Locked on its own so the panic hook can
/// release it even when the panicking thread holds the door's main lock.
pub(super) struct Relay {
    pin: Box<dyn OutputPin>,
    /// Last level written successfully; `None` after a failed write.
    written: Option<bool>,
    /// Set by `release_all` or the panic hook: never energise again.
    shut: Option<ReleaseReason>,
}

impl Relay {
    /// Writes `level` unless it is already there. Logs failures loudly.
    fn write(&mut self, door: &str, level: bool) -> Result<()> {
        if self.written == Some(level) {
            return Ok(());
        }
        match self.pin.set(level) {
            Ok(()) => {
                self.written = Some(level);
                Ok(())
            }
            Err(e) => {
                self.written = None;
                let what = if level { "energise" } else { "RELEASE" };
                log::error!("door {door}: cannot {what} the relay: {e:#}");
                Err(e)
            }
        }
    }

    /// Releases and latches the relay off; retries a failing pin a few times.
    pub(super) fn shut(&mut self, door: &str, reason: ReleaseReason) {
        self.shut.get_or_insert(reason);
        for attempt in 1..=RELEASE_ATTEMPTS {
            if self.write(door, false).is_ok() {
                return;
            }
            if attempt < RELEASE_ATTEMPTS {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        log::error!("door {door}: the relay could NOT be released after {RELEASE_ATTEMPTS} attempts; check the wiring");
    }
}

struct Inner {
    logic: DoorLogic,
    contact: Option<Box<dyn InputPin>>,
    next_poll: Instant,
    contact_failing: bool,
    subscribers: Vec<Sender<DoorEvent>>,
}

/// What the door thread, the handle and the fail-safe registry share.
pub(super) struct Shared {
    pub(super) name: String,
    clock: Arc<dyn Clock>,
    poll: Duration,
    stop: AtomicBool,
    wake: Condvar,
    inner: Mutex<Inner>,
    relay: Mutex<Relay>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must never stop the relay from being released.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(super) fn relay(&self) -> &Mutex<Relay> {
        &self.relay
    }

    /// One step: read the contact if due, apply time, write the relay, send events.
    fn tick(&self, inner: &mut Inner) {
        let now = self.clock.now();
        if let Some(contact) = inner.contact.as_mut()
            && Instant::now() >= inner.next_poll
        {
            inner.next_poll = Instant::now() + self.poll;
            match contact.read() {
                Ok(open) => {
                    inner.contact_failing = false;
                    inner.logic.contact_reading(now, open);
                }
                Err(e) if !inner.contact_failing => {
                    inner.contact_failing = true;
                    log::warn!("door {}: cannot read the door contact: {e:#}", self.name);
                }
                Err(_) => {}
            }
        }
        inner.logic.advance(now);
        self.sync(inner, now);
    }

    /// Makes the pin follow the logic (and the shut latch), then sends the events.
    fn sync(&self, inner: &mut Inner, now: Duration) {
        {
            let mut relay = lock(&self.relay);
            if let Some(reason) = relay.shut {
                inner.logic.release(now, reason);
            }
            let wanted = inner.logic.energised();
            if relay.write(&self.name, wanted).is_err() && wanted {
                inner.logic.release(now, ReleaseReason::PinError);
                // Retried on every tick until it succeeds.
                let _ = relay.write(&self.name, false);
            }
        }
        self.dispatch(inner);
    }

    fn dispatch(&self, inner: &mut Inner) {
        for (at, kind) in inner.logic.drain_events() {
            log_event(&self.name, kind);
            let event = DoorEvent { door: self.name.clone(), at, kind };
            inner.subscribers.retain(|s| s.send(event.clone()).is_ok());
        }
    }

    fn run(&self) {
        let mut inner = lock(&self.inner);
        while !self.stop.load(Ordering::SeqCst) {
            self.tick(&mut inner);
            let now = self.clock.now();
            let wait = inner.logic.release_due().map_or(TICK, |due| due.saturating_sub(now).min(TICK));
            inner = self.wake.wait_timeout(inner, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

fn log_event(door: &str, kind: DoorEventKind) {
    match kind {
        DoorEventKind::Pulse { length } => log::info!("door {door}: open for {} ms", length.as_millis()),
        DoorEventKind::Released { reason } => log::info!("door {door}: released ({})", reason.as_str()),
        DoorEventKind::ContactOpen => log::info!("door {door}: contact open"),
        DoorEventKind::ContactClosed => log::info!("door {door}: contact closed"),
        DoorEventKind::HeldOpen { for_ms } => log::warn!("door {door}: HELD OPEN for {} s", for_ms / 1000),
        DoorEventKind::Forced => log::warn!("door {door}: FORCED open (contact opened without a pulse)"),
        DoorEventKind::Stalled => {
            log::error!("door {door}: decision loop STALLED (no heartbeat): relay released, pulses refused")
        }
        DoorEventKind::Recovered => log::info!("door {door}: heartbeats resumed, pulses accepted again"),
    }
}

/// A door relay (and optional contact) driven by its own thread. Released when dropped.
pub struct Door {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Door {
    /// Opens the configured pins and starts the door thread.
    pub fn open(config: &DoorConfig, clock: Arc<dyn Clock>) -> Result<Door> {
        let relay = open_output(&config.relay, &config.name)
            .with_context(|| format!("door `{}`: cannot open the relay", config.name))?;
        let contact = match &config.contact {
            Some(c) => Some(
                open_input(&c.pin(), &config.name)
                    .with_context(|| format!("door `{}`: cannot open the door contact", config.name))?,
            ),
            None => None,
        };
        Door::with_pins(config, clock, relay, contact)
    }

    /// Starts a door on given pins (tests pass recording pins). The relay is released first.
    pub fn with_pins(
        config: &DoorConfig,
        clock: Arc<dyn Clock>,
        relay: Box<dyn OutputPin>,
        contact: Option<Box<dyn InputPin>>,
    ) -> Result<Door> {
        let mut relay = Relay { pin: relay, written: None, shut: None };
        relay
            .write(&config.name, false)
            .with_context(|| format!("door `{}`: cannot set the relay to released at start", config.name))?;
        let poll = Duration::from_millis(config.contact.as_ref().map_or(50, |c| c.poll_ms));
        let shared = Arc::new(Shared {
            name: config.name.clone(),
            poll,
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            inner: Mutex::new(Inner {
                logic: DoorLogic::new(DoorTimings::from_config(config), clock.now()),
                contact,
                next_poll: Instant::now(),
                contact_failing: false,
                subscribers: Vec::new(),
            }),
            relay: Mutex::new(relay),
            clock,
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("door-{}", config.name))
            .spawn(move || worker.run())
            .context("cannot start the door thread")?;
        failsafe::register(&shared);
        Ok(Door { shared, thread: Some(thread) })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Energises the relay for `requested` (default: the configured `pulse_ms`; a pulse while
    /// open extends it, never past `max_open_ms`). Returns once the pin was written.
    pub fn pulse(&self, requested: Option<Duration>) -> Result<PulseReceipt> {
        let shared = &self.shared;
        let mut inner = lock(&shared.inner);
        let now = shared.clock.now();
        if let Some(reason) = lock(&shared.relay).shut {
            bail!("door {}: released for good ({}); restart facegate to use it again", shared.name, reason.as_str());
        }
        let length = match inner.logic.pulse(now, requested) {
            Ok(length) => length,
            Err(refused) => {
                shared.dispatch(&mut inner);
                bail!("door {}: {refused}", shared.name);
            }
        };
        shared.sync(&mut inner, now);
        let started = shared.clock.now();
        if !inner.logic.energised() {
            bail!("door {}: the relay could not be energised (see the log)", shared.name);
        }
        drop(inner);
        shared.wake.notify_all();
        Ok(PulseReceipt { started, length })
    }

    /// The decision loop is alive; without heartbeats for `stall_timeout_ms` the door releases.
    pub fn heartbeat(&self) {
        let mut inner = lock(&self.shared.inner);
        inner.logic.heartbeat(self.shared.clock.now());
        self.shared.dispatch(&mut inner);
    }

    /// A new subscription to this door's events (from now on).
    pub fn events(&self) -> Receiver<DoorEvent> {
        let (tx, rx) = channel();
        lock(&self.shared.inner).subscribers.push(tx);
        rx
    }

    pub fn state(&self) -> DoorState {
        let inner = lock(&self.shared.inner);
        DoorState {
            energised: inner.logic.energised(),
            release_due: inner.logic.release_due(),
            stalled: inner.logic.stalled(),
            contact: inner.logic.contact(),
            shut: lock(&self.shared.relay).shut.is_some(),
        }
    }

    /// Reads the contact now (for `door test`); `None` without a contact.
    pub fn read_contact(&self) -> Option<Result<ContactState>> {
        let mut inner = lock(&self.shared.inner);
        let now = self.shared.clock.now();
        let open = inner.contact.as_mut()?.read();
        Some(open.map(|open| {
            inner.logic.contact_reading(now, open);
            self.shared.dispatch(&mut inner);
            if open { ContactState::Open } else { ContactState::Closed }
        }))
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            log::error!("door {}: its thread panicked", self.shared.name);
        }
        let mut inner = lock(&self.shared.inner);
        let now = self.shared.clock.now();
        lock(&self.shared.relay).shut(&self.shared.name, ReleaseReason::Shutdown);
        inner.logic.release(now, ReleaseReason::Shutdown);
        self.shared.dispatch(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::act::door::config::ContactConfig;
    use crate::act::door::testing::{ManualContact, RecordingPin, Writes, writes};
    use crate::decide::clock::SimulatedClock;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    struct Rig {
        clock: SimulatedClock,
        door: Door,
        writes: Writes,
        failures: Arc<AtomicUsize>,
        events: Receiver<DoorEvent>,
    }

    fn rig(config: DoorConfig, contact: Option<ManualContact>) -> Rig {
        let clock = SimulatedClock::default();
        let (pin, writes, failures) = RecordingPin::new(Arc::new(clock.clone()));
        let contact = contact.map(|c| Box::new(c) as Box<dyn InputPin>);
        let door = Door::with_pins(&config, Arc::new(clock.clone()), Box::new(pin), contact).unwrap();
        let events = door.events();
        Rig { clock, door, writes, failures, events }
    }

    /// Waits (real time, bounded) for an event the door thread produces.
    fn wait_for(events: &Receiver<DoorEvent>, wanted: DoorEventKind) -> DoorEvent {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(e) if e.kind == wanted => return e,
                Ok(_) => {}
                Err(e) => panic!("no {wanted:?} event: {e}"),
            }
        }
    }

    #[test]
    fn a_pulse_writes_energise_then_release_at_the_exact_clock_time() {
        let r = rig(DoorConfig::default(), None);
        r.clock.advance(ms(100));
        let receipt = r.door.pulse(None).unwrap();
        assert_eq!(receipt, PulseReceipt { started: ms(100), length: ms(3000) });
        assert!(r.door.state().energised);
        r.clock.advance(ms(3000));
        let released = wait_for(&r.events, DoorEventKind::Released { reason: ReleaseReason::PulseEnded });
        assert_eq!((released.door.as_str(), released.at), ("door", ms(3100)));
        assert_eq!(*writes(&r.writes), vec![(ms(0), false), (ms(100), true), (ms(3100), false)]);
    }

    #[test]
    fn dropping_the_door_releases_the_relay() {
        let r = rig(DoorConfig::default(), None);
        r.door.pulse(Some(ms(9000))).unwrap();
        r.clock.advance(ms(10));
        drop(r.door);
        assert_eq!(writes(&r.writes).last(), Some(&(ms(10), false)));
        let kinds: Vec<_> = r.events.try_iter().map(|e| e.kind).collect();
        assert_eq!(kinds.last(), Some(&DoorEventKind::Released { reason: ReleaseReason::Shutdown }));
    }

    #[test]
    fn a_stall_releases_and_refuses_until_a_heartbeat() {
        let r = rig(DoorConfig { pulse_ms: 9000, ..DoorConfig::default() }, None);
        r.door.pulse(None).unwrap();
        r.clock.advance(ms(5000));
        wait_for(&r.events, DoorEventKind::Released { reason: ReleaseReason::Stalled });
        assert_eq!(writes(&r.writes).last(), Some(&(ms(5000), false)));
        let err = r.door.pulse(None).unwrap_err().to_string();
        assert!(err.contains("stalled"), "{err}");
        assert!(r.door.state().stalled);
        r.door.heartbeat();
        assert!(r.door.pulse(None).is_ok());
        assert_eq!(writes(&r.writes).last(), Some(&(ms(5000), true)));
    }

    #[test]
    fn contact_events_come_from_the_door_thread() {
        let contact = ManualContact::default();
        let config = DoorConfig {
            stall_timeout_ms: 3_600_000,
            contact: Some(ContactConfig { held_open_ms: 30_000, poll_ms: 1, ..ContactConfig::default() }),
            ..DoorConfig::default()
        };
        let r = rig(config, Some(contact.clone()));
        // The first reading may come before the subscription: wait for the state instead.
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.door.state().contact != Some(ContactState::Closed) {
            assert!(Instant::now() < deadline, "the contact was never read");
            std::thread::sleep(ms(1));
        }
        contact.set_open(true);
        wait_for(&r.events, DoorEventKind::Forced);
        assert_eq!(r.door.state().contact, Some(ContactState::Open));
        r.clock.advance(ms(30_000));
        wait_for(&r.events, DoorEventKind::HeldOpen { for_ms: 30_000 });
        contact.set_open(false);
        wait_for(&r.events, DoorEventKind::ContactClosed);
    }

    #[test]
    fn pin_errors_refuse_the_pulse_and_a_failing_release_is_retried() {
        let r = rig(DoorConfig::default(), None);
        r.failures.store(1, Ordering::SeqCst);
        let err = r.door.pulse(None).unwrap_err().to_string();
        assert!(err.contains("could not be energised"), "{err}");
        assert!(!r.door.state().energised);
        // The release fails five times; the door thread keeps trying until it sticks.
        r.door.pulse(None).unwrap();
        r.failures.store(5, Ordering::SeqCst);
        r.clock.advance(ms(3000));
        wait_for(&r.events, DoorEventKind::Released { reason: ReleaseReason::PulseEnded });
        let deadline = Instant::now() + Duration::from_secs(5);
        while writes(&r.writes).last() != Some(&(ms(3000), false)) {
            assert!(Instant::now() < deadline, "release never written: {:?}", writes(&r.writes));
            std::thread::sleep(ms(5));
        }
        assert_eq!(r.failures.load(Ordering::SeqCst), 0);
    }
}
