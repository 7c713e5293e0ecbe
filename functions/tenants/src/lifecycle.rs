//! A tenant's life: create, list, read, change, soft delete, suspend and resume.

use crate::{forbidden, Call};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::Granted;
use shared::domain::fields::{self, FieldError};
use shared::domain::partner::{Partner, PartnerSlug, PartnerStatus};
use shared::domain::plan::{Plan, PlanId};
use shared::domain::tenant::{Offboarding, Step, StepStatus, Tenant, TenantSlug, TenantStatus};
use shared::domain::{Email, Role};
use shared::events::{commit_and_publish, publish_committed};
use shared::events::{DomainEvent, PlanChanged, TenantChanged, TenantCreated};
use shared::http::request::etag_matches;
use shared::http::request::{json_body, query_param, DEFAULT_BODY_LIMIT};
use shared::store::changes::{
    tenant_count_changes, with_partner_cap, Change, Refusal, TENANT_COUNTS,
};
use shared::store::TenantFilter;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::collections::BTreeMap;

/// The tenant as the API shows it.
pub(crate) fn view(t: &Tenant) -> Value {
    json!({
        "id": t.id,
        "slug": t.slug,
        "name": t.name,
        "status": t.status,
        "plan": t.plan,
        "domains": t.domains,
        "billing_info": t.billing_info,
        "partner_id": t.partner,
        "owner_email": t.owner_email,
        "provisioning": t.provisioning,
        "provisioned": t.provisioned(),
        "run": t.run,
        "offboarding": t.offboarding,
        "redirect_origins": t.redirect_origins,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "etag": t.etag(),
    })
}

/// The tenant as a caller who is not an operator sees it (a partner admin, an owner or admin):
/// each provisioning and offboarding step's state with a public reason code, without the AWS
/// error text or the artifacts' ARNs (which name the platform's account), which stay in the
/// logs and in the operators' view.
pub(crate) fn public_view(t: &Tenant) -> Value {
    let mut v = view(t);
    v["provisioning"] = public_steps(&t.provisioning);
    if let Some(o) = &t.offboarding {
        v["offboarding"]["steps"] = public_steps(&o.steps);
    }
    v
}

fn public_steps(steps: &shared::domain::tenant::Steps) -> Value {
    steps
        .iter()
        .map(|(step, s)| (step.as_str().to_string(), s.public()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A deleted tenant in a partner admin's list: that it was theirs and is gone, with nothing of
/// its billing, owner, domains or provisioning (`GET` on it answers 404 to them). The fields
/// stay, emptied, so every list item has one shape.
fn deleted_view(t: &Tenant) -> Value {
    let mut v = view(t);
    v["owner_email"] = Value::Null;
    v["billing_info"] = json!({});
    v["domains"] = json!([]);
    v["provisioning"] = json!({});
    v["run"] = Value::Null;
    v["offboarding"] = Value::Null;
    v["redirect_origins"] = json!([]);
    v
}

/// The view `operator`s get, or everyone else's.
pub(crate) fn view_for(t: &Tenant, operator: bool) -> Value {
    if operator {
        view(t)
    } else if t.status == TenantStatus::Deleted {
        deleted_view(t)
    } else {
        public_view(t)
    }
}

fn with_etag(resp: ApiResponse, t: &Tenant) -> ApiResponse {
    resp.header("etag", t.etag())
}

fn plan(raw: &str) -> Result<PlanId, FieldError> {
    PlanId::parse(raw).ok_or_else(|| FieldError::new("plan", "must be a plan of the catalogue"))
}

fn plan_retired() -> ApiError {
    ApiError::refused(
        ErrorCode::PlanRetired,
        "that plan is retired: no tenant may be put on it",
    )
}

/// A plan a partner admin may put a tenant of `partner` on: one the partner sells.
fn sold_by(partner: Option<&Partner>, plan: &PlanId) -> Result<(), ApiError> {
    match partner {
        Some(p) if p.sells(plan) => Ok(()),
        _ => Err(forbidden("your partner may not sell that plan")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    slug: String,
    name: String,
    owner_email: String,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    plan: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    domains: Option<Vec<String>>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    billing_info: Option<Value>,
    /// The partner's slug.
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    partner: Option<String>,
}

/// The partner a new tenant is attached to: any active partner an operator names; for a
/// partner admin, one of their own partners (the only one, unless they administer several).
async fn partner_for_create(
    call: &Call<'_>,
    named: Option<&str>,
) -> Result<Option<Partner>, ApiError> {
    let named = named_partner(call, named).await?;
    if call.caller.operator {
        return match named {
            None => Ok(None),
            Some(None) => Err(FieldError::new("partner", "no such partner").into()),
            Some(Some(p)) if p.status != PartnerStatus::Active => Err(partner_terminated()),
            Some(Some(p)) => Ok(Some(p)),
        };
    }
    let p = acting_partner(
        call,
        named,
        "only platform operators and partner admins may create tenants",
    )
    .await?;
    if p.status != PartnerStatus::Active {
        return Err(partner_terminated());
    }
    Ok(Some(p))
}

/// The partner named by a `partner` slug, if a slug was given (`Some(None)`: no such partner).
async fn named_partner(
    call: &Call<'_>,
    raw: Option<&str>,
) -> Result<Option<Option<Partner>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let slug = PartnerSlug::parse(raw)
        .ok_or_else(|| FieldError::new("partner", "must be a partner slug"))?;
    Ok(Some(call.store.partner_by_slug(&slug).await?))
}

/// The partner a partner admin acts for in `GET /tenants` and `POST /tenants`: the one named,
/// if they administer it (read strongly, whatever the number of partners they administer), or
/// else their only partner. 403 (`none_message`) for a caller who administers none.
async fn acting_partner(
    call: &Call<'_>,
    named: Option<Option<Partner>>,
    none_message: &'static str,
) -> Result<Partner, ApiError> {
    let me = &call.caller.user.id;
    let not_theirs = || FieldError::new("partner", "must be a partner you administer");
    let none = || forbidden(none_message);
    match named {
        Some(Some(p)) if call.store.is_partner_admin(me, &p.id).await? => Ok(p),
        Some(_) if call.store.partners_of(me, 1).await?.is_empty() => Err(none()),
        Some(_) => Err(not_theirs().into()),
        None => match call.store.partners_of(me, 2).await?.as_slice() {
            [] => Err(none()),
            [only] => call
                .store
                .partner_by_id(only)
                .await?
                .ok_or_else(|| not_theirs().into()),
            _ => Err(FieldError::new(
                "partner",
                "is required when you administer several partners",
            )
            .into()),
        },
    }
}

fn partner_terminated() -> ApiError {
    ApiError::refused(
        ErrorCode::PartnerTerminated,
        "this partner is terminated and takes no new tenants",
    )
}

fn partner_full(cap: i64) -> ApiError {
    ApiError::refused(
        ErrorCode::PartnerTenantLimit,
        format!(
            "this partner has {cap} live tenants, the most its admins may create; an operator can create more"
        ),
    )
}

/// Tenants one partner's admins may create in an hour.
pub(crate) const CREATES_PER_PARTNER: shared::access::ratelimit::RatePolicy =
    shared::access::ratelimit::RatePolicy {
        name: "tenant-create-partner",
        limit: 20,
        window_secs: 3600,
    };

fn slug_taken() -> ApiError {
    ApiError::refused(
        ErrorCode::SlugTaken,
        "a tenant with this slug exists (deleted tenants keep theirs)",
    )
}

pub(crate) async fn create(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: CreateBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let partner = partner_for_create(call, body.partner.as_deref()).await?;
    let slug = TenantSlug::check(&body.slug).map_err(|why| FieldError::new("slug", why))?;
    let name = fields::name("name", &body.name)?;
    let owner_email =
        Email::parse(&body.owner_email).map_err(|why| FieldError::new("owner_email", why))?;
    let plan_id = body
        .plan
        .as_deref()
        .map(plan)
        .transpose()?
        .unwrap_or_else(PlanId::free);
    if !call.caller.operator {
        sold_by(partner.as_ref(), &plan_id)?;
    }
    let plan = call.app.catalogue().open_plan(&plan_id, "plan").await?;
    let partner = partner.map(|p| p.id);
    let domains = fields::domains("domains", body.domains.as_deref().unwrap_or_default())?;
    let billing_info = match &body.billing_info {
        None => serde_json::Map::new(),
        Some(v) => fields::bounded_object("billing_info", v)?,
    };
    let now = shared::runtime::time::now_unix();
    call.idempotent("tenants.create", now)?
        .run(|| async move {
            // A partner admin's creations are paced per partner (each costs a secret, a run
            // and a mail); counted once per request, not per replay.
            if let (Some(p), false) = (&partner, call.caller.operator) {
                let subject = format!("partner:{p}");
                if let shared::access::ratelimit::Decision::Limited { retry_after_secs } =
                    shared::access::ratelimit::reserve(
                        call.store,
                        &[(CREATES_PER_PARTNER, subject.as_str())],
                        now,
                    )
                    .await?
                {
                    return Err(ApiError::TooManyRequests { retry_after_secs });
                }
            }
            let mut tenant = Tenant::new(slug, name, now);
            tenant.plan = plan.id.clone();
            tenant.domains = domains;
            tenant.billing_info = billing_info;
            tenant.partner = partner;
            tenant.owner_email = Some(owner_email.clone());
            tenant.owners = 1;
            tenant.created_by = Some(call.caller.user.id.clone());
            // Every step waits for the state machine; the owner's invitation is its step too.
            tenant.provisioning = Step::ALL
                .iter()
                .map(|step| (*step, StepStatus::pending(now)))
                .collect();
            create_committed(call, tenant, &plan, owner_email, now).await
        })
        .await
}

async fn create_committed(
    call: &Call<'_>,
    mut tenant: Tenant,
    plan: &Plan,
    owner_email: Email,
    now: i64,
) -> Result<ApiResponse, ApiError> {
    let store = call.app.store.as_ref();
    // Twice at most: an owner account created by a concurrent request is linked the second time.
    let mut attempt = 0;
    let (owner, new_owner, events) = loop {
        attempt += 1;
        let existing = store.user_by_email(&owner_email).await?;
        let new_owner = existing.is_none();
        let owner = existing
            .unwrap_or_else(|| shared::mail::invitation::invited_user(owner_email.clone(), now));
        let event = DomainEvent::TenantCreated(TenantCreated {
            tenant_id: tenant.id.clone(),
            slug: tenant.slug.clone(),
            partner_id: tenant.partner.clone(),
            owner_user_id: owner.id.clone(),
            created_by: tenant.created_by.clone(),
            plan: tenant.plan.clone(),
        })
        .outbox_at(call.now_ms());
        // A new owner is created as invited and made owner (their invitation's acceptance is
        // their consent). An existing account gets an invitation it accepts while signed in
        // (`POST /tenants/{slug}/join`): until then it holds nothing and the tenant has no
        // owner; the answer is the same either way.
        let mut stored = tenant.clone();
        if !new_owner {
            stored.owners = 0;
        }
        let mut changes = vec![Change::CreateTenant(stored)];
        // The plan counts the tenant, if it is still open (retired meanwhile: refused).
        changes.extend(shared::plans::plan_moves(None, Some(plan)));
        if new_owner {
            changes.push(Change::CreateUser(owner.clone()));
            changes.push(Change::AddMembership {
                user: owner.id.clone(),
                tenant: tenant.clone(),
                role: Role::Owner,
                at: call.now_ms(),
            });
        } else {
            changes.push(Change::PutInvite {
                replaces: false,
                user: owner.id.clone(),
                invite: shared::store::Invite {
                    tenant_id: tenant.id.clone(),
                    tenant_slug: tenant.slug.as_str().to_string(),
                    role: Role::Owner,
                    invited_by: call.caller.user.id.clone(),
                    invited_at: now,
                    expires_at: now + shared::mail::invitation::INVITATION_TTL_SECS,
                },
            });
        }
        let counts = tenant_count_changes(None, Some((tenant.status, tenant.partner.as_ref())));
        // A partner admin creates within the partner's quota; operators are not held to it.
        changes.extend(if call.caller.operator {
            counts
        } else {
            with_partner_cap(counts, call.app.partner_max_tenants)
        });
        changes.push(call.audit(
            &tenant,
            "tenant.created",
            json!({"after": {
                "slug": tenant.slug, "name": tenant.name, "plan": tenant.plan,
                "domains": tenant.domains, "partner_id": tenant.partner,
                "owner_user_id": owner.id, "status": tenant.status,
            }}),
        ));
        changes.push(Change::Outbox(event.clone()));
        // The owner's seat (never refused: a tenant always has its owner).
        changes.push(Change::Quota {
            scope: shared::store::changes::tenant_scope(&tenant.id),
            name: shared::store::changes::SEATS_COUNT.into(),
            by: 1,
            cap: i64::MAX,
        });
        let mut events = vec![event.clone()];
        if new_owner {
            let added = DomainEvent::MemberAdded(shared::events::MemberChanged {
                tenant_id: tenant.id.clone(),
                slug: tenant.slug.clone(),
                partner_id: tenant.partner.clone(),
                user_id: owner.id.clone(),
                role: Role::Owner,
                previous_role: None,
            })
            .outbox_at(call.now_ms());
            changes.push(Change::Outbox(added.clone()));
            events.push(added);
        }
        match store.commit(changes).await {
            Ok(()) => break (owner, new_owner, events),
            Err(e) => {
                let mut retry = false;
                let mut partner_refused = false;
                let err = e.answer(|reasons| {
                    if reasons.contains(&Refusal::SlugTaken) {
                        slug_taken()
                    } else if reasons.contains(&Refusal::PlanClosed) {
                        plan_retired()
                    } else if reasons.contains(&Refusal::PartnerInactive) {
                        // Terminated, or at its quota: the partner's record says which.
                        partner_refused = true;
                        partner_terminated()
                    } else if reasons.contains(&Refusal::EmailTaken) && attempt < 2 {
                        retry = true;
                        ApiError::concurrent_update()
                    } else {
                        ApiError::concurrent_update()
                    }
                });
                if partner_refused {
                    if let Some(p) = &tenant.partner {
                        if let Some(p) = store.partner_by_id(p).await? {
                            if p.status == PartnerStatus::Active {
                                return Err(partner_full(call.app.partner_max_tenants));
                            }
                        }
                    }
                }
                if !retry {
                    return Err(err);
                }
            }
        }
    };
    tracing::info!(tenant = %tenant.slug, created_by = %call.caller.user.id, new_owner, "tenant created");
    // The tenant stands from here on. The event starts provisioning (the owner's invitation
    // included); a lost event is healed by the reconcile.
    for event in &events {
        publish_committed(call.app.events.as_ref(), store, event).await;
    }
    if !new_owner {
        tenant.owners = 0;
    }
    let mut data = view_for(&tenant, call.caller.operator);
    data["owner"] = json!({"user_id": owner.id, "invited": true});
    Ok(with_etag(ApiResponse::created(data), &tenant))
}

pub(crate) async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    let store = call.app.store.as_ref();
    let limit = shared::store::page::limit(query_param(call.req, "limit").as_deref())
        .map_err(|e| FieldError::new("limit", e))?;
    let status = query_param(call.req, "status")
        .map(|s| {
            TenantStatus::parse(&s).ok_or_else(|| {
                FieldError::new(
                    "status",
                    "must be one of provisioning, active, suspended, deleted",
                )
            })
        })
        .transpose()?;
    let plan_filter = query_param(call.req, "plan")
        .map(|p| plan(&p))
        .transpose()?;
    let q = query_param(call.req, "q")
        .map(|q| {
            let q = q.trim().to_lowercase();
            if q.is_empty() || q.chars().count() > 100 {
                Err(FieldError::new("q", "must be 1-100 characters"))
            } else {
                Ok(q)
            }
        })
        .transpose()?;
    let named = named_partner(call, query_param(call.req, "partner").as_deref()).await?;
    // Operators see every tenant; a partner admin only their partner's.
    let partner = if call.caller.operator {
        match named {
            None => None,
            Some(Some(p)) => Some(p),
            Some(None) => return Err(FieldError::new("partner", "no such partner").into()),
        }
    } else {
        Some(
            acting_partner(
                call,
                named,
                "only platform operators and partner admins may list tenants",
            )
            .await?,
        )
    };
    let filter = TenantFilter {
        status,
        plan: plan_filter,
        partner: partner.as_ref().map(|p| p.id.clone()),
        q,
    };
    let cursor = query_param(call.req, "cursor");
    let page = store
        .tenants_page(&filter, limit, cursor.as_deref())
        .await?;
    let by_status: BTreeMap<String, i64> = match &partner {
        Some(p) => p.tenant_counts.clone(),
        None => store.counters(TENANT_COUNTS).await?,
    };
    let mut counts = serde_json::Map::new();
    let mut all = 0;
    for s in TenantStatus::ALL {
        let n = by_status.get(s.as_str()).copied().unwrap_or(0).max(0);
        if *s != TenantStatus::Deleted {
            all += n;
        }
        counts.insert(s.as_str().to_string(), json!(n));
    }
    counts.insert("all".into(), json!(all));
    Ok(ApiResponse::ok(json!({
        "items": page.items.iter().map(|t| view_for(t, call.caller.operator)).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
        "counts": counts,
    })))
}

pub(crate) async fn get(granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    Ok(with_etag(
        ApiResponse::ok(view_for(&tenant, access.operator)),
        &tenant,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    plan: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    domains: Option<Vec<String>>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    billing_info: Option<Value>,
}

pub(crate) async fn patch(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, access) = granted.into_parts();
    let body: PatchBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let mut next = tenant.clone();
    let mut before = serde_json::Map::new();
    let mut after = serde_json::Map::new();
    if let Some(raw) = &body.name {
        next.name = fields::name("name", raw)?;
        if next.name != tenant.name {
            before.insert("name".into(), json!(tenant.name));
            after.insert("name".into(), json!(next.name));
        }
    }
    // The plan's move: (from, to) as the catalogue has them.
    let mut plan_change: Option<(Plan, Plan)> = None;
    if let Some(raw) = &body.plan {
        let id = plan(raw)?;
        if id != tenant.plan {
            // A plan is what the platform sells: operators set it, and a reseller for its own
            // tenants, within the plans it may sell. A tenant's owners and admins may not raise
            // their own entitlements.
            if !(access.operator || access.partner_admin) {
                return Err(forbidden(
                    "only platform operators and the tenant's partner admins may change its plan",
                ));
            }
            if !access.operator {
                let partner = match &tenant.partner {
                    Some(p) => call.store.partner_by_id(p).await?,
                    None => None,
                };
                sold_by(partner.as_ref(), &id)?;
            }
            let catalogue = call.app.catalogue();
            let to = catalogue.open_plan(&id, "plan").await?;
            let from = catalogue.of_tenant(&tenant).await?;
            before.insert("plan".into(), json!(tenant.plan));
            after.insert("plan".into(), json!(id));
            next.plan = id;
            plan_change = Some((from, to));
        }
    }
    if let Some(raw) = &body.domains {
        next.domains = fields::domains("domains", raw)?;
        if next.domains != tenant.domains {
            before.insert("domains".into(), json!(tenant.domains));
            after.insert("domains".into(), json!(next.domains));
        }
    }
    if let Some(raw) = &body.billing_info {
        next.billing_info = fields::bounded_object("billing_info", raw)?;
        if next.billing_info != tenant.billing_info {
            // Billing details may be personal: the audit names the keys, not the values.
            before.insert(
                "billing_info_keys".into(),
                json!(tenant.billing_info.keys().collect::<Vec<_>>()),
            );
            after.insert(
                "billing_info_keys".into(),
                json!(next.billing_info.keys().collect::<Vec<_>>()),
            );
        }
    }
    let expected = shared::http::request::if_match(call.req);
    if plan_change.is_some() && expected.is_none() {
        return Err(ApiError::refused(
            ErrorCode::PreconditionRequired,
            "a change of plan needs If-Match with the tenant's ETag",
        ));
    }
    if let Some(m) = &expected {
        if !etag_matches(m, &tenant.etag()) {
            return Err(ApiError::PreconditionFailed);
        }
    }
    if after.is_empty() {
        return Ok(with_etag(
            ApiResponse::ok(view_for(&tenant, access.operator)),
            &tenant,
        ));
    }
    next.version = tenant.version + 1;
    next.updated_at = shared::runtime::time::now_unix();
    let mut changes = vec![
        Change::UpdateTenant {
            tenant: next.clone(),
            expect_version: tenant.version,
        },
        call.audit(
            &tenant,
            "tenant.updated",
            json!({"before": before, "after": after}),
        ),
    ];
    // Nothing is deleted by a downgrade: what is over the new plan's limits stays, and new use
    // of it is refused until it is back under. The answer and the event say what is over.
    let mut over_quota = Vec::new();
    if let Some((from, to)) = &plan_change {
        // The plan left is counted down only if it is stored (a built-in plan no tenant took
        // since plans were kept has no count, and version 0: counting it down would store it
        // at -1). The catalogue read it already.
        let left = (from.version > 0).then_some(from);
        changes.extend(shared::plans::plan_moves(left, Some(to)));
        let usage = shared::plans::Usage::read(call.store, &tenant.id).await?;
        over_quota = usage
            .over(to)
            .iter()
            .map(|q| q.as_str().to_string())
            .collect();
        let event = DomainEvent::TenantPlanChanged(PlanChanged {
            tenant_id: tenant.id.clone(),
            slug: tenant.slug.clone(),
            partner_id: tenant.partner.clone(),
            from: from.id.clone(),
            to: to.id.clone(),
            over_quota: over_quota.clone(),
        });
        changes.push(Change::Outbox(event.outbox_at(call.now_ms())));
    }
    commit_and_publish(call.store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::PlanClosed) {
                    plan_retired()
                } else if expected.is_some() {
                    ApiError::PreconditionFailed
                } else {
                    ApiError::concurrent_update()
                }
            })
        })?;
    tracing::info!(tenant = %tenant.slug, changed_by = %call.caller.user.id, "tenant updated");
    let mut data = view_for(&next, access.operator);
    if plan_change.is_some() {
        data["over_quota"] = json!(over_quota);
    }
    Ok(with_etag(ApiResponse::ok(data), &next))
}

/// A status change with its counters, audit entry and (optionally) event, in one commit.
/// `edit` changes anything else the new status carries.
async fn change_status(
    call: &Call<'_>,
    tenant: &Tenant,
    status: TenantStatus,
    action: &str,
    event: Option<fn(TenantChanged) -> DomainEvent>,
    edit: impl FnOnce(&mut Tenant),
) -> Result<Tenant, ApiError> {
    let now = shared::runtime::time::now_unix();
    let mut next = tenant.clone();
    next.status = status;
    next.version = tenant.version + 1;
    next.updated_at = now;
    edit(&mut next);
    let mut changes = vec![Change::UpdateTenant {
        tenant: next.clone(),
        expect_version: tenant.version,
    }];
    changes.extend(tenant_count_changes(
        Some((tenant.status, tenant.partner.as_ref())),
        Some((status, tenant.partner.as_ref())),
    ));
    changes.push(call.audit(
        tenant,
        action,
        json!({"before": {"status": tenant.status}, "after": {"status": status}}),
    ));
    let outbox = event.map(|make| make(TenantChanged::of(tenant)).outbox_at(call.now_ms()));
    if let Some(e) = &outbox {
        changes.push(Change::Outbox(e.clone()));
    }
    call.app
        .store
        .commit(changes)
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(tenant = %tenant.slug, changed_by = %call.caller.user.id, status = status.as_str(), "tenant status changed");
    if let Some(e) = &outbox {
        publish_committed(call.app.events.as_ref(), call.app.store.as_ref(), e).await;
    }
    Ok(next)
}

/// Soft delete: the record, its data and its slug stay; `TenantDeleted` is published, and
/// offboarding retires the tenant's artifacts, restorable until `offboarding.purge_after`.
pub(crate) async fn delete(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    if tenant.status == TenantStatus::Deleted {
        return Ok(with_etag(ApiResponse::ok(view(&tenant)), &tenant));
    }
    let now = shared::runtime::time::now_unix();
    let window = call.app.recovery_window_secs;
    let next = change_status(
        call,
        &tenant,
        TenantStatus::Deleted,
        "tenant.deleted",
        Some(DomainEvent::TenantDeleted),
        |t| {
            t.offboarding = Some(Offboarding {
                deleted_at: now,
                purge_after: now + window,
                previous_status: tenant.status,
                steps: BTreeMap::new(),
                retired_at: None,
                purged_at: None,
            })
        },
    )
    .await?;
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}

/// Undoes a delete within the recovery window: the tenant goes back to `provisioning`, and
/// `TenantRestored` runs provisioning again, which brings each retired artifact back (the
/// owner is not invited twice) and returns the tenant to the status it had.
pub(crate) async fn restore(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    let now = shared::runtime::time::now_unix();
    let Some(off) = tenant
        .offboarding
        .as_ref()
        .filter(|_| tenant.status == TenantStatus::Deleted)
    else {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            "only a deleted tenant can be restored",
        ));
    };
    if off.purged_at.is_some() || now >= off.purge_after {
        return Err(ApiError::refused(
            ErrorCode::RecoveryWindowPassed,
            "the recovery window has passed; the tenant's data is gone",
        ));
    }
    if tenant.live_run(now).is_some() {
        return Err(ApiError::refused(
            ErrorCode::OffboardingInProgress,
            "the tenant is being offboarded; try again in a minute",
        ));
    }
    let next = change_status(
        call,
        &tenant,
        TenantStatus::Provisioning,
        "tenant.restored",
        Some(DomainEvent::TenantRestored),
        |t| {
            // The retired artifacts come back through their steps; the invitation stays as it was.
            for step in Step::ALL.iter().filter(|s| s.has_artifact()) {
                t.provisioning.insert(*step, StepStatus::pending(now));
            }
        },
    )
    .await?;
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}

pub(crate) async fn set_suspended(
    call: &Call<'_>,
    granted: Granted,
    suspend: bool,
) -> Result<ApiResponse, ApiError> {
    let (tenant, _) = granted.into_parts();
    let (from_ok, to, action) = if suspend {
        (
            matches!(
                tenant.status,
                TenantStatus::Active | TenantStatus::Provisioning
            ),
            TenantStatus::Suspended,
            "tenant.suspended",
        )
    } else {
        (
            tenant.status == TenantStatus::Suspended,
            TenantStatus::Active,
            "tenant.resumed",
        )
    };
    if tenant.status == to {
        return Ok(with_etag(ApiResponse::ok(view(&tenant)), &tenant));
    }
    if !from_ok {
        return Err(ApiError::refused(
            ErrorCode::InvalidState,
            format!(
                "a {} tenant cannot be {}",
                tenant.status.as_str(),
                if suspend { "suspended" } else { "resumed" }
            ),
        ));
    }
    let event = if suspend {
        DomainEvent::TenantSuspended
    } else {
        DomainEvent::TenantResumed
    };
    let next = change_status(call, &tenant, to, action, Some(event), |_| {}).await?;
    Ok(with_etag(ApiResponse::ok(view(&next)), &next))
}
