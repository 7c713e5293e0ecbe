//! Password hashing with Argon2id (OWASP minimum: m=19456 KiB, t=2, p=1), always on the
//! blocking pool so a hash never stalls the async executor. Verification of an unknown user
//! runs against a dummy hash with the same parameters, so it costs what a wrong password costs.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Longest password accepted anywhere; bounds the work an attacker can make us do.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The hash of a random, discarded password, with exactly the parameters above (a unit test
/// holds it to that). Never matches anything a client can send.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zTk7VVbd9DEDX7vGFrMnjQ$J1sz20g5eK8A/KpsPrszKisHK11NEsnCM9AWoM2AlMs";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task did not complete")]
    Join(#[from] tokio::task::JoinError),
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(32))
        .expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a new password into a PHC string.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await?
}

/// Checks `password` against `stored`; with no stored hash (unknown user), burns the same time
/// against the dummy hash and answers false.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
        let parsed = match PasswordHash::new(&phc) {
            Ok(p) => p,
            Err(_) => {
                PasswordHash::new(DUMMY_HASH).map_err(|e| PasswordError::Hash(e.to_string()))?
            }
        };
        // Verify with the parameters recorded in the hash (so old hashes keep working).
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && known)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify_round_trips() {
        let phc = hash_password("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            verify_password("correct horse battery".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse battery".into(), Some(phc))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        assert!(!verify_password("anything".into(), None).await.unwrap());
        assert!(!verify_password(String::new(), None).await.unwrap());
    }

    #[test]
    fn dummy_hash_uses_the_production_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!(dummy.algorithm.as_str(), "argon2id");
        assert_eq!(
            (params.m_cost(), params.t_cost(), params.p_cost()),
            (MEMORY_KIB, ITERATIONS, PARALLELISM)
        );
        assert_eq!(dummy.hash.unwrap().len(), 32);
    }
}
