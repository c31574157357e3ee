//! The SQLite store: people, face templates, attendance events and the MQTT event outbox.
//!
//! One file, opened in WAL mode with `synchronous=FULL`: a write is on disk when the call
//! returns, so an attendance row acknowledged before the door opens survives a power cut.
//! Several processes may open the same file (the service and the CLI); writers wait up to
//! `busy_timeout` for each other, and the service notices CLI edits through
//! [`Store::change_counter`].

mod admins;
mod attributes;
mod events;
mod journal;
mod keys;
mod outbox;
mod people;
mod schema;
mod templates;
mod unknown;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::gallery::TemplateModel;

pub use admins::AdminRecord;
pub use events::{AccessEvent, DayAttendance, EventFilter, EventKind};
pub use journal::{JournalEntry, JournalFilter, KINDS as JOURNAL_KINDS};
pub use keys::{KeyRecord, MAX_NONCES_PER_KEY, NonceUse};
pub use people::{ForgetReport, PersonRecord, check_person_name};
pub use schema::LATEST as SCHEMA_VERSION;
pub use templates::{LearntTemplate, MAX_THUMBNAIL_BYTES, NewTemplate, TemplateInfo};
pub use unknown::{UnknownAdded, UnknownEvidence, UnknownFace, UnknownGroup, UnknownSample};

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `[store]` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The database file; created with its folder on first use.
    pub path: PathBuf,
    /// Most events the outbox keeps while the broker is unreachable (see `docs/store.md`).
    pub outbox_cap: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { path: PathBuf::from("facegate.db"), outbox_cap: 100_000 }
    }
}

impl StoreConfig {
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            bail!("store.path must name a database file, e.g. \"/var/lib/facegate/facegate.db\"");
        }
        if self.outbox_cap == 0 || self.outbox_cap > i64::MAX as u64 {
            bail!("store.outbox_cap must be a positive number of events, e.g. 100000 (got {})", self.outbox_cap);
        }
        Ok(())
    }
}

/// An open facegate database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    outbox_cap: u64,
    /// The embedder the [`crate::gallery::GalleryStore`] view works with (see [`Store::bind_model`]).
    model: Option<TemplateModel>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("outbox_cap", &self.outbox_cap).finish()
    }
}

impl Store {
    /// Opens (or creates) the database at `path` with the default outbox cap, creating its folder
    /// if missing and migrating the schema to the latest version.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_config(&StoreConfig { path: path.to_path_buf(), ..StoreConfig::default() })
    }

    pub fn open_config(cfg: &StoreConfig) -> Result<Store> {
        cfg.validate()?;
        let path = &cfg.path;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder {} for the database", dir.display()))?;
        }
        create_private(path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("cannot open database {}: check the path and its permissions", path.display()))?;
        configure(&mut conn).map_err(|e| damaged(path, e))?;
        schema::migrate(&mut conn).map_err(|e| damaged(path, e))?;
        Ok(Store { conn, path: path.clone(), outbox_cap: cfg.outbox_cap, model: None })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the embedder used by the [`crate::gallery::GalleryStore`] view of this store.
    pub fn bind_model(&mut self, model: TemplateModel) {
        self.model = Some(model);
    }

    /// A number that grows on every change to people or templates, by any process. A running
    /// service polls it (one indexed read) and reloads its gallery when it moved.
    pub fn change_counter(&self) -> Result<u64> {
        meta_get(&self.conn, "changes")
    }

    /// Outbox events dropped because the outbox was full (see `docs/store.md`), ever.
    pub fn outbox_dropped(&self) -> Result<u64> {
        meta_get(&self.conn, "outbox_dropped")
    }

    /// Undelivered outbox events erased by `forget` (on purpose, unlike `outbox_dropped`), ever.
    pub fn outbox_forgotten(&self) -> Result<u64> {
        meta_get(&self.conn, "outbox_forgotten")
    }

    /// Full consistency check: SQLite's page-level `integrity_check` and every foreign key.
    pub fn integrity_check(&self) -> Result<()> {
        let mut problems = Vec::new();
        self.conn.pragma_query(None, "integrity_check", |row| {
            let line: String = row.get(0)?;
            if line != "ok" {
                problems.push(line);
            }
            Ok(())
        })?;
        self.conn.pragma_query(None, "foreign_key_check", |row| {
            let table: String = row.get(0)?;
            let rowid: Option<i64> = row.get(1)?;
            let parent: String = row.get(2)?;
            problems.push(format!("{table} row {rowid:?} points at a missing {parent} row"));
            Ok(())
        })?;
        if !problems.is_empty() {
            bail!(
                "database {} failed its integrity check: {}; restore a backup (or `sqlite3 {} .recover`)",
                self.path.display(),
                problems.join("; "),
                self.path.display()
            );
        }
        Ok(())
    }

    /// The id of the person `who` names: `#12` or `12` is an id (a name made of digits is tried
    /// as a name first), anything else a name (case-insensitive).
    fn resolve(conn: &Connection, who: &str) -> Result<Option<i64>> {
        let who = who.trim();
        let by_name: Option<i64> =
            conn.query_row("SELECT id FROM people WHERE name = ?1", [who], |r| r.get(0)).optional()?;
        if by_name.is_some() {
            return Ok(by_name);
        }
        let digits = who.strip_prefix('#').unwrap_or(who);
        match digits.parse::<i64>() {
            Ok(id) => Ok(conn.query_row("SELECT id FROM people WHERE id = ?1", [id], |r| r.get(0)).optional()?),
            Err(_) => Ok(None),
        }
    }

    /// Like [`Store::resolve`], but a missing person is an error that says how to list people.
    fn require(conn: &Connection, path: &Path, who: &str) -> Result<i64> {
        Store::resolve(conn, who)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no person `{}` in {}; `facegate people list` shows who is enrolled (by name or #id)",
                who.trim(),
                path.display()
            )
        })
    }
}

/// Starts a write transaction that takes the write lock at once (no deadlock on upgrade).
/// A free function so the caller can still read the store's other fields.
fn write<'c>(conn: &'c mut Connection, path: &Path) -> Result<Transaction<'c>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .with_context(|| format!("cannot write to database {}", path.display()))
}

/// Creates a missing database file readable by its owner only: it holds client keys and faces.
/// (An existing file keeps its mode; `doctor` warns when others can read it.)
fn create_private(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

/// Per-connection settings; these are not stored in the file, so every open sets them.
fn configure(conn: &mut Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer. FULL: the WAL is fsynced at each commit, so a
    // committed row survives power loss (NORMAL would only guarantee consistency).
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("database could not switch to WAL mode (it is in {mode} mode); writes will be slower");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Overwrite deleted content, so `forget` leaves no readable remains in the file.
    conn.pragma_update(None, "secure_delete", true)?;
    Ok(())
}

/// Explains an error met while opening: a damaged or foreign file gets the path and the fix.
/// The error of a database this process may read but not write (file or folder), naming the fix.
pub(crate) fn unwritable(path: &Path, error: anyhow::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{} cannot be written by this user ({error:#}): the service would never record a decision or open the door; \
         give the service user write access to the file and its folder (chown facegate: ...)",
        path.display()
    )
}

fn damaged(path: &Path, error: anyhow::Error) -> anyhow::Error {
    use rusqlite::ErrorCode::{CannotOpen, DatabaseCorrupt, NotADatabase, ReadOnly};
    let code = error.downcast_ref::<rusqlite::Error>().and_then(|e| e.sqlite_error_code());
    match code {
        // The open itself succeeds read-only; the first write (WAL set-up, a migration) fails.
        Some(ReadOnly | CannotOpen) => unwritable(path, error),
        Some(NotADatabase | DatabaseCorrupt) => anyhow::anyhow!(
            "{} is not a facegate database or is damaged ({error}); move it away so facegate starts a new one \
             (or restore a backup), or point --db / [store] path at the right file",
            path.display()
        ),
        _ => error.context(format!(
            "cannot use database {}; if it is not a facegate database, point --db / [store] path elsewhere",
            path.display()
        )),
    }
}

fn meta_get(conn: &Connection, key: &str) -> Result<u64> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?;
    Ok(u64::try_from(v).unwrap_or(0))
}

fn meta_add(tx: &Transaction<'_>, key: &str, n: u64) -> Result<()> {
    tx.execute("UPDATE meta SET value = value + ?2 WHERE key = ?1", rusqlite::params![key, n as i64])?;
    Ok(())
}

/// Now as stored in `created`/`updated` columns: ISO-8601 UTC with milliseconds.
fn now_text() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_folder_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/f.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.change_counter().unwrap(), 0);
        drop(store);
        let store = Store::open(&path).unwrap();
        store.integrity_check().unwrap();
        let mode: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store.conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous must be FULL");
        let fk: i64 = store.conn.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn garbage_file_gives_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let err = format!("{:#}", Store::open(&path).unwrap_err());
        assert!(err.contains("bad.db") && err.contains("move it away"), "{err}");
        // A JSON gallery from the previous version, passed by mistake.
        std::fs::write(&path, b"{\"format_version\":1}").unwrap();
        let err = format!("{:#}", Store::open(&path).unwrap_err());
        assert!(err.contains("not a facegate database"), "{err}");
    }

    #[test]
    fn foreign_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE invoices (id INTEGER)").unwrap();
        let err = format!("{:#}", Store::open(&path).unwrap_err());
        assert!(err.contains("other.db") && err.contains("no facegate tables"), "{err}");
    }

    #[test]
    fn config_is_validated_with_key_names() {
        assert!(StoreConfig::default().validate().is_ok());
        let bad = StoreConfig { outbox_cap: 0, ..StoreConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("store.outbox_cap"));
        let bad = StoreConfig { path: PathBuf::new(), ..StoreConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("store.path"));
    }
}
