//! Self-service, for every signed-in user: one's own profile and display name, one's address
//! (changed once the new one is proved), and signing one of one's sessions out (the list, and
//! signing all the others out, are login's). (Changing one's password is `login`'s
//! `POST /account/password`: it keeps the caller signed in with a new token, which only the
//! function holding the signing key can give.)

use crate::{user_audit, user_view, Call};
use serde::Deserialize;
use serde_json::json;
use shared::access::ratelimit::{self, Decision, RatePolicy};
use shared::access::{opaque, password};
use shared::domain::fields::FieldError;
use shared::domain::Email;
use shared::http::request::{json_body, DEFAULT_BODY_LIMIT};
use shared::store::changes::{Change, UserEdit};
use shared::store::EmailChange;
use shared::{ApiError, ApiResponse, ErrorCode};

/// The longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 100;

/// `GET /account`: the caller's profile and what they hold.
pub(crate) async fn get(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let store = call.store;
    let (mut memberships, partners) = tokio::try_join!(
        store.memberships_up_to(&user.id, 100),
        store.partners_of(&user.id, 100),
    )?;
    if let Some(imp) = &call.caller.impersonation {
        // Acting as the user shows their one tenant.
        memberships.retain(|m| m.tenant_id == imp.tenant);
    }
    let mut v = user_view(user);
    v["memberships"] = json!(memberships);
    v["partner_admin_of"] = json!(crate::partner_grants(store, partners).await?);
    Ok(ApiResponse::ok(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    /// Required; `null` clears the name.
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
}

/// A field that must be sent but may be `null`: absent reads as `None`, `null` as `Some(None)`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A display name: trimmed, 1 to `NAME_MAX_CHARS` characters, no control characters.
fn display_name(raw: Option<String>) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw else { return Ok(None) };
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(FieldError::new(
            "name",
            format!("must be at most {NAME_MAX_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(Some(name.to_string()))
}

/// `PATCH /account` `{name}`.
pub(crate) async fn edit(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: EditBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let name = body
        .name
        .ok_or_else(|| FieldError::new("name", "is required (null clears it)"))?;
    let name = display_name(name)?;
    let user = &call.caller.user;
    call.store
        .commit(vec![
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit: UserEdit {
                    name: Some(name.clone()),
                    ..UserEdit::default()
                },
            },
            Change::Audit(user_audit(
                call,
                "account.name_changed",
                &user.id,
                json!({}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    let mut changed = user.clone();
    changed.name = name;
    Ok(ApiResponse::ok(user_view(&changed)))
}

/// `DELETE /account/sessions/{session_id}`: signs one of one's sessions out.
pub(crate) async fn end_session(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    crate::end_one_session(call, &call.caller.user.id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_bounded_and_printable() {
        assert_eq!(display_name(None).unwrap(), None);
        assert_eq!(display_name(Some("   ".into())).unwrap(), None);
        assert_eq!(
            display_name(Some("  Ana Lima ".into())).unwrap(),
            Some("Ana Lima".into())
        );
        assert_eq!(
            display_name(Some("é".repeat(NAME_MAX_CHARS))).unwrap(),
            Some("é".repeat(NAME_MAX_CHARS))
        );
        assert!(display_name(Some("x".repeat(NAME_MAX_CHARS + 1))).is_err());
        assert!(display_name(Some("a\nb".into())).is_err());
        assert!(display_name(Some("a\u{7}b".into())).is_err());
    }
}

/// Address changes one account may ask for in an hour (each mails two addresses).
pub const EMAIL_CHANGES_PER_ACCOUNT: RatePolicy = RatePolicy {
    name: "email-change",
    limit: 5,
    window_secs: 3600,
};

/// Wrong passwords given to the routes that ask for one again (an address change, enrolling a
/// second factor), per account, in 15 minutes: a token alone (stolen, or a device left signed
/// in) cannot guess its way to taking the account over.
pub const PASSWORD_CHECK_FAILURES: RatePolicy = RatePolicy {
    name: "password-check-fail",
    limit: 5,
    window_secs: 900,
};

/// Checks the caller's current password (counted: see [`PASSWORD_CHECK_FAILURES`]); 401
/// `INVALID_CREDENTIALS` when it is wrong.
pub(crate) async fn check_password(call: &Call<'_>, given: String) -> Result<(), ApiError> {
    let user = &call.caller.user;
    if given.is_empty() || given.len() > password::MAX_PASSWORD_BYTES {
        return Err(FieldError::new("password", "must be your current password").into());
    }
    let store = call.store;
    let now = shared::runtime::time::now_unix();
    let failures = [(PASSWORD_CHECK_FAILURES, user.id.as_str())];
    let reservation = match ratelimit::reserve_attempt(store, &failures, now).await? {
        Decision::Reserved(r) => r,
        Decision::Limited { retry_after_secs } => {
            return Err(ApiError::TooManyRequests { retry_after_secs })
        }
    };
    let verified = password::verify_password(given, Some(user.password_hash.clone()))
        .await
        .map_err(ApiError::internal)?;
    if !verified {
        if let Err(e) = ratelimit::settle_failed(store, &reservation).await {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed password check not settled");
        }
        return Err(ApiError::refused(
            ErrorCode::InvalidCredentials,
            "the password is not right",
        ));
    }
    ratelimit::refund(store, &reservation).await?;
    Ok(())
}

/// How long the confirmation link of a new address works.
pub const EMAIL_CHANGE_TTL_SECS: i64 = 24 * 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    new_email: String,
    password: String,
}

/// `POST /account/email` `{new_email, password}`: asks to move the account to a new address.
/// The password is checked (counted); the new address gets a single-use link (24 hours) and
/// the current one a notice; nothing changes until the link is used. Enumeration-safe: the
/// answer is the same whether the new address is free or belongs to someone (whose owner is
/// then told, and no link exists), and both cases send the same two mails.
pub(crate) async fn change_email(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: EmailBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let to = Email::parse(&body.new_email).map_err(|why| FieldError::new("new_email", why))?;
    let user = &call.caller.user;
    if to == user.email {
        return Err(FieldError::new("new_email", "is your address already").into());
    }
    check_password(call, body.password).await?;
    let store = call.store;
    let now = shared::runtime::time::now_unix();
    if let Decision::Limited { retry_after_secs } =
        ratelimit::reserve(store, &[(EMAIL_CHANGES_PER_ACCOUNT, user.id.as_str())], now).await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let taken = store.email_claim(&to).await?.is_some();
    let audit = Change::Audit(user_audit(
        call,
        "account.email_change_requested",
        &user.id,
        json!({}),
    ));
    let to_new = if taken {
        store
            .commit(vec![audit])
            .await
            .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
        shared::mail::email_in_use(&to)
    } else {
        let token = opaque::mint();
        store
            .commit(vec![
                Change::PutEmailChange(EmailChange {
                    hash: token.hash,
                    user_id: user.id.clone(),
                    from: user.email.clone(),
                    to: to.clone(),
                    session_epoch: user.session_epoch,
                    expires_at: now + EMAIL_CHANGE_TTL_SECS,
                }),
                audit,
            ])
            .await
            .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
        let link = format!(
            "{}/verify-email#token={}",
            call.app.links.platform_origin, token.plaintext
        );
        shared::mail::email_change_verify(&to, &link)
    };
    let to_old = shared::mail::email_change_requested(&user.email, &to);
    for message in [to_new, to_old] {
        let sent = match message {
            Ok(m) => call.app.mailer.send(&m).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            // The request stands (the link, if any, is stored); the person can ask again.
            tracing::error!(user_id = %user.id, cause = %shared::runtime::logging::chain(&e), "email change mail not sent");
        }
    }
    tracing::info!(user_id = %user.id, "email change requested");
    Ok(ApiResponse::with_status(
        202,
        json!({
        "verification_sent": true,
        "expires_in": EMAIL_CHANGE_TTL_SECS,
        }),
    ))
}
