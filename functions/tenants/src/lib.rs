//! Tenants. Routes so far:
//! - `GET /tenants/{slug}/redirect-origins` -> `{origins, primary}`
//! - `PUT /tenants/{slug}/redirect-origins` `{origins:[...]}` -> the stored list
//!
//! Both for the tenant's owners and admins (portal session) and platform operators (operator
//! session + stored flag). Anyone else gets the same 404 as for a tenant that does not exist.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::auth::access::{authenticate, current_user};
use shared::auth::jwt::TokenKeys;
use shared::domain::Audience;
use shared::request::{json_body, path_param, resource, RequestContext, DEFAULT_BODY_LIMIT};
use shared::store::Store;
use shared::tenant::{can_manage, RedirectOrigin, Tenant, TenantSlug};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, _ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match (req.method().as_str(), resource(&req)) {
        ("GET", "/tenants/{slug}/redirect-origins") => {
            let tenant = managed_tenant(app, &req).await?;
            Ok(ApiResponse::ok(origins_view(&tenant.redirect_origins)))
        }
        ("PUT", "/tenants/{slug}/redirect-origins") => put_redirect_origins(app, &req).await,
        (_, "/tenants/{slug}/redirect-origins") => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::route_not_found()),
    }
}

fn tenant_not_found() -> ApiError {
    ApiError::NotFound {
        code: "TENANT_NOT_FOUND",
        message: "no such tenant".into(),
    }
}

/// The tenant named in the path, if the caller may manage it.
async fn managed_tenant(app: &App, req: &Request) -> Result<Tenant, ApiError> {
    let principal = authenticate(&app.keys, req, &[Audience::Portal, Audience::Operator])?;
    let user = current_user(app.store.as_ref(), &principal).await?;
    let slug = path_param(req, "slug")
        .and_then(TenantSlug::parse)
        .ok_or_else(tenant_not_found)?;
    let tenant = app
        .store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(tenant_not_found)?;
    let memberships = app.store.memberships(&user.id).await?;
    if can_manage(
        &user,
        principal.audience == Audience::Operator,
        &memberships,
        &tenant,
    ) {
        return Ok(tenant);
    }
    if memberships.iter().any(|m| m.tenant_id == tenant.id) {
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
    let tenant = managed_tenant(app, req).await?;
    let body: OriginsBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let origins = RedirectOrigin::parse_list(&body.origins)
        .map_err(|why| ApiError::bad_request("INVALID_REDIRECT_ORIGIN", why))?;
    app.store.set_redirect_origins(&tenant.id, &origins).await?;
    tracing::info!(tenant = %tenant.slug, count = origins.len(), "redirect origins replaced");
    Ok(ApiResponse::ok(origins_view(&origins)))
}
