//! The node journal: door pulses, contact changes, forced and held-open doors, cameras going
//! online or offline, and audit events (who changed what), kept for the console's event log.
//! The outbox forgets an event once the broker has it, and a node without MQTT never sends it,
//! so each such event is also written here, from the outbox insert, in the same transaction.
//! No person's name is kept (a pulse says `by face`; the decision row beside it says who), so
//! `forget` has nothing to erase here. Bounded: the oldest rows go past [`MAX_ROWS`].

use anyhow::Result;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::Store;
use crate::act::OutboxEvent;

/// Rows kept (about 200 bytes each).
pub const MAX_ROWS: i64 = 200_000;

/// The kinds a journal row has, for the event log's filter.
pub const KINDS: [&str; 9] =
    ["pulse", "open", "closed", "held_open", "forced", "stalled", "camera_online", "camera_offline", "audit"];

/// One journal row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JournalEntry {
    pub id: i64,
    pub at: Timestamp,
    pub kind: String,
    /// The door, the camera, or the actor of an audit event.
    pub subject: String,
    pub detail: String,
}

/// Which rows [`Store::journal`] returns; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalFilter {
    pub kind: Option<String>,
    pub subject: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// What the journal keeps of an outbox event (kind, subject, detail), or `None` for events it
/// does not keep (decisions are in `events`; presence, heartbeats and snapshots are not history).
fn entry_of(event: &OutboxEvent) -> Option<(Timestamp, String, String, String)> {
    let topic = event.topic.as_str();
    let keep = topic == "audit"
        || (topic.starts_with("door/") && (topic.ends_with("/event") || topic.ends_with("/contact")))
        || (topic.starts_with("camera/") && topic.ends_with("/state"));
    if !keep {
        return None;
    }
    let body: Value = serde_json::from_slice(&event.payload).ok()?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let at = text("time").parse::<Timestamp>().unwrap_or_else(|_| Timestamp::now());
    let kind = text("kind");
    let (kind, subject, detail) = if topic == "audit" {
        let ok = body.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let detail = match (ok, body.get("error").and_then(Value::as_str)) {
            (true, _) => format!("{} via {}: ok", text("command"), text("via")),
            (false, e) => format!("{} via {}: refused: {}", text("command"), text("via"), e.unwrap_or("")),
        };
        ("audit".to_string(), text("actor"), detail)
    } else if topic.starts_with("camera/") {
        let state = if kind == "online" { "camera_online" } else { "camera_offline" };
        let fps = body.get("fps").and_then(Value::as_f64).map(|f| format!(" at {f:.1} fps")).unwrap_or_default();
        let reason = text("reason");
        let detail = if reason.is_empty() { format!("{kind}{fps}") } else { format!("{kind}{fps}: {reason}") };
        (state.to_string(), text("camera"), detail)
    } else {
        let detail = match kind.as_str() {
            "pulse" => format!(
                "relay pulsed {} ms by {}",
                body.get("pulse_ms").and_then(Value::as_u64).unwrap_or(0),
                text("by")
            ),
            "held_open" => {
                format!("held open {:.0} s", body.get("open_s").and_then(Value::as_f64).unwrap_or(0.0))
            }
            "forced" => "opened without a pulse (forced)".to_string(),
            "stalled" => "relay did not release (stalled)".to_string(),
            other => format!("contact {other}"),
        };
        (kind, text("door"), detail)
    };
    let cut = |s: String| s.chars().take(500).collect::<String>();
    Some((at, cut(kind), cut(subject), cut(detail)))
}

/// Writes the journal rows of `events` (called by the outbox insert, inside its transaction).
pub(super) fn record(tx: &Transaction<'_>, events: &[OutboxEvent]) -> Result<()> {
    let mut wrote = false;
    for event in events {
        if let Some((at, kind, subject, detail)) = entry_of(event) {
            // A camera's state is re-published every status interval: keep only the changes.
            if kind.starts_with("camera_") {
                let last: Option<String> = tx
                    .prepare_cached(
                        "SELECT kind FROM journal WHERE subject = ?1 AND kind LIKE 'camera_%' ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row([&subject], |r| r.get(0))
                    .optional()?;
                if last.as_deref() == Some(kind.as_str()) {
                    continue;
                }
            }
            tx.prepare_cached("INSERT INTO journal (at_ms, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![at.as_millisecond(), kind, subject, detail])?;
            wrote = true;
        }
    }
    if wrote {
        tx.prepare_cached("DELETE FROM journal WHERE id <= (SELECT max(id) FROM journal) - ?1")?.execute([MAX_ROWS])?;
    }
    Ok(())
}

impl Store {
    /// The newest journal rows matching `filter`, newest first.
    pub fn journal(&self, filter: &JournalFilter, limit: usize) -> Result<Vec<JournalEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at_ms, kind, subject, detail FROM journal \
             WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR subject = ?2 COLLATE NOCASE) \
             AND (?3 IS NULL OR at_ms >= ?3) AND (?4 IS NULL OR at_ms < ?4) ORDER BY at_ms DESC, id DESC LIMIT ?5",
        )?;
        let rows = stmt.query_map(
            params![
                filter.kind,
                filter.subject,
                filter.from.map(|t| t.as_millisecond()),
                filter.to.map(|t| t.as_millisecond()),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_ms, kind, subject, detail) = row?;
            let at = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
            out.push(JournalEntry { id, at, kind, subject, detail });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::events::{AuditInfo, CameraState, DoorKind, EventBuilder, PersonRef};

    #[test]
    fn door_camera_and_audit_events_are_journalled_without_names_and_filtered() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let b = EventBuilder::new("n1");
        let at = Timestamp::from_second(1_767_000_000).unwrap();
        let ann = PersonRef { id: 7, name: "Ann Secret".into(), role: "employee".into() };
        let audit = AuditInfo {
            actor: "alice".into(),
            via: "web".into(),
            command: "enroll".into(),
            ok: false,
            error: Some("no face".into()),
        };
        let camera = CameraState {
            camera: "front".into(),
            location: "hall".into(),
            online: false,
            reason: Some("no frame for 5 s".into()),
            fps: None,
        };
        s.enqueue(&[
            b.pulse_for("main", 3000, &ann, at),
            b.door("main", &DoorKind::Forced, at),
            b.door("main", &DoorKind::HeldOpen { seconds: 31.0 }, at),
            b.camera_state(&camera, at),
            b.camera_state(&camera, at),
            b.audit(&audit, at),
            b.face_presence("front", 1, at),
        ])
        .unwrap();
        let all = s.journal(&JournalFilter::default(), 100).unwrap();
        let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds.len(), 5, "face presence is not history, a repeated camera state is kept once: {kinds:?}");
        for k in ["pulse", "forced", "held_open", "camera_offline", "audit"] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
        assert!(all.iter().all(|e| !e.detail.contains("Ann") && !e.subject.contains("Ann")), "{all:?}");
        let audit = s.journal(&JournalFilter { kind: Some("audit".into()), ..Default::default() }, 10).unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].subject, "alice");
        assert!(audit[0].detail.contains("refused: no face"), "{}", audit[0].detail);
        let later = JournalFilter { from: Some(at + jiff::SignedDuration::from_secs(1)), ..Default::default() };
        assert!(s.journal(&later, 10).unwrap().is_empty(), "date filter");
        let front = s.journal(&JournalFilter { subject: Some("FRONT".into()), ..Default::default() }, 10).unwrap();
        assert_eq!(front.len(), 1);
        assert!(front[0].detail.contains("no frame for 5 s"));
    }

    #[test]
    fn a_learnt_template_is_on_the_record_with_the_camera_and_person_id_but_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let at = Timestamp::from_second(1_767_000_000).unwrap();
        let event = EventBuilder::new("n1").template_learnt("front", 7, 2, 5, at);
        let body: serde_json::Value = serde_json::from_slice(&event.payload).unwrap();
        assert_eq!(
            (body["person_id"].as_i64(), body["learnt"].as_u64(), body["cap"].as_u64()),
            (Some(7), Some(2), Some(5))
        );
        assert_eq!(event.topic, "audit");
        s.enqueue(&[event]).unwrap();
        let audit = s.journal(&JournalFilter { kind: Some("audit".into()), ..Default::default() }, 10).unwrap();
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0].subject, "auto_update");
        assert!(
            audit[0].detail.contains("learn_template via camera front (person #7, learnt 2 of 5): ok"),
            "{}",
            audit[0].detail
        );
    }
}
