//! Feature flags (`/flags`, operators) and their evaluation for a tenant (`GET
//! /tenants/{slug}/flags`, its members; `GET /flags/{key}/evaluate`, operators). The rule is
//! `shared::domain::flag::evaluate`, the cache and the kill switch `shared::flags`. Every change
//! is conditioned on the version read, audited (platform scope) with before and after, and
//! published as `FlagChanged` from the same commit.

use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::Granted;
use shared::domain::fields::FieldError;
use shared::domain::flag::{
    Axis, Flag, FlagKey, FlagState, Override, Subject, MAX_OVERRIDES, MAX_OVERRIDES_PER_AXIS,
};
use shared::domain::plan::PlanId;
use shared::domain::tenant::TenantSlug;
use shared::domain::{PartnerId, UserId};
use shared::events::{commit_and_publish, DomainEvent, FlagChanged};
use shared::http::error::retry_on_contention;
use shared::http::request::{
    etag_matches, if_match, json_body, path_param, query_param, DEFAULT_BODY_LIMIT,
};
use shared::store::changes::{AuditTarget, Change, Refusal};
use shared::{ApiError, ApiResponse, ErrorCode};

fn view(f: &Flag) -> Value {
    json!({
        "key": f.key,
        "description": f.description,
        "owner": f.owner,
        "state": f.state,
        "rollout_percent": f.rollout_percent,
        "overrides": f.overrides,
        "version": f.version,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
        "killed_at": f.killed_at,
        "killed_by": f.killed_by,
        "kill_reason": f.kill_reason,
    })
}

/// A flag's settings, without its overrides: what its audit entries record (an override's
/// change records that override alone), so an entry stays small whatever the flag holds.
fn settings(f: &Flag) -> Value {
    json!({
        "state": f.state,
        "rollout_percent": f.rollout_percent,
        "description": f.description,
        "owner": f.owner,
        "version": f.version,
        "overrides": f.overrides.len(),
        "kill_reason": f.kill_reason,
    })
}

fn etag(f: &Flag) -> String {
    format!("\"f{}\"", f.version)
}

fn answer(f: &Flag) -> ApiResponse {
    ApiResponse::ok(view(f)).header("etag", etag(f))
}

fn flag_not_found() -> ApiError {
    ApiError::refused(ErrorCode::FlagNotFound, "no such flag")
}

fn path_key(call: &Call<'_>) -> Result<FlagKey, ApiError> {
    path_param(call.req, "key")
        .as_deref()
        .and_then(FlagKey::parse)
        .ok_or_else(flag_not_found)
}

/// The flag named in the path, as stored now.
async fn path_flag(call: &Call<'_>) -> Result<Flag, ApiError> {
    let key = path_key(call)?;
    call.store.flag(&key).await?.ok_or_else(flag_not_found)
}

/// Commits `next` (replacing `before` at its version) with its audit entry and its event; the
/// instance forgets its cached catalogue.
async fn save(
    call: &Call<'_>,
    before: Option<&Flag>,
    next: &Flag,
    action: &str,
    details: Value,
    mut extra: Vec<Change>,
) -> Result<(), ApiError> {
    let event = DomainEvent::FlagChanged(FlagChanged {
        key: next.key.clone(),
        action: action.to_string(),
        state_before: before.map(|b| b.state),
        state_after: Some(next.state),
        rollout_percent: Some(next.rollout_percent),
        version: next.version,
        changed_by: call.caller.user.id.clone(),
    });
    let mut changes = vec![
        Change::SaveFlag {
            flag: next.clone(),
            expect_version: before.map_or(0, |b| b.version),
        },
        Change::Audit(call.entry(AuditTarget::Platform, &format!("flag.{action}"), details)),
        Change::Outbox(event.outbox_at(call.now_ms())),
    ];
    changes.append(&mut extra);
    let taken = before.is_none();
    commit_and_publish(call.store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::QuotaReached) {
                    ApiError::refused(
                        ErrorCode::InvalidState,
                        format!(
                            "the catalogue holds {} flags, its most: delete one first",
                            shared::store::MAX_FLAGS
                        ),
                    )
                } else if taken {
                    ApiError::refused(ErrorCode::FlagExists, "a flag with this key exists")
                } else {
                    ApiError::PreconditionFailed
                }
            })
        })?;
    call.app.flags.forget();
    tracing::info!(flag = %next.key, action, by = %call.caller.user.id, "flag changed");
    Ok(())
}

/// `save` of a change the server made to what it read (no `If-Match`): a concurrent change is
/// a `CONCURRENT_UPDATE`, which `retry_on_contention` tries again on a fresh read.
async fn save_read(
    call: &Call<'_>,
    current: &Flag,
    next: &Flag,
    action: &str,
    details: Value,
    extra: Vec<Change>,
) -> Result<(), ApiError> {
    save(call, Some(current), next, action, details, extra)
        .await
        .map_err(|e| match e {
            ApiError::PreconditionFailed => ApiError::concurrent_update(),
            e => e,
        })
}

fn text(field: &str, raw: &str, most: usize, empty_ok: bool) -> Result<String, FieldError> {
    let t = raw.trim();
    if (!empty_ok && t.is_empty()) || t.chars().count() > most || t.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!(
                "must be {}{most} characters without control characters",
                if empty_ok { "at most " } else { "1-" }
            ),
        ));
    }
    Ok(t.to_string())
}

fn state(raw: &str) -> Result<FlagState, FieldError> {
    match FlagState::parse(raw) {
        Some(FlagState::Killed) => Err(FieldError::new(
            "state",
            "a flag is killed with POST /flags/{key}/kill",
        )),
        Some(s) => Ok(s),
        None => Err(FieldError::new("state", "must be off, on or rollout")),
    }
}

fn percent(raw: i64) -> Result<u8, FieldError> {
    u8::try_from(raw)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| FieldError::new("rollout_percent", "must be a whole number 0-100"))
}

/// `GET /flags` (operators).
pub(crate) async fn list(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let (flags, killed) = call.store.flags().await?;
    let items: Vec<Value> = flags
        .iter()
        .map(|f| {
            let mut v = view(f);
            // A kill list entry decides whatever the record says (a kill in flight).
            if killed.iter().any(|k| k == f.key.as_str()) {
                v["state"] = json!("killed");
            }
            v
        })
        .collect();
    Ok(ApiResponse::ok(json!({ "items": items })))
}

pub(crate) async fn get(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    Ok(answer(&path_flag(call).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    key: String,
    #[serde(default)]
    description: String,
    owner: String,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    state: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    rollout_percent: Option<i64>,
}

/// `POST /flags` (operators).
pub(crate) async fn create(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let body: CreateBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let key = FlagKey::parse(&body.key).ok_or_else(|| {
        FieldError::new(
            "key",
            "must be 3-64 characters: lower-case dotted segments of letters, digits and -, each starting with a letter (billing.new-invoices)",
        )
    })?;
    let description = text("description", &body.description, 500, true)?;
    let owner = text("owner", &body.owner, 100, false)?;
    let state = body
        .state
        .as_deref()
        .map(state)
        .transpose()?
        .unwrap_or(FlagState::Off);
    let rollout_percent = body.rollout_percent.map(percent).transpose()?.unwrap_or(0);
    let now = shared::runtime::time::now_unix();
    let flag = Flag {
        key,
        description,
        owner,
        state,
        rollout_percent,
        overrides: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
        killed_at: None,
        killed_by: None,
        kill_reason: None,
    };
    let (scope, name) = shared::store::FLAGS_COUNT;
    let counted = Change::Quota {
        scope: scope.into(),
        name: name.into(),
        by: 1,
        cap: shared::store::MAX_FLAGS as i64,
    };
    let details = json!({"key": flag.key, "after": settings(&flag)});
    save(call, None, &flag, "created", details, vec![counted]).await?;
    Ok(ApiResponse::created(view(&flag)).header("etag", etag(&flag)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    description: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    state: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    rollout_percent: Option<i64>,
}

/// `PATCH /flags/{key}` (operators, `If-Match`): description, owner, state (how a killed flag
/// comes back), percentage.
pub(crate) async fn patch(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let current = path_flag(call).await?;
    let body: PatchBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let Some(expected) = if_match(call.req) else {
        return Err(ApiError::refused(
            ErrorCode::PreconditionRequired,
            "send If-Match with the flag's ETag",
        ));
    };
    if !etag_matches(&expected, &etag(&current)) {
        return Err(ApiError::PreconditionFailed);
    }
    let mut next = current.clone();
    if let Some(raw) = &body.description {
        next.description = text("description", raw, 500, true)?;
    }
    if let Some(raw) = &body.owner {
        next.owner = text("owner", raw, 100, false)?;
    }
    if let Some(raw) = &body.state {
        next.state = state(raw)?;
    }
    if let Some(p) = body.rollout_percent {
        next.rollout_percent = percent(p)?;
    }
    if next == current {
        return Ok(answer(&current));
    }
    let revived = current.state == FlagState::Killed && next.state != FlagState::Killed;
    if revived {
        next.killed_at = None;
        next.killed_by = None;
        next.kill_reason = None;
    }
    next.version = current.version + 1;
    next.updated_at = shared::runtime::time::now_unix();
    let extra = if revived {
        vec![Change::KillList {
            key: next.key.clone(),
            killed: false,
        }]
    } else {
        Vec::new()
    };
    let details = json!({"key": next.key, "before": settings(&current), "after": settings(&next)});
    save(call, Some(&current), &next, "updated", details, extra).await?;
    Ok(answer(&next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KillBody {
    reason: String,
}

/// `POST /flags/{key}/kill` (operators): off everywhere, above every override, in one call
/// (no `If-Match`: an emergency does not wait for a fresh read).
pub(crate) async fn kill(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let body: KillBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let reason = shared::domain::impersonation::reason_field("reason", &body.reason)?;
    let key = path_flag(call).await?.key;
    // The kill list first, on its own and unconditioned: off everywhere from this commit on,
    // whatever edits of the flag race it. Its state and audit follow.
    call.store
        .commit(vec![Change::KillList {
            key: key.clone(),
            killed: true,
        }])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::warn!(flag = %key, by = %call.caller.user.id, "flag killed");
    retry_on_contention(|| async {
        let current = path_flag(call).await?;
        if current.state == FlagState::Killed {
            return Ok(answer(&current));
        }
        let now = shared::runtime::time::now_unix();
        let next = Flag {
            state: FlagState::Killed,
            killed_at: Some(now),
            killed_by: Some(call.caller.user.id.clone()),
            kill_reason: Some(reason.clone()),
            version: current.version + 1,
            updated_at: now,
            ..current.clone()
        };
        let details =
            json!({"key": next.key, "before": settings(&current), "after": settings(&next)});
        save_read(call, &current, &next, "killed", details, Vec::new()).await?;
        Ok(answer(&next))
    })
    .await
}

/// `DELETE /flags/{key}` (operators).
pub(crate) async fn delete(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let current = path_flag(call).await?;
    let event = DomainEvent::FlagChanged(FlagChanged {
        key: current.key.clone(),
        action: "deleted".into(),
        state_before: Some(current.state),
        state_after: None,
        rollout_percent: None,
        version: current.version,
        changed_by: call.caller.user.id.clone(),
    });
    let changes = vec![
        Change::DeleteFlag {
            key: current.key.clone(),
            expect_version: current.version,
        },
        // Off the kill list too: a key is never reused for another meaning, but a list entry
        // must not outlive its flag.
        Change::KillList {
            key: current.key.clone(),
            killed: false,
        },
        Change::Audit(call.entry(
            AuditTarget::Platform,
            "flag.deleted",
            json!({"key": current.key, "before": settings(&current)}),
        )),
        Change::Quota {
            scope: shared::store::FLAGS_COUNT.0.into(),
            name: shared::store::FLAGS_COUNT.1.into(),
            by: -1,
            cap: shared::store::MAX_FLAGS as i64,
        },
        Change::Outbox(event.outbox_at(call.now_ms())),
    ];
    commit_and_publish(call.store, call.app.events.as_ref(), changes)
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    call.app.flags.forget();
    Ok(ApiResponse::ok(
        json!({"key": current.key, "deleted": true}),
    ))
}

/// The override's axis and member id from the path: a tenant is named by its slug and stored
/// by its id (its slug kept as the label); the others by their ids. Each must exist.
async fn path_target(call: &Call<'_>) -> Result<(Axis, String, Option<String>), ApiError> {
    let axis = path_param(call.req, "axis")
        .as_deref()
        .and_then(Axis::parse)
        .ok_or_else(|| FieldError::new("axis", "must be user, tenant, partner or plan"))?;
    let raw = path_param(call.req, "id").unwrap_or_default();
    Ok(match axis {
        Axis::User => {
            let missing = || ApiError::refused(ErrorCode::UserNotFound, "no such user");
            let id = UserId::parse(&raw).ok_or_else(missing)?;
            call.store.user_by_id(&id).await?.ok_or_else(missing)?;
            (axis, id.to_string(), None)
        }
        Axis::Tenant => {
            let slug = TenantSlug::parse(&raw).ok_or_else(crate::tenant_not_found)?;
            let t = call
                .store
                .tenant_by_slug(&slug)
                .await?
                .ok_or_else(crate::tenant_not_found)?;
            (axis, t.id.to_string(), Some(t.slug.to_string()))
        }
        Axis::Partner => {
            let missing = || ApiError::refused(ErrorCode::PartnerNotFound, "no such partner");
            let id = PartnerId::parse(&raw).ok_or_else(missing)?;
            let p = call.store.partner_by_id(&id).await?.ok_or_else(missing)?;
            (axis, id.to_string(), Some(p.slug.to_string()))
        }
        Axis::Plan => {
            let missing = || ApiError::refused(ErrorCode::PlanNotFound, "no such plan");
            let id = PlanId::parse(&raw).ok_or_else(missing)?;
            call.app.catalogue().plan(&id).await?.ok_or_else(missing)?;
            (axis, id.to_string(), None)
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    value: bool,
}

/// `PUT /flags/{key}/overrides/{axis}/{id}` (operators): sets one override, replacing one for
/// the same member.
pub(crate) async fn set_override(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let body: OverrideBody = json_body(call.req, DEFAULT_BODY_LIMIT)?;
    let (axis, id, label) = path_target(call).await?;
    retry_on_contention(|| async {
        let current = path_flag(call).await?;
        let mut next = current.clone();
        next.overrides.retain(|o| !(o.axis == axis && o.id == id));
        if next.overrides_on(axis) >= MAX_OVERRIDES_PER_AXIS
            || next.overrides.len() >= MAX_OVERRIDES
        {
            return Err(ApiError::refused(
                ErrorCode::OverrideLimit,
                format!(
                    "a flag holds at most {MAX_OVERRIDES_PER_AXIS} overrides per axis and {MAX_OVERRIDES} in all"
                ),
            ));
        }
        let before = current.override_for(axis, &id).map(|o| o.value);
        let now = shared::runtime::time::now_unix();
        next.overrides.push(Override {
            axis,
            id: id.clone(),
            label: label.clone(),
            value: body.value,
            set_at: now,
            set_by: call.caller.user.id.clone(),
        });
        next.overrides
            .sort_by(|a, b| (a.axis, &a.id).cmp(&(b.axis, &b.id)));
        next.version = current.version + 1;
        next.updated_at = now;
        let details = json!({"key": next.key, "axis": axis, "id": id, "label": label,
            "before": before, "after": body.value, "version": next.version});
        save_read(call, &current, &next, "override_set", details, Vec::new()).await?;
        Ok(answer(&next))
    })
    .await
}

/// `DELETE /flags/{key}/overrides/{axis}/{id}` (operators).
pub(crate) async fn remove_override(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let axis = path_param(call.req, "axis")
        .as_deref()
        .and_then(Axis::parse)
        .ok_or_else(|| FieldError::new("axis", "must be user, tenant, partner or plan"))?;
    let raw = path_param(call.req, "id").unwrap_or_default();
    // A tenant's override is named by the slug of the tenant that has it now (stored by id, so
    // a slug used again never reaches an older tenant's), or by its id (a tenant gone since).
    let id = match axis {
        Axis::Tenant => match TenantSlug::parse(&raw) {
            Some(slug) => match call.store.tenant_by_slug(&slug).await? {
                Some(t) => t.id.to_string(),
                None => raw.clone(),
            },
            None => raw.clone(),
        },
        _ => raw.clone(),
    };
    retry_on_contention(|| async {
        let current = path_flag(call).await?;
        let Some(before) = current.override_for(axis, &id).map(|o| o.value) else {
            return Err(ApiError::refused(
                ErrorCode::NotFound,
                "the flag has no such override",
            ));
        };
        let mut next = current.clone();
        next.overrides.retain(|o| !(o.axis == axis && o.id == id));
        next.version = current.version + 1;
        next.updated_at = shared::runtime::time::now_unix();
        let details = json!({"key": next.key, "axis": axis, "id": id,
            "before": before, "after": null, "version": next.version});
        save_read(
            call,
            &current,
            &next,
            "override_removed",
            details,
            Vec::new(),
        )
        .await?;
        Ok(answer(&next))
    })
    .await
}

fn evaluation(key: &FlagKey, e: shared::domain::flag::Evaluation) -> Value {
    json!({"key": key, "value": e.value, "reason": e.reason.as_str(), "bucket": e.bucket})
}

/// `GET /flags/{key}/evaluate?tenant={slug}&user={user_id}` (operators): the value for that
/// tenant (and user), and the rule that decided: "why is this on for tenant X".
pub(crate) async fn evaluate(call: &Call<'_>) -> Result<ApiResponse, ApiError> {
    shared::access::gate::operator(&call.caller)?;
    let key = path_key(call)?;
    let slug = query_param(call.req, "tenant")
        .as_deref()
        .and_then(TenantSlug::parse)
        .ok_or_else(|| FieldError::new("tenant", "must name a tenant by its slug"))?;
    let user = match query_param(call.req, "user") {
        Some(raw) => {
            Some(UserId::parse(&raw).ok_or_else(|| FieldError::new("user", "must be a user id"))?)
        }
        None => None,
    };
    let tenant = call
        .store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(crate::tenant_not_found)?;
    let snapshot = call.app.flags.snapshot(call.store).await?;
    let flag = snapshot.get(&key).ok_or_else(flag_not_found)?;
    let e = snapshot.evaluate(
        flag,
        &Subject {
            user: user.as_ref(),
            tenant: &tenant.id,
            partner: tenant.partner.as_ref(),
            plan: &tenant.plan,
        },
    );
    let mut v = evaluation(&key, e);
    v["rollout_percent"] = json!(flag.rollout_percent);
    v["user_id"] = json!(user);
    v["tenant"] = json!({
        "id": tenant.id,
        "slug": tenant.slug,
        "partner_id": tenant.partner,
        "plan": tenant.plan,
    });
    Ok(ApiResponse::ok(v))
}

/// `GET /tenants/{slug}/flags` (its members, its partner's admins, operators): every flag's
/// value for the tenant and the caller, with the rule that decided.
pub(crate) async fn of_tenant(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let tenant = granted.tenant();
    let snapshot = call.app.flags.snapshot(call.store).await?;
    let subject = Subject {
        user: Some(&call.caller.user.id),
        tenant: &tenant.id,
        partner: tenant.partner.as_ref(),
        plan: &tenant.plan,
    };
    let items: Vec<Value> = snapshot
        .flags
        .iter()
        .map(|f| {
            let e = snapshot.evaluate(f, &subject);
            json!({"key": f.key, "value": e.value, "reason": e.reason.as_str()})
        })
        .collect();
    Ok(ApiResponse::ok(json!({ "items": items })))
}
