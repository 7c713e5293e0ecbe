//! Partners (resellers). Routes (see `../shared/DESIGN.md` and `infra/openapi.yaml`):
//!
//! | route | module | who |
//! |---|---|---|
//! | `POST /partners`, `GET /partners` | `record` | operator |
//! | `GET /partners/{partner}` | `record` | operator; the partner's admins |
//! | `PATCH`/`DELETE /partners/{partner}` | `record` | operator (`DELETE` terminates: kept, takes no new tenants) |
//! | `GET /partners/{partner}/tenants` | `tenants` | operator; the partner's admins |
//! | `PUT`/`DELETE /partners/{partner}/tenants/{slug}` (attach, detach) | `tenants` | operator |
//! | `GET`/`POST /partners/{partner}/admins`, `DELETE .../admins/{user_id}` | `admins` | operator |
//!
//! A partner admin who asks about another partner gets the same 404 as for a partner that does
//! not exist; the partner's own admin asking for an operator's route gets 403. Every mutation
//! commits its audit entry in the same transaction.

mod admins;
mod record;
mod tenants;

use lambda_http::{Body, Request, Response};
use shared::access::jwt::TokenKeys;
use shared::domain::partner::{Partner, PartnerSlug};
use shared::http::error::retry_on_contention;
use shared::http::request::{matched, path_param, RequestContext};
use shared::mail::Mailer;
use shared::runtime::config::LinkConfig;
use shared::store::Store;
use shared::{ApiError, ApiResponse, ErrorCode};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub mailer: Arc<dyn Mailer>,
    pub links: LinkConfig,
    /// Where a tenant's move between partners is published (`TenantPartnerChanged`).
    pub events: Arc<dyn shared::events::EventPublisher>,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Create,
    List,
    Get,
    Patch,
    Terminate,
    Tenants,
    Attach,
    Detach,
    Admins,
    InviteAdmin,
    RemoveAdmin,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("POST", "/partners", Route::Create),
    ("GET", "/partners", Route::List),
    ("GET", "/partners/{partner}", Route::Get),
    ("PATCH", "/partners/{partner}", Route::Patch),
    ("DELETE", "/partners/{partner}", Route::Terminate),
    ("GET", "/partners/{partner}/tenants", Route::Tenants),
    ("PUT", "/partners/{partner}/tenants/{slug}", Route::Attach),
    (
        "DELETE",
        "/partners/{partner}/tenants/{slug}",
        Route::Detach,
    ),
    ("GET", "/partners/{partner}/admins", Route::Admins),
    ("POST", "/partners/{partner}/admins", Route::InviteAdmin),
    (
        "DELETE",
        "/partners/{partner}/admins/{user_id}",
        Route::RemoveAdmin,
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
    use Admits::*;
    match route {
        Route::Create => record::create(&call).await,
        Route::List => record::list(&call).await,
        Route::Get => record::get(partner(&call, OperatorsAndAdmins).await?),
        Route::Patch => record::patch(&call, partner(&call, Operators).await?).await,
        Route::Terminate => record::terminate(&call, partner(&call, Operators).await?).await,
        Route::Tenants => tenants::list(&call, partner(&call, OperatorsAndAdmins).await?).await,
        Route::Attach | Route::Detach => {
            let attach = matches!(route, Route::Attach);
            // A retried attempt reads the partner and the tenant afresh.
            retry_on_contention(|| async {
                tenants::attach(&call, partner(&call, Operators).await?, attach).await
            })
            .await
        }
        Route::Admins => admins::list(&call, partner(&call, Operators).await?).await,
        Route::InviteAdmin => admins::invite(&call, partner(&call, Operators).await?).await,
        Route::RemoveAdmin => admins::remove(&call, partner(&call, Operators).await?).await,
    }
}

/// One request in hand (`shared::http::call`): this app, the request and its signed-in caller.
pub(crate) type Call<'a> = shared::http::call::Call<'a, App>;

/// Who a route on one partner admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admits {
    Operators,
    /// Operators, and the partner's own admins (reads).
    OperatorsAndAdmins,
}

fn partner_not_found() -> ApiError {
    ApiError::refused(ErrorCode::PartnerNotFound, "no such partner")
}

/// The partner in the path, if the caller may reach it: operators always; the partner's own
/// admins where the route admits them, else 403; anyone else is told it does not exist.
async fn partner(call: &Call<'_>, admits: Admits) -> Result<Partner, ApiError> {
    let slug = path_param(call.req, "partner")
        .as_deref()
        .and_then(PartnerSlug::parse)
        .ok_or_else(partner_not_found)?;
    let partner = call
        .store
        .partner_by_slug(&slug)
        .await?
        .ok_or_else(partner_not_found)?;
    if call.caller.operator {
        return Ok(partner);
    }
    if !call
        .store
        .is_partner_admin(&call.caller.user.id, &partner.id)
        .await?
    {
        return Err(partner_not_found());
    }
    if admits == Admits::Operators {
        return Err(ApiError::refused(
            ErrorCode::Forbidden,
            "only platform operators may do this",
        ));
    }
    Ok(partner)
}
