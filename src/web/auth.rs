//! Who is logged in: argon2 password checks, sessions (a random cookie, kept in memory so a
//! restart logs everyone out), the per-session CSRF token, and login rate limiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};

/// Shortest password `facegate admin add|passwd` accepts.
pub const MIN_PASSWORD: usize = 10;

/// Hashes a new password (argon2id, random salt) into a PHC string for the store.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD {
        bail!("the password must have at least {MIN_PASSWORD} characters");
    }
    if password.chars().count() > 1024 {
        bail!("the password must have at most 1024 characters");
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string (a damaged hash never matches).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A verification against this keeps the time of a login for an unknown name the same as
/// for a known one (no account enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password, only for timing").unwrap_or_default())
}

/// A random token: two UUID v4 (244 random bits from the OS), hex.
pub fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

#[derive(Debug, Clone)]
pub struct Session {
    pub admin: String,
    pub csrf: String,
    last_seen: Instant,
}

/// Failed logins allowed per client address and per account name in [`FAIL_WINDOW`].
const FAILS_PER_ADDR: usize = 5;
const FAILS_PER_NAME: usize = 10;
const FAIL_WINDOW: Duration = Duration::from_secs(300);
/// Sessions kept at most (oldest dropped first): bounds memory whatever clients do.
const MAX_SESSIONS: usize = 1000;

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    fails_by_addr: HashMap<IpAddr, Vec<Instant>>,
    fails_by_name: HashMap<String, Vec<Instant>>,
}

pub struct Auth {
    inner: Mutex<Inner>,
    idle: Duration,
}

impl Auth {
    pub fn new(idle: Duration) -> Auth {
        Auth { inner: Mutex::new(Inner::default()), idle }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(message)` when this address or account has failed too often lately.
    pub fn check_rate(&self, addr: Option<IpAddr>, name: &str) -> std::result::Result<(), String> {
        let mut inner = self.lock();
        let now = Instant::now();
        let recent = |v: &mut Vec<Instant>| {
            v.retain(|t| now.duration_since(*t) < FAIL_WINDOW);
            v.len()
        };
        let by_addr = addr.and_then(|a| inner.fails_by_addr.get_mut(&a)).map(recent).unwrap_or(0);
        let by_name = inner.fails_by_name.get_mut(&name.to_lowercase()).map(recent).unwrap_or(0);
        if by_addr >= FAILS_PER_ADDR || by_name >= FAILS_PER_NAME {
            return Err(format!(
                "too many failed logins; wait {} minutes and try again (an administrator can reset a password with `facegate admin passwd`)",
                FAIL_WINDOW.as_secs() / 60
            ));
        }
        Ok(())
    }

    pub fn record_failure(&self, addr: Option<IpAddr>, name: &str) {
        let mut inner = self.lock();
        let now = Instant::now();
        if let Some(a) = addr {
            inner.fails_by_addr.entry(a).or_default().push(now);
        }
        inner.fails_by_name.entry(name.to_lowercase()).or_default().push(now);
        // Bound the maps: forget addresses whose failures are all old.
        if inner.fails_by_addr.len() > 10_000 {
            inner.fails_by_addr.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < FAIL_WINDOW));
        }
        if inner.fails_by_name.len() > 10_000 {
            inner.fails_by_name.retain(|_, v| v.iter().any(|t| now.duration_since(*t) < FAIL_WINDOW));
        }
    }

    /// Starts a session for `admin`; returns its cookie token.
    pub fn login(&self, admin: &str) -> String {
        let mut inner = self.lock();
        let now = Instant::now();
        let idle = self.idle;
        inner.sessions.retain(|_, s| now.duration_since(s.last_seen) < idle);
        if inner.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = inner.sessions.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone())
        {
            inner.sessions.remove(&oldest);
        }
        let token = random_token();
        inner
            .sessions
            .insert(token.clone(), Session { admin: admin.to_string(), csrf: random_token(), last_seen: now });
        token
    }

    /// The live session of this cookie token, refreshed.
    pub fn session(&self, token: &str) -> Option<Session> {
        let mut inner = self.lock();
        let now = Instant::now();
        let idle = self.idle;
        let session = inner.sessions.get_mut(token)?;
        if now.duration_since(session.last_seen) >= idle {
            inner.sessions.remove(token);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn logout(&self, token: &str) {
        self.lock().sessions.remove(token);
    }

    /// Ends every session of an account (its password changed or it was removed).
    pub fn logout_admin(&self, admin: &str) {
        self.lock().sessions.retain(|_, s| !s.admin.eq_ignore_ascii_case(admin));
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        assert!(hash_password("short").is_err());
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("anything", "garbage"));
    }

    #[test]
    fn failures_lock_out_an_address() {
        let auth = Auth::new(Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        for _ in 0..FAILS_PER_ADDR {
            assert!(auth.check_rate(Some(ip), "x").is_ok());
            auth.record_failure(Some(ip), "x");
        }
        assert!(auth.check_rate(Some(ip), "y").unwrap_err().contains("wait"));
        assert!(auth.check_rate(Some("10.0.0.8".parse().unwrap()), "y").is_ok());
    }

    #[test]
    fn sessions_end_on_logout() {
        let auth = Auth::new(Duration::from_secs(60));
        let t = auth.login("office");
        assert_eq!(auth.session(&t).unwrap().admin, "office");
        assert!(auth.session("nope").is_none());
        auth.logout_admin("OFFICE");
        assert!(auth.session(&t).is_none());
    }
}
