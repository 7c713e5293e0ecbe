//! Passkeys (WebAuthn) as a second factor, for every signed-in user: several per account,
//! each named, renamable and removable. The relying party is the console's origin
//! (`PLATFORM_ORIGIN`); the ceremonies are `shared::access::passkeys`. Followed: Kratos'
//! WebAuthn second factor (passkeys beside TOTP, each with a display name; removing one needs
//! a recent sign-in with a factor, Kratos' "privileged session") and Supabase Auth's enrolment
//! shape (start, then verify).
//!
//! - `POST /account/mfa/passkeys/options` `{password}`: starts a registration (the password is
//!   asked again, counted, as for an authenticator app); the answer's `options` go to
//!   `navigator.credentials.create`.
//! - `POST /account/mfa/passkeys` `{name, credential}`: finishes it; the account's first factor
//!   comes with ten recovery codes, shown this once.
//! - `PATCH /account/mfa/passkeys/{passkey_id}` `{name}`.
//! - `DELETE /account/mfa/passkeys/{passkey_id}` `{password}`: needs a sign-in with a second
//!   factor in the last 10 minutes too; an operator's last factor stays (409 `LAST_FACTOR`).
//!
//! Adding a factor to an account that has one (a passkey or an app) needs a sign-in with a
//! factor in the last 10 minutes (`factors::require_first_factor`).

use crate::{user_audit, Call};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::passkeys::{self as pk, PasskeyError, RelyingParty};
use shared::domain::fields::FieldError;
use shared::domain::Factors;
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{Change, Refusal};
use shared::store::{Passkey, PendingPasskey};
use shared::{ApiError, ApiResponse, ErrorCode};

/// A registration response is a few kilobytes (an RSA key and an attestation at most).
const CREDENTIAL_BODY_LIMIT: usize = 64 * 1024;

/// The relying party, unless the console's origin is an IP address (WebAuthn refuses those).
pub(crate) fn relying_party(call: &Call<'_>) -> Option<RelyingParty> {
    RelyingParty::from_origin(call.app.links.platform_origin.as_str())
}

/// A passkey as the API shows it (never its key or counter).
pub(crate) fn view(p: &Passkey) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "created_at": p.created_at,
        "last_used_at": p.last_used_at,
    })
}

fn unavailable() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidState,
        "passkeys need the console on a domain name: this platform's origin is an IP address",
    )
}

fn not_found() -> ApiError {
    ApiError::refused(ErrorCode::PasskeyNotFound, "no such passkey")
}

/// A ceremony that failed: the client's fault is a refused factor (the reason is logged, never
/// answered); the platform's is a 500.
pub(crate) fn ceremony_failure(e: PasskeyError) -> ApiError {
    match e {
        PasskeyError::Refused(why) => {
            tracing::info!(why, "passkey response refused");
            ApiError::refused(ErrorCode::InvalidMfaCode, "the passkey did not verify")
        }
        e => ApiError::internal(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    password: String,
}

/// `POST /account/mfa/passkeys/options` `{password}`.
pub(crate) async fn start(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(call).ok_or_else(unavailable)?;
    crate::factors::require_first_factor(call)?;
    let body: StartBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    crate::account::check_password(call, body.password).await?;
    let user = &call.caller.user;
    let existing = call.store.passkeys(&user.id).await?;
    if existing.len() >= pk::MAX_PER_ACCOUNT {
        return Err(limit());
    }
    let started = pk::start_registration(
        &rp,
        &user.id,
        user.email.as_str(),
        user.name.as_deref(),
        &existing,
    )
    .map_err(ApiError::internal)?;
    call.store
        .commit(vec![Change::PutPendingPasskey {
            user: user.id.clone(),
            pending: PendingPasskey {
                state: started.state,
                expires_at: started.expires_at,
            },
        }])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    let now = shared::runtime::time::now_unix();
    Ok(ApiResponse::ok(json!({
        "options": started.options,
        "expires_in": started.expires_at - now,
    })))
}

fn limit() -> ApiError {
    ApiError::refused(
        ErrorCode::PasskeyLimit,
        format!(
            "an account holds at most {} passkeys: remove one first",
            pk::MAX_PER_ACCOUNT
        ),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishBody {
    name: String,
    credential: Box<serde_json::value::RawValue>,
}

fn passkey_name(raw: &str) -> Result<String, ApiError> {
    pk::valid_name(raw).ok_or_else(|| {
        FieldError::new(
            "name",
            format!(
                "must be 1 to {} characters, without control characters",
                pk::MAX_NAME_CHARS
            ),
        )
        .into()
    })
}

/// `POST /account/mfa/passkeys` `{name, credential}`.
pub(crate) async fn finish(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let rp = relying_party(call).ok_or_else(unavailable)?;
    crate::factors::require_first_factor(call)?;
    let body: FinishBody = json_body(call.req, CREDENTIAL_BODY_LIMIT)?;
    let name = passkey_name(&body.name)?;
    let user = &call.caller.user;
    let now = shared::runtime::time::now_unix();
    // The account's own count (the commit below is conditioned on it), not a read of the list.
    if user.factors.passkeys as usize >= pk::MAX_PER_ACCOUNT {
        return Err(limit());
    }
    let pending = call
        .store
        .passkey_pending(&user.id, now)
        .await?
        .ok_or_else(no_registration)?;
    let new = pk::finish_registration(
        &rp,
        &user.id,
        &pending.state,
        body.credential.get().as_bytes(),
    )
    .map_err(ceremony_failure)?;
    let passkey = Passkey {
        id: new.id,
        name,
        public_key: new.public_key,
        state: new.state,
        transports: new.transports,
        created_at: now,
        last_used_at: None,
    };
    let after = Factors {
        passkeys: user.factors.passkeys + 1,
        ..user.factors
    };
    // The pending registration is spent with the passkey's write (one response registers
    // once), and the account's factor count moves conditioned on what was read.
    let mut changes = vec![
        Change::AddPasskey {
            user: user.id.clone(),
            passkey: passkey.clone(),
            pending_state: pending.state,
            now,
        },
        crate::factors::move_factors(user, after),
        Change::Audit(user_audit(
            call,
            "mfa.enrolled",
            &user.id,
            json!({"factor": "passkey", "passkey_id": passkey.id}),
        )),
    ];
    let (codes, first) = crate::factors::first_factor_codes(user, &mut changes);
    call.store.commit(changes).await.map_err(|e| {
        e.answer(|reasons| {
            if reasons.contains(&Refusal::ChallengeGone) {
                no_registration()
            } else if reasons.contains(&Refusal::FactorExists) {
                ApiError::refused(
                    ErrorCode::FactorExists,
                    "this passkey is registered on your account already",
                )
            } else {
                ApiError::concurrent_update()
            }
        })
    })?;
    tracing::info!(user_id = %user.id, first, "passkey registered");
    let mut answer = json!({"passkey": view(&passkey)});
    if let Some(codes) = codes {
        answer["recovery_codes"] = json!(codes);
    }
    Ok(ApiResponse::created(answer))
}

fn no_registration() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidState,
        "no passkey registration is waiting (it expires after 5 minutes): start again",
    )
}

/// The passkey named by the path's `{passkey_id}`, if it is the caller's.
async fn target(call: &Call<'_>) -> Result<Passkey, ApiError> {
    let id = path_param(call.req, "passkey_id").ok_or_else(not_found)?;
    call.store
        .passkeys(&call.caller.user.id)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

/// `PATCH /account/mfa/passkeys/{passkey_id}` `{name}`.
pub(crate) async fn rename(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: RenameBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let name = passkey_name(&body.name)?;
    let mut passkey = target(call).await?;
    let user = &call.caller.user;
    call.store
        .commit(vec![
            Change::RenamePasskey {
                user: user.id.clone(),
                id: passkey.id.clone(),
                name: name.clone(),
            },
            Change::Audit(user_audit(
                call,
                "mfa.passkey_renamed",
                &user.id,
                json!({"passkey_id": passkey.id}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| not_found()))?;
    passkey.name = name;
    Ok(ApiResponse::ok(json!({"passkey": view(&passkey)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    password: String,
}

/// `DELETE /account/mfa/passkeys/{passkey_id}` `{password}`: the password again (counted) and a
/// sign-in with a second factor in the last 10 minutes, so a stolen token alone cannot strip
/// an account down to its password.
pub(crate) async fn remove(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    crate::directory::require_recent_factor(
        call,
        "removing a passkey needs a sign-in with your second factor in the last 10 minutes",
    )?;
    let body: RemoveBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let passkey = target(call).await?;
    crate::account::check_password(call, body.password).await?;
    let user = &call.caller.user;
    let after = Factors {
        passkeys: user.factors.passkeys.saturating_sub(1),
        ..user.factors
    };
    if user.platform_admin && !after.any() {
        return Err(crate::factors::last_factor());
    }
    call.store
        .commit(vec![
            Change::RemoveFactors {
                user: user.id.clone(),
                totp: false,
                recovery: !after.any(),
                passkeys: vec![passkey.id.clone()],
            },
            crate::factors::move_factors(user, after),
            Change::Audit(user_audit(
                call,
                "mfa.removed",
                &user.id,
                json!({"factor": "passkey", "passkey_id": passkey.id}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(user_id = %user.id, "passkey removed");
    Ok(ApiResponse::ok(json!({"enrolled": after.any()})))
}
