//! Opaque bearer secrets (refresh tokens now, reset tokens later): 32 bytes from the OS CSPRNG,
//! base64url without padding. Only their SHA-256 is ever stored, so a database leak yields
//! nothing usable, and lookups by hash leak no timing about the secret.

use super::sha256_hex;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;

const TOKEN_BYTES: usize = 32;
/// Length of the base64url text of `TOKEN_BYTES` bytes.
const TOKEN_CHARS: usize = 43;

/// A freshly minted secret: the text goes to the holder once, the hash to the store.
pub struct MintedToken {
    pub plaintext: String,
    pub hash: String,
}

pub fn mint() -> MintedToken {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    let plaintext = URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256_hex(plaintext.as_bytes());
    MintedToken { plaintext, hash }
}

/// The stored hash of a presented token, or `None` if it cannot be one of ours.
pub fn hash_presented(presented: &str) -> Option<String> {
    let well_formed = presented.len() == TOKEN_CHARS
        && URL_SAFE_NO_PAD
            .decode(presented)
            .is_ok_and(|b| b.len() == TOKEN_BYTES);
    well_formed.then(|| sha256_hex(presented.as_bytes()))
}

/// A secret bound to a session: `<session_id>.<secret>`. The holder presents it whole; the
/// session id finds the one stored item, and the hash (of the whole text) is checked there.
pub fn mint_for(session_id: &str) -> MintedToken {
    let secret = mint();
    let plaintext = format!("{session_id}.{}", secret.plaintext);
    let hash = sha256_hex(plaintext.as_bytes());
    MintedToken { plaintext, hash }
}

/// The session id and stored hash of a presented session-bound token, or `None` if it cannot
/// be one of ours.
pub fn session_of(presented: &str) -> Option<(String, String)> {
    let (session_id, secret) = presented.split_once('.')?;
    (is_session_id(session_id) && hash_presented(secret).is_some())
        .then(|| (session_id.to_string(), sha256_hex(presented.as_bytes())))
}

/// Whether `id` has the shape of a [`random_id`] (so it can name a stored item safely).
pub fn is_session_id(id: &str) -> bool {
    id.len() == ID_CHARS
        && URL_SAFE_NO_PAD
            .decode(id)
            .is_ok_and(|b| b.len() == ID_BYTES)
}

const ID_BYTES: usize = 16;
/// Length of the base64url text of `ID_BYTES` bytes.
const ID_CHARS: usize = 22;

/// A random identifier (session ids, token ids): 16 bytes, base64url.
pub fn random_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_unique_and_hash_back() {
        let a = mint();
        let b = mint();
        assert_ne!(a.plaintext, b.plaintext);
        assert_eq!(a.plaintext.len(), TOKEN_CHARS);
        assert_eq!(
            hash_presented(&a.plaintext).as_deref(),
            Some(a.hash.as_str())
        );
        assert_ne!(a.hash, a.plaintext);
    }

    #[test]
    fn session_tokens_name_their_session_and_hash_whole() {
        let sid = random_id();
        let t = mint_for(&sid);
        assert_eq!(
            session_of(&t.plaintext),
            Some((sid.clone(), t.hash.clone()))
        );
        // Another session id on the same secret hashes differently.
        let other = random_id();
        let moved = format!("{other}.{}", t.plaintext.split_once('.').unwrap().1);
        assert_ne!(session_of(&moved).unwrap().1, t.hash);
        for bad in [
            "",
            "x.y",
            &format!("{sid}."),
            &format!(".{}", mint().plaintext),
            &format!("{sid}#{}", mint().plaintext),
        ] {
            assert_eq!(session_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_before_lookup() {
        assert_eq!(hash_presented(""), None);
        assert_eq!(hash_presented("short"), None);
        assert_eq!(hash_presented(&"!".repeat(TOKEN_CHARS)), None);
        assert_eq!(hash_presented(&"A".repeat(TOKEN_CHARS + 1)), None);
    }
}
