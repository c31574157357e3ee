//! The Linux GPIO character device driver (`/dev/gpiochipN`, via the `gpiocdev` crate): Jetson
//! and any Linux board. Active-low wiring is set on the line, so the kernel inverts the level.

use anyhow::{Result, anyhow};
use gpiocdev::Request;
use gpiocdev::line::Value;

use super::config::RelayConfig;
use super::{InputPin, OutputPin};

/// Consumer label shown by `gpioinfo` next to the lines facegate holds.
const CONSUMER: &str = "facegate";

/// One requested line: an output (relay) or an input (contact).
pub struct GpiocdevPin {
    request: Request,
    line: u32,
}

impl GpiocdevPin {
    /// Requests the line as an output, released from the first instant.
    pub fn output(pin: &RelayConfig) -> Result<GpiocdevPin> {
        GpiocdevPin::request(pin, true)
    }

    pub fn input(pin: &RelayConfig) -> Result<GpiocdevPin> {
        GpiocdevPin::request(pin, false)
    }

    fn request(pin: &RelayConfig, output: bool) -> Result<GpiocdevPin> {
        let mut builder = Request::builder();
        builder.on_chip(&pin.chip).with_consumer(CONSUMER).with_line(pin.line);
        if pin.active_low {
            builder.as_active_low();
        }
        if output {
            builder.as_output(Value::Inactive);
        } else {
            builder.as_input();
        }
        let request = builder.request().map_err(|e| explain(&e.to_string(), pin))?;
        Ok(GpiocdevPin { request, line: pin.line })
    }
}

impl OutputPin for GpiocdevPin {
    fn set(&mut self, energised: bool) -> Result<()> {
        let value = if energised { Value::Active } else { Value::Inactive };
        self.request.set_value(self.line, value).map_err(|e| anyhow!("writing GPIO line {}: {e}", self.line))
    }
}

impl InputPin for GpiocdevPin {
    fn read(&mut self) -> Result<bool> {
        let value = self.request.value(self.line).map_err(|e| anyhow!("reading GPIO line {}: {e}", self.line))?;
        Ok(value == Value::Active)
    }
}

/// The OS error number in a message ending in `(os error N)`, as gpiocdev reports them.
fn os_error(message: &str) -> Option<i32> {
    let (_, tail) = message.rsplit_once("(os error ")?;
    tail.trim_end_matches(')').parse().ok()
}

/// Turns a failed line request into a message that says how to fix it.
fn explain(message: &str, pin: &RelayConfig) -> anyhow::Error {
    let chip = pin.chip.display();
    let line = pin.line;
    let hint = match os_error(message) {
        Some(2 | 19) => format!("there is no GPIO chip at {chip}: list the chips with `gpiodetect` and set `chip`"),
        Some(1 | 13) => format!(
            "no permission to use {chip}: add the facegate user to the gpio group \
             (`sudo usermod -aG gpio facegate`, then restart the service)"
        ),
        Some(16) => format!("line {line} is used by another program: see which with `gpioinfo {chip}`"),
        Some(22) => format!("line {line} does not exist on {chip}: list its lines with `gpioinfo {chip}`"),
        _ if message.contains("not a") => {
            format!("{chip} is not a GPIO chip: list the chips with `gpiodetect` and set `chip`")
        }
        _ => format!("check `chip` and `line` with `gpiodetect` and `gpioinfo {chip}`"),
    };
    anyhow!("GPIO {chip} line {line}: {message}; {hint}")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::act::door::Driver;

    fn pin(chip: &str, line: u32) -> RelayConfig {
        RelayConfig { driver: Driver::Gpiocdev, chip: PathBuf::from(chip), line, active_low: false }
    }

    #[test]
    fn os_errors_are_read_from_messages() {
        assert_eq!(os_error("Device or resource busy (os error 16)"), Some(16));
        assert_eq!(os_error("no number here"), None);
    }

    #[test]
    fn each_failure_names_its_fix() {
        for (code, needle) in [
            (13, "add the facegate user to the gpio group"),
            (16, "line 17 is used by another program: see which with `gpioinfo"),
            (22, "line 17 does not exist"),
            (2, "gpiodetect"),
        ] {
            let message = std::io::Error::from_raw_os_error(code).to_string();
            let err = explain(&message, &pin("/dev/gpiochip0", 17)).to_string();
            assert!(err.contains(needle), "{code}: {err}");
        }
    }

    /// The real driver against this machine, which has no GPIO: a missing chip and a character
    /// device that is not a GPIO chip both fail with a fix in the message.
    #[test]
    fn requests_on_missing_or_wrong_devices_fail_with_a_fix() {
        let err = GpiocdevPin::output(&pin("/dev/gpiochip-facegate-missing", 17)).err().unwrap().to_string();
        assert!(err.contains("gpiodetect") && err.contains("gpiochip-facegate-missing"), "{err}");
        let err = GpiocdevPin::input(&pin("/dev/null", 3)).err().unwrap().to_string();
        assert!(err.contains("is not a GPIO chip"), "{err}");
    }
}
