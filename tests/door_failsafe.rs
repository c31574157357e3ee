//! Process-wide fail-safes (the panic hook and `release_all`) in their own test binary, so they
//! cannot release doors of unrelated tests running in parallel.

use std::sync::Arc;
use std::time::Duration;

use facegate::act::door::testing::{RecordingPin, writes};
use facegate::act::door::{Door, DoorConfig, install_panic_release, release_all};
use facegate::decide::clock::{MonotonicClock, SimulatedClock};

#[test]
fn a_panic_anywhere_and_release_all_release_every_relay_for_good() {
    install_panic_release();
    let clock = SimulatedClock::default();
    let open = |name: &str| {
        let (pin, record, _) = RecordingPin::new(Arc::new(clock.clone()));
        let config = DoorConfig { name: name.into(), pulse_ms: 9000, ..DoorConfig::default() };
        (Door::with_pins(&config, Arc::new(clock.clone()), Box::new(pin), None).unwrap(), record)
    };

    let (front, front_writes) = open("front");
    front.pulse(None).unwrap();
    assert_eq!(writes(&front_writes).last().map(|w| w.1), Some(true));
    let crashed = std::thread::spawn(|| panic!("decision loop bug (expected by this test)")).join();
    assert!(crashed.is_err());
    assert_eq!(writes(&front_writes).last().map(|w| w.1), Some(false), "the panic hook released the relay");
    assert!(front.state().shut);
    let err = front.pulse(None).unwrap_err().to_string();
    assert!(err.contains("panic") && err.contains("restart"), "{err}");

    let (back, back_writes) = open("back");
    back.pulse(None).unwrap();
    assert!(release_all() >= 2);
    assert_eq!(writes(&back_writes).last().map(|w| w.1), Some(false));
    assert!(back.pulse(None).is_err(), "no pulse after release_all");

    // A dropped door leaves the registry; a real clock works the same way.
    drop(front);
    drop(back);
    let (pin, _record, _) = RecordingPin::new(Arc::new(MonotonicClock::default()));
    let door =
        Door::with_pins(&DoorConfig::default(), Arc::new(MonotonicClock::default()), Box::new(pin), None).unwrap();
    let receipt = door.pulse(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(receipt.length, Duration::from_millis(20));
    assert_eq!(release_all(), 1);
}
