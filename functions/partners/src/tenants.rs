//! A partner's tenants: the list (with the counts by status), attach and detach. The counts
//! live on the partner record and change in the same transaction as every attach, detach and
//! tenant status change, each conditioned on the tenant's version, so concurrent moves keep
//! them exact.

use crate::Call;
use serde_json::{json, Value};
use shared::access::gate::{Intent, Need};
use shared::domain::partner::{Partner, PartnerStatus};
use shared::domain::tenant::Tenant;
use shared::events::{commit_and_publish, DomainEvent, PartnerChanged};
use shared::store::changes::{tenant_count_changes, AuditTarget, Change, Refusal};
use shared::store::TenantFilter;
use shared::{ApiError, ApiResponse, ErrorCode};

fn partner_terminated() -> ApiError {
    ApiError::refused(
        ErrorCode::PartnerTerminated,
        "this partner is terminated and takes no new tenants",
    )
}

pub(crate) async fn list(call: &Call<'_>, partner: Partner) -> Result<ApiResponse, ApiError> {
    let (limit, cursor) = call.page()?;
    let filter = TenantFilter {
        partner: Some(partner.id.clone()),
        ..TenantFilter::default()
    };
    let page = call
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
pub(crate) async fn attach(
    call: &Call<'_>,
    partner: Partner,
    attach: bool,
) -> Result<ApiResponse, ApiError> {
    // The gate: an operator's change to the tenant (a deleted one must be restored first).
    let tenant = call
        .tenant(Need::Operator, Intent::Write)
        .await?
        .into_tenant();
    let new_partner = if attach {
        if partner.status != PartnerStatus::Active {
            return Err(partner_terminated());
        }
        Some(partner.id.clone())
    } else {
        if tenant.partner.as_ref() != Some(&partner.id) {
            return Err(ApiError::refused(
                ErrorCode::NotAttached,
                "this tenant is not attached to this partner",
            ));
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
    next.updated_at = shared::runtime::time::now_unix();
    let mut changes = vec![Change::UpdateTenant {
        tenant: next.clone(),
        expect_version: tenant.version,
    }];
    changes.extend(tenant_count_changes(
        Some((tenant.status, tenant.partner.as_ref())),
        Some((tenant.status, next.partner.as_ref())),
    ));
    let mut entry = call.entry(
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
    let event = DomainEvent::TenantPartnerChanged(PartnerChanged {
        tenant_id: tenant.id.clone(),
        slug: tenant.slug.clone(),
        from: tenant.partner.clone(),
        to: next.partner.clone(),
    });
    changes.push(Change::Outbox(event.outbox_at(call.now_ms())));
    commit_and_publish(call.store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::PartnerInactive) {
                    partner_terminated()
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    tracing::info!(tenant = %tenant.slug, partner = %partner.slug, attach, changed_by = %call.caller.user.id, "tenant partner changed");
    Ok(answer(&next))
}
