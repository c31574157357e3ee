//! Verifies signed commands against the keys in the store and turns them into an [`Actor`].

use std::io::Read;

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::signing::{canonical_message, verify};
use super::{Actor, Scopes, Via};
use crate::act::store::{NonceUse, Store};

/// The payload fields that carry the signature (removed before the arguments are read).
pub const AUTH_FIELDS: [&str; 4] = ["key", "ts", "nonce", "sig"];

/// 32 random bytes from the kernel: a new key's secret.
pub fn new_secret() -> Result<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .context("cannot read /dev/urandom for a new key's secret")?;
    Ok(secret)
}

/// The node's keys (read from the store per command, so `keys revoke` acts at once) and its
/// used nonces (persisted, so neither a reload nor a restart reopens a replay).
pub struct Keyring {
    store: Store,
    node: String,
    max_skew_s: u64,
}

/// Whether a payload carries a signature at all (any of the auth fields).
pub fn is_signed(payload: &Map<String, Value>) -> bool {
    AUTH_FIELDS.iter().any(|f| payload.contains_key(*f))
}

impl Keyring {
    pub fn new(store: Store, node: &str, max_skew_s: u64) -> Keyring {
        Keyring { store, node: node.to_string(), max_skew_s }
    }

    /// Checks the signature of `command` with `payload` (every field but `sig` is covered), its
    /// freshness against `now_s` and its nonce; on success removes the auth fields from
    /// `payload` and returns who signed it. `Err` is the refusal, worded for the reply.
    pub fn verify(
        &mut self,
        command: &str,
        payload: &mut Map<String, Value>,
        now_s: i64,
        via: Via,
    ) -> Result<Actor, String> {
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
        let Some(key) = text("key") else {
            return Err("`key` is missing: a signed command names its key (see `facegate keys add`)".into());
        };
        let Some(sig) = text("sig") else {
            return Err("`sig` is missing: sign the command with its key (`facegate cmd` does it)".into());
        };
        let Some(nonce) = text("nonce") else { return Err("`nonce` is missing or not a string".into()) };
        let Some(ts) = payload.get("ts").and_then(Value::as_i64) else {
            return Err("`ts` must be the unix time in seconds (an integer)".into());
        };
        if nonce.len() < 8 || nonce.len() > 64 || !nonce.chars().all(|c| c.is_ascii_graphic()) {
            return Err("`nonce` must be 8 to 64 printable ASCII characters, new for every request".into());
        }
        let skew = i128::from(self.max_skew_s.min(i64::MAX as u64));
        // In i128 so that no timestamp (e.g. now + i64::MIN) can wrap the difference.
        let off = i128::from(now_s) - i128::from(ts);
        if off.abs() > skew {
            return Err(format!(
                "timestamp {ts} is {off} s away from this node's clock (allowed: {skew} s): sign with the current unix time"
            ));
        }
        let Ok(sig) = hex::decode(&sig) else { return Err("`sig` must be hex".into()) };
        let (secret, scopes) = match self.store.key_secret(&key) {
            Ok(Some(k)) => k,
            Ok(None) => return Err("unknown or revoked key (or bad signature)".into()),
            Err(e) => return Err(format!("the key store cannot be read, so the command is refused: {e:#}")),
        };
        if !verify(&secret, &canonical_message(&self.node, command, payload), &sig) {
            return Err("bad signature".into());
        }
        let scopes: Scopes = scopes.parse().map_err(|e| format!("key `{key}` has damaged scopes: {e}"))?;
        // A replay after ts + skew fails the timestamp check, so the nonce may go then.
        let expires = ts.saturating_add(skew as i64).max(now_s);
        match self.store.use_nonce(&key, &nonce, expires, now_s) {
            Ok(NonceUse::Fresh) => {}
            Ok(NonceUse::Replayed) => return Err("replayed request: this nonce was already used".into()),
            Ok(NonceUse::Full) => {
                return Err("too many requests with this key in the last minutes; try again later".into());
            }
            Err(e) => return Err(format!("the nonce cannot be recorded, so the command is refused: {e:#}")),
        }
        for f in super::keyring::AUTH_FIELDS {
            payload.remove(f);
        }
        Ok(Actor::new(key, scopes, via))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::access::signing::sign_payload;

    fn ring(dir: &tempfile::TempDir) -> (Keyring, Vec<u8>) {
        let mut store = Store::open(&dir.path().join("k.db")).unwrap();
        let secret = new_secret().unwrap();
        store.add_key("ops", &secret, "manage").unwrap();
        (Keyring::new(store, "door1", 30), secret)
    }

    fn signed(secret: &[u8], ts: i64, nonce: &str) -> Map<String, Value> {
        let mut p = json!({"request_id": "r1", "person": "Ann"}).as_object().unwrap().clone();
        sign_payload("door1", "remove", &mut p, "ops", secret, ts, nonce);
        p
    }

    #[test]
    fn good_signature_gives_the_keys_actor_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, secret) = ring(&dir);
        let mut p = signed(&secret, 1000, "nonce-0001");
        let actor = k.verify("remove", &mut p, 1010, Via::Mqtt).unwrap();
        assert_eq!((actor.name.as_str(), actor.scopes.to_string()), ("ops", "manage".to_string()));
        assert_eq!(p, *json!({"request_id": "r1", "person": "Ann"}).as_object().unwrap(), "auth fields removed");
        let mut again = signed(&secret, 1000, "nonce-0001");
        assert!(k.verify("remove", &mut again, 1011, Via::Mqtt).unwrap_err().contains("replayed"));
    }

    #[test]
    fn replay_after_a_restart_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, secret) = ring(&dir);
        k.verify("remove", &mut signed(&secret, 1000, "nonce-0001"), 1000, Via::Mqtt).unwrap();
        drop(k);
        let mut k = Keyring::new(Store::open(&dir.path().join("k.db")).unwrap(), "door1", 30);
        let err = k.verify("remove", &mut signed(&secret, 1000, "nonce-0001"), 1001, Via::Mqtt).unwrap_err();
        assert!(err.contains("replayed"), "{err}");
    }

    #[test]
    fn wrapping_timestamps_wrong_keys_and_changed_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut k, secret) = ring(&dir);
        let now: i64 = 1_700_000_000;
        for ts in [now.wrapping_add(i64::MIN), i64::MIN, i64::MAX, now - 31, now + 31] {
            let err = k.verify("remove", &mut signed(&secret, ts, "nonce-0002"), now, Via::Mqtt).unwrap_err();
            assert!(err.contains("timestamp"), "{ts}: {err}");
        }
        let mut changed = signed(&secret, now, "nonce-0003");
        changed.insert("person".into(), json!("Bob"));
        assert_eq!(k.verify("remove", &mut changed, now, Via::Mqtt).unwrap_err(), "bad signature");
        let mut p = signed(&secret, now, "nonce-0004");
        assert_eq!(k.verify("forget", &mut p, now, Via::Mqtt).unwrap_err(), "bad signature", "other command");
        let mut p = signed(b"another-secret-0000", now, "nonce-0005");
        assert_eq!(k.verify("remove", &mut p, now, Via::Mqtt).unwrap_err(), "bad signature");
        let mut p = signed(&secret, now, "nonce-0006");
        p.insert("key".into(), json!("nobody"));
        assert!(k.verify("remove", &mut p, now, Via::Mqtt).unwrap_err().contains("unknown"));
    }
}
