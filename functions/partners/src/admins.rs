//! A partner's admins: list, invite by email (`shared::invitation`), remove. Admins see the
//! partner and its tenants; only operators manage the admins.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::{Email, UserId, UserStatus};
use shared::fields::FieldError;
use shared::partner::Partner;
use shared::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{AuditTarget, Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};
use std::collections::HashMap;

fn already_admin() -> ApiError {
    ApiError::refused(
        ErrorCode::AlreadyAdmin,
        "this person is already an admin of this partner",
    )
}

fn admin_not_found() -> ApiError {
    ApiError::refused(
        ErrorCode::AdminNotFound,
        "this user is not an admin of this partner",
    )
}

pub(crate) async fn list(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
    let (limit, cursor) = call.page()?;
    let page = call
        .store
        .partner_admins_page(&partner.id, limit, cursor.as_deref())
        .await?;
    let users: HashMap<UserId, _> = call
        .store
        .users_by_ids(&page.items)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let items: Vec<Value> = page
        .items
        .iter()
        .filter_map(|id| users.get(id))
        .map(|u| json!({"user_id": u.id, "email": u.email, "status": u.status, "last_sign_in_at": u.last_sign_in_at}))
        .collect();
    Ok(ApiResponse::ok(
        json!({"items": items, "next_cursor": page.next_cursor}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
}

const ADMIN_ROLE: &str = "partner admin";

pub(crate) async fn invite(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
    let body: InviteBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let email = Email::parse(&body.email).map_err(|why| FieldError::new("email", why))?;
    let now = shared::time::now_unix();
    call.idempotent("partners.invite-admin", now)?
        .run(|| async {
            let store = call.store;
            let existing = store.user_by_email(&email).await?;
            if let Some(u) = &existing {
                if store.is_partner_admin(&u.id, &partner.id).await? {
                    return Err(already_admin());
                }
            }
            let new_user = existing.is_none();
            let user =
                existing.unwrap_or_else(|| shared::invitation::invited_user(email.clone(), now));
            let mut changes = Vec::new();
            if new_user {
                changes.push(Change::CreateUser(user.clone()));
            }
            changes.push(Change::GrantPartnerAdmin {
                user: user.id.clone(),
                partner: partner.id.clone(),
            });
            changes.push(Change::Audit(call.entry(
                AuditTarget::Partner(partner.id.clone()),
                "partner.admin_added",
                json!({"after": {"user_id": user.id, "invited": new_user}}),
            )));
            store.commit(changes).await.map_err(|e| {
                e.answer(|reasons| {
                    if reasons.contains(&Refusal::AlreadyPartnerAdmin) {
                        already_admin()
                    } else {
                        ApiError::concurrent_update()
                    }
                })
            })?;
            tracing::info!(partner = %partner.slug, user_id = %user.id, invited_by = %call.caller.user.id, new_user, "partner admin added");
            if user.status == UserStatus::Invited {
                shared::invitation::send(
                    &shared::invitation::Sender {
                        store,
                        mailer: call.app.mailer.as_ref(),
                        links: &call.app.links,
                    },
                    &user,
                    &shared::invitation::Invite {
                        place: &partner.name,
                        role: ADMIN_ROLE,
                        invited_by: &call.caller.user,
                    },
                    now,
                )
                .await
                .map_err(|why| ApiError::unavailable("mail", why))?;
            } else {
                shared::invitation::notify_access(
                    call.app.mailer.as_ref(),
                    &user,
                    &partner.name,
                    ADMIN_ROLE,
                    &call.caller.user,
                )
                .await;
            }
            Ok(ApiResponse::created(json!({
                "user_id": user.id,
                "status": user.status,
                "invitation_sent": user.status == UserStatus::Invited,
            })))
        })
        .await
}

pub(crate) async fn remove(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
    let user_id = path_param(call.req, "user_id")
        .as_deref()
        .and_then(UserId::parse)
        .ok_or_else(admin_not_found)?;
    let audit = call.entry(
        AuditTarget::Partner(partner.id.clone()),
        "partner.admin_removed",
        json!({"before": {"user_id": user_id}}),
    );
    call.store
        .commit(vec![
            Change::RevokePartnerAdmin {
                user: user_id.clone(),
                partner: partner.id.clone(),
            },
            Change::Audit(audit),
        ])
        .await
        .map_err(|e| e.answer(|_| admin_not_found()))?;
    tracing::info!(partner = %partner.slug, user_id = %user_id, removed_by = %call.caller.user.id, "partner admin removed");
    Ok(ApiResponse::ok(
        json!({"user_id": user_id, "removed": true}),
    ))
}
