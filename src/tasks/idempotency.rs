//! `Idempotency-Key`: a client's name for one create request, so that
//! retrying the request (a flaky network, a timeout) never creates the task
//! twice. Keys are per owner; the same key must come with the same body.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Invalid;

/// A validated key, with the hash of the request it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub owner: String,
    pub key: String,
    /// SHA-256 of the body in canonical form (object keys sorted, no
    /// insignificant whitespace), so that formatting does not make two
    /// requests differ.
    pub request_hash: [u8; 32],
}

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

impl IdempotencyKey {
    /// Checks the header value (1 to 255 visible ASCII characters) and
    /// hashes `body`.
    pub fn new(owner: &str, key: &str, body: &Value) -> Result<IdempotencyKey, Invalid> {
        let ok = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !ok {
            return Err(Invalid::new(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        // serde_json's maps are sorted by key, so this is canonical.
        let canonical = serde_json::to_vec(body).unwrap_or_default();
        Ok(IdempotencyKey {
            owner: owner.to_string(),
            key: key.to_string(),
            request_hash: Sha256::digest(&canonical).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_body_however_written_hashes_the_same() {
        let a: Value =
            serde_json::from_str(r#"{"kind":"sleep","payload":{"seconds":1,"fail":false}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(
            "{ \"payload\": { \"fail\": false, \"seconds\": 1 },\n  \"kind\": \"sleep\" }",
        )
        .unwrap();
        let ka = IdempotencyKey::new("alice", "k1", &a).unwrap();
        assert_eq!(
            ka.request_hash,
            IdempotencyKey::new("alice", "k1", &b).unwrap().request_hash
        );
        let c = json!({"kind": "sleep", "payload": {"seconds": 2}});
        assert_ne!(
            ka.request_hash,
            IdempotencyKey::new("alice", "k1", &c).unwrap().request_hash
        );
    }

    #[test]
    fn keys_are_short_visible_ascii() {
        let body = json!({});
        assert!(IdempotencyKey::new("a", "order-42/attempt 1", &body).is_ok());
        for bad in ["", "tab\there", "é", &"x".repeat(256)] {
            assert!(IdempotencyKey::new("a", bad, &body).is_err(), "{bad:?}");
        }
    }
}
