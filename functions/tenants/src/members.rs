//! A tenant's members: list, invite, change a role, remove. The last owner can be neither
//! demoted nor removed: every change that takes an owner away decrements the tenant's owner
//! count in the same transaction, conditioned on at least two remaining before it.

use crate::{forbidden, Call};
use serde::Deserialize;
use serde_json::json;
use shared::auth::access::TenantAccess;
use shared::auth::gate::Granted;
use shared::domain::{Email, Role, UserId, UserStatus};
use shared::fields::FieldError;
use shared::invitation::invited_user;
use shared::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{Change, Refusal};
use shared::tenant::Tenant;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::collections::HashMap;

fn role(raw: &str) -> Result<Role, FieldError> {
    Role::parse(raw).ok_or_else(|| FieldError::new("role", "must be one of owner, admin, member"))
}

fn member_not_found() -> ApiError {
    ApiError::refused(ErrorCode::MemberNotFound, "no such member of this tenant")
}

fn last_owner() -> ApiError {
    ApiError::refused(
        ErrorCode::LastOwner,
        "a tenant keeps at least one owner: make someone else owner first",
    )
}

/// Only owners and operators may give or take the owner role.
fn may_touch_owner(access: &TenantAccess) -> bool {
    access.operator || access.role == Some(Role::Owner)
}

pub(crate) async fn list(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    let store = call.app.store.as_ref();
    let (limit, cursor) = call.page()?;
    let page = store
        .tenant_members_page(&tenant.id, limit, cursor.as_deref())
        .await?;
    let ids: Vec<UserId> = page.items.iter().map(|m| m.user_id.clone()).collect();
    let users: HashMap<UserId, _> = store
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let items: Vec<_> = page
        .items
        .iter()
        .filter_map(|m| {
            let u = users.get(&m.user_id)?;
            Some(json!({
                "user_id": m.user_id,
                "email": u.email,
                "role": m.role,
                "status": u.status,
                "last_sign_in_at": u.last_sign_in_at,
                "added_at": m.added_at / 1000,
            }))
        })
        .collect();
    Ok(ApiResponse::ok(
        json!({"items": items, "next_cursor": page.next_cursor}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    role: String,
}

pub(crate) async fn invite(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    let body: InviteBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let email = Email::parse(&body.email).map_err(|why| FieldError::new("email", why))?;
    let role = role(&body.role)?;
    if role == Role::Owner && !may_touch_owner(&access) {
        return Err(forbidden(
            "only owners and operators may make someone an owner",
        ));
    }
    let now = shared::time::now_unix();
    call.idempotent("tenants.invite", now)?
        .run(|| invite_committed(call, &tenant, email, role, now))
        .await
}

async fn invite_committed(
    call: &Call<'_>,
    tenant: &Tenant,
    email: Email,
    role: Role,
    now: i64,
) -> Result<ApiResponse, ApiError> {
    let store = call.app.store.as_ref();
    let existing = store.user_by_email(&email).await?;
    let membership = match &existing {
        Some(u) => store.membership(&u.id, &tenant.id).await?,
        None => None,
    };
    let send = |user| async move {
        shared::invitation::send(
            &shared::invitation::Sender {
                store,
                mailer: call.app.mailer.as_ref(),
                links: &call.app.links,
            },
            user,
            &shared::invitation::Invite {
                place: &tenant.name,
                role: role.as_str(),
                invited_by: &call.caller.user,
            },
            now,
        )
        .await
        .map_err(|why| {
            tracing::error!(tenant = %tenant.slug, cause = %why, "invitation not sent");
            ApiError::unavailable("mail", why)
        })
    };
    match (existing, membership) {
        // Invited before and still without a password: a fresh invitation replaces the old.
        (Some(user), Some(m)) if user.status == UserStatus::Invited => {
            store
                .commit(vec![call.audit(
                    tenant,
                    "member.reinvited",
                    json!({"user_id": user.id, "role": m.role}),
                )])
                .await
                .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
            send(&user).await?;
            Ok(ApiResponse::ok(
                json!({"user_id": user.id, "role": m.role, "status": user.status, "invitation_sent": true}),
            ))
        }
        (_, Some(_)) => Err(ApiError::refused(
            ErrorCode::AlreadyMember,
            "this person is already a member of the tenant",
        )),
        (existing, None) => {
            let new_user = existing.is_none();
            let user = existing.unwrap_or_else(|| invited_user(email.clone(), now));
            let mut changes = Vec::new();
            if new_user {
                changes.push(Change::CreateUser(user.clone()));
            }
            changes.push(Change::AddMembership {
                user: user.id.clone(),
                tenant: tenant.clone(),
                role,
                at: call.now_ms(),
            });
            if role == Role::Owner {
                changes.push(Change::AdjustOwners {
                    tenant: tenant.id.clone(),
                    by: 1,
                });
            }
            changes.push(call.audit(
                tenant,
                if new_user {
                    "member.invited"
                } else {
                    "member.added"
                },
                json!({"after": {"user_id": user.id, "role": role}}),
            ));
            store.commit(changes).await.map_err(|e| {
                e.answer(|reasons| {
                    if reasons.contains(&Refusal::AlreadyMember) {
                        ApiError::refused(
                            ErrorCode::AlreadyMember,
                            "this person is already a member of the tenant",
                        )
                    } else {
                        ApiError::concurrent_update()
                    }
                })
            })?;
            tracing::info!(tenant = %tenant.slug, user_id = %user.id, role = role.as_str(), invited_by = %call.caller.user.id, new_user, "member added");
            if new_user || user.status == UserStatus::Invited {
                send(&user).await?;
            } else {
                shared::invitation::notify_access(
                    call.app.mailer.as_ref(),
                    &user,
                    &tenant.name,
                    role.as_str(),
                    &call.caller.user,
                )
                .await;
            }
            Ok(ApiResponse::created(json!({
                "user_id": user.id,
                "role": role,
                "status": user.status,
                "invitation_sent": user.status == UserStatus::Invited,
            })))
        }
    }
}

fn target_user(call: &Call<'_>) -> Result<UserId, ApiError> {
    path_param(call.req, "user_id")
        .as_deref()
        .and_then(UserId::parse)
        .ok_or_else(member_not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: String,
}

pub(crate) async fn change_role(
    call: &Call<'_>,
    granted: Granted,
) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    let user_id = target_user(call)?;
    let body: RoleBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let to = role(&body.role)?;
    let store = call.app.store.as_ref();
    let current = store
        .membership(&user_id, &tenant.id)
        .await?
        .ok_or_else(member_not_found)?;
    if (to == Role::Owner || current.role == Role::Owner) && !may_touch_owner(&access) {
        return Err(forbidden(
            "only owners and operators may give or take the owner role",
        ));
    }
    if current.role == to {
        return Ok(ApiResponse::ok(json!({"user_id": user_id, "role": to})));
    }
    let mut changes = vec![Change::ChangeRole {
        user: user_id.clone(),
        tenant: tenant.id.clone(),
        from: current.role,
        to,
    }];
    let owners_by = i64::from(to == Role::Owner) - i64::from(current.role == Role::Owner);
    if owners_by != 0 {
        changes.push(Change::AdjustOwners {
            tenant: tenant.id.clone(),
            by: owners_by,
        });
    }
    changes.push(call.audit(
        &tenant,
        "member.role_changed",
        json!({"user_id": user_id, "before": {"role": current.role}, "after": {"role": to}}),
    ));
    store
        .commit(changes)
        .await
        .map_err(|e| e.answer(refused_member_change))?;
    tracing::info!(tenant = %tenant.slug, user_id = %user_id, role = to.as_str(), changed_by = %call.caller.user.id, "member role changed");
    Ok(ApiResponse::ok(json!({"user_id": user_id, "role": to})))
}

/// A refused role change or removal: the owner count said no (the last owner), or the member
/// changed meanwhile.
fn refused_member_change(reasons: &[Refusal]) -> ApiError {
    if reasons.contains(&Refusal::LastOwner) {
        last_owner()
    } else {
        ApiError::concurrent_update()
    }
}

pub(crate) async fn remove(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    let user_id = target_user(call)?;
    let store = call.app.store.as_ref();
    let current = store
        .membership(&user_id, &tenant.id)
        .await?
        .ok_or_else(member_not_found)?;
    if current.role == Role::Owner && !may_touch_owner(&access) {
        return Err(forbidden("only owners and operators may remove an owner"));
    }
    let mut changes = vec![Change::RemoveMembership {
        user: user_id.clone(),
        tenant: tenant.id.clone(),
        role: current.role,
    }];
    if current.role == Role::Owner {
        changes.push(Change::AdjustOwners {
            tenant: tenant.id.clone(),
            by: -1,
        });
    }
    changes.push(call.audit(
        &tenant,
        "member.removed",
        json!({"user_id": user_id, "before": {"role": current.role}}),
    ));
    store
        .commit(changes)
        .await
        .map_err(|e| e.answer(refused_member_change))?;
    tracing::info!(tenant = %tenant.slug, user_id = %user_id, removed_by = %call.caller.user.id, "member removed");
    Ok(ApiResponse::ok(
        json!({"user_id": user_id, "removed": true}),
    ))
}
