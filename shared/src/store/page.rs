//! Pages of a list: a bounded `limit` and an opaque cursor for the next page. The cursor is
//! the store's position (its last key) with an HMAC-SHA256 tag, under the deployment's cursor
//! key, of that position and the query it came from. Decoding checks the tag (constant-time)
//! and the position's shape (known key attributes, bounded values), and the store checks the
//! position lies inside the query's own partition. A cursor from another query, another
//! deployment, or edited in any byte is refused (400 `INVALID_CURSOR`), never a 5xx; and a
//! caller cannot make one, so a position reaches the store only as the store wrote it.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

/// The key attributes a position may name, and the longest value one may hold.
const POSITION_ATTRIBUTES: [&str; 6] = ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"];
const MAX_POSITION_VALUE: usize = 512;

static KEY: OnceLock<hmac::Key> = OnceLock::new();

/// Sets the deployment's cursor key (the `CURSOR_KEY_SECRET_ID` secret's bytes), once per
/// process, before the first page. Functions that hand cursors to callers set it at startup;
/// without it (tests, the reconcile's own position kept in the table) a fixed key is used.
pub fn set_key(raw: &[u8]) {
    let _ = KEY.set(hmac::Key::new(hmac::HMAC_SHA256, raw));
}

fn key() -> &'static hmac::Key {
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, b"local-dev-only-unkeyed-cursors"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not valid for this list")]
pub struct InvalidCursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("limit must be a whole number from 1 to {MAX_LIMIT}")]
pub struct InvalidLimit;

/// The page size a client asked for (`None`: the default), bounded.
pub fn limit(raw: Option<&str>) -> Result<usize, InvalidLimit> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(r) => r
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(InvalidLimit),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    /// The position: key attribute name -> string value.
    k: BTreeMap<String, String>,
    /// HMAC-SHA256 of the query and the position, hex.
    m: String,
}

/// What the tag covers: the query and the position, each length-prefixed.
fn signed(query: &str, position: &BTreeMap<String, String>) -> Vec<u8> {
    let mut input = Vec::new();
    let mut part = |bytes: &[u8]| {
        input.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        input.extend_from_slice(bytes);
    };
    part(query.as_bytes());
    for (name, value) in position {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    input
}

/// A cursor for `position` in the list described by `query` (e.g. `tenant-members:<id>`).
pub fn encode(query: &str, position: BTreeMap<String, String>) -> String {
    let tag = hmac::sign(key(), &signed(query, &position));
    let wire = Wire {
        m: hex(tag.as_ref()),
        k: position,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The position in a cursor made for `query`.
pub fn decode(query: &str, cursor: &str) -> Result<BTreeMap<String, String>, InvalidCursor> {
    if cursor.len() > 2048 {
        return Err(InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)?;
    let shaped = (1..=4).contains(&wire.k.len())
        && wire.k.iter().all(|(name, value)| {
            POSITION_ATTRIBUTES.contains(&name.as_str())
                && !value.is_empty()
                && value.len() <= MAX_POSITION_VALUE
        });
    if !shaped {
        return Err(InvalidCursor);
    }
    let tag = unhex(&wire.m).ok_or(InvalidCursor)?;
    hmac::verify(key(), &signed(query, &wire.k), &tag).map_err(|_| InvalidCursor)?;
    Ok(wire.k)
}

/// The position in a cursor made for `query`, refused unless its `attr` is `partition`: a
/// cursor may only move within the query's own partition.
pub fn decode_within(
    query: &str,
    cursor: &str,
    attr: &str,
    partition: &str,
) -> Result<BTreeMap<String, String>, InvalidCursor> {
    let position = decode(query, cursor)?;
    if position.get(attr).map(String::as_str) != Some(partition) {
        return Err(InvalidCursor);
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_for_its_own_query_only() {
        let pos = BTreeMap::from([("PK".to_string(), "USER#1".to_string())]);
        let c = encode("tenant-members:a", pos.clone());
        assert_eq!(decode("tenant-members:a", &c), Ok(pos));
        assert_eq!(decode("tenant-members:b", &c), Err(InvalidCursor));
        assert!(decode_within("tenant-members:a", &c, "PK", "USER#1").is_ok());
        assert_eq!(
            decode_within("tenant-members:a", &c, "PK", "USER#2"),
            Err(InvalidCursor)
        );
        for bad in ["", "!!!", "eyJ9", &"A".repeat(3000), &c[..c.len() - 2]] {
            assert_eq!(decode("tenant-members:a", bad), Err(InvalidCursor), "{bad}");
        }
    }

    /// A cursor with `wire` as its JSON.
    fn forged(wire: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(wire.to_string())
    }

    #[test]
    fn an_edited_or_hand_made_cursor_is_refused() {
        let pos = BTreeMap::from([
            ("PK".to_string(), "USER#1".to_string()),
            ("SK".to_string(), "MEMBER#2".to_string()),
        ]);
        let good = encode("q", pos.clone());
        let wire: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&good).unwrap()).unwrap();
        // The unkeyed digest of the old format, recomputed by hand: not a tag.
        let digest = crate::access::sha256_hex(b"q")[..32].to_string();
        for bad in [
            forged(serde_json::json!({"k": {"PK": "USER#1", "SK": "MEMBER#3"}, "m": wire["m"]})),
            forged(serde_json::json!({"k": pos, "q": digest})),
            forged(serde_json::json!({"k": pos, "m": digest})),
            forged(serde_json::json!({"k": pos, "m": wire["m"], "x": 1})),
            forged(serde_json::json!({"k": {"PK": 1}, "m": wire["m"]})),
            forged(serde_json::json!({"k": {"Scan": "x"}, "m": wire["m"]})),
            forged(serde_json::json!({"k": {"PK": "x".repeat(600)}, "m": wire["m"]})),
            forged(serde_json::json!({"k": {}, "m": wire["m"]})),
            forged(serde_json::json!([1, 2])),
        ] {
            assert_eq!(decode("q", &bad), Err(InvalidCursor), "{bad}");
        }
        // Every single-character edit of a real cursor is refused.
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            let mut edited = bytes.to_vec();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).unwrap();
            if edited != good {
                assert_eq!(decode("q", &edited), Err(InvalidCursor), "edit at {i}");
            }
        }
        assert_eq!(decode("q", &good), Ok(pos));
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None), Ok(DEFAULT_LIMIT));
        assert_eq!(limit(Some("100")), Ok(100));
        for bad in ["0", "101", "-1", "ten", ""] {
            assert_eq!(limit(Some(bad)), Err(InvalidLimit), "{bad}");
        }
    }
}
