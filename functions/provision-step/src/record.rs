//! The tenant record's side of a run: the lease (`claim`), each step's status, a step given up
//! on (`fail`) and the end of the run (`finish`). Every write is conditioned on the version
//! read and on the run still holding the lease, so two runs can never both write a tenant, and
//! parallel steps of one run retry each other's conflicts instead of losing an update.

use crate::{short, App, Done, StepError};
use serde_json::json;
use shared::domain::{TenantId, UserId};
use shared::events::EventKind;
use shared::provisioning::RunCause;
use shared::store::changes::CommitError;
use shared::store::changes::{tenant_count_changes, AuditEntry, AuditTarget, Change};
use shared::tenant::PROVISIONING_STEPS;
use shared::tenant::{RunLease, RunMode, StepState, StepStatus, Tenant, TenantStatus};
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

/// The mode a run started by `cause` takes on `t` at `now`, or why it has nothing to do.
pub fn decide_mode(t: &Tenant, run: &str, cause: RunCause, now: i64) -> Result<RunMode, String> {
    let kind = cause.as_str();
    if let Some(lease) = t.live_run(now) {
        return if lease.id == run {
            Ok(lease.mode)
        } else {
            Err(format!("run {} holds the tenant", lease.id))
        };
    }
    let restoring_or_created = matches!(
        cause,
        RunCause::Event(EventKind::TenantCreated | EventKind::TenantRestored)
    );
    match (t.status, &t.offboarding) {
        (TenantStatus::Deleted, None) => Err("the tenant was deleted without offboarding".into()),
        (TenantStatus::Deleted, Some(o)) if o.purged_at.is_some() => {
            Err("the tenant's artifacts are purged".into())
        }
        (TenantStatus::Deleted, Some(_)) if restoring_or_created => {
            Err(format!("{kind} for a deleted tenant (a stale event)"))
        }
        (TenantStatus::Deleted, Some(o)) if now >= o.purge_after => Ok(RunMode::Purge),
        (TenantStatus::Deleted, Some(o)) if o.retired_at.is_none() => Ok(RunMode::Offboard),
        (TenantStatus::Deleted, Some(_)) => {
            Err("offboarded; waiting for the recovery window to pass".into())
        }
        (_, _) if cause == RunCause::Event(EventKind::TenantDeleted) => {
            Err("TenantDeleted for a tenant that is not deleted (a stale event)".into())
        }
        _ => Ok(RunMode::Provision),
    }
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
        next.updated_at = shared::time::now_unix();
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
    let now = shared::time::now_unix();
    let mut decided: Result<RunMode, String> = Err(String::new());
    let (_, _) = update(app, id, |t, _| {
        decided = decide_mode(t, run, cause, now);
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
fn steps_mut(
    t: &mut Tenant,
    mode: RunMode,
) -> Option<&mut std::collections::BTreeMap<String, StepStatus>> {
    match mode {
        RunMode::Provision => Some(&mut t.provisioning),
        RunMode::Offboard | RunMode::Purge => t.offboarding.as_mut().map(|o| &mut o.steps),
    }
}

pub fn step_status(t: &Tenant, mode: RunMode, step: &str) -> StepStatus {
    let map = match mode {
        RunMode::Provision => Some(&t.provisioning),
        _ => t.offboarding.as_ref().map(|o| &o.steps),
    };
    map.and_then(|m| m.get(step).cloned())
        .unwrap_or_else(|| StepStatus::pending(shared::time::now_unix()))
}

/// Records what a step did. A step that found everything as recorded writes nothing.
pub async fn record_step(
    app: &App,
    id: &TenantId,
    run: &str,
    step: &str,
    prev: &StepStatus,
    result: &Result<Done, StepError>,
) -> Result<&'static str, StepError> {
    if let Ok(done) = result {
        if done.outcome == "unchanged" && prev.state == done.state && prev.artifact == done.artifact
        {
            return Ok("unchanged");
        }
    }
    let now = shared::time::now_unix();
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
            .get(step)
            .cloned()
            .unwrap_or_else(|| StepStatus::pending(now));
        let next = match result {
            Ok(done) => StepStatus {
                state: done.state,
                message: done.message.clone(),
                at: now,
                attempts: cur.attempts + 1,
                // A purge leaves nothing behind to point at.
                artifact: if mode == RunMode::Purge {
                    done.artifact.clone()
                } else {
                    done.artifact.clone().or(cur.artifact.clone())
                },
            },
            Err(StepError::Transient(m)) => StepStatus {
                state: StepState::Pending,
                message: Some(short(&format!("retrying after a transient failure: {m}"))),
                at: now,
                attempts: cur.attempts + 1,
                artifact: cur.artifact.clone(),
            },
            Err(StepError::Permanent(m)) => StepStatus {
                state: StepState::Error,
                message: Some(short(m)),
                at: now,
                attempts: cur.attempts + 1,
                artifact: cur.artifact.clone(),
            },
        };
        steps.insert(step.to_string(), next);
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
    step: &str,
    error: &str,
) -> Result<(), StepError> {
    let now = shared::time::now_unix();
    update(app, id, |t, _| {
        if !holds(t, run) {
            return Ok(None);
        }
        let mode = t.run.as_ref().map_or(RunMode::Provision, |r| r.mode);
        let Some(steps) = steps_mut(t, mode) else {
            return Ok(None);
        };
        let cur = steps
            .get(step)
            .cloned()
            .unwrap_or_else(|| StepStatus::pending(now));
        if matches!(
            cur.state,
            StepState::Error | StepState::Ok | StepState::Skipped
        ) {
            return Ok(None);
        }
        let name: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .take(80)
            .collect();
        let last = cur
            .message
            .as_deref()
            .map(|m| m.trim_start_matches("retrying after a transient failure: "))
            .map(|m| format!("; last: {m}"))
            .unwrap_or_default();
        steps.insert(
            step.to_string(),
            StepStatus {
                state: StepState::Error,
                message: Some(short(&format!(
                    "gave up after {} attempts ({name}){last}",
                    cur.attempts.max(1)
                ))),
                at: now,
                attempts: cur.attempts,
                artifact: cur.artifact,
            },
        );
        Ok(Some(Vec::new()))
    })
    .await?;
    Ok(())
}

/// Ends a run: frees the lease and, when every step settled without error, moves the tenant
/// on (activates it, or marks its artifacts retired, or purged).
pub async fn finish(app: &App, id: &TenantId, run: &str) -> Result<String, StepError> {
    let now = shared::time::now_unix();
    let mut outcome = String::new();
    update(app, id, |t, before| {
        if !holds(t, run) {
            outcome = "this run no longer holds the tenant".into();
            return Ok(None);
        }
        let mode = t.run.as_ref().map_or(RunMode::Provision, |r| r.mode);
        t.run = None;
        let mut extra = Vec::new();
        match mode {
            RunMode::Provision => {
                let unsettled = unsettled(&t.provisioning);
                if !unsettled.is_empty() {
                    outcome = format!("not activated: {} not settled", unsettled.join(", "));
                } else if t.status == TenantStatus::Provisioning {
                    let restored = t.offboarding.take();
                    t.status = match restored.as_ref().map(|o| o.previous_status) {
                        Some(TenantStatus::Suspended) => TenantStatus::Suspended,
                        _ => TenantStatus::Active,
                    };
                    outcome = format!(
                        "{} ({})",
                        if restored.is_some() {
                            "restored"
                        } else {
                            "activated"
                        },
                        t.status.as_str()
                    );
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
                            "restored": restored.is_some(),
                        }),
                        run,
                    ));
                } else {
                    outcome = "provisioned (status unchanged)".into();
                }
            }
            RunMode::Offboard | RunMode::Purge => {
                let purge = mode == RunMode::Purge;
                let Some(off) = t.offboarding.as_mut() else {
                    outcome = "no offboarding record".into();
                    return Ok(Some(extra));
                };
                let unsettled = unsettled(&off.steps);
                if !unsettled.is_empty() {
                    outcome = format!("incomplete: {} not settled", unsettled.join(", "));
                } else if purge {
                    off.purged_at = Some(now);
                    outcome = "purged".into();
                    extra.push(system_audit(before, "tenant.purged", json!({}), run));
                } else {
                    off.retired_at = Some(now);
                    outcome = "retired".into();
                    extra.push(system_audit(before, "tenant.offboarded", json!({}), run));
                }
            }
        }
        Ok(Some(extra))
    })
    .await?;
    Ok(outcome)
}

fn unsettled(steps: &std::collections::BTreeMap<String, StepStatus>) -> Vec<&'static str> {
    PROVISIONING_STEPS
        .iter()
        .copied()
        .filter(|s| !steps.get(*s).is_some_and(StepStatus::settled))
        .collect()
}

fn system_audit(t: &Tenant, action: &str, details: serde_json::Value, run: &str) -> Change {
    Change::Audit(
        AuditEntry::new(
            AuditTarget::Tenant(t.id.clone()),
            UserId::system(),
            action,
            details,
            shared::time::now_ms(),
            run,
        )
        .with_partner(t.partner.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::tenant::{Offboarding, TenantSlug};

    const CREATED: RunCause = RunCause::Event(EventKind::TenantCreated);
    const DELETED: RunCause = RunCause::Event(EventKind::TenantDeleted);
    const RESTORED: RunCause = RunCause::Event(EventKind::TenantRestored);

    fn tenant(status: TenantStatus) -> Tenant {
        let mut t = Tenant::new(TenantSlug::parse("acme").unwrap(), "Acme".into(), 100);
        t.status = status;
        t
    }

    fn deleted(purge_after: i64, retired: bool, purged: bool) -> Tenant {
        let mut t = tenant(TenantStatus::Deleted);
        t.offboarding = Some(Offboarding {
            deleted_at: 100,
            purge_after,
            previous_status: TenantStatus::Active,
            steps: Default::default(),
            retired_at: retired.then_some(110),
            purged_at: purged.then_some(120),
        });
        t
    }

    #[test]
    fn a_live_tenant_is_provisioned_and_a_stale_deletion_does_nothing() {
        for status in [
            TenantStatus::Provisioning,
            TenantStatus::Active,
            TenantStatus::Suspended,
        ] {
            let t = tenant(status);
            assert_eq!(decide_mode(&t, "r1", CREATED, 200), Ok(RunMode::Provision));
            assert_eq!(
                decide_mode(&t, "r1", RunCause::Reconcile, 200),
                Ok(RunMode::Provision)
            );
            assert!(decide_mode(&t, "r1", DELETED, 200).is_err());
        }
    }

    #[test]
    fn a_deleted_tenant_is_offboarded_then_purged_after_its_window_and_never_reprovisioned() {
        assert_eq!(
            decide_mode(&deleted(1000, false, false), "r", DELETED, 200),
            Ok(RunMode::Offboard)
        );
        assert_eq!(
            decide_mode(&deleted(1000, false, false), "r", RunCause::Reconcile, 200),
            Ok(RunMode::Offboard)
        );
        assert!(decide_mode(&deleted(1000, true, false), "r", RunCause::Reconcile, 200).is_err());
        assert_eq!(
            decide_mode(&deleted(1000, true, false), "r", RunCause::Reconcile, 1000),
            Ok(RunMode::Purge)
        );
        assert_eq!(
            decide_mode(&deleted(1000, false, false), "r", DELETED, 1500),
            Ok(RunMode::Purge)
        );
        assert!(decide_mode(&deleted(1000, true, true), "r", RunCause::Reconcile, 2000).is_err());
        assert!(decide_mode(&deleted(1000, false, false), "r", CREATED, 200).is_err());
        assert!(decide_mode(&deleted(1000, false, false), "r", RESTORED, 200).is_err());
    }

    #[test]
    fn a_live_lease_admits_only_its_own_run_and_a_lapsed_one_admits_anyone() {
        let mut t = tenant(TenantStatus::Provisioning);
        t.run = Some(RunLease {
            id: "first".into(),
            mode: RunMode::Provision,
            since: 100,
            until: 1000,
        });
        assert!(decide_mode(&t, "second", RunCause::Reconcile, 500)
            .unwrap_err()
            .contains("first"));
        assert_eq!(
            decide_mode(&t, "first", CREATED, 500),
            Ok(RunMode::Provision)
        );
        assert_eq!(
            decide_mode(&t, "second", RunCause::Reconcile, 1000),
            Ok(RunMode::Provision)
        );
    }
}
