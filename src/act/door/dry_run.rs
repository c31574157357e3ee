//! The log-only driver: what the demo and a fresh install use, so no pin is driven until a
//! real driver is configured.

use anyhow::Result;

use super::{InputPin, OutputPin};

/// A relay that only logs.
#[derive(Debug)]
pub struct DryRunRelay {
    door: String,
}

impl DryRunRelay {
    pub fn new(door: &str) -> DryRunRelay {
        DryRunRelay { door: door.to_string() }
    }
}

impl OutputPin for DryRunRelay {
    fn set(&mut self, energised: bool) -> Result<()> {
        if energised {
            log::info!("door {}: relay ENERGISED (dry run)", self.door);
        } else {
            log::info!("door {}: relay released (dry run)", self.door);
        }
        Ok(())
    }
}

/// A contact that always reads "closed".
#[derive(Debug)]
pub struct DryRunContact;

impl InputPin for DryRunContact {
    fn read(&mut self) -> Result<bool> {
        Ok(false)
    }
}
