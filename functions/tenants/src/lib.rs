//! Tenants. Routes so far:
//! - `GET /tenants/{slug}/redirect-origins` -> `{origins, primary}`
//! - `PUT /tenants/{slug}/redirect-origins` `{origins:[...]}` -> the stored list
//!
//! Both for the tenant's owners and admins (portal session) and platform operators (operator
//! session + stored flag). Anyone else gets the same 404 as for a tenant that does not exist.
//! A change of the origins is mailed to the tenant's other owners and admins and logged with
//! who made it: these origins decide where the tenant's users' reset links point.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::auth::access::{authenticate, current_user};
use shared::auth::jwt::TokenKeys;
use shared::domain::{Audience, Role, User};
use shared::email::{self, Mailer};
use shared::request::{json_body, matched, path_param, RequestContext, DEFAULT_BODY_LIMIT};
use shared::store::changes::{AuditEntry, Change, CommitError};
use shared::store::Store;
use shared::tenant::{can_manage, RedirectOrigin, Tenant, TenantSlug};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub mailer: Arc<dyn Mailer>,
    /// `LOCAL_MODE`: plain `http` origins are accepted (local emulator only).
    pub local_mode: bool,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    GetRedirectOrigins,
    PutRedirectOrigins,
}

const ROUTES: &[(&str, &str, Route)] = &[
    (
        "GET",
        "/tenants/{slug}/redirect-origins",
        Route::GetRedirectOrigins,
    ),
    (
        "PUT",
        "/tenants/{slug}/redirect-origins",
        Route::PutRedirectOrigins,
    ),
];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, _ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match matched(&req, ROUTES)? {
        Route::GetRedirectOrigins => {
            let (tenant, _) = managed_tenant(app, &req).await?;
            Ok(ApiResponse::ok(origins_view(&tenant.redirect_origins)))
        }
        Route::PutRedirectOrigins => put_redirect_origins(app, &req).await,
    }
}

fn tenant_not_found() -> ApiError {
    ApiError::NotFound {
        code: "TENANT_NOT_FOUND",
        message: "no such tenant".into(),
    }
}

/// The tenant named in the path and the caller, if the caller may manage it.
async fn managed_tenant(app: &App, req: &Request) -> Result<(Tenant, User), ApiError> {
    let principal = authenticate(&app.keys, req, &[Audience::Portal, Audience::Operator]).await?;
    let user = current_user(app.store.as_ref(), &principal).await?;
    let slug = path_param(req, "slug")
        .as_deref()
        .and_then(TenantSlug::parse)
        .ok_or_else(tenant_not_found)?;
    let tenant = app
        .store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(tenant_not_found)?;
    let membership = app.store.membership(&user.id, &tenant.id).await?;
    if can_manage(
        &user,
        principal.audience == Audience::Operator,
        membership.as_ref(),
        &tenant,
    ) {
        return Ok((tenant, user));
    }
    if membership.is_some() {
        return Err(ApiError::Forbidden {
            code: "FORBIDDEN",
            message: "only the tenant's owners and admins may do this",
        });
    }
    Err(tenant_not_found())
}

fn origins_view(origins: &[RedirectOrigin]) -> serde_json::Value {
    json!({"origins": origins, "primary": origins.first()})
}

#[derive(Deserialize)]
struct OriginsBody {
    origins: Vec<String>,
}

async fn put_redirect_origins(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let (tenant, actor) = managed_tenant(app, req).await?;
    let body: OriginsBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let origins = RedirectOrigin::parse_list(&body.origins, app.local_mode)
        .map_err(|why| ApiError::bad_request("INVALID_REDIRECT_ORIGIN", why.to_string()))?;
    // The change and its audit entry, together or not at all.
    let audit = AuditEntry::new(
        format!("tenant:{}", tenant.id),
        actor.id.clone(),
        "redirect_origins.replaced",
        json!({"origins": origins}),
        shared::time::now_unix() * 1000,
    );
    let changes = vec![
        Change::SetRedirectOrigins {
            tenant: tenant.id.clone(),
            origins: origins.clone(),
        },
        Change::Audit(audit),
    ];
    match app.store.commit(changes).await {
        Ok(()) => {}
        Err(CommitError::Refused { .. }) => return Err(tenant_not_found()),
        Err(CommitError::Store(e)) => return Err(e.into()),
        Err(e @ CommitError::TooMany) => return Err(ApiError::internal(e)),
    }
    tracing::info!(tenant = %tenant.slug, changed_by = %actor.id, count = origins.len(), "redirect origins replaced");
    notify_origins_changed(app, &tenant, &actor, &origins).await;
    Ok(ApiResponse::ok(origins_view(&origins)))
}

/// Mails the tenant's other owners and admins. The change stands whatever happens here: a
/// failure is logged, not returned.
async fn notify_origins_changed(
    app: &App,
    tenant: &Tenant,
    actor: &User,
    origins: &[RedirectOrigin],
) {
    let members = match app.store.tenant_members(&tenant.id).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(tenant = %tenant.slug, cause = %shared::error::chain(&e), "redirect-origin change not notified");
            return;
        }
    };
    for (user_id, role) in members {
        if user_id == actor.id || !matches!(role, Role::Owner | Role::Admin) {
            continue;
        }
        let sent = match app.store.user_by_id(&user_id).await {
            Ok(Some(u)) if u.is_active() => {
                match email::redirect_origins_changed(&u.email, &tenant.name, &actor.email, origins)
                {
                    Ok(notice) => app.mailer.send(&notice).await,
                    Err(e) => Err(e),
                }
                .map_err(|e| shared::error::chain(&e))
            }
            Ok(_) => continue,
            Err(e) => Err(shared::error::chain(&e)),
        };
        if let Err(cause) = sent {
            tracing::error!(tenant = %tenant.slug, user_id = %user_id, cause = %cause, "redirect-origin change notice not sent");
        }
    }
}
