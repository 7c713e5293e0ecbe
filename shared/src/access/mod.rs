//! Access: who is calling and what they may do. Identity (password hashing and its policy,
//! access tokens, opaque refresh tokens), the caller read from the store (`caller`), the tenant
//! gate every tenant route passes (`gate`), the abuse limits (`ratelimit`) and the sealing of
//! tenant secrets at rest (`crypto`), plus the small hashing and comparison primitives they
//! share.

pub mod caller;
pub mod crypto;
pub mod factors;
pub mod gate;
pub mod impersonation;
pub mod jwt;
pub mod opaque;
pub mod passkeys;
pub mod password;
pub mod policy;
pub mod ratelimit;
pub mod sessions;
pub mod totp;

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256: how opaque tokens and rate-limit subjects are stored.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sama"));
        assert!(!constant_time_eq(b"same", b"samesame"));
    }
}
