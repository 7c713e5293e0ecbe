//! The provisioning rules, as pure functions of a tenant record and the time, so each is decided
//! in one place and tested without a service: which mode a run takes (`decide_mode`), how a
//! step's attempt settles (`after_attempt`, `give_up`), when a run's end activates, retires or
//! purges the tenant (`finish`), and what the reconcile counts as unfinished (`need`).
//! `provision-step` performs the effects (the artifacts, the writes); `reconcile` looks for
//! drift; neither decides any of this itself.

use crate::domain::tenant::{
    unsettled, RunMode, Step, StepState, StepStatus, Tenant, TenantStatus,
};
use crate::events::EventKind;
use crate::provisioning::RunCause;
use serde::Serialize;

/// A recorded message stays short: the start of the cause, on one line.
pub fn short(text: &str) -> String {
    let line: String = text.replace(['\n', '\r'], " ");
    match line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line,
    }
}

/// The mode a run started by `cause` takes on `t` at `now`, or why it has nothing to do. A live
/// lease admits only its own run (a retried claim gets its mode back).
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

/// How one attempt at a step ended.
#[derive(Debug, Clone, Copy)]
pub enum Attempt<'a> {
    /// It did its work: `ok` or `skipped`, with what it made.
    Done {
        state: StepState,
        artifact: Option<&'a str>,
        message: Option<&'a str>,
    },
    /// A failure the state machine retries (throttling, timeouts, a busy record).
    Transient(&'a str),
    /// A failure the same attempt would meet again.
    Permanent(&'a str),
}

/// A step's status after `attempt`, from its status before (`cur`) in a run of `mode`. The
/// artifact is kept unless the attempt names a new one; a purge leaves nothing to point at.
pub fn after_attempt(cur: &StepStatus, mode: RunMode, attempt: Attempt, now: i64) -> StepStatus {
    let attempts = cur.attempts + 1;
    match attempt {
        Attempt::Done {
            state,
            artifact,
            message,
        } => StepStatus {
            state,
            message: message.map(str::to_string),
            at: now,
            attempts,
            artifact: match mode {
                RunMode::Purge => artifact.map(str::to_string),
                _ => artifact.map(str::to_string).or(cur.artifact.clone()),
            },
        },
        Attempt::Transient(m) => StepStatus {
            state: StepState::Pending,
            message: Some(short(&format!("{RETRYING}{m}"))),
            at: now,
            attempts,
            artifact: cur.artifact.clone(),
        },
        Attempt::Permanent(m) => StepStatus {
            state: StepState::Error,
            message: Some(short(m)),
            at: now,
            attempts,
            artifact: cur.artifact.clone(),
        },
    }
}

const RETRYING: &str = "retrying after a transient failure: ";

/// The state machine gave up on a step with error `error` (retries exhausted, or an error it
/// does not retry): the step becomes `error`, naming the error and the last transient cause.
/// `None` when the step already settled or failed (its own record says more).
pub fn give_up(cur: &StepStatus, error: &str, now: i64) -> Option<StepStatus> {
    if matches!(
        cur.state,
        StepState::Error | StepState::Ok | StepState::Skipped
    ) {
        return None;
    }
    let name: String = error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .take(80)
        .collect();
    let last = cur
        .message
        .as_deref()
        .map(|m| m.trim_start_matches(RETRYING))
        .map(|m| format!("; last: {m}"))
        .unwrap_or_default();
    Some(StepStatus {
        state: StepState::Error,
        message: Some(short(&format!(
            "gave up after {} attempts ({name}){last}",
            cur.attempts.max(1)
        ))),
        at: now,
        attempts: cur.attempts,
        artifact: cur.artifact.clone(),
    })
}

/// What the end of a run did to the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every step settled and the tenant left `provisioning` for `status` (`restored`: it came
    /// back from deletion).
    Activated {
        status: TenantStatus,
        restored: bool,
    },
    /// Every step settled; the tenant was not in `provisioning` (a repair): status unchanged.
    Provisioned,
    /// Every step retired its artifact: the tenant waits out its recovery window.
    Retired,
    /// Every artifact removed for good.
    Purged,
    /// Some steps did not settle: nothing moves on; a later run (or the reconcile) finishes.
    Unsettled { mode: RunMode, steps: Vec<Step> },
    /// An offboarding run on a tenant with no offboarding record.
    NoOffboarding,
}

impl Finish {
    /// The run's outcome as the state machine's output and the logs show it.
    pub fn describe(&self) -> String {
        let list = |steps: &[Step]| {
            steps
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Finish::Activated { status, restored } => format!(
                "{} ({})",
                if *restored { "restored" } else { "activated" },
                status.as_str()
            ),
            Finish::Provisioned => "provisioned (status unchanged)".into(),
            Finish::Retired => "retired".into(),
            Finish::Purged => "purged".into(),
            Finish::Unsettled {
                mode: RunMode::Provision,
                steps,
            } => format!("not activated: {} not settled", list(steps)),
            Finish::Unsettled { steps, .. } => format!("incomplete: {} not settled", list(steps)),
            Finish::NoOffboarding => "no offboarding record".into(),
        }
    }
}

/// Ends the run that holds `t` in `mode` at `now`: frees the lease and, when every step of the
/// run settled without error, moves the tenant on. An activation returns the tenant to the
/// status it had before deletion when it was restored from one (a suspended tenant stays
/// suspended), otherwise makes it active.
pub fn finish(t: &mut Tenant, mode: RunMode, now: i64) -> Finish {
    t.run = None;
    match mode {
        RunMode::Provision => {
            let steps = unsettled(&t.provisioning);
            if !steps.is_empty() {
                return Finish::Unsettled { mode, steps };
            }
            if t.status != TenantStatus::Provisioning {
                return Finish::Provisioned;
            }
            let restored = t.offboarding.take();
            t.status = match restored.as_ref().map(|o| o.previous_status) {
                Some(TenantStatus::Suspended) => TenantStatus::Suspended,
                _ => TenantStatus::Active,
            };
            Finish::Activated {
                status: t.status,
                restored: restored.is_some(),
            }
        }
        RunMode::Offboard | RunMode::Purge => {
            let Some(off) = t.offboarding.as_mut() else {
                return Finish::NoOffboarding;
            };
            let steps = unsettled(&off.steps);
            if !steps.is_empty() {
                return Finish::Unsettled { mode, steps };
            }
            if mode == RunMode::Purge {
                off.purged_at = Some(now);
                // A tombstone stays (id, slug, name, plan, partner, dates, the audit trail);
                // what may be personal goes.
                t.owner_email = None;
                t.billing_info = Default::default();
                t.domains.clear();
                t.redirect_origins.clear();
                Finish::Purged
            } else {
                off.retired_at = Some(now);
                Finish::Retired
            }
        }
    }
}

/// The steps of a live tenant whose `ok` artifact was looked for and not found (or found
/// retired while the tenant is live).
#[derive(Debug, Default, Clone)]
pub struct Drift {
    pub missing: Vec<Step>,
}

/// What the reconcile decided for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Need {
    /// Nothing to do, and why.
    Nothing { reason: String },
    /// A run is under way (the lease is live): left alone.
    Busy { run: String },
    /// A run must be started, for these reasons.
    Redrive { reasons: Vec<String> },
}

/// What counts as unfinished for the reconcile: the decision for `t` at `now`, given the
/// `drift` found. A provisioning tenant younger than `stale_after` seconds is left to its own
/// event-driven run unless `force` (an operator asked for this tenant).
pub fn need(t: &Tenant, now: i64, stale_after: i64, force: bool, drift: &Drift) -> Need {
    if let Some(run) = t.live_run(now) {
        return Need::Busy {
            run: run.id.clone(),
        };
    }
    let nothing = |reason: &str| Need::Nothing {
        reason: reason.to_string(),
    };
    match t.status {
        TenantStatus::Deleted => match &t.offboarding {
            None => nothing("deleted before offboarding existed"),
            Some(o) if o.purged_at.is_some() => nothing("purged"),
            Some(o) if now >= o.purge_after => Need::Redrive {
                reasons: vec!["the recovery window has passed: purge".into()],
            },
            Some(o) if o.retired_at.is_none() => Need::Redrive {
                reasons: vec!["offboarding is unfinished".into()],
            },
            Some(_) => nothing("offboarded; restorable until the window ends"),
        },
        status => {
            let mut reasons: Vec<String> = Step::ALL
                .iter()
                .filter_map(|s| match t.provisioning.get(s) {
                    None => Some(format!("{} never ran", s.as_str())),
                    Some(st) if st.state == StepState::Error => {
                        Some(format!("{} failed", s.as_str()))
                    }
                    Some(st) if st.state == StepState::Pending => {
                        Some(format!("{} is pending", s.as_str()))
                    }
                    _ => None,
                })
                .collect();
            reasons.extend(
                drift
                    .missing
                    .iter()
                    .map(|s| format!("{}: artifact missing", s.as_str())),
            );
            if status == TenantStatus::Provisioning && reasons.is_empty() {
                reasons.push("every step settled but the tenant was not activated".into());
            }
            if reasons.is_empty() {
                return nothing("provisioned; artifacts present");
            }
            let age = now - t.updated_at;
            if status == TenantStatus::Provisioning && !force && age < stale_after {
                return nothing("provisioning began moments ago; its own run may be under way");
            }
            Need::Redrive { reasons }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::{Offboarding, RunLease, Steps, TenantSlug};

    const CREATED: RunCause = RunCause::Event(EventKind::TenantCreated);
    const DELETED: RunCause = RunCause::Event(EventKind::TenantDeleted);
    const RESTORED: RunCause = RunCause::Event(EventKind::TenantRestored);

    fn tenant(status: TenantStatus, steps: &[(Step, StepState)]) -> Tenant {
        let mut t = Tenant::new(TenantSlug::parse("acme").unwrap(), "Acme".into(), 100);
        t.status = status;
        t.updated_at = 100;
        for (s, state) in steps {
            let mut st = StepStatus::pending(100);
            st.state = *state;
            t.provisioning.insert(*s, st);
        }
        t
    }

    fn deleted(purge_after: i64, retired: bool, purged: bool) -> Tenant {
        let mut t = tenant(TenantStatus::Deleted, ALL_OK);
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

    const ALL_OK: &[(Step, StepState)] = &[
        (Step::Storage, StepState::Ok),
        (Step::Secrets, StepState::Ok),
        (Step::Invitation, StepState::Ok),
    ];

    fn lease(t: &mut Tenant, id: &str, mode: RunMode, until: i64) {
        t.run = Some(RunLease {
            id: id.into(),
            mode,
            since: 100,
            until,
        });
    }

    // --- decide_mode ---

    #[test]
    fn a_live_tenant_is_provisioned_and_a_stale_deletion_does_nothing() {
        for status in [
            TenantStatus::Provisioning,
            TenantStatus::Active,
            TenantStatus::Suspended,
        ] {
            let t = tenant(status, &[]);
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
        let reconcile = RunCause::Reconcile;
        let mode = |t: &Tenant, cause, now| decide_mode(t, "r", cause, now);
        assert_eq!(
            mode(&deleted(1000, false, false), DELETED, 200),
            Ok(RunMode::Offboard)
        );
        assert_eq!(
            mode(&deleted(1000, false, false), reconcile, 200),
            Ok(RunMode::Offboard)
        );
        assert!(mode(&deleted(1000, true, false), reconcile, 200).is_err());
        assert_eq!(
            mode(&deleted(1000, true, false), reconcile, 1000),
            Ok(RunMode::Purge)
        );
        assert_eq!(
            mode(&deleted(1000, false, false), DELETED, 1500),
            Ok(RunMode::Purge)
        );
        assert!(mode(&deleted(1000, true, true), reconcile, 2000).is_err());
        assert!(mode(&deleted(1000, false, false), CREATED, 200).is_err());
        assert!(mode(&deleted(1000, false, false), RESTORED, 200).is_err());
    }

    #[test]
    fn a_live_lease_admits_only_its_own_run_and_a_lapsed_one_admits_anyone() {
        let mut t = tenant(TenantStatus::Provisioning, &[]);
        lease(&mut t, "first", RunMode::Provision, 1000);
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

    // --- after_attempt, give_up ---

    #[test]
    fn an_attempt_counts_keeps_the_artifact_unless_purged_and_a_transient_failure_stays_pending() {
        let mut cur = StepStatus::pending(100);
        cur.artifact = Some("arn:old".into());
        cur.attempts = 2;
        let done = |artifact| Attempt::Done {
            state: StepState::Ok,
            artifact,
            message: None,
        };
        let ok = after_attempt(&cur, RunMode::Provision, done(None), 200);
        assert_eq!(
            (ok.state, ok.attempts, ok.at, ok.artifact.as_deref()),
            (StepState::Ok, 3, 200, Some("arn:old"))
        );
        let new = after_attempt(&cur, RunMode::Offboard, done(Some("arn:new")), 200);
        assert_eq!(new.artifact.as_deref(), Some("arn:new"));
        let purged = after_attempt(&cur, RunMode::Purge, done(None), 200);
        assert_eq!(purged.artifact, None);

        let retry = after_attempt(
            &cur,
            RunMode::Provision,
            Attempt::Transient("slow\ndown"),
            200,
        );
        assert_eq!(retry.state, StepState::Pending);
        assert_eq!(retry.artifact.as_deref(), Some("arn:old"));
        assert_eq!(
            retry.message.as_deref(),
            Some("retrying after a transient failure: slow down")
        );
        let failed = after_attempt(&cur, RunMode::Provision, Attempt::Permanent("no"), 200);
        assert_eq!((failed.state, failed.attempts), (StepState::Error, 3));
    }

    #[test]
    fn giving_up_names_the_error_and_the_last_cause_and_never_overwrites_a_settled_step() {
        let cur = after_attempt(
            &StepStatus::pending(100),
            RunMode::Provision,
            Attempt::Transient("throttled"),
            150,
        );
        let gave_up = give_up(&cur, "States.Timeout<script>", 200).unwrap();
        assert_eq!(gave_up.state, StepState::Error);
        assert_eq!(
            gave_up.message.as_deref(),
            Some("gave up after 1 attempts (States.Timeoutscript); last: throttled")
        );
        for state in [StepState::Ok, StepState::Skipped, StepState::Error] {
            let mut settled = StepStatus::pending(100);
            settled.state = state;
            assert_eq!(give_up(&settled, "States.ALL", 200), None);
        }
        assert!(short(&"x".repeat(1000)).len() < 310);
    }

    // --- finish ---

    #[test]
    fn a_provision_run_activates_only_when_every_step_settled_and_frees_the_lease_either_way() {
        let mut t = tenant(
            TenantStatus::Provisioning,
            &[
                (Step::Storage, StepState::Ok),
                (Step::Secrets, StepState::Error),
            ],
        );
        lease(&mut t, "r", RunMode::Provision, 1000);
        let f = finish(&mut t, RunMode::Provision, 200);
        assert_eq!(
            f,
            Finish::Unsettled {
                mode: RunMode::Provision,
                steps: vec![Step::Secrets, Step::Invitation]
            }
        );
        assert_eq!(
            f.describe(),
            "not activated: secrets, invitation not settled"
        );
        assert_eq!(
            (t.status, t.run.is_none()),
            (TenantStatus::Provisioning, true)
        );

        let mut t = tenant(TenantStatus::Provisioning, ALL_OK);
        t.provisioning.get_mut(&Step::Invitation).unwrap().state = StepState::Skipped;
        let f = finish(&mut t, RunMode::Provision, 200);
        assert_eq!(
            (f.describe(), t.status),
            ("activated (active)".to_string(), TenantStatus::Active)
        );
        // A repair of a live tenant changes nothing but the steps.
        let mut t = tenant(TenantStatus::Suspended, ALL_OK);
        assert_eq!(finish(&mut t, RunMode::Provision, 200), Finish::Provisioned);
        assert_eq!(t.status, TenantStatus::Suspended);
    }

    #[test]
    fn a_restore_returns_the_tenant_to_the_status_it_had_and_clears_its_offboarding() {
        for (before, after) in [
            (TenantStatus::Suspended, TenantStatus::Suspended),
            (TenantStatus::Active, TenantStatus::Active),
        ] {
            let mut t = deleted(1000, true, false);
            t.status = TenantStatus::Provisioning;
            t.offboarding.as_mut().unwrap().previous_status = before;
            let f = finish(&mut t, RunMode::Provision, 200);
            assert_eq!(
                f,
                Finish::Activated {
                    status: after,
                    restored: true
                }
            );
            assert!(f.describe().starts_with("restored"));
            assert!(t.offboarding.is_none());
        }
    }

    #[test]
    fn offboarding_retires_then_purging_purges_once_every_step_settled() {
        let mut t = deleted(1000, false, false);
        let off = t.offboarding.as_mut().unwrap();
        off.steps.insert(Step::Storage, StepStatus::pending(100));
        assert!(matches!(
            finish(&mut t, RunMode::Offboard, 200),
            Finish::Unsettled { .. }
        ));
        assert_eq!(t.offboarding.as_ref().unwrap().retired_at, None);
        for s in Step::ALL {
            let mut st = StepStatus::pending(100);
            st.state = StepState::Ok;
            t.offboarding.as_mut().unwrap().steps.insert(*s, st);
        }
        assert_eq!(finish(&mut t, RunMode::Offboard, 200), Finish::Retired);
        assert_eq!(t.offboarding.as_ref().unwrap().retired_at, Some(200));
        t.owner_email = Some(crate::domain::Email::parse("owner@example.com").unwrap());
        t.billing_info.insert("vat".into(), "GB1".into());
        assert_eq!(finish(&mut t, RunMode::Purge, 1200), Finish::Purged);
        assert_eq!(t.offboarding.as_ref().unwrap().purged_at, Some(1200));
        assert_eq!(
            (t.owner_email.as_ref(), t.billing_info.len()),
            (None, 0),
            "personal fields go"
        );
        let mut live = tenant(TenantStatus::Active, ALL_OK);
        assert_eq!(
            finish(&mut live, RunMode::Offboard, 200),
            Finish::NoOffboarding
        );
    }

    // --- need (the reconcile) ---

    #[test]
    fn a_provisioned_tenant_with_its_artifacts_needs_nothing() {
        let t = tenant(TenantStatus::Active, ALL_OK);
        assert!(matches!(
            need(&t, 1000, 300, false, &Drift::default()),
            Need::Nothing { .. }
        ));
    }

    #[test]
    fn a_missing_artifact_or_a_failed_step_is_redriven() {
        let t = tenant(TenantStatus::Active, ALL_OK);
        let drift = Drift {
            missing: vec![Step::Secrets],
        };
        assert_eq!(
            need(&t, 1000, 300, false, &drift),
            Need::Redrive {
                reasons: vec!["secrets: artifact missing".into()]
            }
        );
        let t = tenant(
            TenantStatus::Provisioning,
            &[
                (Step::Storage, StepState::Ok),
                (Step::Secrets, StepState::Error),
                (Step::Invitation, StepState::Ok),
            ],
        );
        assert_eq!(
            need(&t, 1000, 300, false, &Drift::default()),
            Need::Redrive {
                reasons: vec!["secrets failed".into()]
            }
        );
        let t = tenant(TenantStatus::Provisioning, ALL_OK);
        assert_eq!(
            need(&t, 1000, 300, false, &Drift::default()),
            Need::Redrive {
                reasons: vec!["every step settled but the tenant was not activated".into()]
            }
        );
    }

    #[test]
    fn a_fresh_provisioning_tenant_waits_unless_an_operator_asks() {
        let t = tenant(TenantStatus::Provisioning, &[]);
        let no_drift = Drift::default();
        assert!(matches!(
            need(&t, 150, 300, false, &no_drift),
            Need::Nothing { .. }
        ));
        assert!(matches!(
            need(&t, 150, 300, true, &no_drift),
            Need::Redrive { .. }
        ));
        assert!(matches!(
            need(&t, 500, 300, false, &no_drift),
            Need::Redrive { .. }
        ));
    }

    #[test]
    fn a_live_run_is_left_alone() {
        let mut t = tenant(TenantStatus::Provisioning, &[]);
        lease(&mut t, "r1", RunMode::Provision, 2000);
        assert_eq!(
            need(&t, 500, 0, true, &Drift::default()),
            Need::Busy { run: "r1".into() }
        );
        assert!(matches!(
            need(&t, 2000, 0, true, &Drift::default()),
            Need::Redrive { .. }
        ));
    }

    #[test]
    fn a_deleted_tenant_is_offboarded_then_purged_once() {
        let no_drift = Drift::default();
        let mut t = deleted(1000, false, false);
        assert!(matches!(
            need(&t, 200, 0, false, &no_drift),
            Need::Redrive { .. }
        ));
        t.offboarding.as_mut().unwrap().retired_at = Some(150);
        assert!(matches!(
            need(&t, 200, 0, false, &no_drift),
            Need::Nothing { .. }
        ));
        assert!(matches!(
            need(&t, 1000, 0, false, &no_drift),
            Need::Redrive { .. }
        ));
        t.offboarding.as_mut().unwrap().purged_at = Some(1001);
        assert!(matches!(
            need(&t, 5000, 0, false, &no_drift),
            Need::Nothing { .. }
        ));
    }

    #[test]
    fn steps_are_stored_by_their_names() {
        let t = tenant(TenantStatus::Active, &[(Step::Secrets, StepState::Ok)]);
        let json = serde_json::to_value(&t.provisioning).unwrap();
        assert_eq!(json["secrets"]["state"], "ok");
        let back: Steps = serde_json::from_value(json).unwrap();
        assert_eq!(back, t.provisioning);
        assert_eq!(
            Step::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ["storage", "secrets", "invitation"]
        );
    }
}
