//! The plan catalogue (`/plans`): operators list, add, change, retire and delete plans; a
//! partner admin lists the active plans their partner may sell. A built-in plan is stored the
//! first time it is edited (or a tenant takes it); it may be retired, never deleted. A plan with
//! tenants cannot be deleted: the delete is conditioned on its tenant count being 0, which every
//! tenant's creation, plan change and purge moves in its own transaction.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::fields::{self, FieldError};
use shared::domain::plan::{self, Entitlements, Plan, PlanId, PlanStatus};
use shared::http::request::{etag_matches, if_match, json_body, path_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{AuditTarget, Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};

pub(crate) fn view(p: &Plan) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "status": p.status,
        "builtin": p.builtin(),
        "entitlements": p.entitlements,
        "features": p.features,
        "tenants": p.tenants.max(0),
        "version": p.version,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

fn etag(p: &Plan) -> String {
    format!("\"p{}\"", p.version)
}

fn with_etag(resp: ApiResponse, p: &Plan) -> ApiResponse {
    resp.header("etag", etag(p))
}

fn plan_not_found() -> ApiError {
    ApiError::refused(ErrorCode::PlanNotFound, "no such plan")
}

fn audit(call: &Call<'_>, action: &str, details: Value) -> Change {
    Change::Audit(call.entry(AuditTarget::Platform, action, details))
}

/// The plan named in the path, as the catalogue has it (404 for none).
async fn path_plan(call: &Call<'_>) -> Result<Plan, ApiError> {
    let id = path_param(call.req, "plan_id")
        .as_deref()
        .and_then(PlanId::parse)
        .ok_or_else(plan_not_found)?;
    call.app
        .catalogue()
        .plan(&id)
        .await?
        .ok_or_else(plan_not_found)
}

/// `GET /plans`: operators every plan; a partner admin the active plans their partners sell.
pub(crate) async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let all = call.app.catalogue().all().await?;
    let items: Vec<Value> = if call.caller.operator {
        all.iter().map(view).collect()
    } else {
        let partners = call.store.partners_of(&call.caller.user.id, 10).await?;
        if partners.is_empty() {
            return Err(ApiError::refused(
                ErrorCode::Forbidden,
                "only platform operators and partner admins may read the plan catalogue",
            ));
        }
        let mut sold = Vec::new();
        for id in &partners {
            if let Some(p) = call.store.partner_by_id(id).await? {
                sold.extend(p.allowed_plan_ids());
            }
        }
        // Without the platform-wide tenant count: other partners' tenants are not theirs to see.
        all.iter()
            .filter(|p| p.open() && sold.contains(&p.id))
            .map(|p| {
                let mut v = view(p);
                if let Some(o) = v.as_object_mut() {
                    o.remove("tenants");
                }
                v
            })
            .collect()
    };
    Ok(ApiResponse::ok(json!({"items": items})))
}

pub(crate) async fn get(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let p = path_plan(call).await?;
    Ok(with_etag(ApiResponse::ok(view(&p)), &p))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    id: String,
    name: String,
    entitlements: Entitlements,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    features: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    entitlements: Option<Entitlements>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    features: Option<Vec<String>>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    status: Option<String>,
}

fn entitlements(e: Entitlements) -> Result<Entitlements, FieldError> {
    e.check()
        .map_err(|(field, why)| FieldError::new(format!("entitlements.{field}"), why))?;
    Ok(e)
}

/// Sorted, without duplicates; each a feature name.
fn features(raw: &[String]) -> Result<Vec<String>, FieldError> {
    if raw.len() > plan::MAX_FEATURES {
        return Err(FieldError::new(
            "features",
            format!("must hold at most {} names", plan::MAX_FEATURES),
        ));
    }
    if let Some(i) = raw.iter().position(|f| !plan::feature_name(f)) {
        return Err(FieldError::new(
            format!("features[{i}]"),
            "must be a lower-case dotted name such as audit.export",
        ));
    }
    let mut out = raw.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

/// `POST /plans` (operators).
pub(crate) async fn create(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let body: CreateBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let id = PlanId::parse(&body.id).ok_or_else(|| {
        FieldError::new(
            "id",
            "must be 2-32 lower-case letters, digits and -, starting with a letter",
        )
    })?;
    let name = fields::name("name", &body.name)?;
    let entitlements = entitlements(body.entitlements)?;
    let features = features(body.features.as_deref().unwrap_or_default())?;
    let exists = || ApiError::refused(ErrorCode::PlanExists, "a plan with this id exists");
    // A built-in plan exists whether or not it is stored.
    if id.is_builtin() {
        return Err(exists());
    }
    if call.store.stored_plans().await?.len() >= shared::store::MAX_PLANS {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            format!(
                "the catalogue holds {} plans, its most: delete one first",
                shared::store::MAX_PLANS
            ),
        ));
    }
    let now = shared::runtime::time::now_unix();
    let p = Plan {
        id,
        name,
        status: PlanStatus::Active,
        entitlements,
        features,
        tenants: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    call.store
        .commit(vec![
            Change::SavePlan {
                plan: p.clone(),
                expect_version: 0,
            },
            audit(call, "plan.created", json!({"after": view(&p)})),
        ])
        .await
        .map_err(|e| e.answer(|_| exists()))?;
    tracing::info!(plan = %p.id, created_by = %call.caller.user.id, "plan created");
    Ok(with_etag(ApiResponse::created(view(&p)), &p))
}

/// `PATCH /plans/{plan_id}` (operators, `If-Match` required): name, entitlements (whole),
/// features, status. Takes effect at once for every tenant on it.
pub(crate) async fn patch(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let current = path_plan(call).await?;
    let body: PatchBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let Some(expected) = if_match(call.req) else {
        return Err(ApiError::refused(
            ErrorCode::PreconditionRequired,
            "send If-Match with the plan's ETag",
        ));
    };
    if !etag_matches(&expected, &etag(&current)) {
        return Err(ApiError::PreconditionFailed);
    }
    let mut next = current.clone();
    if let Some(raw) = &body.name {
        next.name = fields::name("name", raw)?;
    }
    if let Some(e) = body.entitlements {
        next.entitlements = entitlements(e)?;
    }
    if let Some(raw) = &body.features {
        next.features = features(raw)?;
    }
    if let Some(raw) = &body.status {
        next.status = PlanStatus::parse(raw)
            .ok_or_else(|| FieldError::new("status", "must be active or retired"))?;
    }
    if next == current {
        return Ok(with_etag(ApiResponse::ok(view(&current)), &current));
    }
    let now = shared::runtime::time::now_unix();
    next.version = current.version + 1;
    next.updated_at = now;
    if current.version == 0 {
        next.created_at = now;
    }
    call.store
        .commit(vec![
            Change::SavePlan {
                plan: next.clone(),
                expect_version: current.version,
            },
            audit(
                call,
                "plan.updated",
                json!({"before": view(&current), "after": view(&next)}),
            ),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::PreconditionFailed))?;
    tracing::info!(plan = %next.id, changed_by = %call.caller.user.id, "plan updated");
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}

/// `DELETE /plans/{plan_id}` (operators): only a plan no tenant is on, never a built-in one.
pub(crate) async fn delete(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let p = path_plan(call).await?;
    if p.builtin() {
        return Err(ApiError::refused(
            ErrorCode::PlanBuiltin,
            "a built-in plan can be retired, not deleted",
        ));
    }
    let in_use = || {
        ApiError::refused(
            ErrorCode::PlanInUse,
            "tenants are on this plan: move them to another plan, or retire it instead",
        )
    };
    call.store
        .commit(vec![
            Change::DeletePlan { id: p.id.clone() },
            audit(call, "plan.deleted", json!({"before": view(&p)})),
        ])
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::PlanInUse) {
                    in_use()
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    tracing::info!(plan = %p.id, deleted_by = %call.caller.user.id, "plan deleted");
    Ok(ApiResponse::ok(json!({"id": p.id, "deleted": true})))
}
