//! Reading the audit trail: `GET /audit` (operators, every scope) and
//! `GET /tenants/{slug}/audit` (a tenant's owners and admins, their own tenant). Entries are
//! written only by the mutations themselves; no route changes or deletes one.

use crate::{forbidden, Call};
use serde_json::json;
use shared::access::gate::Granted;
use shared::domain::fields::FieldError;
use shared::domain::partner::PartnerSlug;
use shared::domain::tenant::TenantSlug;
use shared::domain::UserId;
use shared::http::request::query_param;
use shared::store::changes::AuditEntry;
use shared::store::AuditFilter;
use shared::{ApiError, ApiResponse};

fn view(e: &AuditEntry) -> serde_json::Value {
    json!({
        "id": e.id,
        "at": e.at,
        "actor_user_id": e.actor,
        "action": e.action,
        "tenant_id": e.tenant,
        "partner_id": e.partner,
        "details": serde_json::from_str::<serde_json::Value>(&e.details).unwrap_or(json!({})),
        "request_id": e.request_id,
    })
}

/// The filters every audit list takes: actor, action and a time range (Unix seconds).
fn common_filter(call: &Call<'_>) -> Result<AuditFilter, ApiError> {
    let time = |name: &'static str| -> Result<Option<i64>, ApiError> {
        query_param(call.req, name)
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|t| (0..=253_402_300_799).contains(t))
                    .map(|t| t * 1000)
                    .ok_or_else(|| FieldError::new(name, "must be a time in Unix seconds").into())
            })
            .transpose()
    };
    let actor = query_param(call.req, "actor")
        .map(|a| UserId::parse(&a).ok_or_else(|| FieldError::new("actor", "must be a user id")))
        .transpose()?;
    let action = query_param(call.req, "action")
        .map(|a| {
            let ok = (1..=64).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
            ok.then_some(a).ok_or_else(|| {
                FieldError::new("action", "must be an action name such as tenant.updated")
            })
        })
        .transpose()?;
    let from_ms = time("from")?;
    let to_ms = time("to")?.map(|t| t + 999);
    // An empty range is the caller's mistake, not an empty page (and DynamoDB refuses it).
    if let (Some(from), Some(to)) = (from_ms, to_ms) {
        if from > to {
            return Err(FieldError::new("from", "must not be after to").into());
        }
    }
    Ok(AuditFilter {
        actor,
        action,
        from_ms,
        to_ms,
        ..AuditFilter::default()
    })
}

async fn answer(call: &Call<'_>, filter: AuditFilter) -> Result<ApiResponse, ApiError> {
    let limit = shared::store::page::limit(query_param(call.req, "limit").as_deref())
        .map_err(|e| FieldError::new("limit", e))?;
    let cursor = query_param(call.req, "cursor");
    let page = call
        .app
        .store
        .audit_page(&filter, limit, cursor.as_deref())
        .await?;
    Ok(ApiResponse::ok(json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub(crate) async fn platform(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    if !call.caller.operator {
        return Err(forbidden(
            "only platform operators may read the platform audit",
        ));
    }
    let mut filter = common_filter(call)?;
    let store = call.app.store.as_ref();
    if let Some(raw) = query_param(call.req, "tenant") {
        let slug = TenantSlug::parse(&raw)
            .ok_or_else(|| FieldError::new("tenant", "must be a tenant slug"))?;
        let t = store
            .tenant_by_slug(&slug)
            .await?
            .ok_or_else(|| FieldError::new("tenant", "no such tenant"))?;
        filter.tenant = Some(t.id);
    }
    if let Some(raw) = query_param(call.req, "partner") {
        let slug = PartnerSlug::parse(&raw)
            .ok_or_else(|| FieldError::new("partner", "must be a partner slug"))?;
        let p = store
            .partner_by_slug(&slug)
            .await?
            .ok_or_else(|| FieldError::new("partner", "no such partner"))?;
        filter.partner = Some(p.id);
    }
    answer(call, filter).await
}

pub(crate) async fn tenant(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    let mut filter = common_filter(call)?;
    filter.tenant = Some(tenant.id);
    answer(call, filter).await
}
