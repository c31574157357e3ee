//! The access log: every decision at a door, written with its outbox events in one durable
//! transaction, and the attendance report (first in / last out per person per day) built on it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use super::outbox::insert_outbox;
use super::{Store, write};
use crate::act::OutboxEvent;
use crate::vision::bbox::BBox;

/// What a decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A recognised person allowed in (the door opened).
    Granted,
    /// A recognised person refused (outside their schedule, or their role does not open doors).
    Denied,
    /// A face that matched nobody.
    Unknown,
    /// A watchlist match.
    Alert,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Granted, EventKind::Denied, EventKind::Unknown, EventKind::Alert];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Granted => "granted",
            EventKind::Denied => "denied",
            EventKind::Unknown => "unknown",
            EventKind::Alert => "alert",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| anyhow::anyhow!("unknown event kind `{s}`: use granted, denied, unknown or alert"))
    }
}

/// One decision at a door, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessEvent {
    /// When the deciding frame was captured (stored to the millisecond).
    pub at: Timestamp,
    pub camera: String,
    pub door: Option<String>,
    /// The person's id; becomes `None` if the person is removed later (the name stays).
    pub person_id: Option<i64>,
    /// The person's name at the time.
    pub person_name: Option<String>,
    pub kind: EventKind,
    pub reason: Option<String>,
    pub similarity: Option<f32>,
    pub margin: Option<f32>,
    /// Votes for the decided identity, out of `window` frames.
    pub votes: u32,
    pub window: u32,
    pub bbox: Option<BBox>,
    /// The liveness score that failed a `spoof_suspected` denial (0-1), kept with the row so the
    /// access log shows why a face that matched was refused; `None` otherwise.
    pub liveness: Option<f32>,
}

/// One person's attendance on one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayAttendance {
    pub person: String,
    pub date: Date,
    /// The first granted pass of the day.
    pub first_in: Timestamp,
    /// The last granted pass of the day (the same as `first_in` with one pass).
    pub last_out: Timestamp,
    pub passes: u32,
}

/// Which events [`Store::recent_events`] returns; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    pub kind: Option<EventKind>,
    pub camera: Option<String>,
    pub person: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

const EVENT_COLUMNS: &str = "id, at_ms, camera, door, person_id, person_name, kind, reason, similarity, margin, votes, vote_window, bbox, liveness";

fn event_from_row(row: &Row<'_>) -> Result<(i64, AccessEvent)> {
    let id: i64 = row.get(0)?;
    let at_ms: i64 = row.get(1)?;
    let kind: String = row.get(6)?;
    let bbox: Option<String> = row.get(12)?;
    let bbox = match bbox {
        Some(json) => Some(serde_json::from_str(&json).with_context(|| format!("event {id} has a damaged box"))?),
        None => None,
    };
    let event = AccessEvent {
        at: Timestamp::from_millisecond(at_ms).with_context(|| format!("event {id} has a damaged time"))?,
        camera: row.get(2)?,
        door: row.get(3)?,
        person_id: row.get(4)?,
        person_name: row.get(5)?,
        kind: kind.parse().with_context(|| format!("event {id} is damaged"))?,
        reason: row.get(7)?,
        similarity: row.get::<_, Option<f64>>(8)?.map(|v| v as f32),
        margin: row.get::<_, Option<f64>>(9)?.map(|v| v as f32),
        votes: row.get(10)?,
        window: row.get(11)?,
        bbox,
        liveness: row.get::<_, Option<f64>>(13)?.map(|v| v as f32),
    };
    Ok((id, event))
}

impl Store {
    /// Writes a decision and the outbox events that report it in ONE transaction; when this
    /// returns, both are on disk (`synchronous=FULL`), so the door may open. Returns the event id.
    /// A `person_id` removed meanwhile by another process is stored as `None` (the name stays).
    pub fn record_event(&mut self, event: &AccessEvent, outbox: &[OutboxEvent]) -> Result<i64> {
        let bbox = event.bbox.as_ref().map(serde_json::to_string).transpose()?;
        let cap = self.outbox_cap;
        let tx = write(&mut self.conn, &self.path)?;
        tx.execute(
            "INSERT INTO events (at_ms, at, camera, door, person_id, person_name, kind, reason, similarity, margin, \
             votes, vote_window, bbox, liveness) \
             VALUES (?1, ?2, ?3, ?4, (SELECT id FROM people WHERE id = ?5), ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                event.at.as_millisecond(),
                format!("{:.3}", event.at),
                event.camera,
                event.door,
                event.person_id,
                event.person_name,
                event.kind.as_str(),
                event.reason,
                event.similarity.map(f64::from),
                event.margin.map(f64::from),
                event.votes,
                event.window,
                bbox,
                event.liveness.filter(|v| v.is_finite()).map(|v| f64::from(v.clamp(0.0, 1.0)))
            ],
        )?;
        let id = tx.last_insert_rowid();
        insert_outbox(&tx, outbox, event.person_id, cap)?;
        tx.commit().with_context(|| format!("cannot commit an access event to {}", self.path.display()))?;
        Ok(id)
    }

    /// Events with `from <= at < to`, oldest first, at most `limit`.
    pub fn events(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<(i64, AccessEvent)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, id LIMIT ?3"
        ))?;
        let from = from.map_or(i64::MIN, |t| t.as_millisecond());
        let to = to.map_or(i64::MAX, |t| t.as_millisecond());
        let mut rows = stmt.query(params![from, to, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(event_from_row(row)?);
        }
        Ok(out)
    }

    /// The newest events first, matching `filter`, at most `limit` (the console's event log).
    pub fn recent_events(&self, filter: &EventFilter, limit: usize) -> Result<Vec<(i64, AccessEvent)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR camera = ?2) \
             AND (?3 IS NULL OR person_name = ?3 COLLATE NOCASE) AND at_ms >= ?4 AND at_ms < ?5 \
             ORDER BY at_ms DESC, id DESC LIMIT ?6"
        ))?;
        let from = filter.from.map_or(i64::MIN, |t| t.as_millisecond());
        let to = filter.to.map_or(i64::MAX, |t| t.as_millisecond());
        let kind = filter.kind.map(EventKind::as_str);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![kind, filter.camera, filter.person, from, to, limit])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(event_from_row(row)?);
        }
        Ok(out)
    }

    /// The event with this id.
    pub fn event(&self, id: i64) -> Result<Option<AccessEvent>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?;
        let mut rows = stmt.query([id])?;
        rows.next()?.map(|row| event_from_row(row).map(|(_, e)| e)).transpose()
    }

    /// First in / last out per person per local day (in `tz`) for the days `from..=to`, from the
    /// granted events of recognised people, by date then name. A person is named as they are
    /// now, or as they were at the time if they have been removed since.
    pub fn attendance(&self, from: Date, to: Date, tz: &TimeZone) -> Result<Vec<DayAttendance>> {
        let start = from.to_zoned(tz.clone())?.timestamp();
        let end = to.checked_add(1.day())?.to_zoned(tz.clone())?.timestamp();
        let mut stmt = self.conn.prepare(
            "SELECT e.at_ms, COALESCE(p.name, e.person_name) FROM events e LEFT JOIN people p ON p.id = e.person_id \
             WHERE e.kind = 'granted' AND e.at_ms >= ?1 AND e.at_ms < ?2 AND COALESCE(p.name, e.person_name) IS NOT NULL \
             ORDER BY e.at_ms",
        )?;
        let mut rows = stmt.query(params![start.as_millisecond(), end.as_millisecond()])?;
        let mut days: BTreeMap<(Date, String), DayAttendance> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let at = Timestamp::from_millisecond(row.get(0)?)?;
            let person: String = row.get(1)?;
            let date = at.to_zoned(tz.clone()).date();
            days.entry((date, person.clone()))
                .and_modify(|d| {
                    d.last_out = at;
                    d.passes += 1;
                })
                .or_insert(DayAttendance { person, date, first_in: at, last_out: at, passes: 1 });
        }
        Ok(days.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn event(at: &str, person: Option<(i64, &str)>, kind: EventKind) -> AccessEvent {
        AccessEvent {
            at: at.parse().unwrap(),
            camera: "front".into(),
            door: Some("main".into()),
            person_id: person.map(|p| p.0),
            person_name: person.map(|p| p.1.to_string()),
            kind,
            reason: None,
            similarity: Some(0.75),
            margin: Some(0.25),
            votes: 3,
            window: 5,
            bbox: Some(BBox { x1: 1.0, y1: 2.0, x2: 30.5, y2: 40.0, score: 0.99 }),
            liveness: None,
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(k.to_string().parse::<EventKind>().unwrap(), k);
        }
        assert!("maybe".parse::<EventKind>().unwrap_err().to_string().contains("granted"));
    }

    #[test]
    fn a_spoof_denial_keeps_its_liveness_score_in_the_row_and_the_json() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let mut spoof = event("2026-03-02T08:00:00Z", None, EventKind::Denied);
        spoof.reason = Some("spoof_suspected".into());
        spoof.liveness = Some(0.125);
        let id = s.record_event(&spoof, &[]).unwrap();
        let stored = s.event(id).unwrap().unwrap();
        assert_eq!(stored.liveness, Some(0.125));
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["liveness"], serde_json::json!(0.125));
        let recent = s.recent_events(&EventFilter::default(), 5).unwrap();
        assert_eq!(recent[0].1.liveness, Some(0.125));
        // Out-of-range or NaN scores never make the row fail (the door's decision must be logged).
        spoof.liveness = Some(1.5);
        let id = s.record_event(&spoof, &[]).unwrap();
        assert_eq!(s.event(id).unwrap().unwrap().liveness, Some(1.0));
        spoof.liveness = Some(f32::NAN);
        let id = s.record_event(&spoof, &[]).unwrap();
        assert_eq!(s.event(id).unwrap().unwrap().liveness, None);
    }

    #[test]
    fn events_round_trip_and_filter_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let ann = s.add_person("Ann", Default::default(), &Default::default()).unwrap();
        let a = event("2026-03-02T08:00:00.123Z", Some((ann, "Ann")), EventKind::Granted);
        let mut b = event("2026-03-02T09:00:00Z", None, EventKind::Unknown);
        b.bbox = None;
        b.similarity = None;
        b.reason = Some("below threshold".into());
        let ida = s.record_event(&a, &[]).unwrap();
        let idb = s.record_event(&b, &[]).unwrap();
        assert_eq!(s.events(None, None, 10).unwrap(), vec![(ida, a.clone()), (idb, b.clone())]);
        let later: Timestamp = "2026-03-02T08:30:00Z".parse().unwrap();
        assert_eq!(s.events(Some(later), None, 10).unwrap(), vec![(idb, b.clone())]);
        assert_eq!(s.events(None, Some(later), 10).unwrap(), vec![(ida, a.clone())]);
        assert_eq!(s.events(None, None, 1).unwrap().len(), 1);
        assert_eq!(s.event(idb).unwrap(), Some(b));

        // A person removed by another process: the event keeps the name, loses the id.
        s.remove_person("Ann").unwrap();
        let c = s.record_event(&a, &[]).unwrap();
        let stored = s.event(c).unwrap().unwrap();
        assert_eq!((stored.person_id, stored.person_name.as_deref()), (None, Some("Ann")));
        assert_eq!(s.event(ida).unwrap().unwrap().person_id, None, "ON DELETE SET NULL");
    }

    #[test]
    fn attendance_is_first_in_last_out_per_local_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let ann = s.add_person("Ann", Default::default(), &Default::default()).unwrap();
        let bob = s.add_person("Bob", Default::default(), &Default::default()).unwrap();
        let a = Some((ann, "Ann"));
        for (at, who, kind) in [
            ("2026-03-02T07:55:00Z", a, EventKind::Granted),
            ("2026-03-02T12:00:00Z", a, EventKind::Granted),
            ("2026-03-02T17:05:00Z", a, EventKind::Granted),
            ("2026-03-02T18:00:00Z", a, EventKind::Denied), // not a pass
            ("2026-03-02T10:00:00Z", None, EventKind::Granted), // nobody recognised
            // 23:30 UTC on the 2nd is 00:30 on the 3rd in Berlin (UTC+1 in March).
            ("2026-03-02T23:30:00Z", Some((bob, "Bob")), EventKind::Granted),
            ("2026-03-03T08:00:00Z", a, EventKind::Granted),
        ] {
            s.record_event(&event(at, who, kind), &[]).unwrap();
        }
        let d = |s: &str| s.parse::<Date>().unwrap();
        let ts = |s: &str| s.parse::<Timestamp>().unwrap();
        let utc = s.attendance(d("2026-03-02"), d("2026-03-03"), &TimeZone::UTC).unwrap();
        let summary: Vec<(String, Date, u32)> = utc.iter().map(|r| (r.person.clone(), r.date, r.passes)).collect();
        assert_eq!(
            summary,
            [
                ("Ann".into(), d("2026-03-02"), 3),
                ("Bob".into(), d("2026-03-02"), 1),
                ("Ann".into(), d("2026-03-03"), 1)
            ]
        );
        assert_eq!((utc[0].first_in, utc[0].last_out), (ts("2026-03-02T07:55:00Z"), ts("2026-03-02T17:05:00Z")));

        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let local = s.attendance(d("2026-03-03"), d("2026-03-03"), &berlin).unwrap();
        let names: Vec<&str> = local.iter().map(|r| r.person.as_str()).collect();
        assert_eq!(names, ["Ann", "Bob"], "Bob's pass falls on the 3rd in Berlin");
        let local = s.attendance(d("2026-03-02"), d("2026-03-02"), &berlin).unwrap();
        assert_eq!(local.len(), 1);
        assert_eq!(local[0].passes, 3);

        s.rename("Ann", "Anna").unwrap();
        s.remove_person("Bob").unwrap();
        let names: Vec<String> = s
            .attendance(d("2026-03-02"), d("2026-03-02"), &TimeZone::UTC)
            .unwrap()
            .into_iter()
            .map(|r| r.person)
            .collect();
        assert_eq!(names, ["Anna", "Bob"], "current name, or the name at the time once removed");
    }

    #[test]
    fn event_and_outbox_are_written_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        let out = |id: &str, topic: &str| OutboxEvent {
            event_id: id.into(),
            topic: topic.into(),
            payload: b"{}".to_vec(),
            retain: false,
        };
        let e = event("2026-03-02T08:00:00Z", None, EventKind::Unknown);
        let id = s.record_event(&e, &[out("u1", "event/decision")]).unwrap();
        assert_eq!(crate::act::Outbox::pending(&mut s, 0, 10).unwrap()[0].event.event_id, "u1");
        // Make the second outbox insert fail: neither the event nor the first outbox row may stay.
        s.conn
            .execute_batch("CREATE TEMP TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.topic = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
            .unwrap();
        assert!(s.record_event(&e, &[out("u2", "event/decision"), out("u3", "boom")]).is_err());
        assert_eq!(s.events(None, None, 10).unwrap().len(), 1);
        assert_eq!(s.events(None, None, 10).unwrap()[0].0, id);
        assert_eq!(crate::act::Outbox::waiting(&mut s).unwrap(), 1);
    }
}
