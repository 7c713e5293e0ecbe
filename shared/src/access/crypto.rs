//! Encryption of tenant secrets at rest (database connection strings): AES-256-GCM from
//! aws-lc-rs under the data key kept in Secrets Manager. The associated data binds a
//! ciphertext to its owner (tenant id and record id), so a ciphertext copied onto another
//! tenant's record does not decrypt.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the data key must be 32 bytes, base64")]
    BadKey,
    #[error("encryption failed")]
    Seal,
    /// Tampered, moved to another owner, or sealed under another key.
    #[error("the ciphertext does not open with this key and owner")]
    Open,
}

pub struct DataKey(LessSafeKey);

impl DataKey {
    /// From the secret's value: 32 bytes, base64.
    pub fn from_base64(raw: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(raw.trim())
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            return Err(CryptoError::BadKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::BadKey)?;
        Ok(DataKey(LessSafeKey::new(key)))
    }

    /// `base64(nonce || ciphertext || tag)`, bound to `owner`.
    pub fn seal(&self, plaintext: &[u8], owner: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Seal)?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner),
                &mut buf,
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, owner: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| CryptoError::Open)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(owner), &mut buf)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn sealed_text_opens_only_for_its_owner_and_key() {
        let k = key();
        let sealed = k.seal(b"postgres://u:p@h/db", b"tenant-a|db-1").unwrap();
        assert!(!sealed.contains("postgres"));
        assert_eq!(
            k.open(&sealed, b"tenant-a|db-1").unwrap(),
            b"postgres://u:p@h/db"
        );
        // Moved onto another tenant's record: refused.
        assert!(k.open(&sealed, b"tenant-b|db-1").is_err());
        assert!(k.open(&sealed, b"tenant-a|db-2").is_err());
        let other = DataKey::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(other.open(&sealed, b"tenant-a|db-1").is_err());
        // Tampered: refused.
        let mut bytes = STANDARD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(k.open(&STANDARD.encode(bytes), b"tenant-a|db-1").is_err());
        // Each seal has its own nonce.
        assert_ne!(
            sealed,
            k.seal(b"postgres://u:p@h/db", b"tenant-a|db-1").unwrap()
        );
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
    }
}
