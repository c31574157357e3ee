//! The act stage's side of the unknown-faces inbox: keeps the face an `unknown` decision carries
//! (only when `[web] unknown_inbox` is on) and erases faces past `unknown_retention_days` at start
//! and then hourly (always, so faces kept before the inbox was turned off still expire).
//! Failures are logged and never touch the decision or the door.

use std::time::{Duration, Instant};

use crate::act::store::{Store, UnknownEvidence};
use crate::web::WebConfig;

/// How often expired faces are looked for.
const EXPIRY_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Inbox {
    keep: bool,
    max_faces: u64,
    retention_days: u32,
    last_expiry: Option<Instant>,
}

impl Inbox {
    pub fn new(web: &WebConfig) -> Inbox {
        Inbox {
            keep: web.unknown_inbox,
            max_faces: u64::from(web.unknown_max_faces),
            retention_days: web.unknown_retention_days,
            last_expiry: None,
        }
    }

    /// Stores one unknown face (called after its decision is on disk).
    pub fn keep(&self, store: &mut Store, at: jiff::Timestamp, camera: &str, face: &UnknownEvidence) {
        if !self.keep {
            return;
        }
        match store.add_unknown_face(at, camera, face, self.max_faces) {
            Ok(added) => {
                log::info!("inbox: unknown face #{} on {camera} kept in group {}", added.id, added.group);
                if added.dropped > 0 {
                    log::warn!(
                        "inbox: {} oldest unknown face(s) dropped (web.unknown_max_faces = {}); label or dismiss them",
                        added.dropped,
                        self.max_faces
                    );
                }
            }
            Err(e) => log::warn!("inbox: unknown face on {camera} not kept: {e:#}"),
        }
    }

    /// Erases faces older than the retention period when due (first call: at once).
    pub fn expire_if_due(&mut self, store: &mut Store, now: jiff::Timestamp) {
        if self.last_expiry.is_some_and(|t| t.elapsed() < EXPIRY_EVERY) {
            return;
        }
        self.last_expiry = Some(Instant::now());
        match store.expire_unknown_faces(now, self.retention_days) {
            Ok(0) => {}
            Ok(n) => log::info!(
                "inbox: {n} unknown face(s) older than {} days erased (web.unknown_retention_days)",
                self.retention_days
            ),
            Err(e) => log::warn!("inbox: could not erase expired unknown faces: {e:#}"),
        }
    }
}
