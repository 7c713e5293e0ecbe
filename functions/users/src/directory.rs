//! Operators' user management: the list, one user's page, and what an operator may do to an
//! account. Every change is conditioned on the status and flag the handler read (a concurrent
//! change is a 409, never overwritten) and commits its audit entry with it. The operator count
//! moves in the same transaction, so two operators revoking each other at once cannot leave the
//! platform without one.

use crate::{user_audit, user_not_found, user_view, Call};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use shared::access::sessions;
use shared::domain::fields::FieldError;
use shared::domain::tenant::TenantStatus;
use shared::domain::{Account, Role, User, UserId, UserStatus};
use shared::http::request::{path_param, query_param};
use shared::store::changes::{Change, Refusal, UserEdit, MAX_CHANGES};
use shared::store::UserFilter;
use shared::{ApiError, ApiResponse, ErrorCode};

/// How many memberships, partner grants and invitations one user's page and removal read.
const HELD_READ: usize = 90;

fn last_operator() -> ApiError {
    ApiError::refused(
        ErrorCode::LastOperator,
        "the platform keeps at least one operator: make someone else operator first",
    )
}

/// What a refused account change meant.
fn refused(reasons: &[Refusal]) -> ApiError {
    if reasons.contains(&Refusal::LastOperator) {
        last_operator()
    } else if reasons.contains(&Refusal::LastOwner) {
        ApiError::refused(
            ErrorCode::LastOwner,
            "the user is the last owner of a tenant: make someone else owner first",
        )
    } else {
        ApiError::concurrent_update()
    }
}

/// The most damaging actions (on another operator's account, or on anyone's second factor)
/// ask for a sign-in that passed a second factor within the last 10 minutes: a stolen
/// operator token, or one left open on a desk, cannot lock the other operators out.
pub(crate) fn require_recent_factor(call: &Call<'_>, what: &'static str) -> Result<(), ApiError> {
    if call.caller.recent_factor(shared::runtime::time::now_unix()) {
        Ok(())
    } else {
        Err(ApiError::refused(ErrorCode::MfaRequired, what))
    }
}

fn not_yourself(what: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::Forbidden, what)
}

/// The user named by the path's `{user_id}`.
async fn target(call: &Call<'_>) -> Result<User, ApiError> {
    let id = path_param(call.req, "user_id")
        .as_deref()
        .and_then(UserId::parse)
        .ok_or_else(user_not_found)?;
    call.store.user_by_id(&id).await?.ok_or_else(user_not_found)
}

fn flag(name: &'static str, raw: Option<String>) -> Result<Option<bool>, ApiError> {
    match raw.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(FieldError::new(name, "must be true or false").into()),
    }
}

/// `GET /users`: every user by email; `q` is an email prefix; `status`, `operator` and
/// `partner_admin` filter.
pub(crate) async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let (limit, cursor) = call.page()?;
    let q = query_param(call.req, "q").map(|q| q.trim().to_lowercase());
    if q.as_ref().is_some_and(|q| q.len() > 254) {
        return Err(FieldError::new("q", "must be at most 254 characters").into());
    }
    let status = match query_param(call.req, "status") {
        None => None,
        Some(raw) => Some(UserStatus::parse(&raw).ok_or_else(|| {
            FieldError::new("status", "must be one of active, invited, disabled")
        })?),
    };
    let filter = UserFilter {
        q: q.filter(|q| !q.is_empty()),
        status,
        operator: flag("operator", query_param(call.req, "operator"))?,
    };
    let partner_admin = flag("partner_admin", query_param(call.req, "partner_admin"))?;
    let page = call
        .store
        .users_page(&filter, limit, cursor.as_deref())
        .await?;
    // Partner grants live beside each user, not on the index: one bounded read per user of
    // the page, a few at a time.
    let grants: Vec<bool> = stream::iter(page.items.iter())
        .map(|u| call.store.holds_partner_role(&u.id))
        .buffered(8)
        .try_collect()
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .zip(grants)
        .filter(|(_, grant)| partner_admin.is_none_or(|want| want == *grant))
        .map(|(u, grant)| {
            let mut v = user_view(u);
            v["partner_admin"] = json!(grant);
            v
        })
        .collect();
    Ok(ApiResponse::ok(
        json!({"items": items, "next_cursor": page.next_cursor}),
    ))
}

/// `GET /users/{user_id}`: the profile, what the user holds, and their live sessions.
pub(crate) async fn get(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    let store = call.store;
    let (memberships, partners, invites, sessions) = tokio::try_join!(
        async { Ok::<_, ApiError>(store.memberships_up_to(&user.id, HELD_READ).await?) },
        async { Ok(store.partners_of(&user.id, HELD_READ).await?) },
        async { Ok(store.invites_of(&user.id).await?) },
        async { Ok(sessions::live(store, &user).await?) },
    )?;
    let partners = crate::partner_grants(store, partners).await?;
    let mut v = user_view(&user);
    v["memberships"] = json!(memberships);
    v["partner_admin_of"] = json!(partners);
    v["invitations"] = json!(invites);
    v["sessions"] = json!(sessions
        .iter()
        .map(|s| sessions::view(s, None))
        .collect::<Vec<_>>());
    Ok(ApiResponse::ok(v))
}

/// Commits `edit` of `user` (conditioned on what was read) with its audit entry.
async fn commit_edit(
    call: &Call<'_>,
    user: &User,
    edit: UserEdit,
    action: &str,
    details: Value,
) -> Result<(), ApiError> {
    call.store
        .commit(vec![
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit,
            },
            Change::Audit(user_audit(call, action, &user.id, details)),
        ])
        .await
        .map_err(|e| e.answer(refused))
}

/// Moves `user` to `after` (status and flag), ending their sessions if asked, with the audit
/// entry; the answer shows the account as it now is.
async fn change_account(
    call: &Call<'_>,
    user: &User,
    after: Account,
    end_sessions: bool,
    action: &str,
    details: Value,
) -> Result<ApiResponse, ApiError> {
    let edit = UserEdit {
        account: Some(after),
        end_sessions,
        ..UserEdit::default()
    };
    commit_edit(call, user, edit, action, details).await?;
    tracing::info!(user_id = %user.id, by = %call.caller.user.id, action, "account changed");
    let mut changed = user.clone();
    changed.status = after.status;
    changed.platform_admin = after.platform_admin;
    Ok(ApiResponse::ok(
        json!({"user": user_view(&changed), "changed": true}),
    ))
}

/// The answer to a change the account had already (doing it twice changes nothing).
fn unchanged(user: &User) -> ApiResponse {
    ApiResponse::ok(json!({"user": user_view(user), "changed": false}))
}

/// The status an enabled account returns to: active with a password, invited without one
/// (an invitation it never accepted).
fn enabled_status(user: &User) -> UserStatus {
    if user.password_hash.starts_with("$argon2") {
        UserStatus::Active
    } else {
        UserStatus::Invited
    }
}

/// `POST /users/{user_id}/disable` and `/enable`. Disabling ends every session at once (the
/// session epoch moves: refresh and access tokens alike stop working) and blocks sign-in and
/// every route; enabling lets the user sign in again. Doing either twice changes nothing.
pub(crate) async fn set_disabled(call: &Call<'_>, disable: bool) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    if disable && user.id == call.caller.user.id {
        return Err(not_yourself(
            "operators cannot disable their own account: ask another operator",
        ));
    }
    if (user.status == UserStatus::Disabled) == disable {
        return Ok(unchanged(&user));
    }
    if user.platform_admin {
        require_recent_factor(
            call,
            "changing an operator's account needs a sign-in with your second factor in the last 10 minutes",
        )?;
    }
    let status = if disable {
        UserStatus::Disabled
    } else {
        enabled_status(&user)
    };
    let action = if disable {
        "user.disabled"
    } else {
        "user.enabled"
    };
    let after = Account {
        status,
        platform_admin: user.platform_admin,
    };
    let details = json!({"before": {"status": user.status}, "after": {"status": status}});
    change_account(call, &user, after, disable, action, details).await
}

/// `PUT /users/{user_id}/operator`: the user becomes an operator (they are mailed). Asks the
/// acting operator for a sign-in that passed a second factor within the last 10 minutes: a
/// stolen password, or a token left open on a desk, does not make operators.
pub(crate) async fn grant_operator(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    require_recent_factor(
        call,
        "granting operator rights needs a sign-in with your second factor in the last 10 minutes: sign in again",
    )?;
    let user = target(call).await?;
    if user.platform_admin {
        return Ok(unchanged(&user));
    }
    if user.status == UserStatus::Disabled {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            "the account is disabled: enable it first",
        ));
    }
    let after = Account {
        status: user.status,
        platform_admin: true,
    };
    let answer = change_account(
        call,
        &user,
        after,
        false,
        "user.operator_granted",
        json!({}),
    )
    .await?;
    shared::mail::invitation::notify_access(
        call.app.mailer.as_ref(),
        &user,
        &format!("the platform at {}", call.app.links.platform_origin),
        "platform operator",
        &call.caller.user,
    )
    .await;
    Ok(answer)
}

/// `DELETE /users/{user_id}/operator`: the user keeps their account and tenants; their
/// operator tokens stop working at once (every operator route reads the stored flag).
pub(crate) async fn revoke_operator(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    if !user.platform_admin {
        return Ok(unchanged(&user));
    }
    require_recent_factor(
        call,
        "revoking operator rights needs a sign-in with your second factor in the last 10 minutes",
    )?;
    let after = Account {
        status: user.status,
        platform_admin: false,
    };
    change_account(
        call,
        &user,
        after,
        false,
        "user.operator_revoked",
        json!({}),
    )
    .await
}

/// `DELETE /users/{user_id}/sessions`: every session of the user ends at once.
pub(crate) async fn end_sessions(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    commit_edit(
        call,
        &user,
        UserEdit {
            end_sessions: true,
            ..UserEdit::default()
        },
        "user.sessions_revoked",
        json!({}),
    )
    .await?;
    tracing::info!(user_id = %user.id, by = %call.caller.user.id, "every session of the user ended");
    Ok(ApiResponse::ok(
        json!({"user_id": user.id, "revoked": "all"}),
    ))
}

/// `DELETE /users/{user_id}/sessions/{session_id}`: one session's refresh tokens stop working
/// (an access token already issued in it lives out its few minutes).
pub(crate) async fn end_session(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    crate::end_one_session(call, &user.id).await
}

/// `DELETE /users/{user_id}`: the account goes for good. Its memberships, partner grants,
/// invitations, record and email claim are removed in one transaction with the audit entry
/// (which names the user by id alone); earlier audit entries stay. Refused for the caller
/// themself, for the last operator, and for the last owner of a tenant that is not deleted.
pub(crate) async fn remove(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target(call).await?;
    if user.id == call.caller.user.id {
        return Err(not_yourself(
            "operators cannot remove their own account: ask another operator",
        ));
    }
    if user.platform_admin {
        require_recent_factor(
            call,
            "removing an operator needs a sign-in with your second factor in the last 10 minutes",
        )?;
    }
    let store = call.store;
    let (memberships, partners, invites, passkeys) = tokio::try_join!(
        store.memberships_up_to(&user.id, HELD_READ + 1),
        store.partners_of(&user.id, HELD_READ + 1),
        store.invites_of(&user.id),
        store.passkeys(&user.id),
    )?;
    let held = memberships.len() + partners.len() + invites.len() + passkeys.len();
    let owned: Vec<_> = memberships
        .iter()
        .filter(|m| m.role == Role::Owner)
        .map(|m| m.tenant_id.clone())
        .collect();
    // Each owned tenant that is not deleted loses an owner (refused if it is the last).
    let live_owned: Vec<_> = store
        .tenants_by_ids(&owned)
        .await?
        .into_iter()
        .filter(|t| t.status != TenantStatus::Deleted)
        .map(|t| t.id)
        .collect();
    // Items, not changes: the factors (two), the user and its claim, the operator count, the audit.
    if held + live_owned.len() + 7 > MAX_CHANGES
        || memberships.len() > HELD_READ
        || partners.len() > HELD_READ
    {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            "this user holds too many memberships and grants to remove at once: remove some first",
        ));
    }
    let mut changes = Vec::with_capacity(held + live_owned.len() + 2);
    for m in &memberships {
        changes.push(Change::RemoveMembership {
            user: user.id.clone(),
            tenant: m.tenant_id.clone(),
            role: m.role,
        });
    }
    for t in live_owned {
        changes.push(Change::AdjustOwners { tenant: t, by: -1 });
    }
    for p in &partners {
        changes.push(Change::RevokePartnerAdmin {
            user: user.id.clone(),
            partner: p.clone(),
        });
    }
    for i in &invites {
        changes.push(Change::TakeInvite {
            user: user.id.clone(),
            tenant: i.tenant_id.clone(),
        });
    }
    // Their second factors (the sealed secret, the passkeys) and recovery codes go too.
    changes.push(Change::RemoveFactors {
        user: user.id.clone(),
        totp: true,
        recovery: true,
        passkeys: passkeys.into_iter().map(|p| p.id).collect(),
    });
    changes.push(Change::DeleteUser {
        user: user.id.clone(),
        email: user.email.clone(),
        before: user.account(),
    });
    changes.push(Change::Audit(user_audit(
        call,
        "user.removed",
        &user.id,
        json!({"memberships": memberships.len(), "partner_grants": partners.len()}),
    )));
    store.commit(changes).await.map_err(|e| e.answer(refused))?;
    tracing::info!(user_id = %user.id, by = %call.caller.user.id, "user removed");
    Ok(ApiResponse::ok(
        json!({"user_id": user.id, "removed": true}),
    ))
}
