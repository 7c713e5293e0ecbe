//! Partners (resellers). Routes (see `../shared/DESIGN.md` and `infra/openapi.yaml`):
//!
//! | route | who |
//! |---|---|
//! | `POST /partners`, `GET /partners` | operator |
//! | `GET /partners/{partner}` | operator; the partner's admins |
//! | `PATCH`/`DELETE /partners/{partner}` | operator (`DELETE` terminates: kept, takes no new tenants) |
//! | `GET /partners/{partner}/tenants` | operator; the partner's admins |
//! | `PUT`/`DELETE /partners/{partner}/tenants/{slug}` (attach, detach) | operator |
//! | `GET`/`POST /partners/{partner}/admins`, `DELETE .../admins/{user_id}` | operator |
//!
//! A partner's tenant counts (by status) live on the partner record and change in the same
//! transaction as every attach, detach and tenant status change, each conditioned on the
//! tenant's version, so concurrent moves keep them exact. A partner admin who asks about
//! another partner gets the same 404 as for a partner that does not exist.

use shared::auth::gate::{self, Intent, Need};
use shared::ErrorCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::auth::access::{signed_in, Caller};
use shared::auth::jwt::TokenKeys;
use shared::config::LinkConfig;
use shared::domain::{Email, UserId, UserStatus};
use shared::email::Mailer;
use shared::error::retry_on_contention;
use shared::fields::{self, FieldError, Hostname};
use shared::idempotency::{self, Idempotent};
use shared::partner::{margin_bp, Partner, PartnerSlug, PartnerStatus};
use shared::request::{
    etag_matches, if_match, json_body, matched, path_param, query_param, RequestContext,
    DEFAULT_BODY_LIMIT,
};
use shared::store::changes::{tenant_count_changes, AuditEntry, AuditTarget, Change, Refusal};
use shared::store::{Store, TenantFilter};
use shared::tenant::Tenant;
use shared::{ApiError, ApiResponse};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub mailer: Arc<dyn Mailer>,
    pub links: LinkConfig,
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

/// This function's routes (method, resource template): `infra/checks/tests/routes.rs` holds
/// them equal to the template's events.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.0, r.1))
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    let caller = signed_in(&app.keys, app.store.as_ref(), &req).await?;
    let call = Call {
        app,
        ctx: &ctx,
        req: &req,
        caller: &caller,
    };
    match route {
        Route::Create => create(&call).await,
        Route::List => list(&call).await,
        Route::Get => {
            let p = call.partner(false).await?;
            Ok(with_etag(ApiResponse::ok(view(&p)), &p))
        }
        Route::Patch => patch(&call).await,
        Route::Terminate => terminate(&call).await,
        Route::Tenants => tenants(&call).await,
        Route::Attach => retry_on_contention(|| attach(&call, true)).await,
        Route::Detach => retry_on_contention(|| attach(&call, false)).await,
        Route::Admins => admins(&call).await,
        Route::InviteAdmin => invite_admin(&call).await,
        Route::RemoveAdmin => remove_admin(&call).await,
    }
}

struct Call<'a> {
    app: &'a App,
    ctx: &'a RequestContext,
    req: &'a Request,
    caller: &'a Caller,
}

fn already_admin() -> ApiError {
    ApiError::refused(
        ErrorCode::AlreadyAdmin,
        "this person is already an admin of this partner",
    )
}

fn partner_not_found() -> ApiError {
    ApiError::refused(ErrorCode::PartnerNotFound, "no such partner")
}

fn operators_only() -> ApiError {
    ApiError::refused(ErrorCode::Forbidden, "only platform operators may do this")
}

impl Call<'_> {
    /// The partner in the path. Operators may do anything; the partner's own admins may
    /// read (`admin_may`); anyone else is told it does not exist.
    async fn partner(&self, operator_only: bool) -> Result<Partner, ApiError> {
        let store = self.app.store.as_ref();
        let slug = path_param(self.req, "partner")
            .as_deref()
            .and_then(PartnerSlug::parse)
            .ok_or_else(partner_not_found)?;
        let partner = store
            .partner_by_slug(&slug)
            .await?
            .ok_or_else(partner_not_found)?;
        if self.caller.operator {
            return Ok(partner);
        }
        if !store
            .is_partner_admin(&self.caller.user.id, &partner.id)
            .await?
        {
            return Err(partner_not_found());
        }
        if operator_only {
            return Err(operators_only());
        }
        Ok(partner)
    }

    fn require_operator(&self) -> Result<(), ApiError> {
        gate::operator(self.caller)
    }

    fn audit(&self, target: AuditTarget, action: &str, details: Value) -> AuditEntry {
        AuditEntry::new(
            target,
            self.caller.user.id.clone(),
            action,
            details,
            shared::time::now_ms(),
            &self.ctx.request_id,
        )
    }
}

fn view(p: &Partner) -> Value {
    json!({
        "id": p.id,
        "slug": p.slug,
        "name": p.name,
        "domain": p.domain,
        "status": p.status,
        "margin_pct": p.margin_pct(),
        "contact_info": p.contact_info,
        "billing_info": p.billing_info,
        "tenant_count": p.tenant_count(),
        "tenant_counts": p.tenant_counts,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "etag": p.etag(),
    })
}

fn with_etag(resp: ApiResponse, p: &Partner) -> ApiResponse {
    resp.header("etag", p.etag())
}

fn domain(raw: &str) -> Result<Hostname, FieldError> {
    Hostname::parse(raw)
        .ok_or_else(|| FieldError::new("domain", "must be a host name such as partner.example.com"))
}

fn margin(raw: f64) -> Result<u32, FieldError> {
    margin_bp(raw)
        .ok_or_else(|| FieldError::new("margin_pct", "must be 0 to 100 with at most two decimals"))
}

fn object(field: &str, raw: Option<&Value>) -> Result<serde_json::Map<String, Value>, FieldError> {
    raw.map(|v| fields::bounded_object(field, v))
        .transpose()
        .map(Option::unwrap_or_default)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    slug: String,
    name: String,
    domain: String,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    margin_pct: Option<f64>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    contact_info: Option<Value>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    billing_info: Option<Value>,
}

async fn create(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    call.require_operator()?;
    let body: CreateBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let now = shared::time::now_unix();
    let partner = Partner {
        id: shared::domain::PartnerId::new_random(),
        slug: PartnerSlug::check(&body.slug).map_err(|why| FieldError::new("slug", why))?,
        name: fields::name("name", &body.name)?,
        domain: domain(&body.domain)?,
        status: PartnerStatus::Active,
        margin_bp: margin(body.margin_pct.unwrap_or(0.0))?,
        contact_info: object("contact_info", body.contact_info.as_ref())?,
        billing_info: object("billing_info", body.billing_info.as_ref())?,
        tenant_counts: BTreeMap::new(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    Idempotent {
        store: call.app.store.as_ref(),
        key: idempotency::key_of(call.req)?,
        route: "partners.create",
        subject: call.caller.user.id.as_str(),
        body: call.req.body().as_ref(),
        now,
    }
    .run(|| async {
        let audit = call.audit(
            AuditTarget::Partner(partner.id.clone()),
            "partner.created",
            json!({"after": {"slug": partner.slug, "name": partner.name, "domain": partner.domain, "margin_pct": partner.margin_pct()}}),
        );
        call.app
            .store
            .commit(vec![Change::CreatePartner(partner.clone()), Change::Audit(audit)])
            .await
            .map_err(|e| {
                e.answer(|reasons| {
                    if reasons.contains(&Refusal::SlugTaken) {
                        ApiError::refused(ErrorCode::SlugTaken, "a partner with this slug exists")
                    } else {
                        ApiError::concurrent_update()
                    }
                })
            })?;
        tracing::info!(partner = %partner.slug, created_by = %call.caller.user.id, "partner created");
        Ok(with_etag(ApiResponse::created(view(&partner)), &partner))
    })
    .await
}

fn page_params(call: &Call<'_>) -> Result<(usize, Option<String>), ApiError> {
    let limit = shared::page::limit(query_param(call.req, "limit").as_deref())
        .map_err(|e| FieldError::new("limit", e))?;
    Ok((limit, query_param(call.req, "cursor")))
}

async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    call.require_operator()?;
    let (limit, cursor) = page_params(call)?;
    let page = call
        .app
        .store
        .partners_page(limit, cursor.as_deref())
        .await?;
    Ok(ApiResponse::ok(json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    margin_pct: Option<f64>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    contact_info: Option<Value>,
    #[serde(default, deserialize_with = "shared::fields::not_null")]
    billing_info: Option<Value>,
}

/// Writes `next` over `partner` if its version is still the one read.
async fn update(
    call: &Call<'_>,
    partner: &Partner,
    mut next: Partner,
    action: &str,
    details: Value,
    precondition: bool,
) -> Result<Partner, ApiError> {
    next.version = partner.version + 1;
    next.updated_at = shared::time::now_unix();
    let audit = call.audit(AuditTarget::Partner(partner.id.clone()), action, details);
    call.app
        .store
        .commit(vec![
            Change::UpdatePartner {
                partner: next.clone(),
                expect_version: partner.version,
            },
            Change::Audit(audit),
        ])
        .await
        .map_err(|e| {
            e.answer(|_| {
                if precondition {
                    ApiError::PreconditionFailed
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    tracing::info!(partner = %partner.slug, changed_by = %call.caller.user.id, action, "partner changed");
    Ok(next)
}

async fn patch(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    let body: PatchBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let mut next = partner.clone();
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    if let Some(raw) = &body.name {
        next.name = fields::name("name", raw)?;
    }
    if let Some(raw) = &body.domain {
        next.domain = domain(raw)?;
    }
    if let Some(raw) = body.margin_pct {
        next.margin_bp = margin(raw)?;
    }
    if let Some(raw) = &body.contact_info {
        next.contact_info = fields::bounded_object("contact_info", raw)?;
    }
    if let Some(raw) = &body.billing_info {
        next.billing_info = fields::bounded_object("billing_info", raw)?;
    }
    for (field, old, new) in [
        ("name", json!(partner.name), json!(next.name)),
        ("domain", json!(partner.domain), json!(next.domain)),
        (
            "margin_pct",
            json!(partner.margin_pct()),
            json!(next.margin_pct()),
        ),
        // Contact and billing details may be personal: the audit names the keys only.
        (
            "contact_info_keys",
            json!(partner.contact_info.keys().collect::<Vec<_>>()),
            json!(next.contact_info.keys().collect::<Vec<_>>()),
        ),
        (
            "billing_info_keys",
            json!(partner.billing_info.keys().collect::<Vec<_>>()),
            json!(next.billing_info.keys().collect::<Vec<_>>()),
        ),
    ] {
        if old != new {
            before.insert(field.into(), old);
            after.insert(field.into(), new);
        }
    }
    let expected = if_match(call.req);
    if let Some(m) = &expected {
        if !etag_matches(m, &partner.etag()) {
            return Err(ApiError::PreconditionFailed);
        }
    }
    if next == partner {
        return Ok(with_etag(ApiResponse::ok(view(&partner)), &partner));
    }
    let next = update(
        call,
        &partner,
        next,
        "partner.updated",
        json!({"before": before, "after": after}),
        expected.is_some(),
    )
    .await?;
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}

/// Soft delete: the record stays, as `terminated`, and takes no new tenants.
async fn terminate(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    if partner.status == PartnerStatus::Terminated {
        return Ok(with_etag(ApiResponse::ok(view(&partner)), &partner));
    }
    let mut next = partner.clone();
    next.status = PartnerStatus::Terminated;
    let next = update(
        call,
        &partner,
        next,
        "partner.terminated",
        json!({"before": {"status": partner.status}, "after": {"status": PartnerStatus::Terminated}}),
        false,
    )
    .await?;
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}

async fn tenants(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(false).await?;
    let (limit, cursor) = page_params(call)?;
    let filter = TenantFilter {
        partner: Some(partner.id.clone()),
        ..TenantFilter::default()
    };
    let page = call
        .app
        .store
        .tenants_page(&filter, limit, cursor.as_deref())
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|t: &Tenant| {
            json!({"id": t.id, "slug": t.slug, "name": t.name, "status": t.status, "plan": t.plan, "created_at": t.created_at})
        })
        .collect();
    Ok(ApiResponse::ok(json!({
        "items": items,
        "next_cursor": page.next_cursor,
        "counts": partner.tenant_counts,
    })))
}

/// Attach (`PUT`, moving it from any other partner) or detach (`DELETE`) a tenant, with both
/// partners' counts in the same transaction.
async fn attach(call: &Call<'_>, attach: bool) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    let store = call.app.store.as_ref();
    // The gate: an operator's change to the tenant (a deleted one must be restored first).
    let tenant = gate::tenant(
        store,
        call.caller,
        path_param(call.req, "slug").as_deref(),
        Need::Operator,
        Intent::Write,
    )
    .await?
    .into_tenant();
    let new_partner = if attach {
        if partner.status != PartnerStatus::Active {
            return Err(ApiError::refused(ErrorCode::PartnerTerminated, "this partner is terminated and takes no new tenants"));
        }
        Some(partner.id.clone())
    } else {
        if tenant.partner.as_ref() != Some(&partner.id) {
            return Err(ApiError::refused(ErrorCode::NotAttached, "this tenant is not attached to this partner"));
        }
        None
    };
    let answer = |t: &Tenant| {
        ApiResponse::ok(
            json!({"tenant": t.slug, "partner_id": t.partner, "attached": t.partner.is_some()}),
        )
    };
    if tenant.partner == new_partner {
        return Ok(answer(&tenant));
    }
    let mut next = tenant.clone();
    next.partner = new_partner.clone();
    next.version = tenant.version + 1;
    next.updated_at = shared::time::now_unix();
    let mut changes = vec![Change::UpdateTenant {
        tenant: next.clone(),
        expect_version: tenant.version,
    }];
    changes.extend(tenant_count_changes(
        Some((tenant.status, tenant.partner.as_ref())),
        Some((tenant.status, next.partner.as_ref())),
    ));
    let mut entry = call.audit(
        AuditTarget::Tenant(tenant.id.clone()),
        if attach {
            "partner.tenant_attached"
        } else {
            "partner.tenant_detached"
        },
        json!({"before": {"partner_id": tenant.partner}, "after": {"partner_id": next.partner}}),
    );
    entry.partner = Some(partner.id.clone());
    changes.push(Change::Audit(entry));
    store.commit(changes).await.map_err(|e| {
        e.answer(|reasons| {
            if reasons.contains(&Refusal::PartnerInactive) {
                ApiError::refused(ErrorCode::PartnerTerminated, "this partner is terminated and takes no new tenants")
            } else {
                ApiError::concurrent_update()
            }
        })
    })?;
    tracing::info!(tenant = %tenant.slug, partner = %partner.slug, attach, changed_by = %call.caller.user.id, "tenant partner changed");
    Ok(answer(&next))
}

async fn admins(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    let (limit, cursor) = page_params(call)?;
    let store = call.app.store.as_ref();
    let page = store
        .partner_admins_page(&partner.id, limit, cursor.as_deref())
        .await?;
    let users: HashMap<UserId, _> = store
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

async fn invite_admin(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    let body: InviteBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let email = Email::parse(&body.email).map_err(|why| FieldError::new("email", why))?;
    let now = shared::time::now_unix();
    Idempotent {
        store: call.app.store.as_ref(),
        key: idempotency::key_of(call.req)?,
        route: "partners.invite-admin",
        subject: call.caller.user.id.as_str(),
        body: call.req.body().as_ref(),
        now,
    }
    .run(|| async {
        let store = call.app.store.as_ref();
        let existing = store.user_by_email(&email).await?;
        if let Some(u) = &existing {
            if store.is_partner_admin(&u.id, &partner.id).await? {
                return Err(already_admin());
            }
        }
        let new_user = existing.is_none();
        let user = existing.unwrap_or_else(|| shared::invitation::invited_user(email.clone(), now));
        let mut changes = Vec::new();
        if new_user {
            changes.push(Change::CreateUser(user.clone()));
        }
        changes.push(Change::GrantPartnerAdmin {
            user: user.id.clone(),
            partner: partner.id.clone(),
        });
        changes.push(Change::Audit(call.audit(
            AuditTarget::Partner(partner.id.clone()),
            "partner.admin_added",
            json!({"after": {"user_id": user.id, "invited": new_user}}),
        )));
        store
            .commit(changes)
            .await
            .map_err(|e| {
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
            shared::invitation::notify_access(call.app.mailer.as_ref(), &user, &partner.name, ADMIN_ROLE, &call.caller.user).await;
        }
        Ok(ApiResponse::created(json!({
            "user_id": user.id,
            "status": user.status,
            "invitation_sent": user.status == UserStatus::Invited,
        })))
    })
    .await
}

async fn remove_admin(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let partner = call.partner(true).await?;
    let user_id = path_param(call.req, "user_id")
        .as_deref()
        .and_then(UserId::parse)
        .ok_or_else(admin_not_found)?;
    let audit = call.audit(
        AuditTarget::Partner(partner.id.clone()),
        "partner.admin_removed",
        json!({"before": {"user_id": user_id}}),
    );
    call.app
        .store
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

fn admin_not_found() -> ApiError {
    ApiError::refused(ErrorCode::AdminNotFound, "this user is not an admin of this partner")
}
