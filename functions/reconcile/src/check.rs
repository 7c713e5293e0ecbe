//! What a tenant needs, decided from its record and the state of its artifacts.

use serde::Serialize;
use shared::provisioning::{marker_presence, secret_name, secret_presence, Presence};
use shared::tenant::{StepState, Tenant, TenantStatus, PROVISIONING_STEPS};

/// The artifacts of a live tenant's `ok` steps, as found.
#[derive(Debug, Default, Clone)]
pub struct Drift {
    /// Steps whose artifact is missing (or retired while the tenant is live).
    pub missing: Vec<&'static str>,
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

/// The decision for `t` at `now`. `force` (an operator asked for this tenant) skips the grace
/// period a fresh tenant gets for its own event-driven run.
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
            let mut reasons: Vec<String> = PROVISIONING_STEPS
                .iter()
                .filter_map(|s| match t.provisioning.get(*s) {
                    None => Some(format!("{s} never ran")),
                    Some(st) if st.state == StepState::Error => Some(format!("{s} failed")),
                    Some(st) if st.state == StepState::Pending => Some(format!("{s} is pending")),
                    _ => None,
                })
                .collect();
            reasons.extend(
                drift
                    .missing
                    .iter()
                    .map(|s| format!("{s}: artifact missing")),
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

/// Looks for each `ok` step's artifact of a live tenant (deleted tenants are not checked).
pub async fn drift(
    app: &crate::App,
    t: &Tenant,
) -> Result<Drift, shared::provisioning::ServiceFailure> {
    let mut found = Drift::default();
    if t.status == TenantStatus::Deleted {
        return Ok(found);
    }
    let ok = |s: &str| {
        t.provisioning
            .get(s)
            .is_some_and(|st| st.state == StepState::Ok)
    };
    if ok("storage") && marker_presence(&app.s3, &app.bucket, t).await? != Presence::Present {
        found.missing.push("storage");
    }
    if ok("secrets") {
        let (presence, _) =
            secret_presence(&app.secrets, &secret_name(&app.secret_prefix, t)).await?;
        if presence != Presence::Present {
            found.missing.push("secrets");
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::tenant::{Offboarding, RunLease, RunMode, StepStatus, TenantSlug};

    fn tenant(status: TenantStatus, steps: &[(&str, StepState)]) -> Tenant {
        let mut t = Tenant::new(TenantSlug::parse("acme").unwrap(), "Acme".into(), 100);
        t.status = status;
        t.updated_at = 100;
        for (s, state) in steps {
            let mut st = StepStatus::pending(100);
            st.state = *state;
            t.provisioning.insert(s.to_string(), st);
        }
        t
    }

    const ALL_OK: &[(&str, StepState)] = &[
        ("storage", StepState::Ok),
        ("secrets", StepState::Ok),
        ("invitation", StepState::Ok),
    ];

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
            missing: vec!["secrets"],
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
                ("storage", StepState::Ok),
                ("secrets", StepState::Error),
                ("invitation", StepState::Ok),
            ],
        );
        assert_eq!(
            need(&t, 1000, 300, false, &Drift::default()),
            Need::Redrive {
                reasons: vec!["secrets failed".into()]
            }
        );
    }

    #[test]
    fn a_fresh_provisioning_tenant_waits_unless_an_operator_asks() {
        let t = tenant(TenantStatus::Provisioning, &[]);
        assert!(matches!(
            need(&t, 150, 300, false, &Drift::default()),
            Need::Nothing { .. }
        ));
        assert!(matches!(
            need(&t, 150, 300, true, &Drift::default()),
            Need::Redrive { .. }
        ));
        assert!(matches!(
            need(&t, 500, 300, false, &Drift::default()),
            Need::Redrive { .. }
        ));
    }

    #[test]
    fn a_live_run_is_left_alone() {
        let mut t = tenant(TenantStatus::Provisioning, &[]);
        t.run = Some(RunLease {
            id: "r1".into(),
            mode: RunMode::Provision,
            since: 100,
            until: 2000,
        });
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
        let mut t = tenant(TenantStatus::Deleted, ALL_OK);
        let mut off = Offboarding {
            deleted_at: 100,
            purge_after: 1000,
            previous_status: TenantStatus::Active,
            steps: Default::default(),
            retired_at: None,
            purged_at: None,
        };
        t.offboarding = Some(off.clone());
        assert!(matches!(
            need(&t, 200, 0, false, &Drift::default()),
            Need::Redrive { .. }
        ));
        off.retired_at = Some(150);
        t.offboarding = Some(off.clone());
        assert!(matches!(
            need(&t, 200, 0, false, &Drift::default()),
            Need::Nothing { .. }
        ));
        assert!(matches!(
            need(&t, 1000, 0, false, &Drift::default()),
            Need::Redrive { .. }
        ));
        off.purged_at = Some(1001);
        t.offboarding = Some(off);
        assert!(matches!(
            need(&t, 5000, 0, false, &Drift::default()),
            Need::Nothing { .. }
        ));
    }
}
