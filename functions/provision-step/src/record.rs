//! The tenant record's side of a run: the lease (`claim`), each step's status, a step given up
//! on (`fail`) and the end of the run (`finish`). Every write is conditioned on the version
//! read and on the run still holding the lease, so two runs can never both write a tenant, and
//! parallel steps of one run retry each other's conflicts instead of losing an update. What
//! each write says (the mode, a step's new status, the end of a run) is decided by
//! `shared::provisioning::rules`; this module only reads and writes.

use crate::{App, Done, StepError};
use serde_json::json;
use shared::domain::tenant::{RunLease, RunMode, Step, StepStatus, Steps, Tenant, TenantStatus};
use shared::domain::{TenantId, UserId};
use shared::events::{DomainEvent, TenantChanged};
use shared::provisioning::rules::{self, Attempt, Finish};
use shared::provisioning::RunCause;
use shared::store::changes::CommitError;
use shared::store::changes::{tenant_count_changes, AuditEntry, AuditTarget, Change};
use std::time::Duration;

/// How long a lease holds if its run dies. Longer than a run's worst case: three steps with
/// three attempts each, their backoff, a 30 s task timeout.
pub const LEASE_SECS: i64 = 15 * 60;

/// What `claim` decided.
pub struct Claim {
    /// `provision`, `offboard`, `purge` or `none`.
    pub mode: &'static str,
    pub reason: String,
}

/// Reads, edits and writes the tenant until the write holds. `edit` returns `None` to write
/// nothing, or the changes to commit beside the update (counters, audit).
async fn update(
    app: &App,
    id: &TenantId,
    mut edit: impl FnMut(&mut Tenant, &Tenant) -> Result<Option<Vec<Change>>, StepError>,
) -> Result<(Tenant, bool), StepError> {
    for attempt in 0..10u64 {
        let current = app
            .store
            .tenant_by_id(id)
            .await?
            .ok_or_else(|| StepError::Permanent("the tenant does not exist".into()))?;
        let mut next = current.clone();
        let Some(extra) = edit(&mut next, &current)? else {
            return Ok((current, false));
        };
        next.version = current.version + 1;
        next.updated_at = shared::runtime::time::now_unix();
        let mut changes = vec![Change::UpdateTenant {
            tenant: next.clone(),
            expect_version: current.version,
        }];
        changes.extend(extra);
        match app.store.commit(changes).await {
            Ok(()) => return Ok((next, true)),
            Err(CommitError::Refused { .. }) => {
                // Another step of this run (or a person) wrote first: read again.
                let jitter = rand::random::<u64>() % 40;
                tokio::time::sleep(Duration::from_millis(10 + attempt * 10 + jitter)).await;
            }
            Err(CommitError::Store(e)) => return Err(e.into()),
            Err(e @ CommitError::TooMany) => return Err(StepError::Permanent(e.to_string())),
        }
    }
    Err(StepError::Transient(
        "the tenant record kept changing; will retry".into(),
    ))
}

fn lease_lost() -> StepError {
    StepError::Permanent("this run no longer holds the tenant".into())
}

fn holds(t: &Tenant, run: &str) -> bool {
    t.run.as_ref().is_some_and(|r| r.id == run)
}

pub async fn claim(
    app: &App,
    id: &TenantId,
    run: &str,
    cause: RunCause,
) -> Result<Claim, StepError> {
    let kind = cause.as_str();
    let now = shared::runtime::time::now_unix();
    let mut decided: Result<RunMode, String> = Err(String::new());
    let (_, _) = update(app, id, |t, _| {
        decided = rules::decide_mode(t, run, cause, now);
        match &decided {
            Err(_) => Ok(None),
            Ok(mode) => {
                t.run = Some(RunLease {
                    id: run.to_string(),
                    mode: *mode,
                    since: t
                        .run
                        .as_ref()
                        .filter(|r| r.id == run)
                        .map_or(now, |r| r.since),
                    until: now + LEASE_SECS,
                });
                Ok(Some(Vec::new()))
            }
        }
    })
    .await?;
    Ok(match decided {
        Ok(mode) => Claim {
            mode: mode.as_str(),
            reason: format!("{kind} on a {} tenant", tenant_word(mode)),
        },
        Err(reason) => Claim {
            mode: "none",
            reason,
        },
    })
}

fn tenant_word(mode: RunMode) -> &'static str {
    match mode {
        RunMode::Provision => "live",
        RunMode::Offboard => "deleted",
        RunMode::Purge => "deleted, past its recovery window,",
    }
}

/// The tenant, if `run` holds it, with the run's mode.
pub async fn held(app: &App, id: &TenantId, run: &str) -> Result<(Tenant, RunMode), StepError> {
    let t = app
        .store
        .tenant_by_id(id)
        .await?
        .ok_or_else(|| StepError::Permanent("the tenant does not exist".into()))?;
    match t.run.as_ref().filter(|r| r.id == run) {
        Some(r) => {
            let mode = r.mode;
            Ok((t, mode))
        }
        None => Err(lease_lost()),
    }
}

/// Where a step's status is kept in `mode`.
fn steps_mut(t: &mut Tenant, mode: RunMode) -> Option<&mut Steps> {
    match mode {
        RunMode::Provision => Some(&mut t.provisioning),
        RunMode::Offboard | RunMode::Purge => t.offboarding.as_mut().map(|o| &mut o.steps),
    }
}

pub fn step_status(t: &Tenant, mode: RunMode, step: Step) -> StepStatus {
    let map = match mode {
        RunMode::Provision => Some(&t.provisioning),
        _ => t.offboarding.as_ref().map(|o| &o.steps),
    };
    map.and_then(|m| m.get(&step).cloned())
        .unwrap_or_else(|| StepStatus::pending(shared::runtime::time::now_unix()))
}

/// Records what a step did. A step that found everything as recorded writes nothing.
pub async fn record_step(
    app: &App,
    id: &TenantId,
    run: &str,
    step: Step,
    prev: &StepStatus,
    result: &Result<Done, StepError>,
) -> Result<&'static str, StepError> {
    if let Ok(done) = result {
        if done.outcome == "unchanged" && prev.state == done.state && prev.artifact == done.artifact
        {
            return Ok("unchanged");
        }
    }
    let attempt = match result {
        Ok(done) => Attempt::Done {
            state: done.state,
            artifact: done.artifact.as_deref(),
            message: done.message.as_deref(),
        },
        Err(StepError::Transient(m)) => Attempt::Transient(m),
        Err(StepError::Permanent(m)) => Attempt::Permanent(m),
    };
    let now = shared::runtime::time::now_unix();
    update(app, id, |t, _| {
        if !holds(t, run) {
            return Err(lease_lost());
        }
        let mode = t.run.as_ref().map_or(RunMode::Provision, |r| r.mode);
        let Some(steps) = steps_mut(t, mode) else {
            return Err(StepError::Permanent(
                "the tenant has no offboarding record".into(),
            ));
        };
        let cur = steps
            .get(&step)
            .cloned()
            .unwrap_or_else(|| StepStatus::pending(now));
        steps.insert(step, rules::after_attempt(&cur, mode, attempt, now));
        Ok(Some(Vec::new()))
    })
    .await?;
    Ok(match result {
        Ok(done) => done.outcome,
        Err(StepError::Transient(_)) => "transient failure",
        Err(StepError::Permanent(_)) => "error",
    })
}

/// The state machine gave up on a step (retries exhausted, or an error it does not retry).
pub async fn fail(
    app: &App,
    id: &TenantId,
    run: &str,
    step: Step,
    error: &str,
) -> Result<(), StepError> {
    let now = shared::runtime::time::now_unix();
    update(app, id, |t, _| {
        if !holds(t, run) {
            return Ok(None);
        }
        let mode = t.run.as_ref().map_or(RunMode::Provision, |r| r.mode);
        let Some(steps) = steps_mut(t, mode) else {
            return Ok(None);
        };
        let cur = steps
            .get(&step)
            .cloned()
            .unwrap_or_else(|| StepStatus::pending(now));
        let Some(next) = rules::give_up(&cur, error, now) else {
            return Ok(None);
        };
        steps.insert(step, next);
        Ok(Some(Vec::new()))
    })
    .await?;
    Ok(())
}

/// Ends a run: frees the lease and, when every step settled without error, moves the tenant
/// on (`rules::finish` decides), with the counters and the audit entry in the same write.
pub async fn finish(app: &App, id: &TenantId, run: &str) -> Result<String, StepError> {
    let now = shared::runtime::time::now_unix();
    let mut outcome = String::new();
    // A purge takes the tenant off its plan's count; a plan never stored (a built-in one no
    // tenant took since plans were kept) has nothing to give back. A deleted tenant's plan
    // cannot change, so this read holds for the write.
    let stored_plan = match app.store.tenant_by_id(id).await? {
        Some(t) => app.store.stored_plan(&t.plan).await?,
        None => None,
    };
    let mut events = Vec::new();
    update(app, id, |t, before| {
        events.clear();
        if !holds(t, run) {
            outcome = "this run no longer holds the tenant".into();
            return Ok(None);
        }
        let mode = t.run.as_ref().map_or(RunMode::Provision, |r| r.mode);
        let finished = rules::finish(t, mode, now);
        outcome = finished.describe();
        let mut extra = Vec::new();
        match finished {
            Finish::Activated { restored, status } => {
                extra.extend(tenant_count_changes(
                    Some((before.status, before.partner.as_ref())),
                    Some((t.status, t.partner.as_ref())),
                ));
                extra.push(system_audit(
                    before,
                    "tenant.activated",
                    json!({
                        "before": {"status": before.status},
                        "after": {"status": t.status},
                        "restored": restored,
                    }),
                    run,
                ));
                if status == TenantStatus::Active {
                    events.push(
                        DomainEvent::TenantActivated(TenantChanged::of(t))
                            .outbox_at(shared::runtime::time::now_ms()),
                    );
                }
            }
            Finish::Purged => {
                extra.push(system_audit(before, "tenant.purged", json!({}), run));
                extra.extend(shared::plans::plan_moves(stored_plan.as_ref(), None));
                events.push(
                    DomainEvent::TenantPurged(TenantChanged::of(t))
                        .outbox_at(shared::runtime::time::now_ms()),
                );
            }
            Finish::Retired => {
                extra.push(system_audit(before, "tenant.offboarded", json!({}), run))
            }
            Finish::Provisioned | Finish::Unsettled { .. } | Finish::NoOffboarding => {}
        }
        extra.extend(events.iter().cloned().map(Change::Outbox));
        Ok(Some(extra))
    })
    .await?;
    if let Some(publisher) = &app.events {
        for e in &events {
            shared::events::publish_committed(publisher.as_ref(), app.store.as_ref(), e).await;
        }
    }
    Ok(outcome)
}

fn system_audit(t: &Tenant, action: &str, details: serde_json::Value, run: &str) -> Change {
    Change::Audit(
        AuditEntry::new(
            AuditTarget::Tenant(t.id.clone()),
            UserId::system(),
            action,
            details,
            shared::runtime::time::now_ms(),
            run,
        )
        .with_partner(t.partner.clone()),
    )
}
