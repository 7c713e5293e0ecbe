//! `GET`/`PUT /tenants/{slug}/redirect-origins`: where links in this tenant's mail may point
//! (reset and invitation links, for users who belong to this tenant alone and are not its
//! owners). Owners and admins read them; only owners (and operators) change them. A change is
//! audited in the same transaction and mailed to the tenant's other owners and admins.

use crate::Call;
use serde::Deserialize;
use serde_json::json;
use shared::access::gate::Granted;
use shared::access::ratelimit::{self, Decision, RatePolicy};
use shared::domain::tenant::{RedirectOrigin, Tenant};
use shared::domain::{Role, User};
use shared::http::request::{json_body, DEFAULT_BODY_LIMIT};
use shared::mail;
use shared::store::changes::Change;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};

/// Origin changes per tenant in an hour (each is mailed to the owners and admins).
pub(crate) const CHANGES_PER_TENANT: RatePolicy = RatePolicy {
    name: "origins-change",
    limit: 10,
    window_secs: 3600,
};
/// The most owners and admins one change is mailed to (owners first).
pub(crate) const MAX_NOTICES: usize = 25;

fn origins_view(origins: &[RedirectOrigin]) -> serde_json::Value {
    json!({"origins": origins, "primary": origins.first()})
}

pub(crate) async fn get(granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    Ok(ApiResponse::ok(origins_view(&tenant.redirect_origins)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginsBody {
    origins: Vec<String>,
}

pub(crate) async fn put(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    // Links in mail follow these origins, so changing them is an owner's decision: an admin
    // who could point them at a host they control could catch other members' links.
    if !(access.operator || access.role == Some(Role::Owner)) {
        return Err(crate::forbidden(
            "only the tenant's owners and platform operators may change its redirect origins",
        ));
    }
    let body: OriginsBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    // Each change is mailed: bounded, so a loop of changes is not a mail cannon.
    let tenant_key = format!("tenant:{}", tenant.id);
    if let Decision::Limited { retry_after_secs } = ratelimit::reserve(
        call.store,
        &[(CHANGES_PER_TENANT, tenant_key.as_str())],
        shared::runtime::time::now_unix(),
    )
    .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let origins =
        RedirectOrigin::parse_list(&body.origins, call.app.local_mode).map_err(|why| {
            ApiError::refused(ErrorCode::InvalidRedirectOrigin, format!("origins: {why}"))
        })?;
    let changes = vec![
        Change::SetRedirectOrigins {
            tenant: tenant.id.clone(),
            before: tenant.redirect_origins.clone(),
            origins: origins.clone(),
        },
        call.audit(
            &tenant,
            "redirect_origins.replaced",
            json!({"before": {"origins": tenant.redirect_origins}, "after": {"origins": origins}}),
        ),
    ];
    call.app
        .store
        .commit(changes)
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(tenant = %tenant.slug, changed_by = %call.caller.user.id, count = origins.len(), "redirect origins replaced");
    notify_origins_changed(call, &tenant, &call.caller.user, &origins).await;
    Ok(ApiResponse::ok(origins_view(&origins)))
}

/// Mails the tenant's other owners and admins. The change stands whatever happens here: a
/// failure is logged, not returned.
async fn notify_origins_changed(
    call: &Call<'_>,
    tenant: &Tenant,
    actor: &User,
    origins: &[RedirectOrigin],
) {
    let store = call.app.store.as_ref();
    let members = match store.tenant_members(&tenant.id).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(tenant = %tenant.slug, cause = %shared::runtime::logging::chain(&e), "redirect-origin change not notified");
            return;
        }
    };
    let mut recipients: Vec<_> = members
        .into_iter()
        .filter(|(user_id, role)| *user_id != actor.id && matches!(role, Role::Owner | Role::Admin))
        .collect();
    recipients.sort_by_key(|(_, role)| *role != Role::Owner);
    if recipients.len() > MAX_NOTICES {
        tracing::warn!(tenant = %tenant.slug, count = recipients.len(), "redirect-origin change notices capped");
        recipients.truncate(MAX_NOTICES);
    }
    for (user_id, _) in recipients {
        let sent = match store.user_by_id(&user_id).await {
            Ok(Some(u)) if u.is_active() => {
                match mail::redirect_origins_changed(&u.email, &tenant.name, &actor.email, origins)
                {
                    Ok(notice) => call.app.mailer.send(&notice).await,
                    Err(e) => Err(e),
                }
                .map_err(|e| shared::runtime::logging::chain(&e))
            }
            Ok(_) => continue,
            Err(e) => Err(shared::runtime::logging::chain(&e)),
        };
        if let Err(cause) = sent {
            tracing::error!(tenant = %tenant.slug, user_id = %user_id, cause = %cause, "redirect-origin change notice not sent");
        }
    }
}
