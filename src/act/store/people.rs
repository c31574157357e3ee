//! People: who is enrolled, their role and weekly schedule, and the right to erasure.

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, Row, params};
use serde::Serialize;

use super::{Store, meta_add, now_text, write};
use crate::decide::policy::{Doors, Role, Schedule};

/// One person as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    #[serde(serialize_with = "serialize_display")]
    pub schedule: Schedule,
    /// The doors they may open.
    #[serde(serialize_with = "serialize_display")]
    pub doors: Doors,
    /// Templates of any model.
    pub templates: usize,
    /// ISO-8601 UTC.
    pub created: String,
}

fn serialize_display<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// What [`Store::forget`] erased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    /// The name that was erased.
    pub name: String,
    /// Whether a person row was deleted (false when only past events carried the name).
    pub person: bool,
    pub templates: u64,
    pub events: u64,
    pub outbox: u64,
    /// Faces in the unknown-faces inbox that matched the person's templates.
    pub unknown_faces: u64,
}

const SELECT_PERSON: &str = "SELECT p.id, p.name, p.role, p.schedule, p.doors, p.created, \
     (SELECT count(*) FROM templates t WHERE t.person_id = p.id) FROM people p";

/// One row of [`SELECT_PERSON`], as stored.
type PersonRow = (i64, String, String, String, String, String, i64);

fn person_from_row(row: &Row<'_>) -> rusqlite::Result<PersonRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn person_record(raw: PersonRow) -> Result<PersonRecord> {
    let (id, name, role, schedule, doors, created, templates) = raw;
    let role = role.parse().with_context(|| format!("person #{id} ({name}) has a damaged role"))?;
    let schedule = schedule.parse().with_context(|| format!("person #{id} ({name}) has a damaged schedule"))?;
    let doors = doors.parse().with_context(|| format!("person #{id} ({name}) has a damaged door list"))?;
    Ok(PersonRecord { id, name, role, schedule, doors, templates: templates as usize, created })
}

/// Characters that make a name look like something else: bidi overrides and isolates (U+202A-E,
/// U+2066-9), zero-width and joiner characters, the BOM, soft hyphen and other invisibles.
fn deceptive(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// The name rule for every interface (CLI, MQTT, web): trimmed, 1 to 100 characters, no control,
/// bidi-override or invisible characters, and not readable as an id.
pub fn check_person_name(name: &str) -> Result<&str> {
    check_name(name)
}

/// Trims a name and refuses ones that could not be told apart from an id or would break output.
pub(super) fn check_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() {
        bail!("a person's name cannot be empty");
    }
    if name.starts_with('#') || name.chars().all(|c| c.is_ascii_digit()) {
        bail!("name `{name}` would read as a person id (#12 or 12); add letters, e.g. `Visitor {name}`");
    }
    if name.chars().any(|c| c.is_control() || deceptive(c)) || name.chars().count() > 100 {
        bail!(
            "name `{}` must be at most 100 characters without control, bidi-override or invisible characters",
            name.escape_default()
        );
    }
    Ok(name)
}

impl Store {
    /// Adds a person without templates; fails if the name is taken.
    pub fn add_person(&mut self, name: &str, role: Role, schedule: &Schedule) -> Result<i64> {
        let name = check_name(name)?;
        let path = self.path.clone();
        let tx = write(&mut self.conn, &self.path)?;
        let id = insert_person(&tx, name, role, schedule).map_err(|e| taken(e, name, &path))?;
        meta_add(&tx, "changes", 1)?;
        tx.commit()?;
        Ok(id)
    }

    /// The person named `who` (case-insensitive) or with id `#12` / `12`.
    pub fn find_person(&self, who: &str) -> Result<Option<PersonRecord>> {
        let Some(id) = Store::resolve(&self.conn, who)? else { return Ok(None) };
        let raw = self.conn.query_row(&format!("{SELECT_PERSON} WHERE p.id = ?1"), [id], person_from_row)?;
        Ok(Some(person_record(raw)?))
    }

    /// Everyone, by name.
    pub fn people(&self) -> Result<Vec<PersonRecord>> {
        let mut stmt = self.conn.prepare(&format!("{SELECT_PERSON} ORDER BY p.name"))?;
        let rows = stmt.query_map([], person_from_row)?;
        rows.map(|raw| person_record(raw?)).collect()
    }

    pub fn rename(&mut self, who: &str, new_name: &str) -> Result<()> {
        let new_name = check_name(new_name)?;
        let path = self.path.clone();
        let tx = write(&mut self.conn, &self.path)?;
        let id = Store::require(&tx, &self.path, who)?;
        tx.execute("UPDATE people SET name = ?2, updated = ?3 WHERE id = ?1", params![id, new_name, now_text()])
            .map_err(|e| taken(e, new_name, &path))?;
        meta_add(&tx, "changes", 1)?;
        Ok(tx.commit()?)
    }

    pub fn set_role(&mut self, who: &str, role: Role) -> Result<()> {
        self.update_person(who, "role", role.as_str().to_string())
    }

    pub fn set_schedule(&mut self, who: &str, schedule: &Schedule) -> Result<()> {
        self.update_person(who, "schedule", schedule.to_string())
    }

    pub fn set_doors(&mut self, who: &str, doors: &Doors) -> Result<()> {
        self.update_person(who, "doors", doors.to_string())
    }

    fn update_person(&mut self, who: &str, column: &str, value: String) -> Result<()> {
        let tx = write(&mut self.conn, &self.path)?;
        let id = Store::require(&tx, &self.path, who)?;
        tx.execute(
            &format!("UPDATE people SET {column} = ?2, updated = ?3 WHERE id = ?1"),
            params![id, value, now_text()],
        )?;
        meta_add(&tx, "changes", 1)?;
        Ok(tx.commit()?)
    }

    /// Removes a person and their templates; returns whether they existed. Their past events are
    /// kept (attendance history, under the name they had); use [`Store::forget`] to erase those too.
    pub fn remove_person(&mut self, who: &str) -> Result<bool> {
        let tx = write(&mut self.conn, &self.path)?;
        let Some(id) = Store::resolve(&tx, who)? else { return Ok(false) };
        tx.execute("DELETE FROM people WHERE id = ?1", [id])?;
        meta_add(&tx, "changes", 1)?;
        tx.commit()?;
        Ok(true)
    }

    /// The right to erasure: deletes the person, their templates, every event that names them
    /// (also events kept after an earlier `remove`) and their undelivered outbox events, then
    /// checkpoints the WAL so no copy of the deleted pages stays behind. Deleted content is
    /// overwritten in the file (`secure_delete`).
    pub fn forget(&mut self, who: &str) -> Result<ForgetReport> {
        let tx = write(&mut self.conn, &self.path)?;
        let id = Store::resolve(&tx, who)?;
        let name: String = match id {
            Some(id) => tx.query_row("SELECT name FROM people WHERE id = ?1", [id], |r| r.get(0))?,
            None => who.trim().to_string(),
        };
        let events_where = "person_id = ?1 OR person_name = ?2 COLLATE NOCASE";
        let templates = count(&tx, "SELECT count(*) FROM templates WHERE person_id = ?1", params![id])?;
        let events = count(&tx, &format!("SELECT count(*) FROM events WHERE {events_where}"), params![id, name])?;
        let outbox = count(&tx, "SELECT count(*) FROM outbox WHERE person_id = ?1", params![id])?;
        if id.is_none() && events == 0 {
            bail!(
                "no person or event named `{}` in {}; `facegate people list` shows who is enrolled",
                who.trim(),
                self.path.display()
            );
        }
        tx.execute(&format!("DELETE FROM events WHERE {events_where}"), params![id, name])?;
        tx.execute("DELETE FROM outbox WHERE person_id = ?1", params![id])?;
        meta_add(&tx, "outbox_forgotten", outbox)?;
        let unknown_faces = match id {
            Some(id) => super::unknown::erase_matching(&tx, id)?,
            None => 0,
        };
        if let Some(id) = id {
            tx.execute("DELETE FROM people WHERE id = ?1", [id])?;
            meta_add(&tx, "changes", 1)?;
            // The broker keeps `person/<id>/last_seen` (name, place, time) retained: clear it
            // with an empty retained message, queued so it survives a broker outage.
            let clear = crate::act::OutboxEvent {
                event_id: format!("forget-{id}-{}", uuid::Uuid::new_v4()),
                topic: format!("person/{id}/last_seen"),
                payload: Vec::new(),
                retain: true,
            };
            super::outbox::insert_outbox_unowned(&tx, &[clear], self.outbox_cap)?;
        }
        tx.commit()?;
        // Old page images live in the WAL until a checkpoint copies them back; truncate it.
        let (busy, _, _): (i64, i64, i64) =
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        if busy != 0 {
            log::warn!(
                "another process is reading {}; erased data may stay in its WAL file until that process checkpoints",
                self.path.display()
            );
        }
        Ok(ForgetReport { name, person: id.is_some(), templates, events, outbox, unknown_faces })
    }
}

fn count(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
    let n: i64 = conn.query_row(sql, params, |r| r.get(0))?;
    Ok(n as u64)
}

/// Inserts a person under a new id, above every id ever used (`person_id_high`), so an id a
/// receiver knows (topics, events) never names someone else after a `remove` or `forget`.
pub(super) fn insert_person(conn: &Connection, name: &str, role: Role, schedule: &Schedule) -> rusqlite::Result<i64> {
    let now = now_text();
    conn.execute(
        "INSERT INTO people (id, name, role, schedule, created, updated) VALUES (\
         max((SELECT value FROM meta WHERE key = 'person_id_high'), (SELECT ifnull(max(id), 0) FROM people)) + 1, \
         ?1, ?2, ?3, ?4, ?4)",
        params![name, role.as_str(), schedule.to_string(), now],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'person_id_high'", [id])?;
    Ok(id)
}

/// Turns a UNIQUE violation on the name into a message that says what to do.
fn taken(error: rusqlite::Error, name: &str, path: &std::path::Path) -> anyhow::Error {
    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
        anyhow::anyhow!(
            "a person named `{name}` already exists in {} (names are case-insensitive); choose another name",
            path.display()
        )
    } else {
        error.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn people_crud_round_trips() {
        let (_dir, mut s) = store();
        let sched: Schedule = "mon-fri 07:00-19:00".parse().unwrap();
        let ann = s.add_person("  Ann ", Role::Visitor, &sched).unwrap();
        let bob = s.add_person("Bob", Role::Employee, &Schedule::default()).unwrap();
        assert_ne!(ann, bob);
        let rec = s.find_person("ann").unwrap().unwrap();
        assert_eq!(
            (rec.id, rec.name.as_str(), rec.role, &rec.schedule, rec.templates),
            (ann, "Ann", Role::Visitor, &sched, 0)
        );
        assert_eq!(s.find_person(&format!("#{bob}")).unwrap().unwrap().name, "Bob");
        assert_eq!(s.find_person(&bob.to_string()).unwrap().unwrap().name, "Bob");
        assert!(s.find_person("carol").unwrap().is_none());

        let before = s.change_counter().unwrap();
        s.rename("Ann", "Anna").unwrap();
        s.set_role("anna", Role::Watchlist).unwrap();
        s.set_schedule("#1", &Schedule::default()).unwrap();
        assert_eq!(s.find_person("Anna").unwrap().unwrap().doors, Doors::All, "every door by default");
        let lab: Doors = "lab,front".parse().unwrap();
        s.set_doors("anna", &lab).unwrap();
        assert!(s.change_counter().unwrap() >= before + 4);
        let anna = s.find_person("Anna").unwrap().unwrap();
        assert_eq!((anna.role, anna.schedule.windows.len(), &anna.doors), (Role::Watchlist, 0, &lab));
        let names: Vec<String> = s.people().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["Anna", "Bob"]);

        assert!(s.remove_person("bob").unwrap());
        assert!(!s.remove_person("bob").unwrap());
        assert_eq!(s.people().unwrap().len(), 1);
    }

    #[test]
    fn bad_names_and_missing_people_are_explained() {
        let (_dir, mut s) = store();
        s.add_person("Ann", Role::Employee, &Schedule::default()).unwrap();
        let err = s.add_person("ANN", Role::Employee, &Schedule::default()).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        for bad in ["", "  ", "#3", "42"] {
            assert!(s.add_person(bad, Role::Employee, &Schedule::default()).is_err(), "{bad:?}");
        }
        let err = s.rename("zed", "Zed").unwrap_err().to_string();
        assert!(err.contains("no person `zed`") && err.contains("people list"), "{err}");
        s.add_person("Bob", Role::Employee, &Schedule::default()).unwrap();
        let err = s.rename("bob", "ann").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(s.set_role("nobody", Role::Visitor).is_err());
    }

    #[test]
    fn forget_erases_everything_of_one_person_and_nothing_else() {
        use crate::act::OutboxEvent;
        use crate::act::store::{AccessEvent, EventKind, NewTemplate};
        use crate::gallery::TemplateModel;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut s = Store::open(&path).unwrap();
        let model = TemplateModel { id: "m".into(), dim: 2 };
        let tpl = |sha: &str| NewTemplate { embedding: vec![0.6, 0.8], source_sha256: sha.into(), thumbnail: None };
        s.add_templates("Ann", &model, &[tpl("a1"), tpl("a2")]).unwrap();
        s.add_templates("Bob", &model, &[tpl("b1")]).unwrap();
        let marker = "SECRET-ANN-MARKER-7f3a";
        let event = |who: &str, id: i64, reason: &str| AccessEvent {
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            camera: "front".into(),
            door: None,
            person_id: Some(id),
            person_name: Some(who.into()),
            kind: EventKind::Granted,
            reason: Some(reason.into()),
            similarity: Some(0.8),
            margin: Some(0.2),
            votes: 3,
            window: 5,
            bbox: None,
            liveness: None,
        };
        let out = |id: &str, topic: &str| OutboxEvent {
            event_id: id.into(),
            topic: topic.into(),
            payload: marker.into(),
            retain: false,
        };
        let ann = s.find_person("Ann").unwrap().unwrap().id;
        let bob = s.find_person("Bob").unwrap().unwrap().id;
        s.record_event(&event("Ann", ann, marker), &[out("e1", "event/decision")]).unwrap();
        s.record_event(&event("Ann", ann, marker), &[out("e2", "event/decision")]).unwrap();
        s.enqueue(&[out("e3", &format!("person/{ann}/last_seen"))]).unwrap();
        s.record_event(
            &event("Bob", bob, "ok"),
            &[OutboxEvent { payload: b"bob".to_vec(), ..out("e4", "event/decision") }],
        )
        .unwrap();

        let report = s.forget("ann").unwrap();
        assert_eq!(
            report,
            ForgetReport { name: "Ann".into(), person: true, templates: 2, events: 2, outbox: 3, unknown_faces: 0 }
        );
        assert!(s.find_person("Ann").unwrap().is_none());
        assert_eq!(s.find_person("Bob").unwrap().unwrap().templates, 1);
        let left = s.events(None, None, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].1.person_name.as_deref(), Some("Bob"));
        // Bob's event, and the empty retained message that clears Ann's last_seen on the broker.
        let waiting = crate::act::Outbox::pending(&mut s, 0, 10).unwrap();
        assert_eq!(waiting.len(), 2);
        let clear = &waiting[1].event;
        assert_eq!(
            (clear.topic.clone(), clear.payload.is_empty(), clear.retain),
            (format!("person/{ann}/last_seen"), true, true)
        );
        assert_eq!(s.outbox_forgotten().unwrap(), 3, "erased events are counted apart from drops");
        assert_eq!(s.outbox_dropped().unwrap(), 0);
        s.integrity_check().unwrap();
        // Nothing readable stays in the file or its WAL.
        for file in [path.clone(), path.with_extension("db-wal")] {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{} still holds the marker",
                file.display()
            );
        }

        // A plain remove keeps the person's queued events (history still to be delivered).
        s.remove_person("Bob").unwrap();
        assert_eq!(crate::act::Outbox::waiting(&mut s).unwrap(), 2, "remove keeps queued events");
        // Events kept after a plain remove are still erased by name.
        let report = s.forget("bob").unwrap();
        assert_eq!((report.person, report.events), (false, 1));
        assert!(s.forget("nobody").unwrap_err().to_string().contains("no person or event"));
    }

    #[test]
    fn ids_are_never_reused() {
        let (_dir, mut s) = store();
        let a = s.add_person("Ann", Role::Employee, &Schedule::default()).unwrap();
        s.remove_person("Ann").unwrap();
        let b = s.add_person("Bob", Role::Employee, &Schedule::default()).unwrap();
        assert!(b > a, "#{b} must not reuse #{a}");
        s.forget("Bob").unwrap();
        let c = s.add_person("Cy", Role::Employee, &Schedule::default()).unwrap();
        assert!(c > b);
    }

    #[test]
    fn deceptive_names_are_refused() {
        for bad in ["Ann\u{202E}nimda", "Bo\u{200B}b", "\u{2066}Eve", "Ma\u{FEFF}x", "Tab\tName", "Zw\u{200D}j"] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains("bidi") && !err.contains('\u{202E}'), "{bad:?}: {err}");
        }
        assert_eq!(check_name(" Zoë Ødegård ").unwrap(), "Zoë Ødegård");
    }
}
