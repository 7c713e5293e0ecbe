//! Self-service, for every signed-in user: one's own profile and display name, and one's
//! sessions (devices), each of which can be signed out. (Changing one's password is `login`'s
//! `POST /account/password`: it keeps the caller signed in with a new token, which only the
//! function holding the signing key can give.)

use crate::{live_sessions, session_not_found, session_view, user_audit, user_view, Call};
use serde::Deserialize;
use serde_json::json;
use shared::domain::fields::FieldError;
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{Change, UserEdit, MAX_CHANGES};
use shared::{ApiError, ApiResponse};

/// The longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 100;

/// `GET /account`: the caller's profile and what they hold.
pub(crate) async fn get(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let store = call.store;
    let (memberships, partners) = tokio::try_join!(
        store.memberships_up_to(&user.id, 100),
        store.partners_of(&user.id, 100),
    )?;
    let mut v = user_view(user);
    v["memberships"] = json!(memberships);
    v["partner_admin_of"] = json!(partners);
    Ok(ApiResponse::ok(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    /// `null` clears the name.
    name: Option<String>,
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
    let name = display_name(body.name)?;
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

/// `GET /account/sessions`: the caller's live sessions, newest first, the current one marked.
pub(crate) async fn sessions(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let current = call.caller.session_id.as_deref();
    let items: Vec<_> = live_sessions(call.store, &call.caller.user)
        .await?
        .iter()
        .map(|s| session_view(s, current))
        .collect();
    Ok(ApiResponse::ok(json!({"items": items})))
}

/// `DELETE /account/sessions/{session_id}`: signs one of one's sessions out.
pub(crate) async fn end_session(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let session_id = path_param(call.req, "session_id")
        .filter(|s| shared::access::opaque::is_session_id(s))
        .ok_or_else(session_not_found)?;
    call.store
        .commit(vec![
            Change::RevokeSession {
                session_id: session_id.clone(),
                user: user.id.clone(),
            },
            Change::Audit(user_audit(
                call,
                "session.revoked",
                &user.id,
                json!({"session_id": session_id}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| session_not_found()))?;
    Ok(ApiResponse::ok(
        json!({"session_id": session_id, "revoked": true}),
    ))
}

/// `DELETE /account/sessions`: signs out every session but the one the caller is using.
pub(crate) async fn end_other_sessions(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = &call.caller.user;
    let current = call.caller.session_id.as_deref();
    let others: Vec<String> = live_sessions(call.store, user)
        .await?
        .into_iter()
        .map(|s| s.session_id)
        .filter(|id| Some(id.as_str()) != current)
        .take(MAX_CHANGES - 1)
        .collect();
    if others.is_empty() {
        return Ok(ApiResponse::ok(json!({"revoked": 0})));
    }
    let mut changes: Vec<Change> = others
        .iter()
        .map(|id| Change::RevokeSession {
            session_id: id.clone(),
            user: user.id.clone(),
        })
        .collect();
    changes.push(Change::Audit(user_audit(
        call,
        "session.revoked_others",
        &user.id,
        json!({"sessions": others.len()}),
    )));
    call.store
        .commit(changes)
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    Ok(ApiResponse::ok(json!({"revoked": others.len()})))
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
