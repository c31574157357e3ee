//! The database schema as numbered migrations, tracked in `PRAGMA user_version`.
//!
//! Each migration runs in its own `BEGIN IMMEDIATE` transaction that also bumps the version, so a
//! crash mid-migration leaves the previous version intact, and two processes opening the same new
//! file at once cannot both apply a step. Migrations are append-only: never edit a released one.

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of a facegate database ("FGAT"), so a foreign SQLite file is recognised.
pub const APPLICATION_ID: i32 = 0x4647_4154;

/// The migrations, in order; after applying `MIGRATIONS[i]` the schema version is `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: people, templates, events, outbox and counters.
    "
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('changes', 0), ('outbox_dropped', 0);

    CREATE TABLE people (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(trim(name)) > 0),
        role     TEXT NOT NULL DEFAULT 'employee' CHECK (role IN ('employee', 'visitor', 'watchlist')),
        schedule TEXT NOT NULL DEFAULT 'always',
        created  TEXT NOT NULL,
        updated  TEXT NOT NULL
    );

    CREATE TABLE templates (
        id            INTEGER PRIMARY KEY,
        person_id     INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        embedding     BLOB NOT NULL,
        dim           INTEGER NOT NULL CHECK (dim > 0 AND length(embedding) = 4 * dim),
        model_id      TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        created       TEXT NOT NULL,
        UNIQUE (person_id, model_id, source_sha256)
    );
    CREATE INDEX templates_person ON templates(person_id);

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        at_ms       INTEGER NOT NULL,
        at          TEXT NOT NULL,
        camera      TEXT NOT NULL,
        door        TEXT,
        person_id   INTEGER REFERENCES people(id) ON DELETE SET NULL,
        person_name TEXT,
        kind        TEXT NOT NULL CHECK (kind IN ('granted', 'denied', 'unknown', 'alert')),
        reason      TEXT,
        similarity  REAL,
        margin      REAL,
        votes       INTEGER NOT NULL,
        vote_window INTEGER NOT NULL,
        bbox        TEXT
    );
    CREATE INDEX events_at ON events(at_ms);
    CREATE INDEX events_person ON events(person_id);

    CREATE TABLE outbox (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id  TEXT NOT NULL UNIQUE,
        topic     TEXT NOT NULL,
        payload   BLOB NOT NULL,
        retain    INTEGER NOT NULL CHECK (retain IN (0, 1)),
        created   TEXT NOT NULL,
        person_id INTEGER REFERENCES people(id) ON DELETE CASCADE
    );
    CREATE INDEX outbox_person ON outbox(person_id);
    CREATE INDEX outbox_retain ON outbox(retain, seq);
    CREATE INDEX outbox_topic ON outbox(topic, seq);
    ",
    // 2: the doors a person may open (`all`, or door names separated by commas).
    "
    ALTER TABLE people ADD COLUMN doors TEXT NOT NULL DEFAULT 'all' CHECK (length(trim(doors)) > 0);
    ",
    // 3 (issue 9): client keys and their used nonces; queued events outlive `remove` (the
    // outbox no longer cascades on people); counters for ids never reused, event sequence
    // numbers and events erased by `forget`.
    "
    CREATE TABLE client_keys (
        name    TEXT PRIMARY KEY COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 64),
        secret  BLOB NOT NULL CHECK (length(secret) >= 16),
        scopes  TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE used_nonces (
        key_name TEXT NOT NULL,
        nonce    TEXT NOT NULL,
        expires  INTEGER NOT NULL,
        PRIMARY KEY (key_name, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX used_nonces_expires ON used_nonces(expires);

    INSERT OR IGNORE INTO meta (key, value) VALUES ('outbox_forgotten', 0), ('event_seq', 0);
    INSERT OR IGNORE INTO meta (key, value) SELECT 'person_id_high', ifnull(max(id), 0) FROM people;

    CREATE TABLE outbox_v3 (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id  TEXT NOT NULL UNIQUE,
        topic     TEXT NOT NULL,
        payload   BLOB NOT NULL,
        retain    INTEGER NOT NULL CHECK (retain IN (0, 1)),
        created   TEXT NOT NULL,
        person_id INTEGER
    );
    INSERT INTO outbox_v3 SELECT seq, event_id, topic, payload, retain, created, person_id FROM outbox;
    DELETE FROM sqlite_sequence WHERE name = 'outbox_v3';
    INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_v3', seq FROM sqlite_sequence WHERE name = 'outbox';
    DROP TABLE outbox;
    ALTER TABLE outbox_v3 RENAME TO outbox;
    CREATE INDEX outbox_person ON outbox(person_id);
    CREATE INDEX outbox_retain ON outbox(retain, seq);
    CREATE INDEX outbox_topic ON outbox(topic, seq);
    ",
    // web (issue 12): web console: administrator accounts (argon2 PHC strings, never plain passwords).
    "
    CREATE TABLE admins (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL UNIQUE COLLATE NOCASE CHECK (length(trim(name)) > 0),
        hash     TEXT NOT NULL CHECK (hash LIKE '$argon2%'),
        created  TEXT NOT NULL,
        updated  TEXT NOT NULL
    );
    ",
    // inbox (issue 12): the unknown-faces inbox, kept only with `[web] unknown_inbox = true`:
    // a bounded thumbnail and the decision's embedding per face, grouped by similarity.
    "
    CREATE TABLE unknown_faces (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id  INTEGER NOT NULL,
        at_ms     INTEGER NOT NULL,
        at        TEXT NOT NULL,
        camera    TEXT NOT NULL,
        thumbnail BLOB NOT NULL CHECK (length(thumbnail) BETWEEN 1 AND 65536),
        embedding BLOB NOT NULL,
        dim       INTEGER NOT NULL CHECK (dim > 0 AND length(embedding) = 4 * dim),
        model_id  TEXT NOT NULL,
        threshold REAL NOT NULL,
        quality   REAL NOT NULL
    );
    CREATE INDEX unknown_faces_group ON unknown_faces(group_id, id);
    CREATE INDEX unknown_faces_at ON unknown_faces(at_ms);
    INSERT OR IGNORE INTO meta (key, value) VALUES ('unknown_dropped', 0), ('unknown_expired', 0);
    ",
    // live2 (issue 10): the liveness score of a spoof denial, in the access log beside similarity.
    "
    ALTER TABLE events ADD COLUMN liveness REAL;
    ",
    // web2 (issue 12): a face thumbnail per template (the console shows it; older templates
    // have none), and the node journal: door, camera and audit events for the console's event log.
    "
    ALTER TABLE templates ADD COLUMN thumbnail BLOB CHECK (thumbnail IS NULL OR length(thumbnail) <= 65536);
    CREATE TABLE journal (
        id      INTEGER PRIMARY KEY,
        at_ms   INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail  TEXT NOT NULL
    );
    CREATE INDEX journal_at ON journal(at_ms);
    CREATE INDEX journal_subject ON journal(subject, id);
    ",
    // attrrun (issue 14): lobby statistics, only with `[analyze] enabled` and `hourly`: faces
    // counted per camera per local hour by age band, gender and expression. Counts only: no
    // face, no time finer than the hour, no person.
    "
    CREATE TABLE attribute_hours (
        camera   TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms   INTEGER NOT NULL CHECK (end_ms > start_ms),
        faces    INTEGER NOT NULL CHECK (faces >= 0),
        complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
        PRIMARY KEY (camera, start_ms)
    ) WITHOUT ROWID;
    CREATE INDEX attribute_hours_start ON attribute_hours(start_ms);
    CREATE INDEX attribute_hours_open ON attribute_hours(complete, end_ms);
    CREATE TABLE attribute_counts (
        camera   TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        bucket   TEXT NOT NULL CHECK (bucket LIKE 'age:%' OR bucket LIKE 'gender:%' OR bucket LIKE 'emotion:%'),
        count    INTEGER NOT NULL CHECK (count > 0),
        PRIMARY KEY (camera, start_ms, bucket),
        FOREIGN KEY (camera, start_ms) REFERENCES attribute_hours(camera, start_ms) ON DELETE CASCADE
    ) WITHOUT ROWID;
    ",
];

/// The schema version this build writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

fn user_version(conn: &Connection) -> Result<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    u32::try_from(v).context("negative schema version")
}

/// Brings the schema to [`LATEST`]; a no-op when it already is.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    check_identity(conn)?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read the version inside the write lock: another process may have migrated meanwhile.
        let version = user_version(&tx)?;
        if version > LATEST {
            bail!(
                "the database has schema version {version} but this facegate knows only up to {LATEST}; \
                 it was written by a newer facegate: upgrade facegate or use another --db file"
            );
        }
        if version == LATEST {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[version as usize])
            .with_context(|| format!("migration to schema version {} failed", version + 1))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        log::info!("database schema migrated to version {}", version + 1);
    }
}

/// Refuses SQLite files that belong to another program instead of adding our tables to them.
fn check_identity(conn: &Connection) -> Result<()> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app == APPLICATION_ID {
        return Ok(());
    }
    if app != 0 {
        bail!("it is an SQLite database of another program (application_id {app:#x})");
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if tables > 0 {
        bail!("it is an SQLite database with {tables} schema objects but no facegate tables");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_gains_door_lists_and_keeps_its_people() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute("INSERT INTO people (name, created, updated) VALUES ('Ann', 'x', 'x')", []).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), LATEST);
        let doors: String = conn.query_row("SELECT doors FROM people WHERE name = 'Ann'", [], |r| r.get(0)).unwrap();
        assert_eq!(doors, "all", "people enrolled before door lists keep opening every door");
    }

    #[test]
    fn a_version_2_database_keeps_its_queue_and_ids_when_migrated() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for m in &MIGRATIONS[..2] {
            conn.execute_batch(m).unwrap();
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute("INSERT INTO people (id, name, created, updated) VALUES (41, 'Ann', 'x', 'x')", []).unwrap();
        conn.execute(
            "INSERT INTO outbox (seq, event_id, topic, payload, retain, created, person_id) VALUES (7, 'e', 't', x'00', 0, 'x', 41)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        conn.execute("DELETE FROM people WHERE id = 41", []).unwrap();
        let queued: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).unwrap();
        assert_eq!(queued, 1, "removing a person no longer deletes their queued events");
        let high: i64 =
            conn.query_row("SELECT value FROM meta WHERE key = 'person_id_high'", [], |r| r.get(0)).unwrap();
        assert_eq!(high, 41);
        conn.execute(
            "INSERT INTO outbox (event_id, topic, payload, retain, created) VALUES ('f', 't', x'00', 0, 'x')",
            [],
        )
        .unwrap();
        let seq: i64 = conn.query_row("SELECT max(seq) FROM outbox", [], |r| r.get(0)).unwrap();
        assert_eq!(seq, 8, "sequence numbers continue");
    }

    #[test]
    fn migrates_from_empty_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), LATEST);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), LATEST);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('people', 'templates', 'events', 'outbox', 'meta')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 5);
    }

    #[test]
    fn refuses_newer_and_foreign_databases() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1).unwrap();
        let err = format!("{:#}", migrate(&mut conn).unwrap_err());
        assert!(err.contains("newer facegate"), "{err}");

        let mut foreign = Connection::open_in_memory().unwrap();
        foreign.execute_batch("CREATE TABLE invoices (id INTEGER)").unwrap();
        let err = format!("{:#}", migrate(&mut foreign).unwrap_err());
        assert!(err.contains("no facegate tables"), "{err}");
    }
}
