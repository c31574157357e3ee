//! The hourly attribute counts (`[analyze] hourly`): one row per camera and local hour, one per
//! bucket counted in it. Each count is written in one transaction with the MQTT event that
//! reports the hour's new totals, so a power cut loses at most the face being counted, never
//! leaves a count without its report or a half-written hour (WAL, `synchronous=FULL`).

use anyhow::{Context, Result};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::outbox::insert_outbox;
use super::{Store, write};
use crate::act::OutboxEvent;
use crate::analytics::{HourCounts, Tally};

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// One stored hour with its buckets.
fn load_hour(conn: &Connection, camera: &str, start_ms: i64) -> Result<Option<HourCounts>> {
    let row: Option<(i64, i64, bool)> = conn
        .prepare_cached("SELECT end_ms, faces, complete FROM attribute_hours WHERE camera = ?1 AND start_ms = ?2")?
        .query_row(params![camera, start_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((end_ms, faces, complete)) = row else { return Ok(None) };
    let mut hour = HourCounts::empty(camera, ts(start_ms), ts(end_ms));
    hour.faces = u64::try_from(faces).unwrap_or(0);
    hour.complete = complete;
    let mut stmt =
        conn.prepare_cached("SELECT bucket, count FROM attribute_counts WHERE camera = ?1 AND start_ms = ?2")?;
    for row in stmt.query_map(params![camera, start_ms], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (bucket, count) = row?;
        hour.add_bucket(&bucket, u64::try_from(count).unwrap_or(0));
    }
    Ok(Some(hour))
}

impl Store {
    /// Counts one face in the hour `start..end` of `camera` and queues the event `report` makes
    /// of the hour's new totals, in one transaction. Returns the totals.
    pub fn count_attributes(
        &mut self,
        camera: &str,
        (start, end): (Timestamp, Timestamp),
        tally: &Tally,
        report: impl FnOnce(&HourCounts) -> OutboxEvent,
    ) -> Result<HourCounts> {
        let cap = self.outbox_cap;
        let start_ms = start.as_millisecond();
        let tx = write(&mut self.conn, &self.path)?;
        tx.prepare_cached(
            "INSERT INTO attribute_hours (camera, start_ms, end_ms, faces) VALUES (?1, ?2, ?3, 1) \
             ON CONFLICT (camera, start_ms) DO UPDATE SET faces = faces + 1",
        )?
        .execute(params![camera, start_ms, end.as_millisecond()])?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO attribute_counts (camera, start_ms, bucket, count) VALUES (?1, ?2, ?3, 1) \
                 ON CONFLICT (camera, start_ms, bucket) DO UPDATE SET count = count + 1",
            )?;
            for bucket in tally.buckets() {
                add.execute(params![camera, start_ms, bucket])?;
            }
        }
        let hour = load_hour(&tx, camera, start_ms)?.context("the hour just counted is missing")?;
        insert_outbox(&tx, &[report(&hour)], None, cap)?;
        tx.commit().with_context(|| format!("cannot commit attribute counts to {}", self.path.display()))?;
        Ok(hour)
    }

    /// Marks every hour that ended by `now` complete and queues the final report `report` makes
    /// of each, in one transaction (also the hours left open by a stop or a power cut).
    pub fn close_attribute_hours(
        &mut self,
        now: Timestamp,
        report: impl Fn(&HourCounts) -> OutboxEvent,
    ) -> Result<Vec<HourCounts>> {
        let cap = self.outbox_cap;
        let tx = write(&mut self.conn, &self.path)?;
        let open: Vec<(String, i64)> = tx
            .prepare_cached(
                "SELECT camera, start_ms FROM attribute_hours WHERE complete = 0 AND end_ms <= ?1 ORDER BY start_ms, camera",
            )?
            .query_map([now.as_millisecond()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut closed = Vec::new();
        for (camera, start_ms) in open {
            tx.prepare_cached("UPDATE attribute_hours SET complete = 1 WHERE camera = ?1 AND start_ms = ?2")?
                .execute(params![camera, start_ms])?;
            if let Some(hour) = load_hour(&tx, &camera, start_ms)? {
                closed.push(hour);
            }
        }
        let events: Vec<OutboxEvent> = closed.iter().map(report).collect();
        insert_outbox(&tx, &events, None, cap)?;
        tx.commit().with_context(|| format!("cannot close attribute hours in {}", self.path.display()))?;
        Ok(closed)
    }

    /// The hours that started at or after `since` (`camera`: one camera's only), newest first,
    /// at most `limit`.
    pub fn attribute_hours(&self, camera: Option<&str>, since: Timestamp, limit: usize) -> Result<Vec<HourCounts>> {
        let keys: Vec<(String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT camera, start_ms FROM attribute_hours WHERE start_ms >= ?1 AND (?2 IS NULL OR camera = ?2) \
                 ORDER BY start_ms DESC, camera LIMIT ?3",
            )?
            .query_map(params![since.as_millisecond(), camera, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for (camera, start_ms) in keys {
            out.extend(load_hour(&self.conn, &camera, start_ms)?);
        }
        Ok(out)
    }

    /// Erases the hours that ended before `before` (`analyze.keep_days`); returns how many.
    pub fn prune_attribute_hours(&mut self, before: Timestamp) -> Result<usize> {
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute("DELETE FROM attribute_hours WHERE end_ms < ?1", [before.as_millisecond()])?;
        tx.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;
    use crate::act::Outbox;
    use crate::analytics::hour_of;

    fn report(h: &HourCounts) -> OutboxEvent {
        OutboxEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            topic: format!("camera/{}/attributes", h.camera),
            payload: serde_json::to_vec(h).unwrap(),
            retain: true,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A new database in a temporary folder (kept alive by the returned guard).
    fn fresh() -> (tempfile::TempDir, std::path::PathBuf, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let store = Store::open(&path).unwrap();
        (dir, path, store)
    }

    fn utc_hour(s: &str) -> (Timestamp, Timestamp) {
        hour_of(at(s), &TimeZone::UTC)
    }

    const WOMAN_HAPPY: Tally = Tally { age: "18_29", gender: "woman", emotion: "happy" };
    const MAN_SAD: Tally = Tally { age: "65_plus", gender: "man", emotion: "sad" };

    #[test]
    fn counts_add_up_per_camera_and_hour_and_survive_a_reopen() {
        let (_dir, path, mut s) = fresh();
        let ten = utc_hour("2026-12-02T10:05:00Z");
        s.count_attributes("front", ten, &WOMAN_HAPPY, report).unwrap();
        let h = s.count_attributes("front", utc_hour("2026-12-02T10:59:59Z"), &MAN_SAD, report).unwrap();
        assert_eq!((h.faces, h.gender["woman"], h.gender["man"], h.age["65_plus"]), (2, 1, 1, 1));
        assert!(!h.complete);
        // The next hour and another camera are their own rows.
        s.count_attributes("front", utc_hour("2026-12-02T11:00:00Z"), &MAN_SAD, report).unwrap();
        s.count_attributes("lobby", ten, &MAN_SAD, report).unwrap();
        drop(s);

        let mut s = Store::open(&path).unwrap();
        let hours = s.attribute_hours(None, at("2026-12-02T00:00:00Z"), 10).unwrap();
        let summary: Vec<(&str, Timestamp, u64)> =
            hours.iter().map(|h| (h.camera.as_str(), h.start, h.faces)).collect();
        assert_eq!(
            summary,
            [
                ("front", at("2026-12-02T11:00:00Z"), 1),
                ("front", at("2026-12-02T10:00:00Z"), 2),
                ("lobby", at("2026-12-02T10:00:00Z"), 1)
            ]
        );
        assert_eq!(s.attribute_hours(Some("lobby"), at("2026-12-02T00:00:00Z"), 10).unwrap().len(), 1);
        // Each count queued its report, retained, with the totals after it.
        assert_eq!(s.waiting().unwrap(), 4);
        let last = s.pending(0, 10).unwrap().pop().unwrap().event;
        let v: serde_json::Value = serde_json::from_slice(&last.payload).unwrap();
        assert_eq!((last.topic.as_str(), last.retain, v["faces"].as_u64()), ("camera/lobby/attributes", true, Some(1)));
    }

    #[test]
    fn hours_close_once_when_they_end_even_after_a_restart() {
        let (_dir, path, mut s) = fresh();
        s.count_attributes("front", utc_hour("2026-12-02T10:05:00Z"), &WOMAN_HAPPY, report).unwrap();
        s.count_attributes("front", utc_hour("2026-12-02T11:05:00Z"), &WOMAN_HAPPY, report).unwrap();
        assert!(s.close_attribute_hours(at("2026-12-02T10:59:59.999Z"), report).unwrap().is_empty());
        drop(s);
        let mut s = Store::open(&path).unwrap();
        let closed = s.close_attribute_hours(at("2026-12-02T11:00:00Z"), report).unwrap();
        assert_eq!(closed.len(), 1);
        assert!(closed[0].complete && closed[0].start == at("2026-12-02T10:00:00Z") && closed[0].faces == 1);
        assert!(s.close_attribute_hours(at("2026-12-02T11:30:00Z"), report).unwrap().is_empty(), "closed once");
        assert_eq!(s.waiting().unwrap(), 3, "two counts and one final report");
        let hours = s.attribute_hours(None, at("2026-12-01T00:00:00Z"), 10).unwrap();
        assert_eq!(hours.iter().map(|h| h.complete).collect::<Vec<_>>(), [false, true]);

        assert_eq!(s.prune_attribute_hours(at("2026-12-02T11:00:00Z")).unwrap(), 0, "ended exactly then: kept");
        assert_eq!(s.prune_attribute_hours(at("2026-12-02T11:00:00.001Z")).unwrap(), 1);
        let left = s.attribute_hours(None, at("2026-12-01T00:00:00Z"), 10).unwrap();
        assert_eq!(left.len(), 1);
        let buckets: i64 = s.conn.query_row("SELECT count(*) FROM attribute_counts", [], |r| r.get(0)).unwrap();
        assert_eq!(buckets, 3, "the pruned hour's buckets went with it");
        s.integrity_check().unwrap();
    }
}
