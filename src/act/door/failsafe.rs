//! Releasing every relay in the process at once: on SIGTERM/SIGINT ([`release_all`]) and on a
//! panic in any thread ([`install_panic_release`]). Doors register a weak handle when they
//! start, so the registry never keeps a dropped door alive.

use std::sync::{Arc, Mutex, MutexGuard, Once, TryLockError, Weak};
use std::time::{Duration, Instant};

use super::logic::ReleaseReason;
use super::worker::Shared;

static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// How long the panic hook waits for a relay lock held by another thread.
const HOOK_PATIENCE: Duration = Duration::from_millis(200);

pub(super) fn register(door: &Arc<Shared>) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.retain(|d| d.strong_count() > 0);
    live.push(Arc::downgrade(door));
}

fn live_doors(live: MutexGuard<'_, Vec<Weak<Shared>>>) -> Vec<Arc<Shared>> {
    live.iter().filter_map(Weak::upgrade).collect()
}

/// Releases every door's relay for good (later pulses are refused). The service calls this on
/// SIGTERM/SIGINT before it winds down. Returns how many doors were released.
pub fn release_all() -> usize {
    let doors = live_doors(LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for door in &doors {
        door.relay().lock().unwrap_or_else(|e| e.into_inner()).shut(&door.name, ReleaseReason::Shutdown);
        log::info!("door {}: released for shutdown", door.name);
    }
    doors.len()
}

/// Installs (once) a panic hook that releases every live relay, then runs the previous hook.
/// A door released this way refuses pulses until facegate restarts.
pub fn install_panic_release() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            release_on_panic();
            previous(info);
        }));
    });
}

/// Never blocks for long: the panicking thread may itself hold a lock.
fn release_on_panic() {
    let live = match LIVE.try_lock() {
        Ok(live) => live,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => {
            eprintln!("facegate: panic while the door registry was busy: relays are left to their threads");
            return;
        }
    };
    for door in live_doors(live) {
        let deadline = Instant::now() + HOOK_PATIENCE;
        loop {
            match door.relay().try_lock() {
                Ok(mut relay) => break relay.shut(&door.name, ReleaseReason::Panic),
                Err(TryLockError::Poisoned(e)) => break e.into_inner().shut(&door.name, ReleaseReason::Panic),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(TryLockError::WouldBlock) => {
                    eprintln!("facegate: door {}: relay busy during a panic, could not release it", door.name);
                    break;
                }
            }
        }
        eprintln!("facegate: door {}: relay released because of a panic", door.name);
    }
}
