//! A partner's admins: list, invite by email (`shared::mail::invitation`: an admin invited before who
//! never set a password is invited afresh, as a tenant's member is), remove. Admins see the
//! partner and its tenants; only operators manage the admins.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::fields::FieldError;
use shared::domain::partner::Partner;
use shared::domain::{Email, User, UserId, UserStatus};
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::mail::invitation::{self, Outcome};
use shared::store::changes::{AuditTarget, Change, Refusal};
use shared::store::{Store, StoreError};
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
    let now = shared::runtime::time::now_unix();
    call.idempotent("partners.invite-admin", now)?
        .run(|| async {
            let sender = invitation::Sender {
                store: call.store,
                mailer: call.app.mailer.as_ref(),
                links: &call.app.links,
                events: None,
            };
            let grant = AdminRights {
                call,
                partner: &partner,
            };
            let invited = invitation::invite_by_email(&sender, &grant, email, now).await?;
            let user = invited.user;
            Ok(match invited.outcome {
                // Partner rights are given at once (operators grant them): never pending.
                Outcome::Reinvited(()) | Outcome::Pending { .. } => ApiResponse::ok(json!({
                    "user_id": user.id,
                    "status": user.status,
                    "invitation_sent": true,
                })),
                Outcome::Granted { .. } => ApiResponse::created(json!({
                    "user_id": user.id,
                    "status": user.status,
                    "invitation_sent": user.status == UserStatus::Invited,
                })),
            })
        })
        .await
}

/// A partner's admin rights, given by email (`shared::mail::invitation`).
struct AdminRights<'a> {
    call: &'a Call<'a>,
    partner: &'a Partner,
}

impl invitation::Grant for AdminRights<'_> {
    type Held = ();

    async fn held(&self, store: &dyn Store, user: &User) -> Result<Option<()>, StoreError> {
        Ok(store
            .is_partner_admin(&user.id, &self.partner.id)
            .await?
            .then_some(()))
    }

    fn changes(&self, user: &User, new_user: bool) -> Vec<Change> {
        vec![
            Change::GrantPartnerAdmin {
                user: user.id.clone(),
                partner: self.partner.id.clone(),
            },
            Change::Audit(self.call.entry(
                AuditTarget::Partner(self.partner.id.clone()),
                "partner.admin_added",
                json!({"after": {"user_id": user.id, "invited": new_user}}),
            )),
        ]
    }

    fn reinvited(&self, user: &User, _: &()) -> Change {
        Change::Audit(self.call.entry(
            AuditTarget::Partner(self.partner.id.clone()),
            "partner.admin_reinvited",
            json!({"user_id": user.id}),
        ))
    }

    fn already(&self) -> ApiError {
        already_admin()
    }

    fn already_reason(&self) -> Refusal {
        Refusal::AlreadyPartnerAdmin
    }

    fn place_key(&self) -> String {
        format!("partner:{}", self.partner.id)
    }

    fn invite(&self) -> invitation::Invite<'_> {
        invitation::Invite {
            place: &self.partner.name,
            role: ADMIN_ROLE,
            invited_by: &self.call.caller.user,
        }
    }
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
