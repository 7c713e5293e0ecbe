//! Impersonation's token exchange, here because only this function can sign tokens.
//!
//! - `POST /auth/impersonate`: an RFC 8693 token exchange. The actor proves itself with its own
//!   operator access token (`Authorization`, in place of `actor_token`); the subject is named by
//!   its user id (`subject_token_type` `urn:saas-control-plane:token-type:user-id`), since an
//!   operator holds no token of theirs. The answer is an access token for the portal that
//!   carries the operator in `act`, lives 15 minutes at most, and comes with no refresh token.
//! - `DELETE /auth/impersonate`: with the impersonation token itself, ends it at once (the
//!   revocation list every function reads).
//!
//! Nobody acts as an operator, a partner admin, themself, or a user of a tenant that is not
//! active. Write access needs a second factor within the last 5 minutes and an approval an
//! owner gave (`POST /tenants/{slug}/impersonation-approvals`), spent by the exchange. The start
//! and the end are audited in the tenant's audit and mailed to its owners; a start no owner can
//! be told of is ended before its token is given.

use crate::App;
use serde::Deserialize;
use serde_json::json;
use shared::access::caller::{authenticate, current_user, factor_gate, tenant_not_found, Admit};
use shared::access::impersonation::{self, Impersonation};
use shared::domain::fields::FieldError;
use shared::domain::impersonation::{self as rules, ApprovalStatus};
use shared::domain::tenant::{Tenant, TenantSlug, TenantStatus};
use shared::domain::{Audience, User, UserId};
use shared::http::request::{json_body, RequestContext, DEFAULT_BODY_LIMIT};
use shared::mail::{ImpersonationFacts, ImpersonationNotice};
use shared::runtime::time::{now_ms, now_unix};
use shared::store::changes::{AuditEntry, AuditTarget, Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const SUBJECT_TOKEN_TYPE: &str = "urn:saas-control-plane:token-type:user-id";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeBody {
    grant_type: String,
    subject_token: String,
    subject_token_type: String,
    #[serde(default)]
    requested_token_type: Option<String>,
    tenant: String,
    reason: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    approval_id: Option<String>,
}

/// Impersonations one operator starts in an hour (each is mailed to a tenant's owners).
pub const STARTS_PER_OPERATOR: shared::access::ratelimit::RatePolicy =
    shared::access::ratelimit::RatePolicy {
        name: "impersonation-start",
        limit: 30,
        window_secs: 3600,
    };

fn forbidden(message: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::ImpersonationForbidden, message)
}

fn user_not_found() -> ApiError {
    ApiError::refused(ErrorCode::UserNotFound, "no such member of this tenant")
}

fn approval_required() -> ApiError {
    ApiError::refused(
        ErrorCode::ApprovalRequired,
        "write access needs an approval an owner of the tenant gave for you and this user, not used yet",
    )
}

fn audit(
    ctx: &RequestContext,
    tenant: &Tenant,
    actor: &UserId,
    action: &str,
    details: serde_json::Value,
) -> Change {
    Change::Audit(
        AuditEntry::new(
            AuditTarget::Tenant(tenant.id.clone()),
            actor.clone(),
            action,
            details,
            now_ms(),
            &ctx.request_id,
        )
        .with_partner(tenant.partner.clone()),
    )
}

/// The body's fields, checked: (target id, tenant slug, reason, write).
fn read_body(body: &ExchangeBody) -> Result<(UserId, TenantSlug, String, bool), ApiError> {
    if body.grant_type != GRANT_TYPE {
        return Err(FieldError::new("grant_type", format!("must be {GRANT_TYPE}")).into());
    }
    if body.subject_token_type != SUBJECT_TOKEN_TYPE {
        return Err(FieldError::new(
            "subject_token_type",
            format!("must be {SUBJECT_TOKEN_TYPE}"),
        )
        .into());
    }
    if body
        .requested_token_type
        .as_deref()
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(FieldError::new(
            "requested_token_type",
            format!("must be {ACCESS_TOKEN_TYPE} (the only kind issued)"),
        )
        .into());
    }
    let reason = rules::reason_field("reason", &body.reason)?;
    let write = match body.scope.as_deref() {
        None | Some("read") => false,
        Some("write") | Some("read write") => true,
        Some(_) => return Err(FieldError::new("scope", "must be read or write").into()),
    };
    let user = UserId::parse(&body.subject_token).ok_or_else(user_not_found)?;
    let slug = TenantSlug::parse(&body.tenant).ok_or_else(tenant_not_found)?;
    Ok((user, slug, reason, write))
}

/// `POST /auth/impersonate`.
pub(crate) async fn start(
    app: &App,
    ctx: &RequestContext,
    req: &lambda_http::Request,
) -> Result<ApiResponse, ApiError> {
    let keys = app.keys().await?;
    let store = app.store.as_ref();
    let principal = authenticate(keys, req, &[Audience::Operator]).await?;
    let operator = current_user(store, &principal).await?;
    factor_gate(&principal, &operator, Admit::Enrolled)?;
    let body: ExchangeBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let (user_id, slug, reason, write) = read_body(&body)?;
    let now = now_unix();
    // Each start is mailed to the tenant's owners: bounded per operator.
    let subject = format!("operator:{}", operator.id);
    if let shared::access::ratelimit::Decision::Limited { retry_after_secs } =
        shared::access::ratelimit::reserve(store, &[(STARTS_PER_OPERATOR, subject.as_str())], now)
            .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }

    if user_id == operator.id {
        return Err(forbidden("an operator cannot act as themself"));
    }
    let tenant = store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(tenant_not_found)?;
    let (target, partners) = tokio::try_join!(store.user_by_id(&user_id), async {
        store.partners_of(&user_id, 1).await
    })?;
    let target = target.filter(User::is_active).ok_or_else(user_not_found)?;
    if target.platform_admin {
        return Err(forbidden("operators cannot be impersonated"));
    }
    if !partners.is_empty() {
        return Err(forbidden("partner admins cannot be impersonated"));
    }
    if tenant.access_status() != TenantStatus::Active {
        return Err(forbidden(
            "the tenant is not active: nobody may act as its users",
        ));
    }
    store
        .membership(&target.id, &tenant.id)
        .await?
        .ok_or_else(user_not_found)?;

    let approval = if write {
        let recent = principal
            .mfa_at
            .is_some_and(|at| at <= now + 60 && now - at <= rules::WRITE_FACTOR_SECS);
        if !recent {
            return Err(ApiError::refused(
                ErrorCode::MfaRequired,
                "write access needs a second factor within the last 5 minutes: sign in again with it",
            ));
        }
        let id = body
            .approval_id
            .as_deref()
            .filter(|id| rules::is_id(id))
            .ok_or_else(approval_required)?;
        let a = store
            .approval(id)
            .await?
            .filter(|a| {
                a.tenant_id == tenant.id
                    && a.user_id == target.id
                    && a.operator_id == operator.id
                    && a.status == ApprovalStatus::Approved
                    && a.expires_at > now
            })
            .ok_or_else(approval_required)?;
        Some(a)
    } else {
        None
    };

    let imp = Impersonation {
        id: rules::new_id(),
        actor: operator.id.clone(),
        tenant: tenant.id.clone(),
        write,
        expires_at: now + app.impersonation_ttl_secs.clamp(1, rules::MAX_TOKEN_SECS),
        actor_epoch: operator.session_epoch,
    };
    // Signed before anything is written: a signing failure leaves nothing behind.
    let issued = keys
        .issue_impersonation(&target.id, target.session_epoch, now, &imp)
        .await
        .map_err(|e| ApiError::unavailable("secrets", e))?;
    let mut changes = vec![
        // Kept until it ends: a stop removes it; the reconcile records an expiry's end.
        Change::OpenImpersonation(rules::Open {
            id: imp.id.clone(),
            tenant_id: tenant.id.clone(),
            user_id: target.id.clone(),
            operator_id: operator.id.clone(),
            write,
            expires_at: imp.expires_at,
        }),
        audit(
            ctx,
            &tenant,
            &operator.id,
            "impersonation.started",
            json!({
                "impersonation": imp.id,
                "user_id": target.id,
                "reason": reason,
                "write": write,
                "approval_id": approval.as_ref().map(|a| &a.id),
                "expires_at": imp.expires_at,
            }),
        ),
    ];
    if let Some(a) = &approval {
        // Spent here: two exchanges with one approval cannot both pass.
        changes.push(Change::DecideApproval {
            id: a.id.clone(),
            from: ApprovalStatus::Approved,
            to: ApprovalStatus::Used,
            by: None,
            at: now,
            expires_at: a.expires_at,
        });
    }
    store.commit(changes).await.map_err(|e| {
        e.answer(|reasons| {
            if reasons.contains(&Refusal::ApprovalMoved) {
                approval_required()
            } else {
                ApiError::concurrent_update()
            }
        })
    })?;

    let facts = ImpersonationFacts {
        tenant_name: &tenant.name,
        operator: &operator.email,
        user: &target.email,
        write,
        reason: &reason,
        until: imp.expires_at,
    };
    let told = shared::mail::notify_owners(store, app.mailer.as_ref(), &tenant, |to| {
        shared::mail::impersonation(to, ImpersonationNotice::Started, &facts)
    })
    .await
    .and_then(|sent| {
        // A tenant with no active owner to tell (one not accepted yet, or all disabled): no.
        (sent > 0)
            .then_some(sent)
            .ok_or_else(|| shared::mail::MailError("the tenant has no active owner to tell".into()))
    });
    if let Err(e) = told {
        // The owners must hear of it: without that, it ends before its token is given.
        tracing::error!(impersonation = %imp.id, cause = %shared::runtime::logging::chain(&e), "impersonation not started: the owners could not be told");
        let ended = store
            .commit(vec![
                Change::RevokeImpersonation {
                    id: imp.id.clone(),
                    expires_at: imp.expires_at + 60,
                },
                Change::CloseImpersonation {
                    id: imp.id.clone(),
                    expires_at: imp.expires_at,
                },
                audit(
                    ctx,
                    &tenant,
                    &operator.id,
                    "impersonation.ended",
                    json!({"impersonation": imp.id, "user_id": target.id, "why": "owners_not_told"}),
                ),
            ])
            .await;
        if let Err(e) = ended {
            tracing::error!(impersonation = %imp.id, cause = %e, "an impersonation never given could not be marked ended");
        }
        return Err(ApiError::unavailable("mail", e));
    }
    tracing::info!(impersonation = %imp.id, operator = %operator.id, user_id = %target.id, tenant = %tenant.slug, write, "impersonation started");
    Ok(ApiResponse::ok(json!({
        "access_token": issued.token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": if write { "read write" } else { "read" },
        "impersonation": {
            "id": imp.id,
            "tenant_id": tenant.id,
            "tenant_slug": tenant.slug,
            "user_id": target.id,
            "user_email": target.email,
            "operator_id": operator.id,
            "expires_at": now + issued.expires_in,
            "write": write,
        },
    }))
    .header("cache-control", "no-store"))
}

/// `DELETE /auth/impersonate`, with the impersonation token.
pub(crate) async fn end(
    app: &App,
    ctx: &RequestContext,
    req: &lambda_http::Request,
) -> Result<ApiResponse, ApiError> {
    let keys = app.keys().await?;
    let store = app.store.as_ref();
    let principal = authenticate(keys, req, &[Audience::Portal]).await?;
    let Some(imp) = principal.impersonation.clone() else {
        return Err(ApiError::refused(
            ErrorCode::Forbidden,
            "only an impersonation token ends an impersonation",
        ));
    };
    let invalid = || ApiError::refused(ErrorCode::InvalidToken, "a valid access token is required");
    // Revoked whatever became of the tenant; the end is audited in its audit while it exists.
    let tenant = store.tenant_by_id(&imp.tenant).await?;
    let mut changes = vec![
        Change::RevokeImpersonation {
            id: imp.id.clone(),
            // Kept a minute past the token's end (the clock skew verifiers allow).
            expires_at: imp.expires_at + 60,
        },
        Change::CloseImpersonation {
            id: imp.id.clone(),
            expires_at: imp.expires_at,
        },
    ];
    if let Some(t) = &tenant {
        changes.push(audit(
            ctx,
            t,
            &imp.actor,
            "impersonation.ended",
            json!({"impersonation": imp.id, "user_id": principal.user_id, "why": "stopped"}),
        ));
    }
    store
        .commit(changes)
        .await
        // Ended already (stopped, or recorded as expired): the token is dead.
        .map_err(|e| e.answer(|_| invalid()))?;
    impersonation::forget(&imp.id);
    tracing::info!(impersonation = %imp.id, "impersonation ended");

    let (operator, user) = tokio::try_join!(
        store.user_by_id(&imp.actor),
        store.user_by_id(&principal.user_id)
    )?;
    if let (Some(operator), Some(user), Some(tenant)) = (operator, user, tenant) {
        let facts = ImpersonationFacts {
            tenant_name: &tenant.name,
            operator: &operator.email,
            user: &user.email,
            write: imp.write,
            reason: "(as given when it started)",
            until: now_unix(),
        };
        let told = shared::mail::notify_owners(store, app.mailer.as_ref(), &tenant, |to| {
            shared::mail::impersonation(to, ImpersonationNotice::Ended, &facts)
        })
        .await;
        if let Err(e) = told {
            tracing::error!(impersonation = %imp.id, cause = %shared::runtime::logging::chain(&e), "the end of an impersonation was not mailed");
        }
    }
    Ok(ApiResponse::ok(json!({"id": imp.id, "ended": true})))
}
