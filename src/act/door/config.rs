//! The `[[door]]` section of the config file: which pin drives the relay, how long a pulse
//! lasts, the hard cap on open time, and the optional door contact.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Which driver talks to a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// Logs what it would do; touches no hardware. The default, so a fresh install never
    /// drives a pin nobody configured.
    #[default]
    DryRun,
    /// The Linux GPIO character device (`/dev/gpiochipN`): Jetson and any Linux board.
    Gpiocdev,
    /// Raspberry Pi GPIO by BCM number (build with `--features rpi`).
    Rppal,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::DryRun => "dry_run",
            Driver::Gpiocdev => "gpiocdev",
            Driver::Rppal => "rppal",
        }
    }
}

/// Where a pin is: the driver, the chip (gpiocdev only) and the line (BCM number for rppal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    pub driver: Driver,
    /// GPIO character device, for the gpiocdev driver.
    pub chip: PathBuf,
    /// Line offset on the chip (gpiocdev) or BCM GPIO number (rppal).
    pub line: u32,
    /// The relay board energises its coil when the pin is LOW (most cheap opto-isolated boards).
    pub active_low: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig { driver: Driver::DryRun, chip: PathBuf::from("/dev/gpiochip0"), line: 17, active_low: false }
    }
}

/// The door contact (reed switch): a pin that reads "open" when the door is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactConfig {
    pub driver: Driver,
    pub chip: PathBuf,
    pub line: u32,
    /// The pin reads LOW when the door is open.
    pub active_low: bool,
    /// Report "held open" once the door stays open this long.
    pub held_open_ms: u64,
    /// How often the contact is read.
    pub poll_ms: u64,
}

impl Default for ContactConfig {
    fn default() -> Self {
        ContactConfig {
            driver: Driver::DryRun,
            chip: PathBuf::from("/dev/gpiochip0"),
            line: 27,
            active_low: false,
            held_open_ms: 30_000,
            poll_ms: 50,
        }
    }
}

impl ContactConfig {
    /// The pin part, shared with the relay's drivers.
    pub fn pin(&self) -> RelayConfig {
        RelayConfig { driver: self.driver, chip: self.chip.clone(), line: self.line, active_low: self.active_low }
    }
}

/// One door: a relay, its timings and an optional contact. TOML: `[[door]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoorConfig {
    /// Name used in logs, events and `facegate door test --door NAME`.
    pub name: String,
    pub relay: RelayConfig,
    /// How long a granted face keeps the relay energised.
    pub pulse_ms: u64,
    /// Hard cap on continuous energised time, whatever pulses are requested.
    pub max_open_ms: u64,
    /// Release the relay and refuse pulses when the decision loop has not sent a heartbeat this long.
    pub stall_timeout_ms: u64,
    pub contact: Option<ContactConfig>,
}

impl Default for DoorConfig {
    fn default() -> Self {
        DoorConfig {
            name: "door".into(),
            relay: RelayConfig::default(),
            pulse_ms: 3000,
            max_open_ms: 10_000,
            stall_timeout_ms: 5000,
            contact: None,
        }
    }
}

/// Longest pulse or cap accepted: a door relay energised for more than an hour is a config mistake.
const MAX_MS: u64 = 3_600_000;

impl DoorConfig {
    pub fn pulse(&self) -> Duration {
        Duration::from_millis(self.pulse_ms)
    }

    pub fn max_open(&self) -> Duration {
        Duration::from_millis(self.max_open_ms)
    }

    pub fn stall_timeout(&self) -> Duration {
        Duration::from_millis(self.stall_timeout_ms)
    }

    /// Checks one door; `key` is how errors name it, e.g. `door[0]`.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            bail!("{key}.name must not be empty: give each door a name, e.g. name = \"front\"");
        }
        if self.pulse_ms == 0 || self.pulse_ms > MAX_MS {
            bail!("{key}.pulse_ms must be between 1 and {MAX_MS} (got {})", self.pulse_ms);
        }
        if self.max_open_ms > MAX_MS {
            bail!("{key}.max_open_ms must be at most {MAX_MS} (got {})", self.max_open_ms);
        }
        if self.pulse_ms > self.max_open_ms {
            bail!(
                "{key}.pulse_ms ({}) must not exceed {key}.max_open_ms ({}): raise max_open_ms or shorten the pulse",
                self.pulse_ms,
                self.max_open_ms
            );
        }
        if !(100..=MAX_MS).contains(&self.stall_timeout_ms) {
            bail!("{key}.stall_timeout_ms must be between 100 and {MAX_MS} (got {})", self.stall_timeout_ms);
        }
        if let Some(contact) = &self.contact {
            if !(1..=MAX_MS).contains(&contact.held_open_ms) {
                bail!("{key}.contact.held_open_ms must be between 1 and {MAX_MS} (got {})", contact.held_open_ms);
            }
            if !(1..=1000).contains(&contact.poll_ms) {
                bail!("{key}.contact.poll_ms must be between 1 and 1000 (got {})", contact.poll_ms);
            }
            if contact.driver == self.relay.driver
                && contact.driver != Driver::DryRun
                && contact.chip == self.relay.chip
                && contact.line == self.relay.line
            {
                bail!("{key}.contact.line {} is the relay's line: the contact needs its own input pin", contact.line);
            }
        }
        Ok(())
    }
}

/// Checks every `[[door]]`, and that names are unique (events and the CLI find doors by name).
pub fn validate_doors(doors: &[DoorConfig]) -> Result<()> {
    for (i, door) in doors.iter().enumerate() {
        door.validate(&format!("door[{i}]"))?;
        if let Some(j) = doors[..i].iter().position(|d| d.name == door.name) {
            bail!("door[{i}].name `{}` is already used by door[{j}]: door names must be unique", door.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doors {
        door: Vec<DoorConfig>,
    }

    fn parse(text: &str) -> Result<Vec<DoorConfig>> {
        let doors: Doors = toml::from_str(text)?;
        validate_doors(&doors.door)?;
        Ok(doors.door)
    }

    #[test]
    fn a_full_door_reads_and_defaults_fill_the_rest() {
        let doors = parse(
            r#"
            [[door]]
            name = "front"
            relay = { driver = "gpiocdev", chip = "/dev/gpiochip4", line = 17, active_low = true }
            pulse_ms = 2000
            contact = { driver = "gpiocdev", line = 27, held_open_ms = 60000 }

            [[door]]
            name = "back"
            "#,
        )
        .unwrap();
        let front = &doors[0];
        assert_eq!(front.relay.driver, Driver::Gpiocdev);
        assert_eq!(front.relay.chip, PathBuf::from("/dev/gpiochip4"));
        assert!(front.relay.active_low);
        assert_eq!((front.pulse_ms, front.max_open_ms, front.stall_timeout_ms), (2000, 10_000, 5000));
        let contact = front.contact.as_ref().unwrap();
        assert_eq!((contact.line, contact.held_open_ms, contact.poll_ms), (27, 60_000, 50));
        assert_eq!(doors[1].relay.driver, Driver::DryRun, "dry run unless a driver is named");
        assert!(doors[1].contact.is_none());
    }

    #[test]
    fn mistakes_name_the_key() {
        for (text, needle) in [
            (
                "[[door]]\nname = \"a\"\npulse_ms = 20000\n",
                "door[0].pulse_ms (20000) must not exceed door[0].max_open_ms",
            ),
            ("[[door]]\npulse_ms = 0\n", "door[0].pulse_ms"),
            ("[[door]]\nstall_timeout_ms = 5\n", "door[0].stall_timeout_ms"),
            ("[[door]]\nname = \"\"\n", "door[0].name"),
            ("[[door]]\nname = \"a\"\n[[door]]\nname = \"a\"\n", "door[1].name `a` is already used"),
            ("[[door]]\ncontact = { poll_ms = 0 }\n", "door[0].contact.poll_ms"),
            ("[[door]]\nrelay = { pin = 17 }\n", "pin"),
            ("[[door]]\nrelay = { driver = \"sysfs\" }\n", "sysfs"),
            (
                "[[door]]\nrelay = { driver = \"gpiocdev\", line = 5 }\ncontact = { driver = \"gpiocdev\", line = 5 }\n",
                "door[0].contact.line 5 is the relay's line",
            ),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
