//! The Raspberry Pi driver (the `rppal` crate, BCM GPIO numbers; cargo feature `rpi`).
//! rppal has no active-low setting, so the level is inverted here.

use anyhow::{Result, anyhow};
use rppal::gpio::{self, Gpio};

use super::config::RelayConfig;
use super::{InputPin, OutputPin};

/// The relay output, released (and left released when dropped).
pub struct RppalOutput {
    pin: gpio::OutputPin,
    active_low: bool,
}

/// The contact input.
pub struct RppalInput {
    pin: gpio::InputPin,
    active_low: bool,
}

fn get(pin: &RelayConfig) -> Result<gpio::Pin> {
    let bcm = u8::try_from(pin.line).map_err(|_| anyhow!("BCM GPIO {} does not exist: use 0 to 27", pin.line))?;
    Gpio::new().and_then(|g| g.get(bcm)).map_err(|e| explain(e, bcm))
}

impl RppalOutput {
    pub fn open(pin: &RelayConfig) -> Result<RppalOutput> {
        let gpio = get(pin)?;
        // Released from the first instant: LOW, or HIGH on an active-low board.
        let mut out = if pin.active_low { gpio.into_output_high() } else { gpio.into_output_low() };
        // rppal would restore the pin's old mode on drop; keep driving "released" instead.
        out.set_reset_on_drop(false);
        Ok(RppalOutput { pin: out, active_low: pin.active_low })
    }
}

impl RppalInput {
    pub fn open(pin: &RelayConfig) -> Result<RppalInput> {
        Ok(RppalInput { pin: get(pin)?.into_input(), active_low: pin.active_low })
    }
}

impl OutputPin for RppalOutput {
    fn set(&mut self, energised: bool) -> Result<()> {
        if energised != self.active_low {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

impl InputPin for RppalInput {
    fn read(&mut self) -> Result<bool> {
        Ok(self.pin.is_high() != self.active_low)
    }
}

fn explain(e: gpio::Error, bcm: u8) -> anyhow::Error {
    let hint = match &e {
        gpio::Error::PermissionDenied(_) => {
            "add the facegate user to the gpio group (`sudo usermod -aG gpio facegate`, then restart the service)"
                .to_string()
        }
        gpio::Error::PinUsed(_) => format!("BCM GPIO {bcm} is used by another program: see which with `pinctrl`"),
        gpio::Error::PinNotAvailable(_) => format!("BCM GPIO {bcm} does not exist on this board: use 0 to 27"),
        gpio::Error::UnknownModel => {
            "this is not a Raspberry Pi rppal knows: use driver = \"gpiocdev\" with the board's /dev/gpiochipN"
                .to_string()
        }
        _ => "check `line` (a BCM GPIO number) and that /dev/gpiomem exists".to_string(),
    };
    anyhow!("Raspberry Pi GPIO {bcm}: {e}; {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::door::Driver;

    /// Build machines are not Raspberry Pis: opening a pin must fail and say what to do.
    #[test]
    fn off_a_raspberry_pi_the_error_names_the_alternative() {
        let pin = RelayConfig { driver: Driver::Rppal, line: 17, ..RelayConfig::default() };
        let err = RppalOutput::open(&pin).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("gpiocdev") || err.contains("gpio group"), "{err}");
    }
}
