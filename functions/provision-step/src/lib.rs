//! provision-step: every task of the provisioning state machine
//! (`infra/statemachines/provisioning.asl.json`) invokes this function with one of four actions:
//!
//! | action | what it does | module |
//! |---|---|---|
//! | `claim` | takes the tenant's run lease and decides the run's mode from the tenant's state | `record` |
//! | `step` | runs one step (`storage`, `secrets`, `invitation`: `tenant::Step`) in that mode and records it | `storage`, `secrets`, `invitation`, each a `StepWork` |
//! | `fail` | records a step the state machine gave up on as `error` | `record` |
//! | `finish` | activates (or marks retired, or purged) once every step settled, and frees the lease | `record` |
//!
//! The mode is `provision` (create, restore or repair each artifact, then activate),
//! `offboard` (retire each artifact reversibly) or `purge` (remove them for good). Every step
//! is idempotent: run again after success it finds its artifact and changes nothing. What the
//! mode is, how a step's status settles and when a run's end moves the tenant on are decided by
//! `shared::provisioning::rules` (pure, unit-tested); this crate performs the effects.
//!
//! Errors are typed for the state machine: `TransientStepError` (throttling, timeouts, 5xx,
//! a busy record) is retried with backoff by the ASL's `Retry`; `PermanentStepError` is caught
//! and recorded. The ASL matches these names only, never messages.

mod invitation;
mod record;
mod secrets;
mod storage;

#[cfg(feature = "faults")]
pub mod faults;

use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::tenant::{RunMode, Step, StepState, StepStatus, Tenant};
use shared::domain::TenantId;
use shared::mail::Mailer;
use shared::provisioning::rules::short;
use shared::provisioning::RunCause;
use shared::provisioning::ServiceFailure;
use shared::runtime::config::{LinkConfig, ProvisioningConfig};
use shared::store::Store;
use std::sync::Arc;

pub use record::Claim;

pub struct App {
    pub store: Arc<dyn Store>,
    pub s3: aws_sdk_s3::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub mailer: Arc<dyn Mailer>,
    pub links: LinkConfig,
    /// `BUCKET_NAME`.
    pub bucket: String,
    /// `TENANT_SECRET_PREFIX`: tenant secrets are named `<prefix>tenants/<id>`.
    pub secret_prefix: String,
    pub provisioning: ProvisioningConfig,
    /// Where a tenant's activation and purge are published (`None`: left in the outbox for the
    /// reconcile).
    pub events: Option<Arc<dyn shared::events::EventPublisher>>,
    #[cfg(feature = "faults")]
    pub faults: faults::Faults,
}

/// One task's input, as the state machine's `Parameters` build it.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum Task {
    Claim {
        tenant_id: String,
        /// The execution's name.
        run: String,
        /// The event that started the run (`TenantCreated`, `TenantDeleted`, `TenantRestored`,
        /// `Reconcile`).
        #[serde(default)]
        kind: String,
    },
    Step {
        tenant_id: String,
        run: String,
        step: Step,
    },
    Fail {
        tenant_id: String,
        run: String,
        step: Step,
        /// The error name the state machine caught.
        error: String,
    },
    Finish {
        tenant_id: String,
        run: String,
    },
}

/// A task's failure, named for the state machine.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl StepError {
    pub fn name(&self) -> &'static str {
        match self {
            StepError::Transient(_) => "TransientStepError",
            StepError::Permanent(_) => "PermanentStepError",
        }
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(e: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.name().to_string(),
            error_message: e.to_string(),
        }
    }
}

impl From<ServiceFailure> for StepError {
    fn from(f: ServiceFailure) -> Self {
        let text = short(&f.to_string());
        if f.transient {
            StepError::Transient(text)
        } else {
            StepError::Permanent(text)
        }
    }
}

impl From<shared::store::StoreError> for StepError {
    fn from(e: shared::store::StoreError) -> Self {
        use shared::store::StoreError::*;
        match e {
            Unavailable(_) => StepError::Transient("the table is unavailable".into()),
            other => StepError::Permanent(short(&format!(
                "the table refused: {}",
                shared::runtime::logging::chain(&other)
            ))),
        }
    }
}

/// What a step did when it succeeded.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub state: StepState,
    /// `unchanged`, `created`, `repaired`, `restored`, `retired`, `purged` or `skipped`.
    pub outcome: &'static str,
    pub artifact: Option<String>,
    pub message: Option<String>,
}

impl Done {
    pub fn ok(outcome: &'static str, artifact: Option<String>) -> Self {
        Done {
            state: StepState::Ok,
            outcome,
            artifact,
            message: None,
        }
    }

    pub fn skipped(why: &str) -> Self {
        Done {
            state: StepState::Skipped,
            outcome: "skipped",
            artifact: None,
            message: Some(why.to_string()),
        }
    }
}

fn tenant_id(raw: &str) -> Result<TenantId, StepError> {
    TenantId::parse(raw)
        .ok_or_else(|| StepError::Permanent("the task names no valid tenant".into()))
}

/// Runs one task. The result is the task's output in the state machine.
pub async fn handle(app: &App, input: Value) -> Result<Value, StepError> {
    let task: Task = serde_json::from_value(input)
        .map_err(|e| StepError::Permanent(format!("invalid task input: {e}")))?;
    match task {
        Task::Claim {
            tenant_id: id,
            run,
            kind,
        } => {
            // The state machine passes the event's `detail-type`; the reconcile, `Reconcile`.
            let cause = RunCause::parse(&kind).ok_or_else(|| {
                StepError::Permanent(format!(
                    "a run started by an unknown cause: {}",
                    short(&kind)
                ))
            })?;
            let claim = record::claim(app, &tenant_id(&id)?, &run, cause).await?;
            tracing::info!(tenant_id = %id, run = %run, kind = %kind, mode = claim.mode, reason = %claim.reason, "claim");
            Ok(json!({"mode": claim.mode, "reason": claim.reason}))
        }
        Task::Step {
            tenant_id: id,
            run,
            step,
        } => run_step(app, &tenant_id(&id)?, &run, step).await,
        Task::Fail {
            tenant_id: id,
            run,
            step,
            error,
        } => {
            record::fail(app, &tenant_id(&id)?, &run, step, &error).await?;
            tracing::warn!(tenant_id = %id, run = %run, step = step.as_str(), error = %error, "step gave up");
            Ok(json!({"step": step, "state": "error"}))
        }
        Task::Finish { tenant_id: id, run } => {
            let outcome = record::finish(app, &tenant_id(&id)?, &run).await?;
            tracing::info!(tenant_id = %id, run = %run, outcome = %outcome, "run finished");
            Ok(json!({"outcome": outcome}))
        }
    }
}

/// One step's effects, in each mode of a run. Each step module implements it; `run_step`
/// chooses the implementation from the task's `Step` and the operation from the run's mode.
pub(crate) trait StepWork {
    /// Creates the artifact, or restores it after a deletion, or repairs it after drift.
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError>;
    /// Retires the artifact reversibly (a deleted tenant, within its recovery window).
    async fn offboard(app: &App, t: &Tenant) -> Result<Done, StepError>;
    /// Removes the artifact for good (the recovery window has passed).
    async fn purge(app: &App, t: &Tenant) -> Result<Done, StepError>;
}

async fn work<W: StepWork>(
    app: &App,
    t: &Tenant,
    mode: RunMode,
    prev: &StepStatus,
) -> Result<Done, StepError> {
    match mode {
        RunMode::Provision => W::provision(app, t, prev).await,
        RunMode::Offboard => W::offboard(app, t).await,
        RunMode::Purge => W::purge(app, t).await,
    }
}

async fn run_step(app: &App, id: &TenantId, run: &str, step: Step) -> Result<Value, StepError> {
    let started = std::time::Instant::now();
    let (tenant, mode) = record::held(app, id, run).await?;
    let prev = record::step_status(&tenant, mode, step);
    let result = run_step_work(app, &tenant, mode, step, &prev).await;
    let outcome = record::record_step(app, id, run, step, &prev, &result).await?;
    let name = step.as_str();
    shared::runtime::metrics::step(name, outcome, started.elapsed().as_secs_f64() * 1000.0, run);
    tracing::info!(tenant = %tenant.slug, run = %run, step = name, mode = mode.as_str(), outcome = %outcome, "step");
    match result {
        Ok(done) => Ok(json!({"step": name, "state": done.state, "outcome": done.outcome})),
        Err(e) => Err(e),
    }
}

async fn run_step_work(
    app: &App,
    tenant: &Tenant,
    mode: RunMode,
    step: Step,
    prev: &StepStatus,
) -> Result<Done, StepError> {
    #[cfg(feature = "faults")]
    app.faults.check(tenant, step).await?;
    match step {
        Step::Storage => work::<storage::Storage>(app, tenant, mode, prev).await,
        Step::Secrets => work::<secrets::Secrets>(app, tenant, mode, prev).await,
        Step::Invitation => work::<invitation::Invitation>(app, tenant, mode, prev).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_task_event_is_a_task() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/provision-step");
        let mut n = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let task: Task = serde_json::from_str(&text).unwrap();
            if let Task::Claim { tenant_id, .. } | Task::Step { tenant_id, .. } = &task {
                assert!(TenantId::parse(tenant_id).is_some());
            }
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn errors_carry_the_names_the_state_machine_matches() {
        let asl = include_str!("../../../infra/statemachines/provisioning.asl.json");
        for e in [
            StepError::Transient("x".into()),
            StepError::Permanent("y".into()),
        ] {
            let d: lambda_runtime::Diagnostic = e.into();
            assert!(d.error_type.ends_with("StepError"));
            if d.error_type == "TransientStepError" {
                assert!(asl.contains(&format!("\"{}\"", d.error_type)));
            }
        }
    }

    #[test]
    fn a_task_naming_an_unknown_step_is_refused_before_it_runs() {
        let bad = json!({"action": "step", "tenant_id": "t", "run": "r", "step": "backups"});
        assert!(serde_json::from_value::<Task>(bad).is_err());
        let good = json!({"action": "step", "tenant_id": "t", "run": "r", "step": "secrets"});
        assert!(matches!(
            serde_json::from_value::<Task>(good),
            Ok(Task::Step {
                step: Step::Secrets,
                ..
            })
        ));
    }
}
