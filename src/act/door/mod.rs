//! The door relay and the door contact.
//!
//! The rules (pulse length, the hard cap on open time, stall detection, contact states) live
//! in the pure state machine [`DoorLogic`]; [`Door`] runs one per door on its own thread and
//! writes the result to a pin. Pins are the only hardware edge: [`OutputPin`] and [`InputPin`]
//! take logical levels, and each driver (`dry_run`, `gpiocdev`, `rppal`) handles active-low
//! wiring itself, so nothing above the drivers knows about it.
//!
//! Fail secure: the relay is released on drop, by [`release_all`] (SIGTERM/SIGINT), by the
//! hook of [`install_panic_release`] on a panic, and when the decision loop stops calling
//! [`Door::heartbeat`].

pub mod config;
mod dry_run;
mod failsafe;
#[cfg(feature = "gpiocdev")]
mod gpiocdev;
pub mod logic;
#[cfg(feature = "rpi")]
mod rppal;
pub mod testing;
mod worker;

use anyhow::{Result, bail};

pub use config::{ContactConfig, DoorConfig, Driver, RelayConfig, validate_doors};
pub use failsafe::{install_panic_release, release_all};
pub use logic::{ContactState, DoorEventKind, DoorLogic, DoorTimings, PulseRefused, ReleaseReason};
pub use worker::{Door, DoorEvent, DoorState, PulseReceipt};

/// A pin driving the relay. `true` = energised (the lock's power flows), in logical terms:
/// the driver turns it into LOW for an active-low board.
pub trait OutputPin: Send {
    fn set(&mut self, energised: bool) -> Result<()>;
}

/// A pin reading the door contact. `true` = the door is open, in logical terms.
pub trait InputPin: Send {
    fn read(&mut self) -> Result<bool>;
}

/// A short description of a pin for logs and the CLI, e.g. `gpiocdev /dev/gpiochip0 line 17`.
pub fn describe_pin(pin: &RelayConfig) -> String {
    let low = if pin.active_low { ", active low" } else { "" };
    match pin.driver {
        Driver::DryRun => "dry run (no hardware)".to_string(),
        Driver::Gpiocdev => format!("gpiocdev {} line {}{low}", pin.chip.display(), pin.line),
        Driver::Rppal => format!("rppal BCM GPIO {}{low}", pin.line),
    }
}

/// Opens the relay's output pin with the configured driver, released.
pub fn open_output(pin: &RelayConfig, door: &str) -> Result<Box<dyn OutputPin>> {
    match pin.driver {
        Driver::DryRun => Ok(Box::new(dry_run::DryRunRelay::new(door))),
        #[cfg(feature = "gpiocdev")]
        Driver::Gpiocdev => Ok(Box::new(gpiocdev::GpiocdevPin::output(pin)?)),
        #[cfg(feature = "rpi")]
        Driver::Rppal => Ok(Box::new(rppal::RppalOutput::open(pin)?)),
        #[allow(unreachable_patterns)]
        other => missing_driver(other, door),
    }
}

/// Opens a door contact's input pin with the configured driver.
pub fn open_input(pin: &RelayConfig, door: &str) -> Result<Box<dyn InputPin>> {
    match pin.driver {
        Driver::DryRun => Ok(Box::new(dry_run::DryRunContact)),
        #[cfg(feature = "gpiocdev")]
        Driver::Gpiocdev => Ok(Box::new(gpiocdev::GpiocdevPin::input(pin)?)),
        #[cfg(feature = "rpi")]
        Driver::Rppal => Ok(Box::new(rppal::RppalInput::open(pin)?)),
        #[allow(unreachable_patterns)]
        other => missing_driver(other, door),
    }
}

#[allow(dead_code)]
fn missing_driver<T>(driver: Driver, door: &str) -> Result<T> {
    let feature = match driver {
        Driver::Rppal => "rpi",
        _ => driver.as_str(),
    };
    bail!(
        "door `{door}` uses the {} driver, but this facegate was built without it: \
         rebuild with `cargo build --release --features {feature}`",
        driver.as_str()
    )
}
