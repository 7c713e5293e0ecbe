//! Second factors (TOTP, RFC 6238, with recovery codes), for every signed-in user, and an
//! operator's reset of another user's factors. Followed: Supabase Auth's enrolment (a
//! secret and an `otpauth://` URI, confirmed by a first code) and Kratos' recovery codes
//! (ten, shown once, each single use, stored hashed).
//!
//! - `GET /account/mfa`: what is enrolled.
//! - `POST /account/mfa/totp`: a new pending secret (replacing a pending one); 409
//!   `FACTOR_EXISTS` once one is confirmed.
//! - `POST /account/mfa/totp/confirm` `{code}`: the first code confirms it; the answer carries
//!   the ten recovery codes, shown this once.
//! - `DELETE /account/mfa/totp` `{code | recovery_code}`: removes the factor and the codes
//!   (proved with one); an operator's last factor stays (409 `LAST_FACTOR`).
//! - `POST /account/mfa/recovery-codes` `{code}` (or, for an account with passkeys alone,
//!   `{password}` after a sign-in with a passkey in the last 10 minutes): ten new codes; the
//!   old ones die.
//! - `DELETE /users/{user_id}/mfa` (operators): removes a user's factors; the user is mailed.

use crate::{user_audit, user_not_found, Call};
use serde::Deserialize;
use serde_json::json;
use shared::access::factors::{self, wrong_code, FactorError, Proof};
use shared::access::ratelimit::{self, Decision};
use shared::access::totp::{self, RecoveryCodes, TotpSecret};
use shared::domain::{Factors, User, UserId};
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{Change, Refusal, UserEdit};
use shared::{ApiError, ApiResponse, ErrorCode};

/// What the authenticator app shows as the account's issuer.
pub const ISSUER: &str = "SaaS control plane";

fn factor_failure(e: FactorError) -> ApiError {
    match e {
        FactorError::Wrong | FactorError::Missing => wrong_code(),
        FactorError::Sealed => ApiError::internal(e),
        FactorError::Store(e) => e.into(),
    }
}

/// A refused commit that spent a code: it was spent by another request meanwhile.
fn spent(reasons: &[Refusal]) -> ApiError {
    if reasons.contains(&Refusal::CodeUsed) {
        wrong_code()
    } else {
        ApiError::concurrent_update()
    }
}

/// `GET /account/mfa`.
pub(crate) async fn status(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let (totp, left, passkeys) = tokio::try_join!(
        call.store.totp_factor(&user.id),
        call.store.recovery_codes_left(&user.id),
        call.store.passkeys(&user.id),
    )?;
    Ok(ApiResponse::ok(json!({
        "enrolled": user.mfa(),
        "totp": {
            "confirmed": totp.as_ref().is_some_and(|t| t.confirmed),
            "pending": totp.as_ref().is_some_and(|t| !t.confirmed),
            "created_at": totp.as_ref().map(|t| t.created_at),
        },
        "recovery_codes_left": left,
        "passkeys": passkeys.iter().map(crate::passkeys::view).collect::<Vec<_>>(),
        "passkeys_available": crate::passkeys::relying_party(call).is_some(),
        "required": user.platform_admin,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    password: String,
}

/// `POST /account/mfa/totp` `{password}`: a new pending secret, to be confirmed by a first
/// code. The password is asked again (counted), so a stolen token alone cannot put its own
/// authenticator on the account and lock its owner out.
pub(crate) async fn start(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    require_first_factor(call)?;
    let body: StartBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    crate::account::check_password(call, body.password).await?;
    let user = &call.caller.user;
    let secret = TotpSecret::generate();
    let sealed =
        factors::seal(&call.app.factor_key, &user.id, &secret).map_err(ApiError::internal)?;
    call.store
        .commit(vec![Change::PutTotp {
            user: user.id.clone(),
            sealed,
            at: shared::runtime::time::now_unix(),
        }])
        .await
        .map_err(|e| {
            e.answer(|_| {
                ApiError::refused(
                    ErrorCode::FactorExists,
                    "an authenticator app is enrolled already: remove it first",
                )
            })
        })?;
    Ok(ApiResponse::ok(json!({
        "secret": secret.base32(),
        "otpauth_uri": totp::otpauth_uri(&secret, ISSUER, user.email.as_str()),
        "digits": totp::DIGITS,
        "period": totp::PERIOD_SECS,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
    /// For an account with passkeys alone (no app to give a code).
    #[serde(default)]
    password: Option<String>,
}

fn proof(call: &Call<'_>) -> Result<Proof, ApiError> {
    let body: CodeBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    Proof::from_fields(body.code, body.recovery_code)
        .ok_or_else(|| ApiError::invalid_request("give either code (6 digits) or recovery_code"))
}

/// Checks `proof` for the caller, counted under the same limits as a sign-in's second step
/// (five wrong codes per account in 15 minutes, twenty a day), and commits the code's spending
/// with `with` in one transaction.
async fn spend_counted(call: &Call<'_>, proof: &Proof, with: Vec<Change>) -> Result<(), ApiError> {
    let user = &call.caller.user;
    let store = call.store;
    let now = shared::runtime::time::now_unix();
    let limits = factors::limits(&user.id);
    let reservation = match ratelimit::reserve_attempt(store, &limits, now).await? {
        Decision::Reserved(r) => r,
        Decision::Limited { retry_after_secs } => {
            return Err(ApiError::TooManyRequests { retry_after_secs })
        }
    };
    let failed = || async {
        if let Err(e) = ratelimit::settle_failed(store, &reservation).await {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed code not settled");
        }
        wrong_code()
    };
    let spend = match factors::check(store, &call.app.factor_key, &user.id, proof, now).await {
        Ok(change) => change,
        Err(FactorError::Wrong | FactorError::Missing) => return Err(failed().await),
        Err(e) => return Err(factor_failure(e)),
    };
    let mut changes = vec![spend];
    changes.extend(with);
    match store.commit(changes).await {
        Ok(()) => {
            ratelimit::refund(store, &reservation).await?;
            Ok(())
        }
        Err(e) => {
            let answer = e.answer(spent);
            if answer.is(ErrorCode::InvalidMfaCode) {
                return Err(failed().await);
            }
            Err(answer)
        }
    }
}

/// `POST /account/mfa/totp/confirm` `{code}`.
pub(crate) async fn confirm(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    require_first_factor(call)?;
    let user = &call.caller.user;
    let Proof::Totp(code) = proof(call)? else {
        return Err(ApiError::invalid_request("give the code your app shows"));
    };
    let pending = call
        .store
        .totp_factor(&user.id)
        .await?
        .filter(|f| !f.confirmed)
        .ok_or_else(|| {
            ApiError::refused(
                ErrorCode::InvalidState,
                "no authenticator app is waiting to be confirmed: start again",
            )
        })?;
    let secret =
        factors::open(&call.app.factor_key, &user.id, &pending.sealed).map_err(factor_failure)?;
    let now = shared::runtime::time::now_unix();
    let step = totp::verify(&secret, &code, now, None).ok_or_else(wrong_code)?;
    let mut changes = vec![
        Change::ConfirmTotp {
            user: user.id.clone(),
            sealed: pending.sealed.clone(),
            step,
        },
        move_factors(
            user,
            Factors {
                totp: true,
                ..user.factors
            },
        ),
        Change::Audit(user_audit(
            call,
            "mfa.enrolled",
            &user.id,
            json!({"factor": "totp"}),
        )),
    ];
    let (codes, first) = first_factor_codes(user, &mut changes);
    call.store
        .commit(changes)
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(user_id = %user.id, first, "authenticator app enrolled");
    let mut answer = json!({"enrolled": true});
    if let Some(codes) = codes {
        answer["recovery_codes"] = json!(codes);
    }
    Ok(ApiResponse::ok(answer))
}

/// The account's first factor comes with ten recovery codes (added to `changes`); a later one
/// keeps the codes the account has. The codes to show once, and whether this was the first.
pub(crate) fn first_factor_codes(
    user: &User,
    changes: &mut Vec<Change>,
) -> (Option<Vec<String>>, bool) {
    if user.mfa() {
        return (None, false);
    }
    let (codes, hashes) = RecoveryCodes::generate();
    changes.push(Change::PutRecoveryCodes {
        user: user.id.clone(),
        hashes,
    });
    (Some(codes), true)
}

/// The change of `user`'s factor count to `after`, conditioned on the count read (and on the
/// account's status and flag, as every change of a user is).
pub(crate) fn move_factors(user: &User, after: Factors) -> Change {
    Change::UpdateUser {
        user: user.id.clone(),
        before: user.account(),
        edit: UserEdit {
            factors: Some((user.factors, after)),
            ..UserEdit::default()
        },
    }
}

/// Adding a factor to an account that has one needs a sign-in with it in the last 10 minutes:
/// otherwise a session from before the first factor (or a stolen token) with the password
/// could put its own factor beside it and sign in with that one instead.
pub(crate) fn require_first_factor(call: &Call<'_>) -> Result<(), ApiError> {
    if call.caller.user.mfa() {
        crate::directory::require_recent_factor(
            call,
            "adding a second factor to an account that has one needs a sign-in with it in the last 10 minutes",
        )?;
    }
    Ok(())
}

/// The refusal of a change that would leave an operator without a factor.
pub(crate) fn last_factor() -> ApiError {
    ApiError::refused(
        ErrorCode::LastFactor,
        "operators keep a second factor: add another one first, or ask an operator to reset yours",
    )
}

/// `DELETE /account/mfa/totp` `{code | recovery_code}`.
pub(crate) async fn remove(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let after = Factors {
        totp: false,
        ..user.factors
    };
    if user.platform_admin && !after.any() {
        return Err(last_factor());
    }
    let proof = proof(call)?;
    // The code is spent by its own commit first (a factor about to go is still proved), then
    // the factor goes with its audit entry (conditioned on the factors read: a passkey removed
    // meanwhile refuses it, so an operator always keeps one).
    spend_counted(call, &proof, Vec::new()).await?;
    call.store
        .commit(vec![
            Change::RemoveFactors {
                user: user.id.clone(),
                totp: true,
                recovery: !after.any(),
                passkeys: Vec::new(),
            },
            move_factors(user, after),
            Change::Audit(user_audit(
                call,
                "mfa.removed",
                &user.id,
                json!({"factor": "totp"}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    Ok(ApiResponse::ok(json!({"enrolled": after.any()})))
}

/// Every factor of `user` goes: the authenticator app, the recovery codes and the passkeys
/// (those read; one added meanwhile moves the count and refuses the commit).
async fn remove_all_factors(call: &Call<'_>, user: &User, action: &str) -> Result<(), ApiError> {
    let passkeys = call.store.passkeys(&user.id).await?;
    call.store
        .commit(vec![
            Change::RemoveFactors {
                user: user.id.clone(),
                totp: true,
                recovery: true,
                passkeys: passkeys.into_iter().map(|p| p.id).collect(),
            },
            move_factors(user, Factors::default()),
            Change::Audit(user_audit(call, action, &user.id, json!({"factor": "all"}))),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))
}

/// `POST /account/mfa/recovery-codes` `{code}`: ten new codes, the old ones dead.
///
/// Proved by a code from the app, or, for an account with passkeys alone, by the password and a
/// sign-in with a passkey in the last 10 minutes.
pub(crate) async fn new_recovery_codes(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let body: RenewBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let (codes, hashes) = RecoveryCodes::generate();
    let renew = vec![
        Change::PutRecoveryCodes {
            user: user.id.clone(),
            hashes,
        },
        Change::Audit(user_audit(
            call,
            "mfa.recovery_codes_renewed",
            &user.id,
            json!({}),
        )),
    ];
    match Proof::from_fields(body.code, body.recovery_code) {
        Some(Proof::Recovery(_)) => {
            return Err(ApiError::invalid_request(
                "give the code your app shows (a recovery code cannot renew the codes)",
            ))
        }
        Some(proof) => spend_counted(call, &proof, renew).await?,
        None => {
            // Passkeys alone: no code to give. The password again (counted) and a recent
            // sign-in with the passkey stand for it.
            if user.factors.totp || !user.mfa() {
                return Err(ApiError::invalid_request(
                    "give the code your app shows (the password alone renews codes only for an account with passkeys alone)",
                ));
            }
            let password = body.password.ok_or_else(|| {
                ApiError::invalid_request("give your password (or a code from your app)")
            })?;
            crate::directory::require_recent_factor(
                call,
                "renewing the codes with passkeys alone needs a sign-in with a passkey in the last 10 minutes",
            )?;
            crate::account::check_password(call, password).await?;
            call.store
                .commit(renew)
                .await
                .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
        }
    }
    Ok(ApiResponse::ok(json!({"recovery_codes": codes})))
}

/// `DELETE /users/{user_id}/mfa` (operators): the user's factors go (they can enroll again;
/// an operator among them can then do nothing but enroll); the user is told by mail.
pub(crate) async fn reset(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let id = path_param(call.req, "user_id")
        .as_deref()
        .and_then(UserId::parse)
        .ok_or_else(user_not_found)?;
    let user = call
        .store
        .user_by_id(&id)
        .await?
        .ok_or_else(user_not_found)?;
    if user.id == call.caller.user.id {
        return Err(ApiError::refused(
            ErrorCode::Forbidden,
            "operators cannot reset their own second factor: ask another operator",
        ));
    }
    crate::directory::require_recent_factor(
        call,
        "resetting a second factor needs a sign-in with your own second factor in the last 10 minutes",
    )?;
    remove_all_factors(call, &user, "mfa.reset").await?;
    tracing::info!(user_id = %user.id, by = %call.caller.user.id, "second factors reset by an operator");
    match shared::mail::factors_reset(&user.email) {
        Ok(message) => {
            if let Err(e) = call.app.mailer.send(&message).await {
                tracing::error!(user_id = %user.id, cause = %shared::runtime::logging::chain(&e), "factor reset notice not sent");
            }
        }
        Err(e) => tracing::error!(cause = %e, "factor reset notice not written"),
    }
    Ok(ApiResponse::ok(
        json!({"user_id": user.id, "enrolled": false}),
    ))
}
