//! The door as a pure state machine on a clock: pulses, the hard cap on open time, stall
//! detection and the door contact. No threads and no pins, so every rule is unit-tested with a
//! simulated clock; [`super::Door`] drives it and writes its output to the relay.

use std::time::Duration;

use super::config::DoorConfig;

/// A contact that opens within this long after the relay released was opened by someone who
/// got the pulse (slow hands, a sticky strike), not forced.
pub const FORCED_GRACE: Duration = Duration::from_secs(1);

/// Why the relay released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseReason {
    /// The requested pulse ran out.
    PulseEnded,
    /// The pulse was cut at `max_open_ms`.
    MaxOpen,
    /// The decision loop stopped sending heartbeats.
    Stalled,
    /// The service is stopping (SIGTERM/SIGINT, `release_all`) or the door was dropped.
    Shutdown,
    /// A thread panicked and the panic hook released every relay.
    Panic,
    /// Energising the pin failed.
    PinError,
}

impl ReleaseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::PulseEnded => "pulse_ended",
            ReleaseReason::MaxOpen => "max_open",
            ReleaseReason::Stalled => "stalled",
            ReleaseReason::Shutdown => "shutdown",
            ReleaseReason::Panic => "panic",
            ReleaseReason::PinError => "pin_error",
        }
    }
}

/// What happened at a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoorEventKind {
    /// The relay is energised (or an open pulse extended) until `length` from now.
    Pulse {
        length: Duration,
    },
    Released {
        reason: ReleaseReason,
    },
    ContactOpen,
    ContactClosed,
    /// The door has stood open for `for_ms` (reported once per opening).
    HeldOpen {
        for_ms: u64,
    },
    /// The contact opened while the relay was released: the door was forced.
    Forced,
    /// No heartbeat from the decision loop for `stall_timeout_ms`: relay released, pulses refused.
    Stalled,
    /// Heartbeats are back; pulses are accepted again.
    Recovered,
}

/// Whether the door stands open, as the contact reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactState {
    Open,
    Closed,
}

/// Why a pulse was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PulseRefused {
    #[error("the decision loop has stalled (no heartbeat): pulses are refused until heartbeats resume")]
    Stalled,
    #[error("a pulse of 0 ms was requested: ask for at least 1 ms, or none for the configured pulse_ms")]
    ZeroLength,
}

/// The timings the state machine enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorTimings {
    pub pulse: Duration,
    pub max_open: Duration,
    pub stall_timeout: Duration,
    pub held_open: Duration,
}

impl DoorTimings {
    pub fn from_config(config: &DoorConfig) -> DoorTimings {
        DoorTimings {
            pulse: config.pulse(),
            max_open: config.max_open(),
            stall_timeout: config.stall_timeout(),
            held_open: Duration::from_millis(config.contact.as_ref().map_or(u64::MAX, |c| c.held_open_ms)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Open {
    since: Duration,
    until: Duration,
    /// `until` was cut to the cap.
    capped: bool,
}

/// The door's state. Feed it time ([`DoorLogic::advance`]), contact readings, pulses and
/// heartbeats; read [`DoorLogic::energised`] for the relay and drain the events it produced.
#[derive(Debug, Clone)]
pub struct DoorLogic {
    timings: DoorTimings,
    open: Option<Open>,
    last_release: Option<Duration>,
    last_heartbeat: Duration,
    stalled: bool,
    contact: Option<ContactState>,
    contact_open_since: Duration,
    held_reported: bool,
    events: Vec<(Duration, DoorEventKind)>,
}

impl DoorLogic {
    /// A released door whose decision loop counts as alive at `now`.
    pub fn new(timings: DoorTimings, now: Duration) -> DoorLogic {
        DoorLogic {
            timings,
            open: None,
            last_release: None,
            last_heartbeat: now,
            stalled: false,
            contact: None,
            contact_open_since: now,
            held_reported: false,
            events: Vec::new(),
        }
    }

    pub fn timings(&self) -> DoorTimings {
        self.timings
    }

    /// Whether the relay should be energised now.
    pub fn energised(&self) -> bool {
        self.open.is_some()
    }

    /// When the current open period started, if the relay is energised.
    pub fn energised_since(&self) -> Option<Duration> {
        self.open.map(|o| o.since)
    }

    /// When the relay will release, if it is energised.
    pub fn release_due(&self) -> Option<Duration> {
        self.open.map(|o| o.until)
    }

    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// The last contact reading, if there is a contact and it was read.
    pub fn contact(&self) -> Option<ContactState> {
        self.contact
    }

    /// Takes the events produced so far, oldest first, with the time each happened.
    pub fn drain_events(&mut self) -> Vec<(Duration, DoorEventKind)> {
        std::mem::take(&mut self.events)
    }

    /// Asks for the relay to be energised for `requested` (default: `pulse_ms`). A pulse while
    /// open extends the open period, but never past `max_open` from its start. Returns how long
    /// the relay will now stay energised.
    pub fn pulse(&mut self, now: Duration, requested: Option<Duration>) -> Result<Duration, PulseRefused> {
        self.advance(now);
        if self.stalled {
            return Err(PulseRefused::Stalled);
        }
        let length = requested.unwrap_or(self.timings.pulse);
        if length.is_zero() {
            return Err(PulseRefused::ZeroLength);
        }
        let since = self.open.map_or(now, |o| o.since);
        let cap = since + self.timings.max_open;
        let wanted = now + length;
        let (until, capped) = if wanted >= cap { (cap, true) } else { (wanted, false) };
        let open = match self.open {
            // Never shorten a pulse already given.
            Some(o) if o.until >= until => o,
            _ => Open { since, until, capped },
        };
        self.open = Some(open);
        let granted = open.until - now;
        self.events.push((now, DoorEventKind::Pulse { length: granted }));
        Ok(granted)
    }

    /// The decision loop is alive. Ends a stall.
    pub fn heartbeat(&mut self, now: Duration) {
        self.last_heartbeat = self.last_heartbeat.max(now);
        if self.stalled {
            self.stalled = false;
            self.events.push((now, DoorEventKind::Recovered));
        }
    }

    /// Applies the passage of time: ends pulses, detects a stall, reports a door held open.
    pub fn advance(&mut self, now: Duration) {
        if !self.stalled && now >= self.last_heartbeat + self.timings.stall_timeout {
            self.stalled = true;
            self.events.push((now, DoorEventKind::Stalled));
            self.release(now, ReleaseReason::Stalled);
        }
        if let Some(open) = self.open
            && now >= open.until
        {
            self.release(now, if open.capped { ReleaseReason::MaxOpen } else { ReleaseReason::PulseEnded });
        }
        if self.contact == Some(ContactState::Open) && !self.held_reported {
            let open_for = now.saturating_sub(self.contact_open_since);
            if open_for >= self.timings.held_open {
                self.held_reported = true;
                self.events.push((now, DoorEventKind::HeldOpen { for_ms: open_for.as_millis() as u64 }));
            }
        }
    }

    /// A contact reading (`true` = door open). The first reading only sets the state.
    pub fn contact_reading(&mut self, now: Duration, open: bool) {
        let state = if open { ContactState::Open } else { ContactState::Closed };
        let previous = self.contact.replace(state);
        if previous != Some(state) {
            match state {
                ContactState::Open => {
                    self.contact_open_since = now;
                    self.held_reported = false;
                    self.events.push((now, DoorEventKind::ContactOpen));
                    let recently_released = self.last_release.is_some_and(|r| now.saturating_sub(r) <= FORCED_GRACE);
                    if previous.is_some() && !self.energised() && !recently_released {
                        self.events.push((now, DoorEventKind::Forced));
                    }
                }
                ContactState::Closed => self.events.push((now, DoorEventKind::ContactClosed)),
            }
        }
        self.advance(now);
    }

    /// Releases the relay now (shutdown, panic, pin error). Returns whether it was energised.
    pub fn release(&mut self, now: Duration, reason: ReleaseReason) -> bool {
        if self.open.take().is_none() {
            return false;
        }
        self.last_release = Some(now);
        self.events.push((now, DoorEventKind::Released { reason }));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::clock::{Clock, SimulatedClock};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn timings() -> DoorTimings {
        DoorTimings { pulse: ms(3000), max_open: ms(10_000), stall_timeout: ms(5000), held_open: ms(30_000) }
    }

    fn kinds(logic: &mut DoorLogic) -> Vec<DoorEventKind> {
        logic.drain_events().into_iter().map(|(_, k)| k).collect()
    }

    #[test]
    fn a_pulse_energises_then_releases_at_its_end() {
        let clock = SimulatedClock::default();
        let mut door = DoorLogic::new(timings(), clock.now());
        assert_eq!(door.pulse(clock.now(), None), Ok(ms(3000)));
        assert!(door.energised());
        clock.advance(ms(2999));
        door.advance(clock.now());
        assert!(door.energised());
        clock.advance(ms(1));
        door.advance(clock.now());
        assert!(!door.energised());
        assert_eq!(
            door.drain_events(),
            vec![
                (ms(0), DoorEventKind::Pulse { length: ms(3000) }),
                (ms(3000), DoorEventKind::Released { reason: ReleaseReason::PulseEnded }),
            ]
        );
    }

    #[test]
    fn pulses_while_open_extend_but_stop_at_the_cap() {
        let clock = SimulatedClock::default();
        let mut door = DoorLogic::new(timings(), clock.now());
        door.pulse(clock.now(), None).unwrap();
        for _ in 0..3 {
            clock.advance(ms(2500));
            door.heartbeat(clock.now());
            door.advance(clock.now());
            assert!(door.energised());
            door.pulse(clock.now(), None).unwrap();
        }
        // 7500 ms in: the next pulse may only run to 10 000.
        assert_eq!(door.release_due(), Some(ms(10_000)));
        clock.advance(ms(2000));
        assert_eq!(door.pulse(clock.now(), Some(ms(60_000))), Ok(ms(500)));
        clock.advance(ms(500));
        door.advance(clock.now());
        assert!(!door.energised());
        let events = kinds(&mut door);
        assert_eq!(events.last(), Some(&DoorEventKind::Released { reason: ReleaseReason::MaxOpen }));
        // A short pulse never shortens a longer one already given.
        door.pulse(clock.now(), Some(ms(5000))).unwrap();
        assert_eq!(door.pulse(clock.now(), Some(ms(100))), Ok(ms(5000)));
        assert_eq!(door.pulse(clock.now(), Some(ms(0))), Err(PulseRefused::ZeroLength));
    }

    /// Many random request patterns: the relay is never energised longer than the cap at once,
    /// and always released once its pulse is over.
    #[test]
    fn no_request_pattern_keeps_the_relay_energised_past_the_cap() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for pattern in 0..300 {
            let t = DoorTimings {
                pulse: ms(1 + next(5000)),
                max_open: ms(1 + next(12_000)),
                stall_timeout: ms(100 + next(6000)),
                held_open: ms(30_000),
            };
            let clock = SimulatedClock::default();
            let mut door = DoorLogic::new(t, clock.now());
            for _ in 0..400 {
                clock.advance(ms(next(700)));
                let now = clock.now();
                match next(4) {
                    0 => door.heartbeat(now),
                    1 => {
                        let req = if next(3) == 0 { None } else { Some(ms(1 + next(20_000))) };
                        if let Ok(len) = door.pulse(now, req) {
                            let since = door.energised_since().unwrap();
                            assert!(now + len - since <= t.max_open, "pattern {pattern}: granted past the cap");
                        }
                    }
                    _ => {}
                }
                // The door thread ticks between requests.
                door.advance(now);
                if let Some(since) = door.energised_since() {
                    assert!(now - since < t.max_open, "pattern {pattern}: energised {:?} >= cap", now - since);
                    assert!(now < door.release_due().unwrap(), "pattern {pattern}: energised after its pulse");
                }
                if door.stalled() {
                    assert!(!door.energised(), "pattern {pattern}: energised while stalled");
                }
            }
            clock.advance(t.max_open);
            door.advance(clock.now());
            assert!(!door.energised(), "pattern {pattern}: still energised a whole cap after the last request");
        }
    }

    #[test]
    fn a_stall_releases_at_once_and_refuses_pulses_until_heartbeats_resume() {
        let clock = SimulatedClock::default();
        let mut door = DoorLogic::new(DoorTimings { pulse: ms(9000), ..timings() }, clock.now());
        clock.advance(ms(4000));
        door.pulse(clock.now(), None).unwrap();
        clock.advance(ms(1000)); // 5000 ms since the last heartbeat (at 0)
        door.advance(clock.now());
        assert!(!door.energised() && door.stalled());
        assert_eq!(door.pulse(clock.now(), None), Err(PulseRefused::Stalled));
        clock.advance(ms(100));
        door.heartbeat(clock.now());
        assert!(!door.stalled());
        assert!(door.pulse(clock.now(), None).is_ok());
        assert_eq!(
            kinds(&mut door),
            vec![
                DoorEventKind::Pulse { length: ms(9000) },
                DoorEventKind::Stalled,
                DoorEventKind::Released { reason: ReleaseReason::Stalled },
                DoorEventKind::Recovered,
                DoorEventKind::Pulse { length: ms(9000) },
            ]
        );
        // Stalled is reported once, not on every tick.
        clock.advance(ms(20_000));
        door.advance(clock.now());
        door.advance(clock.now() + ms(1));
        let stalls = kinds(&mut door).iter().filter(|k| **k == DoorEventKind::Stalled).count();
        assert_eq!(stalls, 1);
    }

    #[test]
    fn contact_reports_open_closed_and_held_open_once() {
        let clock = SimulatedClock::default();
        let mut door = DoorLogic::new(DoorTimings { stall_timeout: ms(3_600_000), ..timings() }, clock.now());
        door.contact_reading(clock.now(), false);
        door.pulse(clock.now(), None).unwrap();
        clock.advance(ms(1000));
        door.contact_reading(clock.now(), true);
        assert_eq!(door.contact(), Some(ContactState::Open));
        for _ in 0..40 {
            clock.advance(ms(1000));
            door.contact_reading(clock.now(), true);
        }
        door.contact_reading(clock.now(), false);
        assert_eq!(
            door.drain_events(),
            vec![
                (ms(0), DoorEventKind::ContactClosed),
                (ms(0), DoorEventKind::Pulse { length: ms(3000) }),
                (ms(1000), DoorEventKind::ContactOpen),
                (ms(3000), DoorEventKind::Released { reason: ReleaseReason::PulseEnded }),
                (ms(31_000), DoorEventKind::HeldOpen { for_ms: 30_000 }),
                (ms(41_000), DoorEventKind::ContactClosed),
            ]
        );
    }

    #[test]
    fn opening_without_a_pulse_is_forced_but_not_just_after_one() {
        let clock = SimulatedClock::default();
        let mut door = DoorLogic::new(DoorTimings { stall_timeout: ms(3_600_000), ..timings() }, clock.now());
        // A door already open at start is not forced.
        door.contact_reading(clock.now(), true);
        door.contact_reading(clock.now(), false);
        clock.advance(ms(5000));
        door.contact_reading(clock.now(), true);
        assert_eq!(
            kinds(&mut door),
            vec![
                DoorEventKind::ContactOpen,
                DoorEventKind::ContactClosed,
                DoorEventKind::ContactOpen,
                DoorEventKind::Forced
            ]
        );
        door.contact_reading(clock.now(), false);
        door.pulse(clock.now(), Some(ms(1000))).unwrap();
        clock.advance(ms(1500)); // released at 1000, opened 500 ms later: within the grace
        door.advance(clock.now());
        door.contact_reading(clock.now(), true);
        assert!(!kinds(&mut door).contains(&DoorEventKind::Forced));
    }
}
