//! The MQTT outbox: events wait here, in order, until the broker acknowledges them.
//!
//! Cap policy (when more than `outbox_cap` events wait, e.g. during a long broker outage), applied
//! in the same transaction as the insert that overflowed it:
//! 1. retained events superseded by a newer event on the same topic go first (the broker would
//!    keep only the newest anyway), oldest first;
//! 2. then the oldest non-retained events;
//! 3. then the oldest events of any kind.
//!
//! Every dropped event is counted in the persistent `outbox_dropped` counter and logged as a
//! warning, so a heartbeat can report the loss.

use anyhow::Result;
use rusqlite::{Transaction, params};

use super::{Store, meta_add, now_text, write};
use crate::act::{Outbox, OutboxEvent, PendingEvent};

/// The person a topic such as `person/7/last_seen` is about, so `forget` can erase it.
fn topic_person(topic: &str) -> Option<i64> {
    topic.strip_prefix("person/")?.split('/').next()?.parse().ok()
}

/// Appends events (an event id already queued is skipped: a redelivery is the same event) and
/// applies the cap policy. `person_id` ties them to a person for `forget`.
pub(super) fn insert_outbox(
    tx: &Transaction<'_>,
    events: &[OutboxEvent],
    person_id: Option<i64>,
    cap: u64,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = now_text();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (event_id, topic, payload, retain, created, person_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in events {
        let person = person_id.or_else(|| topic_person(&e.topic));
        insert.execute(params![e.event_id, e.topic, with_seq(tx, &e.payload)?, e.retain, now, person])?;
    }
    super::journal::record(tx, events)?;
    enforce_cap(tx, cap)
}

/// Like [`insert_outbox`] for events no `forget` may erase (e.g. the one clearing a topic).
pub(super) fn insert_outbox_unowned(tx: &Transaction<'_>, events: &[OutboxEvent], cap: u64) -> Result<()> {
    let now = now_text();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outbox (event_id, topic, payload, retain, created, person_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )?;
    for e in events {
        insert.execute(params![e.event_id, e.topic, e.payload, e.retain, now])?;
    }
    enforce_cap(tx, cap)
}

/// Stamps a JSON object payload with the node's next event sequence number (`seq`), so a
/// receiver sees a gap; other payloads (JPEG snapshots, empty clears) go out unchanged.
fn with_seq(tx: &Transaction<'_>, payload: &[u8]) -> Result<Vec<u8>> {
    if payload.first() != Some(&b'{') {
        return Ok(payload.to_vec());
    }
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return Ok(payload.to_vec());
    };
    let seq: i64 =
        tx.query_row("UPDATE meta SET value = value + 1 WHERE key = 'event_seq' RETURNING value", [], |r| r.get(0))?;
    object.insert("seq".into(), seq.into());
    Ok(serde_json::to_vec(&object)?)
}

fn enforce_cap(tx: &Transaction<'_>, cap: u64) -> Result<()> {
    // Sequence numbers only grow and acks come mostly in order, so max - min + 1 bounds the count
    // cheaply; count exactly only when that bound is over the cap.
    let (min, max): (Option<i64>, Option<i64>) =
        tx.query_row("SELECT min(seq), max(seq) FROM outbox", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(min), Some(max)) = (min, max) else { return Ok(()) };
    if ((max - min + 1) as u64) <= cap {
        return Ok(());
    }
    let count: i64 = tx.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    let mut excess = (count as u64).saturating_sub(cap);
    if excess == 0 {
        return Ok(());
    }
    let mut dropped = 0;
    for sql in [
        "DELETE FROM outbox WHERE seq IN (SELECT o.seq FROM outbox o WHERE o.retain = 1 AND EXISTS \
         (SELECT 1 FROM outbox n WHERE n.topic = o.topic AND n.seq > o.seq) ORDER BY o.seq LIMIT ?1)",
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE retain = 0 ORDER BY seq LIMIT ?1)",
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?1)",
    ] {
        if excess == 0 {
            break;
        }
        let n = tx.execute(sql, [excess as i64])? as u64;
        excess -= n;
        dropped += n;
    }
    meta_add(tx, "outbox_dropped", dropped)?;
    log::warn!(
        "outbox full ({cap} events): dropped the {dropped} oldest undelivered event(s); is the MQTT broker reachable?"
    );
    Ok(())
}

impl Store {
    /// Queues events that report no stored state (door, camera, heartbeat), durably.
    pub fn enqueue(&mut self, outbox: &[OutboxEvent]) -> Result<()> {
        let cap = self.outbox_cap;
        let tx = write(&mut self.conn, &self.path)?;
        insert_outbox(&tx, outbox, None, cap)?;
        Ok(tx.commit()?)
    }
}

fn delete_seqs(conn: &mut rusqlite::Connection, path: &std::path::Path, seqs: &[i64]) -> Result<()> {
    let tx = write(conn, path)?;
    {
        let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
        for seq in seqs {
            delete.execute([seq])?;
        }
    }
    Ok(tx.commit()?)
}

impl Outbox for Store {
    fn pending(&mut self, after: i64, limit: usize) -> Result<Vec<PendingEvent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, event_id, topic, payload, retain FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(PendingEvent {
                seq: r.get(0)?,
                event: OutboxEvent { event_id: r.get(1)?, topic: r.get(2)?, payload: r.get(3)?, retain: r.get(4)? },
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn ack(&mut self, seq: i64) -> Result<()> {
        self.ack_all(&[seq])
    }

    /// Removes acknowledged events in one transaction, without waiting for the disk: an ack lost
    /// to a power cut only means a redelivery with the same id, while an fsync per PUBACK (several
    /// ms on an SD card) capped publishing at a few hundred events/s. The delete is still atomic,
    /// and the next durable commit on the file (any decision) makes it durable too. Events
    /// themselves are always written with `synchronous=FULL`, which is restored at once.
    fn ack_all(&mut self, seqs: &[i64]) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let deleted = delete_seqs(&mut self.conn, &self.path, seqs);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        deleted
    }

    fn waiting(&mut self) -> Result<u64> {
        let n: i64 = self.conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::store::StoreConfig;

    fn ev(id: &str, topic: &str, retain: bool) -> OutboxEvent {
        OutboxEvent { event_id: id.into(), topic: topic.into(), payload: id.as_bytes().to_vec(), retain }
    }

    fn ids(s: &mut Store) -> Vec<String> {
        s.pending(0, 100).unwrap().into_iter().map(|p| p.event.event_id).collect()
    }

    #[test]
    fn pending_is_in_order_and_ack_removes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        s.enqueue(&[ev("a", "event/door", false), ev("b", "event/door", false)]).unwrap();
        s.enqueue(&[ev("c", "heartbeat", false), ev("a", "event/door", false)]).unwrap();
        assert_eq!(ids(&mut s), ["a", "b", "c"], "same event id is queued once");
        let p = s.pending(0, 2).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].seq < p[1].seq);
        assert_eq!(s.pending(p[0].seq, 10).unwrap()[0].event, ev("b", "event/door", false));
        s.ack(p[0].seq).unwrap();
        assert_eq!(s.waiting().unwrap(), 2);
        assert_eq!(ids(&mut s), ["b", "c"]);
        // Reopening keeps the queue.
        drop(s);
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(ids(&mut s), ["b", "c"]);
    }

    #[test]
    fn acks_are_fast_but_leave_event_writes_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        s.enqueue(&[ev("a", "event/door", false), ev("b", "event/door", false)]).unwrap();
        let seq = s.pending(0, 1).unwrap()[0].seq;
        s.ack(seq).unwrap();
        let sync: i64 = s.conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "after an ack, events are written with synchronous=FULL again");
        assert_eq!(ids(&mut s), ["b"]);
        s.enqueue(&[ev("c", "event/door", false), ev("d", "event/door", false)]).unwrap();
        let seqs: Vec<i64> = s.pending(0, 2).unwrap().iter().map(|p| p.seq).collect();
        s.ack_all(&seqs).unwrap();
        assert_eq!(ids(&mut s), ["d"], "several acks in one write");
        let seq = s.pending(0, 1).unwrap()[0].seq - 1;
        // A failing delete restores it too.
        s.conn
            .execute_batch("CREATE TEMP TRIGGER boom BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'boom'); END")
            .unwrap();
        assert!(s.ack(seq + 1).is_err());
        let sync: i64 = s.conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2);
    }

    #[test]
    fn cap_drops_superseded_retained_then_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { path: dir.path().join("t.db"), outbox_cap: 4 };
        let mut s = Store::open_config(&cfg).unwrap();
        s.enqueue(&[
            ev("r1", "person/1/last_seen", true),
            ev("d1", "event/decision", false),
            ev("r2", "person/1/last_seen", true),
            ev("d2", "event/decision", false),
        ])
        .unwrap();
        assert_eq!(s.outbox_dropped().unwrap(), 0);
        s.enqueue(&[ev("d3", "event/decision", false)]).unwrap();
        assert_eq!(ids(&mut s), ["d1", "r2", "d2", "d3"], "superseded retained r1 goes first");
        s.enqueue(&[ev("d4", "event/decision", false), ev("d5", "event/decision", false)]).unwrap();
        assert_eq!(ids(&mut s), ["r2", "d3", "d4", "d5"], "then the oldest non-retained");
        assert_eq!(s.outbox_dropped().unwrap(), 3);
        s.enqueue(&[ev("r3", "person/2/last_seen", true), ev("r4", "person/3/last_seen", true)]).unwrap();
        s.enqueue(&[ev("r5", "person/4/last_seen", true), ev("r6", "person/5/last_seen", true)]).unwrap();
        assert_eq!(ids(&mut s), ["r3", "r4", "r5", "r6"], "only retained left: oldest go");
        assert_eq!(s.outbox_dropped().unwrap(), 7);
    }

    #[test]
    fn topic_names_the_person() {
        assert_eq!(topic_person("person/17/last_seen"), Some(17));
        assert_eq!(topic_person("event/decision"), None);
        assert_eq!(topic_person("person/x/last_seen"), None);
    }
}
