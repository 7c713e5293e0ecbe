//! Password hashing with Argon2id (OWASP minimum: m=19456 KiB, t=2, p=1), always on the
//! blocking pool so a hash never stalls the async executor. Verification of an unknown user
//! runs against a dummy hash with the same parameters, so it costs what a wrong password costs.
//!
//! Argon2's 19 MiB of working memory is allocated once per process and reused by every hash
//! and verify: a Lambda process runs one invocation at a time, and allocating it afresh each
//! time doubled the cost of a verify (page faults) and grew the process's memory with every
//! blocking-pool thread that ran one. A second hash in the same process at the same moment
//! (only in tests) waits for the buffer.

use argon2::password_hash::{
    rand_core::{OsRng, RngCore},
    Output, PasswordHash, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::{Mutex, OnceLock};

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
const OUTPUT_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

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

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_BYTES))
        .expect("constant Argon2 parameters are valid")
}

/// The process's one Argon2 working memory, sized for the parameters above.
fn working_memory() -> &'static Mutex<Vec<Block>> {
    static MEMORY: OnceLock<Mutex<Vec<Block>>> = OnceLock::new();
    MEMORY.get_or_init(|| Mutex::new(vec![Block::default(); params().block_count()]))
}

/// Allocates (and so faults in) the working memory on a thread of its own, so that a function
/// that hashes passwords pays for it while its start-up waits on the network, not during its
/// first request. Call it first thing in `main`.
pub fn warm_up() {
    std::thread::spawn(|| {
        working_memory();
    });
}

/// Runs Argon2id with `params` into `out`, in the shared working memory when it fits them
/// (always, for hashes this code made), else in a buffer of their own.
fn argon2_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), PasswordError> {
    let blocks = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut run = |memory: &mut [Block]| {
        argon
            .hash_password_into_with_memory(password, salt, out, memory)
            .map_err(|e| PasswordError::Hash(e.to_string()))
    };
    let mut shared = working_memory().lock().unwrap_or_else(|p| p.into_inner());
    if shared.len() == blocks {
        run(&mut shared)
    } else {
        drop(shared);
        run(&mut vec![Block::default(); blocks])
    }
}

fn hash_blocking(password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; OUTPUT_BYTES];
    argon2_into(params(), password, &salt, &mut out)?;
    let err = |e: argon2::password_hash::Error| PasswordError::Hash(e.to_string());
    let salt = SaltString::encode_b64(&salt).map_err(err)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params().try_into().map_err(err)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(err)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (Argon2id, any parameters it records).
fn verify_blocking(password: &[u8], phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError::Hash(e.to_string()))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(PasswordError::Hash("not an Argon2id hash".into()));
    }
    let params = Params::try_from(&parsed).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(PasswordError::Hash("hash lacks salt or output".into()));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_buf)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(params, password, salt, &mut out)?;
    Ok(super::constant_time_eq(&out, expected.as_bytes()))
}

/// Hashes a new password into a PHC string.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes())).await?
}

/// Checks `password` against `stored`; with no stored hash (unknown user) or an unreadable
/// one, burns the same time against the dummy hash and answers false.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        if let Some(phc) = stored {
            if let Ok(ok) = verify_blocking(password.as_bytes(), &phc) {
                return Ok(ok);
            }
        }
        verify_blocking(password.as_bytes(), DUMMY_HASH).map(|_| false)
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

    #[tokio::test]
    async fn hashes_from_the_reference_implementation_verify() {
        // Made by argon2's own PasswordHasher, so our reuse of memory agrees with it.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"tram umbrella violet", &salt)
            .unwrap()
            .to_string();
        assert!(
            verify_password("tram umbrella violet".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("tram umbrella violeT".into(), Some(phc))
            .await
            .unwrap());
        // Other parameters (an older hash) still verify, in memory of their own.
        let small = Params::new(1024, 1, 1, Some(32)).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, small)
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("pw".into(), Some(phc)).await.unwrap());
        assert!(!verify_password("pw".into(), Some("garbage".into()))
            .await
            .unwrap());
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
