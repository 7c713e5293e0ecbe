//! Tenants: the operator's, partners' and tenant admins' management API. Routes (see
//! `../shared/DESIGN.md` and `infra/openapi.yaml`):
//!
//! | route | module | who |
//! |---|---|---|
//! | `POST /tenants`, `GET /tenants` | `lifecycle` | operator; partner admin (own partner's) |
//! | `GET`/`PATCH /tenants/{slug}` | `lifecycle` | operator; partner admin; owner/admin |
//! | `DELETE /tenants/{slug}`, `POST .../suspend`, `.../resume`, `.../restore` | `lifecycle` | operator |
//! | `GET`/`POST /tenants/{slug}/users`, `PATCH`/`DELETE .../users/{user_id}` | `members` | operator; owner/admin |
//! | `GET`/`PUT /tenants/{slug}/redirect-origins` | `origins` | operator; owner/admin |
//! | `GET /audit` | `audit` | operator |
//! | `GET /tenants/{slug}/audit` | `audit` | operator; owner/admin |
//! | `POST`/`DELETE /tenants/{slug}/join` | `members` | the invited account (accept, decline) |
//! | `GET /tenants/{slug}/usage` | `usage` | members; partner admin; operator |
//! | `GET`/`POST /plans`, `GET`/`PATCH`/`DELETE /plans/{plan_id}` | `plans` | operator (a partner admin lists what their partner sells) |
//! | `GET`/`POST /flags`, `GET`/`PATCH`/`DELETE /flags/{key}`, `POST .../kill`, `PUT`/`DELETE .../overrides/{axis}/{id}`, `GET .../evaluate` | `flags` | operator |
//! | `GET /tenants/{slug}/flags` | `flags` | members; partner admin; operator |
//! | `POST /tenants/{slug}/impersonation-approvals` | `impersonation` | operator |
//! | `GET /tenants/{slug}/impersonation-approvals` | `impersonation` | operator; owner |
//! | `POST .../impersonation-approvals/{approval_id}/approve`, `.../decline` | `impersonation` | owner |
//!
//! Permissions come from stored records read per request (memberships, partner-admin grants,
//! the platform-admin flag); the token only names the user. A caller who may know a tenant
//! exists but may not do this gets 403; anyone else gets the same 404 as for a tenant that
//! does not exist. Every mutation commits its audit entry (and its counters and events) in the
//! same transaction.

mod audit;
mod flags;
mod impersonation;
mod lifecycle;
mod members;
mod origins;
mod plans;
mod usage;

use lambda_http::{Body, Request, Response};
pub(crate) use shared::access::caller::tenant_not_found;
use shared::access::jwt::TokenKeys;
use shared::events::EventPublisher;
use shared::http::error::retry_on_contention;
use shared::http::request::{matched, RequestContext};
use shared::mail::Mailer;
use shared::runtime::config::LinkConfig;
use shared::store::Store;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub mailer: Arc<dyn Mailer>,
    pub events: Arc<dyn EventPublisher>,
    pub links: LinkConfig,
    /// `LOCAL_MODE`: plain `http` origins are accepted (local emulator only).
    pub local_mode: bool,
    /// `RECOVERY_WINDOW_SECONDS`: how long a deleted tenant can be restored.
    pub recovery_window_secs: i64,
    /// `PARTNER_MAX_TENANTS`: the live tenants a partner's admins may have created.
    pub partner_max_tenants: i64,
    /// The built-in plans' limits until they are stored.
    pub seeds: shared::domain::plan::BuiltinPlans,
    /// The flag catalogue as this instance last read it (`shared::flags`).
    pub flags: shared::flags::Evaluator,
}

impl App {
    pub(crate) fn catalogue(&self) -> shared::plans::Catalogue<'_> {
        shared::plans::Catalogue {
            store: self.store.as_ref(),
            seeds: self.seeds,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    CreateTenant,
    ListTenants,
    GetTenant,
    PatchTenant,
    DeleteTenant,
    Suspend,
    Resume,
    Restore,
    ListMembers,
    InviteMember,
    ChangeMember,
    RemoveMember,
    GetRedirectOrigins,
    PutRedirectOrigins,
    PlatformAudit,
    TenantAudit,
    Join,
    Decline,
    Usage,
    ListPlans,
    CreatePlan,
    GetPlan,
    PatchPlan,
    DeletePlan,
    ListFlags,
    CreateFlag,
    GetFlag,
    PatchFlag,
    DeleteFlag,
    KillFlag,
    SetOverride,
    RemoveOverride,
    EvaluateFlag,
    TenantFlags,
    AskApproval,
    ListApprovals,
    Approve,
    DeclineApproval,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("POST", "/tenants", Route::CreateTenant),
    ("GET", "/tenants", Route::ListTenants),
    ("GET", "/tenants/{slug}", Route::GetTenant),
    ("PATCH", "/tenants/{slug}", Route::PatchTenant),
    ("DELETE", "/tenants/{slug}", Route::DeleteTenant),
    ("POST", "/tenants/{slug}/suspend", Route::Suspend),
    ("POST", "/tenants/{slug}/resume", Route::Resume),
    ("POST", "/tenants/{slug}/restore", Route::Restore),
    ("GET", "/tenants/{slug}/users", Route::ListMembers),
    ("POST", "/tenants/{slug}/users", Route::InviteMember),
    (
        "PATCH",
        "/tenants/{slug}/users/{user_id}",
        Route::ChangeMember,
    ),
    (
        "DELETE",
        "/tenants/{slug}/users/{user_id}",
        Route::RemoveMember,
    ),
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
    ("POST", "/tenants/{slug}/join", Route::Join),
    ("DELETE", "/tenants/{slug}/join", Route::Decline),
    ("GET", "/audit", Route::PlatformAudit),
    ("GET", "/tenants/{slug}/audit", Route::TenantAudit),
    ("GET", "/tenants/{slug}/usage", Route::Usage),
    ("GET", "/plans", Route::ListPlans),
    ("POST", "/plans", Route::CreatePlan),
    ("GET", "/plans/{plan_id}", Route::GetPlan),
    ("PATCH", "/plans/{plan_id}", Route::PatchPlan),
    ("DELETE", "/plans/{plan_id}", Route::DeletePlan),
    ("GET", "/flags", Route::ListFlags),
    ("POST", "/flags", Route::CreateFlag),
    ("GET", "/flags/{key}", Route::GetFlag),
    ("PATCH", "/flags/{key}", Route::PatchFlag),
    ("DELETE", "/flags/{key}", Route::DeleteFlag),
    ("POST", "/flags/{key}/kill", Route::KillFlag),
    (
        "PUT",
        "/flags/{key}/overrides/{axis}/{id}",
        Route::SetOverride,
    ),
    (
        "DELETE",
        "/flags/{key}/overrides/{axis}/{id}",
        Route::RemoveOverride,
    ),
    ("GET", "/flags/{key}/evaluate", Route::EvaluateFlag),
    ("GET", "/tenants/{slug}/flags", Route::TenantFlags),
    (
        "POST",
        "/tenants/{slug}/impersonation-approvals",
        Route::AskApproval,
    ),
    (
        "GET",
        "/tenants/{slug}/impersonation-approvals",
        Route::ListApprovals,
    ),
    (
        "POST",
        "/tenants/{slug}/impersonation-approvals/{approval_id}/approve",
        Route::Approve,
    ),
    (
        "POST",
        "/tenants/{slug}/impersonation-approvals/{approval_id}/decline",
        Route::DeclineApproval,
    ),
];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    let call = Call::signed_in(app, &app.keys, app.store.as_ref(), &ctx, &req).await?;
    // Each tenant route's need, from the gate (`shared::access::gate`), read inside the retry:
    // a retried attempt reads the tenant afresh.
    use shared::access::gate::{Intent::*, Need::*};
    match route {
        Route::CreateTenant => lifecycle::create(&call).await,
        Route::ListTenants => lifecycle::list(&call).await,
        Route::GetTenant => lifecycle::get(call.tenant(ManagerOrPartner, Read).await?).await,
        Route::PatchTenant => {
            retry_on_contention(|| async {
                lifecycle::patch(&call, call.tenant(ManagerOrPartner, Write).await?).await
            })
            .await
        }
        Route::DeleteTenant => {
            retry_on_contention(|| async {
                lifecycle::delete(&call, call.tenant(Operator, Lifecycle).await?).await
            })
            .await
        }
        Route::Suspend | Route::Resume => {
            let suspend = matches!(route, Route::Suspend);
            retry_on_contention(|| async {
                let granted = call.tenant(Operator, Lifecycle).await?;
                lifecycle::set_suspended(&call, granted, suspend).await
            })
            .await
        }
        Route::Restore => {
            retry_on_contention(|| async {
                lifecycle::restore(&call, call.tenant(Operator, Lifecycle).await?).await
            })
            .await
        }
        Route::ListMembers => members::list(&call, call.tenant(Manager, Read).await?).await,
        Route::InviteMember => members::invite(&call, call.tenant(Manager, Write).await?).await,
        Route::ChangeMember => {
            members::change_role(&call, call.tenant(Manager, Write).await?).await
        }
        Route::RemoveMember => members::remove(&call, call.tenant(Manager, Write).await?).await,
        Route::GetRedirectOrigins => origins::get(call.tenant(Manager, Read).await?).await,
        Route::PutRedirectOrigins => origins::put(&call, call.tenant(Manager, Write).await?).await,
        Route::PlatformAudit => audit::platform(&call).await,
        Route::TenantAudit => audit::tenant(&call, call.tenant(Manager, Read).await?).await,
        // The invitee is not a member yet: no gate, their own invitation decides.
        Route::Join | Route::Decline => members::join(&call, matches!(route, Route::Join)).await,
        Route::Usage => usage::get(&call, call.tenant(Viewer, Read).await?).await,
        Route::ListPlans => plans::list(&call).await,
        Route::CreatePlan => plans::create(&call).await,
        Route::GetPlan => plans::get(&call).await,
        Route::PatchPlan => plans::patch(&call).await,
        Route::DeletePlan => plans::delete(&call).await,
        Route::ListFlags => flags::list(&call).await,
        Route::CreateFlag => flags::create(&call).await,
        Route::GetFlag => flags::get(&call).await,
        Route::PatchFlag => flags::patch(&call).await,
        Route::DeleteFlag => flags::delete(&call).await,
        Route::KillFlag => flags::kill(&call).await,
        Route::SetOverride => flags::set_override(&call).await,
        Route::RemoveOverride => flags::remove_override(&call).await,
        Route::EvaluateFlag => flags::evaluate(&call).await,
        Route::TenantFlags => flags::of_tenant(&call, call.tenant(Viewer, Read).await?).await,
        Route::AskApproval => impersonation::ask(&call, call.tenant(Operator, Read).await?).await,
        Route::ListApprovals => impersonation::list(&call, call.tenant(Viewer, Read).await?).await,
        Route::Approve | Route::DeclineApproval => {
            let granted = call.tenant(Manager, Write).await?;
            impersonation::decide(&call, granted, matches!(route, Route::Approve)).await
        }
    }
}

/// One request in hand (`shared::http::call`): this app, the request and its signed-in caller.
pub(crate) type Call<'a> = shared::http::call::Call<'a, App>;

pub(crate) fn forbidden(message: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::Forbidden, message)
}
