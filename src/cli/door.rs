//! `facegate door test`: pulses a configured relay once, so an installer can check the wiring
//! (relay clicks, lock opens, contact reports) without a camera or a face.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::act::door::{ContactState, Door, DoorConfig, DoorEventKind, describe_pin};
use crate::config::Config;
use crate::decide::clock::{Clock, MonotonicClock};

#[derive(Debug, Args)]
pub struct DoorArgs {
    #[command(subcommand)]
    pub command: DoorCommand,
}

#[derive(Debug, Subcommand)]
pub enum DoorCommand {
    /// Pulse a configured relay once; prints what it did and the door contact before and after.
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Which `[[door]]` (by name); needed when several are configured.
    #[arg(long, value_name = "NAME")]
    pub door: Option<String>,
    /// Pulse length in milliseconds (default: the door's pulse_ms; capped at max_open_ms).
    #[arg(long, value_name = "N")]
    pub ms: Option<u64>,
}

pub fn run(config: &Config, args: DoorArgs) -> Result<i32> {
    match args.command {
        DoorCommand::Test(args) => test(config, args),
    }
}

fn pick<'a>(doors: &'a [DoorConfig], name: Option<&str>) -> Result<&'a DoorConfig> {
    let names = || doors.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ");
    match (name, doors) {
        (_, []) => {
            bail!("no door is configured: add a [[door]] table to the file given with --config (see docs/door.md)")
        }
        (None, [only]) => Ok(only),
        (None, _) => bail!("several doors are configured ({}): choose one with --door NAME", names()),
        (Some(name), _) => doors
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| anyhow::anyhow!("no door named `{name}` in the config: the doors are {}", names())),
    }
}

fn contact_text(reading: Option<Result<ContactState>>) -> String {
    match reading {
        None => "no contact configured".into(),
        Some(Ok(ContactState::Open)) => "open".into(),
        Some(Ok(ContactState::Closed)) => "closed".into(),
        Some(Err(e)) => format!("cannot read: {e:#}"),
    }
}

fn test(config: &Config, args: TestArgs) -> Result<i32> {
    let door_config = pick(&config.doors, args.door.as_deref())?;
    let clock = Arc::new(MonotonicClock::default());
    let door = Door::open(door_config, clock.clone())?;
    println!("door {}: relay {}", door_config.name, describe_pin(&door_config.relay));
    if let Some(contact) = &door_config.contact {
        println!("door {}: contact {}", door_config.name, describe_pin(&contact.pin()));
    }
    println!("contact before: {}", contact_text(door.read_contact()));
    let events = door.events();

    door.heartbeat();
    let asked = clock.now();
    let receipt = door.pulse(args.ms.map(Duration::from_millis))?;
    let capped = args.ms.is_some_and(|ms| ms > door_config.max_open_ms);
    println!(
        "relay ENERGISED for {} ms{} ({} µs after the request)",
        receipt.length.as_millis(),
        if capped { " (capped at max_open_ms)" } else { "" },
        receipt.started.saturating_sub(asked).as_micros()
    );

    // Keep the door alive (heartbeats) and report what the contact does until the release.
    let deadline = receipt.started + receipt.length + Duration::from_secs(2);
    let released = loop {
        door.heartbeat();
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => match event.kind {
                DoorEventKind::Released { reason } => break Some((event.at, reason)),
                DoorEventKind::Pulse { .. } => {}
                other => println!("  +{} ms: {other:?}", event.at.saturating_sub(receipt.started).as_millis()),
            },
            Err(_) if clock.now() > deadline => break None,
            Err(_) => {}
        }
    };
    let Some((at, reason)) = released else {
        bail!("door {}: the relay did not report its release in time; check the log", door_config.name);
    };
    println!("relay released after {} ms ({})", at.saturating_sub(receipt.started).as_millis(), reason.as_str());
    println!("contact after: {}", contact_text(door.read_contact()));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn a_dry_run_door_is_pulsed_and_released() {
        let c = config("[[door]]\nname = \"front\"\ncontact = { driver = \"dry_run\" }\n");
        let args = TestArgs { door: None, ms: Some(30) };
        assert_eq!(test(&c, args).unwrap(), 0);
    }

    #[test]
    fn the_door_to_test_must_be_clear() {
        let err = test(&Config::default(), TestArgs { door: None, ms: None }).unwrap_err().to_string();
        assert!(err.contains("[[door]]"), "{err}");
        let two = config("[[door]]\nname = \"front\"\n[[door]]\nname = \"back\"\n");
        let err = test(&two, TestArgs { door: None, ms: None }).unwrap_err().to_string();
        assert!(err.contains("front, back") && err.contains("--door"), "{err}");
        let err = test(&two, TestArgs { door: Some("side".into()), ms: None }).unwrap_err().to_string();
        assert!(err.contains("`side`") && err.contains("front, back"), "{err}");
        let err = test(&two, TestArgs { door: Some("back".into()), ms: Some(0) }).unwrap_err().to_string();
        assert!(err.contains("0 ms"), "{err}");
    }

    #[cfg(feature = "gpiocdev")]
    #[test]
    fn a_missing_gpio_chip_is_reported_with_the_fix() {
        let c = config(
            "[[door]]\nname = \"front\"\nrelay = { driver = \"gpiocdev\", chip = \"/dev/gpiochip-none\", line = 17 }\n",
        );
        let err = format!("{:#}", test(&c, TestArgs { door: None, ms: Some(10) }).unwrap_err());
        assert!(err.contains("door `front`") && err.contains("gpiodetect"), "{err}");
    }
}
