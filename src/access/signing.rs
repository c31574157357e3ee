//! The signature on a command: HMAC-SHA256 over every field of the payload.
//!
//! A signed payload is the command's JSON object plus `key` (the key name), `ts` (unix seconds),
//! `nonce` (8 to 64 printable ASCII characters, new per request) and `sig` (hex). The signed
//! text is
//!
//! ```text
//! facegate-cmd-v1\n<node>\n<command>\n<canonical JSON of the payload without `sig`>
//! ```
//!
//! where the canonical JSON has object keys sorted by byte order at every level and no
//! whitespace (what `serde_json` prints for a `Value`; Python: `json.dumps(obj, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)`). Because every field is covered (request id,
//! arguments, key, ts, nonce), no field can be changed, added or dropped under a valid
//! signature, and the node and command name stop a signature from being replayed elsewhere.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The first line of the signed text (bumped if the format ever changes).
pub const SIGNATURE_VERSION: &str = "facegate-cmd-v1";

/// Keys sorted at every level, no whitespace.
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k]))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The text a command's signature covers: everything in `payload` except `sig`.
pub fn canonical_message(node: &str, command: &str, payload: &Map<String, Value>) -> String {
    let mut unsigned = payload.clone();
    unsigned.remove("sig");
    format!("{SIGNATURE_VERSION}\n{node}\n{command}\n{}", canonical_json(&Value::Object(unsigned)))
}

/// Hex HMAC-SHA256 of `message` with `secret`.
pub fn hmac_hex(secret: &[u8], message: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `sig` (raw bytes) is the HMAC of `message`, compared in constant time.
pub fn verify(secret: &[u8], message: &str, sig: &[u8]) -> bool {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else { return false };
    mac.update(message.as_bytes());
    mac.verify_slice(sig).is_ok()
}

/// Adds `key`, `ts`, `nonce` and `sig` to a command payload: what `facegate cmd` (and a test or
/// another client) sends.
pub fn sign_payload(
    node: &str,
    command: &str,
    payload: &mut Map<String, Value>,
    key: &str,
    secret: &[u8],
    ts: i64,
    nonce: &str,
) {
    payload.insert("key".into(), key.into());
    payload.insert("ts".into(), ts.into());
    payload.insert("nonce".into(), nonce.into());
    let sig = hmac_hex(secret, &canonical_message(node, command, payload));
    payload.insert("sig".into(), sig.into());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_form_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": "é"}], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"z":[1,{"x":"é","y":2}]},"b":1}"#);
    }

    #[test]
    fn every_field_is_covered() {
        let mut p = json!({"request_id": "r1", "person": "Ann", "role": "visitor"}).as_object().unwrap().clone();
        sign_payload("door1", "set_role", &mut p, "ops", b"0123456789abcdef", 100, "nonce-1234");
        let sig = hex::decode(p["sig"].as_str().unwrap()).unwrap();
        assert!(verify(b"0123456789abcdef", &canonical_message("door1", "set_role", &p), &sig));
        for (field, value) in
            [("role", json!("employee")), ("request_id", json!("r2")), ("ts", json!(101)), ("extra", json!(1))]
        {
            let mut changed = p.clone();
            changed.insert(field.into(), value);
            assert!(!verify(b"0123456789abcdef", &canonical_message("door1", "set_role", &changed), &sig), "{field}");
        }
        assert!(!verify(b"0123456789abcdef", &canonical_message("door2", "set_role", &p), &sig), "other node");
        assert!(!verify(b"0123456789abcdef", &canonical_message("door1", "remove", &p), &sig), "other command");
    }
}
