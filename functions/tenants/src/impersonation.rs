//! Owners' approvals of write access for an operator acting as one of the tenant's users
//! (`/tenants/{slug}/impersonation-approvals`). An operator asks (the owners are mailed); an
//! owner approves or declines, once; the token exchange (`login`, `POST /auth/impersonate`)
//! spends an approval, once. Each step is conditioned on the status read, and audited in the
//! tenant's audit.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::Granted;
use shared::domain::impersonation::{self as rules, Approval, ApprovalStatus};
use shared::domain::tenant::TenantStatus;
use shared::domain::{Role, UserId};
use shared::http::request::{json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::mail::{ImpersonationFacts, ImpersonationNotice};
use shared::store::changes::{Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};

fn view(a: &Approval, now: i64) -> Value {
    // A pending or approved one past its time has lapsed, whatever the record says.
    let lapsed = matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Approved)
        && a.expires_at <= now;
    json!({
        "id": a.id,
        "tenant_id": a.tenant_id,
        "user_id": a.user_id,
        "operator_id": a.operator_id,
        "reason": a.reason,
        "status": if lapsed { "expired" } else { a.status.as_str() },
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at,
    })
}

/// Requests for write access per tenant in an hour (each is mailed to the owners).
pub(crate) const REQUESTS_PER_TENANT: shared::access::ratelimit::RatePolicy =
    shared::access::ratelimit::RatePolicy {
        name: "impersonation-ask",
        limit: 10,
        window_secs: 3600,
    };

fn forbidden(message: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::ImpersonationForbidden, message)
}

fn not_found() -> ApiError {
    ApiError::refused(ErrorCode::ApprovalNotFound, "no such approval")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    user_id: String,
    reason: String,
}

/// `POST /tenants/{slug}/impersonation-approvals` (operators): asks the owners for write
/// access as one member.
pub(crate) async fn ask(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let tenant = granted.tenant();
    let body: AskBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let reason = rules::reason_field("reason", &body.reason)?;
    let missing = || ApiError::refused(ErrorCode::UserNotFound, "no such member of this tenant");
    let user_id = UserId::parse(&body.user_id).ok_or_else(missing)?;
    if user_id == call.caller.user.id {
        return Err(forbidden("an operator cannot act as themself"));
    }
    if tenant.access_status() != TenantStatus::Active {
        return Err(forbidden(
            "the tenant is not active: nobody may act as its users",
        ));
    }
    let store = call.store;
    // Each request is mailed to the owners: bounded, so a loop of requests is not a mail cannon.
    if let shared::access::ratelimit::Decision::Limited { retry_after_secs } =
        shared::access::ratelimit::reserve(
            store,
            &[(
                REQUESTS_PER_TENANT,
                format!("tenant:{}", tenant.id).as_str(),
            )],
            shared::runtime::time::now_unix(),
        )
        .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let (user, membership, partners) = tokio::try_join!(
        store.user_by_id(&user_id),
        store.membership(&user_id, &tenant.id),
        store.partners_of(&user_id, 1)
    )?;
    let user = user.filter(|u| u.is_active()).ok_or_else(missing)?;
    membership.ok_or_else(missing)?;
    if user.platform_admin {
        return Err(forbidden("operators cannot be impersonated"));
    }
    if !partners.is_empty() {
        return Err(forbidden("partner admins cannot be impersonated"));
    }
    let now = shared::runtime::time::now_unix();
    let approval = Approval {
        id: rules::new_id(),
        tenant_id: tenant.id.clone(),
        user_id: user.id.clone(),
        operator_id: call.caller.user.id.clone(),
        reason: reason.clone(),
        status: ApprovalStatus::Pending,
        created_at: now,
        expires_at: now + rules::PENDING_SECS,
        decided_by: None,
        decided_at: None,
    };
    store
        .commit(vec![
            Change::PutApproval(approval.clone()),
            call.audit(
                tenant,
                "impersonation.approval_requested",
                json!({"approval_id": approval.id, "user_id": user.id, "reason": reason}),
            ),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    let facts = ImpersonationFacts {
        tenant_name: &tenant.name,
        operator: &call.caller.user.email,
        user: &user.email,
        write: true,
        reason: &reason,
        until: approval.expires_at,
    };
    // The request stands either way; an owner who got no mail still sees it in the console.
    if let Err(e) = shared::mail::notify_owners(store, call.app.mailer.as_ref(), tenant, |to| {
        shared::mail::impersonation(to, ImpersonationNotice::ApprovalRequested, &facts)
    })
    .await
    {
        tracing::error!(tenant = %tenant.slug, approval = %approval.id, cause = %shared::runtime::logging::chain(&e), "approval request not mailed to every owner");
    }
    Ok(ApiResponse::created(view(&approval, now)))
}

/// `GET /tenants/{slug}/impersonation-approvals` (operators and the tenant's owners).
pub(crate) async fn list(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    owner_or_operator(call, &granted)?;
    let now = shared::runtime::time::now_unix();
    let items: Vec<Value> = call
        .store
        .approvals_of(&granted.tenant().id, 50)
        .await?
        .iter()
        .map(|a| view(a, now))
        .collect();
    Ok(ApiResponse::ok(json!({ "items": items })))
}

fn owner_or_operator(call: &Call<'_>, granted: &Granted) -> Result<(), ApiError> {
    let a = granted.access();
    if a.operator || (a.role == Some(Role::Owner) && call.caller.impersonation.is_none()) {
        Ok(())
    } else {
        Err(ApiError::refused(
            ErrorCode::Forbidden,
            "only the tenant's owners and operators see impersonation approvals",
        ))
    }
}

/// `POST .../impersonation-approvals/{id}/approve` and `.../decline` (the tenant's owners, in
/// their own name: never someone acting as one).
pub(crate) async fn decide(
    call: &Call<'_>,
    granted: Granted,
    approve: bool,
) -> Result<ApiResponse, ApiError> {
    let tenant = granted.tenant();
    // An owner, in their own name, who is not a platform operator (an operator who made
    // themself a member would otherwise approve their own request).
    if granted.access().role != Some(Role::Owner)
        || call.caller.impersonation.is_some()
        || call.caller.user.platform_admin
    {
        return Err(ApiError::refused(
            ErrorCode::Forbidden,
            "only an owner of the tenant who is not an operator decides, in their own name",
        ));
    }
    let id = path_param(call.req, "approval_id")
        .filter(|id| rules::is_id(id))
        .ok_or_else(not_found)?;
    let current = call
        .store
        .approval(&id)
        .await?
        .filter(|a| a.tenant_id == tenant.id)
        .ok_or_else(not_found)?;
    if current.operator_id == call.caller.user.id {
        return Err(ApiError::refused(
            ErrorCode::Forbidden,
            "nobody decides their own request",
        ));
    }
    let now = shared::runtime::time::now_unix();
    if current.status != ApprovalStatus::Pending || current.expires_at <= now {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            "this request was decided already, or has lapsed",
        ));
    }
    let (to, expires_at, action) = if approve {
        (
            ApprovalStatus::Approved,
            now + rules::APPROVED_SECS,
            "impersonation.approved",
        )
    } else {
        (
            ApprovalStatus::Declined,
            current.expires_at,
            "impersonation.declined",
        )
    };
    call.store
        .commit(vec![
            Change::DecideApproval {
                id: id.clone(),
                from: ApprovalStatus::Pending,
                to,
                by: Some(call.caller.user.id.clone()),
                at: now,
                expires_at,
            },
            call.audit(
                tenant,
                action,
                json!({"approval_id": id, "user_id": current.user_id, "operator_id": current.operator_id}),
            ),
        ])
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::ApprovalMoved) {
                    ApiError::refused(
                        ErrorCode::InvalidState,
                        "this request was decided already, or has lapsed",
                    )
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    let decided = Approval {
        status: to,
        expires_at,
        decided_by: Some(call.caller.user.id.clone()),
        decided_at: Some(now),
        ..current
    };
    Ok(ApiResponse::ok(view(&decided, now)))
}
