//! What a live tenant's artifacts look like: the effects side of the reconcile's decision. The
//! decision itself (`rules::need`: what counts as unfinished, drifted or due) is one of the
//! provisioning rules in `shared::provisioning::rules`.

use shared::domain::tenant::{Step, StepState, Tenant, TenantStatus};
use shared::provisioning::rules::Drift;
use shared::provisioning::{marker_presence, secret_name, secret_presence, Presence};

/// Looks for each `ok` step's artifact of a live tenant (deleted tenants are not checked).
pub async fn drift(
    app: &crate::App,
    t: &Tenant,
) -> Result<Drift, shared::provisioning::ServiceFailure> {
    let mut found = Drift::default();
    if t.status == TenantStatus::Deleted {
        return Ok(found);
    }
    let ok = |s: Step| {
        t.provisioning
            .get(&s)
            .is_some_and(|st| st.state == StepState::Ok)
    };
    for step in Step::ALL
        .iter()
        .copied()
        .filter(|s| s.has_artifact() && ok(*s))
    {
        let presence = match step {
            Step::Storage => marker_presence(&app.s3, &app.bucket, t).await?,
            Step::Secrets => {
                secret_presence(&app.secrets, &secret_name(&app.secret_prefix, t))
                    .await?
                    .0
            }
            Step::Invitation => Presence::Present,
        };
        if presence != Presence::Present {
            found.missing.push(step);
        }
    }
    Ok(found)
}
