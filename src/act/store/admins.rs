//! Web console administrators: a name and an argon2 password hash (hashing happens in
//! `web::auth`; the store only keeps the PHC string). The first account is made on the CLI.

use anyhow::{Result, bail};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, now_text, write};

/// One administrator account, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminRecord {
    pub id: i64,
    pub name: String,
    pub created: String,
}

/// Trims an account name and refuses empty, overlong or control-character names.
fn check_admin_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("an administrator name must be 1 to 64 characters without spaces, e.g. `office`");
    }
    Ok(name)
}

impl Store {
    /// Adds an administrator; fails if the name is taken.
    pub fn add_admin(&mut self, name: &str, hash: &str) -> Result<i64> {
        let name = check_admin_name(name)?;
        let tx = write(&mut self.conn, &self.path)?;
        let taken: Option<i64> =
            tx.query_row("SELECT id FROM admins WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        if taken.is_some() {
            bail!("an administrator `{name}` already exists; `facegate admin passwd {name}` changes the password");
        }
        let now = now_text();
        tx.execute(
            "INSERT INTO admins (name, hash, created, updated) VALUES (?1, ?2, ?3, ?3)",
            params![name, hash, now],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(id)
    }

    /// Replaces an administrator's password hash.
    pub fn set_admin_hash(&mut self, name: &str, hash: &str) -> Result<()> {
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute(
            "UPDATE admins SET hash = ?2, updated = ?3 WHERE name = ?1",
            params![name.trim(), hash, now_text()],
        )?;
        if n == 0 {
            bail!("no administrator `{}`; `facegate admin list` shows them", name.trim());
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes an administrator; false when there was none of that name.
    pub fn remove_admin(&mut self, name: &str) -> Result<bool> {
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute("DELETE FROM admins WHERE name = ?1", [name.trim()])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The stored name (as spelled at creation) and hash of an administrator.
    pub fn admin_hash(&self, name: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .query_row("SELECT name, hash FROM admins WHERE name = ?1", [name.trim()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    pub fn admins(&self) -> Result<Vec<AdminRecord>> {
        let mut stmt = self.conn.prepare("SELECT id, name, created FROM admins ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok(AdminRecord { id: r.get(0)?, name: r.get(1)?, created: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_are_added_changed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("a.db")).unwrap();
        store.add_admin("office", "$argon2id$x").unwrap();
        let err = store.add_admin("OFFICE", "$argon2id$y").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert!(store.add_admin("two words", "$argon2id$y").is_err());
        assert!(store.add_admin("hr", "plain").is_err(), "only argon2 hashes are stored");
        store.set_admin_hash("office", "$argon2id$z").unwrap();
        assert_eq!(store.admin_hash("Office").unwrap().unwrap().1, "$argon2id$z");
        assert!(store.set_admin_hash("nobody", "$argon2id$z").is_err());
        assert!(store.remove_admin("office").unwrap());
        assert!(!store.remove_admin("office").unwrap());
        assert!(store.admins().unwrap().is_empty());
    }
}
