//! Second factors, as the routes use them: a TOTP secret sealed under the data key (bound to
//! its user, so a sealed secret copied onto another user does not open), and the check of a
//! presented code, which answers with the change that spends it. The caller commits that
//! change with the rest of its work (a sign-in's challenge, an enrolment's confirmation), so a
//! code is accepted once even by two requests at the same moment: the store's condition on
//! the last accepted step, or on the recovery code still being unused, decides.

use crate::access::crypto::DataKey;
use crate::access::ratelimit::RatePolicy;
use crate::access::totp::{self, TotpSecret};
use crate::domain::UserId;
use crate::store::changes::Change;
use crate::store::{StoreError, UserStore};

/// Wrong second-factor codes of one account in 15 minutes, wherever they are given (the
/// sign-in's second step, and the signed-in routes that ask for a code): a 6-digit code has a
/// million values and three are valid at a time, so five tries leave a guesser about one
/// chance in 67,000 per window.
pub const FAILURES_PER_ACCOUNT: RatePolicy = RatePolicy {
    name: "mfa-fail-user",
    limit: 5,
    window_secs: 900,
};

/// The same, per day: 20 wrong codes a day is about one chance in 17,000 a day.
pub const FAILURES_PER_ACCOUNT_DAY: RatePolicy = RatePolicy {
    name: "mfa-fail-user-day",
    limit: 20,
    window_secs: 86_400,
};

/// The limits a code is counted under, for `user`.
pub fn limits(user: &UserId) -> [(RatePolicy, &str); 2] {
    [
        (FAILURES_PER_ACCOUNT, user.as_str()),
        (FAILURES_PER_ACCOUNT_DAY, user.as_str()),
    ]
}

/// The answer to a code that did not verify (wrong, malformed, of a step used already, or an
/// unknown recovery code): one answer for all, wherever a code is given.
pub fn wrong_code() -> crate::http::error::ApiError {
    crate::http::error::ApiError::refused(
        crate::http::error::ErrorCode::InvalidMfaCode,
        "the code is not valid (or was used already)",
    )
}

/// What a TOTP secret's seal is bound to.
fn owner(user: &UserId) -> Vec<u8> {
    format!("user|{user}|totp").into_bytes()
}

/// Seals a new secret for `user`.
pub fn seal(key: &DataKey, user: &UserId, secret: &TotpSecret) -> Result<String, FactorError> {
    key.seal(secret.as_bytes(), &owner(user))
        .map_err(|_| FactorError::Sealed)
}

/// Opens `user`'s sealed secret.
pub fn open(key: &DataKey, user: &UserId, sealed: &str) -> Result<TotpSecret, FactorError> {
    let bytes = key
        .open(sealed, &owner(user))
        .map_err(|_| FactorError::Sealed)?;
    TotpSecret::from_bytes(&bytes).map_err(|_| FactorError::Sealed)
}

/// A second factor as presented: a 6-digit code from the authenticator app, or one of the
/// recovery codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    Totp(String),
    Recovery(String),
}

impl Proof {
    /// From a body's `code` or `recovery_code` (exactly one).
    pub fn from_fields(code: Option<String>, recovery_code: Option<String>) -> Option<Proof> {
        match (code, recovery_code) {
            (Some(c), None) => Some(Proof::Totp(c)),
            (None, Some(r)) => Some(Proof::Recovery(r)),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    /// The code is wrong, malformed, or of a step already used; the recovery code is unknown.
    #[error("the code did not verify")]
    Wrong,
    /// The user has no confirmed factor of this kind.
    #[error("no such factor")]
    Missing,
    /// A sealed secret that does not open with this key (a fault of the deployment).
    #[error("a sealed second-factor secret did not open")]
    Sealed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `proof` for `user` at `now`; on success, the change that spends it (commit it with
/// the rest: a refused commit means it was spent meanwhile).
pub async fn check<S: UserStore + ?Sized>(
    store: &S,
    key: &DataKey,
    user: &UserId,
    proof: &Proof,
    now: i64,
) -> Result<Change, FactorError> {
    match proof {
        Proof::Totp(code) => {
            let factor = store
                .totp_factor(user)
                .await?
                .filter(|f| f.confirmed)
                .ok_or(FactorError::Missing)?;
            let secret = open(key, user, &factor.sealed)?;
            let step = totp::verify(&secret, code, now, Some(factor.last_step))
                .ok_or(FactorError::Wrong)?;
            Ok(Change::UseTotp {
                user: user.clone(),
                step,
            })
        }
        Proof::Recovery(code) => {
            let hash = totp::recovery_code_hash(code).ok_or(FactorError::Wrong)?;
            Ok(Change::UseRecoveryCode {
                user: user.clone(),
                hash,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CommitStore, MemoryStore};

    fn key() -> DataKey {
        DataKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user() {
        let (a, b) = (UserId::new_random(), UserId::new_random());
        let secret = TotpSecret::generate();
        let sealed = seal(&key(), &a, &secret).unwrap();
        assert_eq!(
            open(&key(), &a, &sealed).unwrap().as_bytes(),
            secret.as_bytes()
        );
        assert!(matches!(
            open(&key(), &b, &sealed),
            Err(FactorError::Sealed)
        ));
    }

    #[tokio::test]
    async fn a_code_is_accepted_once() {
        let store = MemoryStore::new();
        let user = UserId::new_random();
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        let sealed = seal(&key(), &user, &secret).unwrap();
        store
            .commit(vec![Change::PutTotp {
                user: user.clone(),
                sealed: sealed.clone(),
                at: now,
            }])
            .await
            .unwrap();
        store
            .commit(vec![Change::ConfirmTotp {
                user: user.clone(),
                sealed,
                step: 0,
            }])
            .await
            .unwrap();
        let code = Proof::Totp(totp::code_at(&secret, now));
        let spend = check(&store, &key(), &user, &code, now).await.unwrap();
        store.commit(vec![spend.clone()]).await.unwrap();
        // Checked again: the step is used, so the code no longer verifies; and the change
        // computed before the first was committed is refused by the store.
        assert!(matches!(
            check(&store, &key(), &user, &code, now).await,
            Err(FactorError::Wrong)
        ));
        assert!(store.commit(vec![spend]).await.is_err());
        let wrong = Proof::Totp("000000".into());
        let next = Proof::Totp(totp::code_at(&secret, now + 30));
        assert!(check(&store, &key(), &user, &next, now).await.is_ok());
        if totp::code_at(&secret, now) != "000000" && totp::code_at(&secret, now + 30) != "000000" {
            assert!(matches!(
                check(&store, &key(), &user, &wrong, now).await,
                Err(FactorError::Wrong)
            ));
        }
    }
}
