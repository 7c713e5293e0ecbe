//! A partner's record: create, list, read, change (with `If-Match`), terminate. Termination is
//! a soft delete: the record stays, as `terminated`, and takes no new tenants.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate;
use shared::domain::fields::{self, FieldError, Hostname};
use shared::domain::partner::{margin_bp, Partner, PartnerSlug, PartnerStatus};
use shared::domain::plan::PlanId;
use shared::domain::PartnerId;
use shared::http::request::{etag_matches, if_match, json_body, DEFAULT_BODY_LIMIT};
use shared::store::changes::{AuditTarget, Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};
use std::collections::BTreeMap;

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
        "allowed_plans": p.allowed_plan_ids(),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "etag": p.etag(),
    })
}

/// The partner's view, with its `ETag` header.
fn answer(resp: fn(Value) -> ApiResponse, p: &Partner) -> ApiResponse {
    resp(view(p)).header("etag", p.etag())
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
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    margin_pct: Option<f64>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    contact_info: Option<Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    billing_info: Option<Value>,
}

pub(crate) async fn create(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    gate::operator(&call.caller)?;
    let body: CreateBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let now = shared::runtime::time::now_unix();
    let partner = Partner {
        id: PartnerId::new_random(),
        slug: PartnerSlug::check(&body.slug).map_err(|why| FieldError::new("slug", why))?,
        name: fields::name("name", &body.name)?,
        domain: domain(&body.domain)?,
        status: PartnerStatus::Active,
        margin_bp: margin(body.margin_pct.unwrap_or(0.0))?,
        contact_info: object("contact_info", body.contact_info.as_ref())?,
        billing_info: object("billing_info", body.billing_info.as_ref())?,
        tenant_counts: BTreeMap::new(),
        allowed_plans: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    call.idempotent("partners.create", now)?
        .run(|| async {
            let audit = call.entry(
                AuditTarget::Partner(partner.id.clone()),
                "partner.created",
                json!({"after": {"slug": partner.slug, "name": partner.name, "domain": partner.domain, "margin_pct": partner.margin_pct()}}),
            );
            call.store
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
            Ok(answer(ApiResponse::created, &partner))
        })
        .await
}

pub(crate) async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    gate::operator(&call.caller)?;
    let (limit, cursor) = call.page()?;
    let page = call.store.partners_page(limit, cursor.as_deref()).await?;
    Ok(ApiResponse::ok(json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub(crate) fn get(partner: Partner) -> Result<ApiResponse, ApiError> {
    Ok(answer(ApiResponse::ok, &partner))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    margin_pct: Option<f64>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    contact_info: Option<Value>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    billing_info: Option<Value>,
    /// The plans its admins may put its tenants on (operators only).
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    allowed_plans: Option<Vec<String>>,
}

/// The most plans one partner may sell.
const MAX_ALLOWED_PLANS: usize = 50;

/// A partner's list of plans: each in the catalogue, without duplicates, in the order given.
async fn allowed_plans(call: &Call<'_>, raw: &[String]) -> Result<Vec<PlanId>, ApiError> {
    if raw.len() > MAX_ALLOWED_PLANS {
        return Err(FieldError::new(
            "allowed_plans",
            format!("must hold at most {MAX_ALLOWED_PLANS} plans"),
        )
        .into());
    }
    let mut out: Vec<PlanId> = Vec::new();
    for (i, id) in raw.iter().enumerate() {
        let unknown = || {
            FieldError::new(
                format!("allowed_plans[{i}]"),
                "must be a plan of the catalogue",
            )
        };
        let id = PlanId::parse(id).ok_or_else(unknown)?;
        if !id.is_builtin() && call.store.stored_plan(&id).await?.is_none() {
            return Err(unknown().into());
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
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
    next.updated_at = shared::runtime::time::now_unix();
    let audit = call.entry(AuditTarget::Partner(partner.id.clone()), action, details);
    call.store
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

pub(crate) async fn patch(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
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
    if let Some(raw) = &body.allowed_plans {
        next.allowed_plans = Some(allowed_plans(call, raw).await?);
    }
    for (field, old, new) in [
        (
            "allowed_plans",
            json!(partner.allowed_plan_ids()),
            json!(next.allowed_plan_ids()),
        ),
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
        return Ok(answer(ApiResponse::ok, &partner));
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
    Ok(answer(ApiResponse::ok, &next))
}

pub(crate) async fn terminate(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
    if partner.status == PartnerStatus::Terminated {
        return Ok(answer(ApiResponse::ok, &partner));
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
    Ok(answer(ApiResponse::ok, &next))
}
