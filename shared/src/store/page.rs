//! Pages of a list: a bounded `limit` and an opaque cursor for the next page. The cursor is
//! the store's position (its last key), bound to the query it came from: decoding checks a
//! digest of that query, and the store checks the position lies inside the query's own
//! partition. A cursor from another query, or edited to point into another tenant's data, is
//! refused (400 `INVALID_CURSOR`), never a 5xx. Within its own partition a position grants
//! nothing the query itself does not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

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
struct Wire {
    /// The position: key attribute name -> string value.
    k: BTreeMap<String, String>,
    /// The first 16 bytes of SHA-256 of the query, hex.
    q: String,
}

fn digest(query: &str) -> String {
    crate::access::sha256_hex(query.as_bytes())[..32].to_string()
}

/// A cursor for `position` in the list described by `query` (e.g. `tenant-members:<id>`).
pub fn encode(query: &str, position: BTreeMap<String, String>) -> String {
    let wire = Wire {
        k: position,
        q: digest(query),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// The position in a cursor made for `query`.
pub fn decode(query: &str, cursor: &str) -> Result<BTreeMap<String, String>, InvalidCursor> {
    if cursor.len() > 1024 {
        return Err(InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| InvalidCursor)?;
    if !crate::access::constant_time_eq(wire.q.as_bytes(), digest(query).as_bytes()) {
        return Err(InvalidCursor);
    }
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
        for bad in ["", "!!!", "eyJ9", &"A".repeat(2000), &c[..c.len() - 2]] {
            assert_eq!(decode("tenant-members:a", bad), Err(InvalidCursor), "{bad}");
        }
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
