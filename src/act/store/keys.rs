//! Client keys (name, secret, scopes) and the nonces their signed commands used.
//!
//! The store keeps them (the database file is the service user's, mode 0600), so a reload or a
//! restart neither forgets a used nonce nor a revoked key. What a scope allows and how a
//! signature is checked is `crate::access`'s business; this is only their persistence.

use anyhow::{Result, bail};
use rusqlite::{OptionalExtension, params};

use super::{Store, now_text, write};

/// One stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyRecord {
    pub name: String,
    /// Comma-separated scope names, as given to `keys add`.
    pub scopes: String,
    /// ISO-8601 UTC.
    pub created: String,
}

/// What [`Store::use_nonce`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceUse {
    /// First use: recorded until its expiry.
    Fresh,
    /// Already used within the window: a replay.
    Replayed,
    /// This key has too many live nonces; refuse until some expire.
    Full,
}

/// Most live nonces per key (each lives for the clock-skew window).
pub const MAX_NONCES_PER_KEY: i64 = 10_000;

impl Store {
    /// Stores a new key; fails when the name is taken.
    pub fn add_key(&mut self, name: &str, secret: &[u8], scopes: &str) -> Result<()> {
        let tx = write(&mut self.conn, &self.path)?;
        let taken: Option<i64> =
            tx.query_row("SELECT 1 FROM client_keys WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        if taken.is_some() {
            bail!(
                "a key named `{name}` exists already: revoke it first (`facegate keys revoke {name}`) or pick another name"
            );
        }
        tx.execute(
            "INSERT INTO client_keys (name, secret, scopes, created) VALUES (?1, ?2, ?3, ?4)",
            params![name, secret, scopes, now_text()],
        )?;
        Ok(tx.commit()?)
    }

    /// Every key, by name (secrets are not returned).
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut stmt = self.conn.prepare("SELECT name, scopes, created FROM client_keys ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok(KeyRecord { name: r.get(0)?, scopes: r.get(1)?, created: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The secret and scopes of the key `name`, if it exists (revoked keys are deleted).
    pub fn key_secret(&self, name: &str) -> Result<Option<(Vec<u8>, String)>> {
        Ok(self
            .conn
            .query_row("SELECT secret, scopes FROM client_keys WHERE name = ?1", [name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Deletes a key and its nonces; returns whether it existed. Commands signed with it are
    /// refused from the next one on (the service reads keys per command).
    pub fn revoke_key(&mut self, name: &str) -> Result<bool> {
        let tx = write(&mut self.conn, &self.path)?;
        let n = tx.execute("DELETE FROM client_keys WHERE name = ?1", [name])?;
        tx.execute("DELETE FROM used_nonces WHERE key_name = ?1 COLLATE NOCASE", [name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Records that `key` used `nonce`, valid until unix second `expires`; forgets nonces that
    /// expired before `now` first. Durable before it returns, so a crash cannot reopen a replay.
    pub fn use_nonce(&mut self, key: &str, nonce: &str, expires: i64, now: i64) -> Result<NonceUse> {
        let tx = write(&mut self.conn, &self.path)?;
        tx.execute("DELETE FROM used_nonces WHERE expires < ?1", [now])?;
        let seen: Option<i64> = tx
            .query_row("SELECT 1 FROM used_nonces WHERE key_name = ?1 AND nonce = ?2", params![key, nonce], |r| {
                r.get(0)
            })
            .optional()?;
        if seen.is_some() {
            tx.commit()?;
            return Ok(NonceUse::Replayed);
        }
        let live: i64 = tx.query_row("SELECT count(*) FROM used_nonces WHERE key_name = ?1", [key], |r| r.get(0))?;
        if live >= MAX_NONCES_PER_KEY {
            tx.commit()?;
            return Ok(NonceUse::Full);
        }
        tx.execute(
            "INSERT INTO used_nonces (key_name, nonce, expires) VALUES (?1, ?2, ?3)",
            params![key, nonce, expires],
        )?;
        tx.commit()?;
        Ok(NonceUse::Fresh)
    }

    /// Rolls back a write to check the database is writable by this process (`doctor`, and
    /// `run` before it starts): the open may succeed on a read-only file and fail only at the
    /// first write, after which the service would never record a decision nor open the door.
    pub fn check_writable(&mut self) -> Result<()> {
        let attempt = (|| -> Result<()> {
            let tx = write(&mut self.conn, &self.path)?;
            tx.execute("UPDATE meta SET value = value WHERE key = 'changes'", [])?;
            tx.rollback()?;
            Ok(())
        })();
        attempt.map_err(|e| super::unwritable(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_nonces_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let mut s = Store::open(&path).unwrap();
        s.add_key("ha", &[7u8; 32], "door").unwrap();
        assert!(s.add_key("HA", &[8u8; 32], "door").is_err(), "names are case-insensitive");
        assert_eq!(s.use_nonce("ha", "n-1", 100, 50).unwrap(), NonceUse::Fresh);
        drop(s);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.use_nonce("ha", "n-1", 100, 60).unwrap(), NonceUse::Replayed, "a restart keeps nonces");
        assert_eq!(s.use_nonce("ha", "n-1", 200, 101).unwrap(), NonceUse::Fresh, "pruned after expiry");
        assert_eq!(s.key_secret("ha").unwrap().unwrap(), (vec![7u8; 32], "door".to_string()));
        assert_eq!(s.keys().unwrap().len(), 1);
        assert!(s.revoke_key("ha").unwrap());
        assert!(s.key_secret("ha").unwrap().is_none());
        assert!(!s.revoke_key("ha").unwrap());
        s.check_writable().unwrap();
    }
}
