//! Pins for tests (no GPIO exists on build machines): an output that records every write with
//! its clock time, and an input the test sets by hand.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, bail};

use super::{InputPin, OutputPin};
use crate::decide::clock::Clock;

/// Every level written, with the clock time of the write.
pub type Writes = Arc<Mutex<Vec<(Duration, bool)>>>;

/// An output pin that records its writes and can be told to fail the next few.
pub struct RecordingPin {
    clock: Arc<dyn Clock>,
    writes: Writes,
    failures: Arc<AtomicUsize>,
}

impl RecordingPin {
    /// The pin, the shared record of its writes, and a counter of writes still to fail.
    pub fn new(clock: Arc<dyn Clock>) -> (RecordingPin, Writes, Arc<AtomicUsize>) {
        let writes = Writes::default();
        let failures = Arc::new(AtomicUsize::new(0));
        (RecordingPin { clock, writes: writes.clone(), failures: failures.clone() }, writes, failures)
    }
}

/// The writes so far (tolerates a lock poisoned by a panicking test thread).
pub fn writes(record: &Writes) -> MutexGuard<'_, Vec<(Duration, bool)>> {
    record.lock().unwrap_or_else(|e| e.into_inner())
}

impl OutputPin for RecordingPin {
    fn set(&mut self, energised: bool) -> Result<()> {
        let fail = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if fail {
            bail!("simulated pin write failure");
        }
        writes(&self.writes).push((self.clock.now(), energised));
        Ok(())
    }
}

/// A door contact the test opens and closes: `true` = door open.
#[derive(Clone, Default)]
pub struct ManualContact(pub Arc<AtomicBool>);

impl ManualContact {
    pub fn set_open(&self, open: bool) {
        self.0.store(open, Ordering::SeqCst);
    }
}

impl InputPin for ManualContact {
    fn read(&mut self) -> Result<bool> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}
