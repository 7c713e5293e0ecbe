//! A tenant's members: list, invite, change a role, remove. The last owner can be neither
//! demoted nor removed: every change that takes an owner away decrements the tenant's owner
//! count in the same transaction, conditioned on at least two remaining before it. Members and
//! pending invitations take seats of the tenant's plan: each invitation's transaction takes one,
//! conditioned on the seat count staying within the plan's limit (`shared::plans`), and a
//! removal or a declined invitation gives one back. Every change publishes its event
//! (`MemberAdded`, `MemberRoleChanged`, `MemberRemoved`).

use crate::{forbidden, tenant_not_found, Call};
use serde::Deserialize;
use serde_json::json;
use shared::access::caller::TenantAccess;
use shared::access::gate::Granted;
use shared::domain::fields::FieldError;
use shared::domain::plan::Quota;
use shared::domain::tenant::{Tenant, TenantSlug, TenantStatus};
use shared::domain::User;
use shared::domain::{Email, Role, UserId, UserStatus};
use shared::events::{commit_and_publish, DomainEvent, MemberChanged};
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::mail::invitation::{self, Outcome};
use shared::plans::Taken;
use shared::store::changes::{Change, Refusal};
use shared::store::{Store, StoreError};
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::collections::HashMap;

fn role(raw: &str) -> Result<Role, FieldError> {
    Role::parse(raw).ok_or_else(|| FieldError::new("role", "must be one of owner, admin, member"))
}

fn member_not_found() -> ApiError {
    ApiError::refused(ErrorCode::MemberNotFound, "no such member of this tenant")
}

/// A member event of `tenant` about `user`, as its outbox change.
fn member_event(
    call: &Call<'_>,
    make: fn(MemberChanged) -> DomainEvent,
    tenant: &Tenant,
    user: &UserId,
    role: Role,
    previous_role: Option<Role>,
) -> Change {
    let event = make(MemberChanged {
        tenant_id: tenant.id.clone(),
        slug: tenant.slug.clone(),
        partner_id: tenant.partner.clone(),
        user_id: user.clone(),
        role,
        previous_role,
    });
    Change::Outbox(event.outbox_at(call.now_ms()))
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
                // A sign-in is platform-wide, not this tenant's activity: operators only.
                "last_sign_in_at": if call.caller.operator { u.last_sign_in_at } else { None },
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
    let now = shared::runtime::time::now_unix();
    call.idempotent("tenants.invite", now)?
        .run(|| async {
            // The seat an invitation takes, held to the plan (a re-sent invitation takes none).
            let plan = call.app.catalogue().of_tenant(&tenant).await?;
            let seat = match shared::plans::take_one(call.store, &tenant, &plan, Quota::Seats, now)
                .await
            {
                Ok(taken) => Ok(taken),
                Err(ApiError::Refused {
                    code: ErrorCode::SeatLimit,
                    ..
                }) => Err(plan.entitlements.seats.unwrap_or(0)),
                Err(e) => return Err(e),
            };
            let grant = Membership {
                call,
                tenant: &tenant,
                access: &access,
                role,
                seat,
            };
            let invited = invitation::invite_by_email(&sender(call), &grant, email, now).await?;
            let user = invited.user;
            Ok(match invited.outcome {
                Outcome::Reinvited(held) => ApiResponse::ok(
                    json!({"user_id": user.id, "role": held, "status": user.status, "invitation_sent": true}),
                ),
                // An existing account: invited, holding nothing until it accepts. The answer
                // is the one a new email gets, whatever the account's status.
                Outcome::Pending { again } => {
                    let data = json!({
                        "user_id": user.id,
                        "role": role,
                        "status": UserStatus::Invited,
                        "invitation_sent": true,
                    });
                    if again {
                        ApiResponse::ok(data)
                    } else {
                        ApiResponse::created(data)
                    }
                }
                Outcome::Granted { .. } => ApiResponse::created(json!({
                    "user_id": user.id,
                    "role": role,
                    "status": user.status,
                    "invitation_sent": user.status == UserStatus::Invited,
                })),
            })
        })
        .await
}

fn sender<'a>(call: &'a Call<'_>) -> invitation::Sender<'a> {
    invitation::Sender {
        store: call.store,
        mailer: call.app.mailer.as_ref(),
        links: &call.app.links,
        events: Some(call.app.events.as_ref()),
    }
}

fn already_member() -> ApiError {
    ApiError::refused(
        ErrorCode::AlreadyMember,
        "this person is already a member of the tenant",
    )
}

/// A role in a tenant, given by email (`shared::mail::invitation`).
struct Membership<'a> {
    call: &'a Call<'a>,
    tenant: &'a Tenant,
    access: &'a TenantAccess,
    role: Role,
    /// The seat a new member or invitation takes, or the plan's seat limit when all are taken.
    seat: Result<Taken, i64>,
}

impl Membership<'_> {
    fn seat_changes(&self) -> Vec<Change> {
        match &self.seat {
            Ok(taken) => taken.changes(self.call.now_ms()),
            Err(_) => Vec::new(),
        }
    }
}

impl invitation::Grant for Membership<'_> {
    type Held = Role;

    async fn held(&self, store: &dyn Store, user: &User) -> Result<Option<Role>, StoreError> {
        Ok(store
            .membership(&user.id, &self.tenant.id)
            .await?
            .map(|m| m.role))
    }

    fn changes(&self, user: &User, new_user: bool) -> Vec<Change> {
        let mut changes = vec![Change::AddMembership {
            user: user.id.clone(),
            tenant: self.tenant.clone(),
            role: self.role,
            at: self.call.now_ms(),
        }];
        if self.role == Role::Owner {
            changes.push(Change::AdjustOwners {
                tenant: self.tenant.id.clone(),
                by: 1,
            });
        }
        changes.push(self.call.audit(
            self.tenant,
            if new_user {
                "member.invited"
            } else {
                "member.added"
            },
            json!({"after": {"user_id": user.id, "role": self.role}}),
        ));
        changes.push(member_event(
            self.call,
            DomainEvent::MemberAdded,
            self.tenant,
            &user.id,
            self.role,
            None,
        ));
        // The seat (and, when it is the last one, `QuotaReached` after `MemberAdded`).
        changes.extend(self.seat_changes());
        changes
    }

    fn reinvited(&self, user: &User, held: &Role) -> Change {
        self.call.audit(
            self.tenant,
            "member.reinvited",
            json!({"user_id": user.id, "role": held}),
        )
    }

    fn may_reinvite(&self, held: &Role) -> Result<(), ApiError> {
        if *held == Role::Owner && !may_touch_owner(self.access) {
            return Err(forbidden(
                "only owners and operators may re-send an owner's invitation",
            ));
        }
        Ok(())
    }

    fn already(&self) -> ApiError {
        already_member()
    }

    fn already_reason(&self) -> Refusal {
        Refusal::AlreadyMember
    }

    fn place_key(&self) -> String {
        format!("tenant:{}", self.tenant.id)
    }

    fn consent(&self) -> Option<(&Tenant, Role)> {
        Some((self.tenant, self.role))
    }

    fn invited(&self, user: &User, again: bool) -> Vec<Change> {
        let mut changes = vec![self.call.audit(
            self.tenant,
            "member.invited",
            json!({"after": {"user_id": user.id, "role": self.role}}),
        )];
        if !again {
            changes.extend(self.seat_changes());
        }
        changes
    }

    fn room(&self) -> Result<(), ApiError> {
        match &self.seat {
            Ok(_) => Ok(()),
            Err(limit) => Err(shared::plans::limit_error(Quota::Seats, *limit)),
        }
    }

    fn full(&self) -> ApiError {
        match &self.seat {
            Ok(taken) => taken.refused(),
            Err(limit) => shared::plans::limit_error(Quota::Seats, *limit),
        }
    }

    fn invite(&self) -> invitation::Invite<'_> {
        invitation::Invite {
            place: &self.tenant.name,
            role: self.role.as_str(),
            invited_by: &self.call.caller.user,
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
    changes.push(member_event(
        call,
        DomainEvent::MemberRoleChanged,
        &tenant,
        &user_id,
        to,
        Some(current.role),
    ));
    commit_and_publish(store, call.app.events.as_ref(), changes)
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
    changes.extend(shared::plans::release_one(store, &tenant.id, Quota::Seats).await?);
    changes.push(member_event(
        call,
        DomainEvent::MemberRemoved,
        &tenant,
        &user_id,
        current.role,
        None,
    ));
    commit_and_publish(store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| e.answer(refused_member_change))?;
    tracing::info!(tenant = %tenant.slug, user_id = %user_id, removed_by = %call.caller.user.id, "member removed");
    Ok(ApiResponse::ok(
        json!({"user_id": user_id, "removed": true}),
    ))
}

/// `POST /tenants/{slug}/join` (`accept`) or `DELETE` (decline): the signed-in caller answers
/// their invitation to the tenant. Accepting makes them a member in the invited role (an owner
/// counts as one from then on); declining removes the invitation. Both are audited in the same
/// transaction. Without a live invitation, or for a deleted tenant, the answer is the 404 of a
/// tenant that does not exist.
pub(crate) async fn join(call: &Call<'_>, accept: bool) -> Result<ApiResponse, ApiError> {
    let slug = path_param(call.req, "slug")
        .as_deref()
        .and_then(TenantSlug::parse)
        .ok_or_else(tenant_not_found)?;
    let store = call.app.store.as_ref();
    let tenant = store
        .tenant_by_slug(&slug)
        .await?
        .filter(|t| t.status != TenantStatus::Deleted)
        .ok_or_else(tenant_not_found)?;
    let user = &call.caller.user;
    let invite = store
        .invite(&user.id, &tenant.id)
        .await?
        .ok_or_else(tenant_not_found)?;
    let mut changes = vec![Change::TakeInvite {
        user: user.id.clone(),
        tenant: tenant.id.clone(),
    }];
    if accept {
        changes.push(Change::AddMembership {
            user: user.id.clone(),
            tenant: tenant.clone(),
            role: invite.role,
            at: call.now_ms(),
        });
        if invite.role == Role::Owner {
            changes.push(Change::AdjustOwners {
                tenant: tenant.id.clone(),
                by: 1,
            });
        }
    }
    changes.push(call.audit(
        &tenant,
        if accept {
            "member.joined"
        } else {
            "member.declined"
        },
        json!({"user_id": user.id, "role": invite.role}),
    ));
    if accept {
        // The invitation's seat becomes the member's.
        changes.push(member_event(
            call,
            DomainEvent::MemberAdded,
            &tenant,
            &user.id,
            invite.role,
            None,
        ));
    } else {
        changes.extend(shared::plans::release_one(store, &tenant.id, Quota::Seats).await?);
    }
    commit_and_publish(store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::AlreadyMember) {
                    already_member()
                } else if reasons.contains(&Refusal::InviteGone) {
                    tenant_not_found()
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    tracing::info!(tenant = %tenant.slug, user_id = %user.id, accept, "invitation answered");
    Ok(ApiResponse::ok(json!({
        "tenant": tenant.slug,
        "role": invite.role,
        "joined": accept,
    })))
}
