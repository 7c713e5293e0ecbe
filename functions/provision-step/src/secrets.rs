//! `secrets`: a per-tenant data key in Secrets Manager, named `<prefix>tenants/<id>` and
//! referenced by ARN on the tenant.
//!
//! - provision: the secret exists (created with 32 random bytes if missing; restored if it
//!   was scheduled for deletion).
//! - offboard: the secret is scheduled for deletion with the recovery window.
//! - purge: the secret is deleted without recovery.

use crate::{App, Done, StepError, StepWork};
use aws_sdk_secretsmanager::error::SdkError;
use aws_sdk_secretsmanager::types::Tag;
use base64::Engine;
use shared::domain::tenant::{StepState, StepStatus, Tenant};
use shared::provisioning::{secret_name, secret_presence, service_failure, Presence};

pub(crate) struct Secrets;

impl StepWork for Secrets {
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
        let name = secret_name(&app.secret_prefix, t);
        match secret_presence(&app.secrets, &name).await? {
            (Presence::Present, arn) => Ok(Done::ok("unchanged", arn)),
            (Presence::Retired, arn) => {
                let out = app
                    .secrets
                    .restore_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| service_failure("restoring the tenant secret", e))?;
                Ok(Done::ok("restored", out.arn().map(str::to_string).or(arn)))
            }
            (Presence::Missing, _) => {
                let arn = create(app, t, &name).await?;
                let outcome = if prev.state == StepState::Ok {
                    "repaired"
                } else {
                    "created"
                };
                Ok(Done::ok(outcome, Some(arn)))
            }
        }
    }

    async fn offboard(app: &App, t: &Tenant) -> Result<Done, StepError> {
        let name = secret_name(&app.secret_prefix, t);
        match secret_presence(&app.secrets, &name).await? {
            (Presence::Missing, _) => Ok(Done::skipped("no secret to retire")),
            (Presence::Retired, arn) => Ok(Done::ok("retired", arn)),
            (Presence::Present, arn) => {
                app.secrets
                    .delete_secret()
                    .secret_id(&name)
                    .recovery_window_in_days(app.provisioning.secret_recovery_days())
                    .send()
                    .await
                    .map_err(|e| service_failure("scheduling the tenant secret's deletion", e))?;
                Ok(Done::ok("retired", arn))
            }
        }
    }

    async fn purge(app: &App, t: &Tenant) -> Result<Done, StepError> {
        let name = secret_name(&app.secret_prefix, t);
        let gone = |what: &str| Done {
            message: Some(what.to_string()),
            ..Done::ok("purged", None)
        };
        let (presence, _) = secret_presence(&app.secrets, &name).await?;
        if presence == Presence::Missing {
            return Ok(gone("no secret left"));
        }
        if presence == Presence::Retired {
            // A secret in its recovery window cannot be force-deleted: bring it back first.
            app.secrets
                .restore_secret()
                .secret_id(&name)
                .send()
                .await
                .map_err(|e| service_failure("restoring the secret to purge it", e))?;
        }
        app.secrets
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| service_failure("deleting the tenant secret", e))?;
        Ok(gone("secret deleted without recovery"))
    }
}

/// Creates the secret; a concurrent creation of the same name counts as success.
async fn create(app: &App, t: &Tenant, name: &str) -> Result<String, StepError> {
    let key: [u8; 32] = rand::random();
    let value = base64::engine::general_purpose::STANDARD.encode(key);
    let tag = Tag::builder().key("tenant_id").value(t.id.as_str()).build();
    match app
        .secrets
        .create_secret()
        .name(name)
        .description("Per-tenant data key (made by provisioning)")
        .secret_string(value)
        .tags(tag)
        .send()
        .await
    {
        Ok(out) => out
            .arn()
            .map(str::to_string)
            .ok_or_else(|| StepError::Transient("the new secret has no ARN yet".into())),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_exists_exception() => {
            match secret_presence(&app.secrets, name).await? {
                (_, Some(arn)) => Ok(arn),
                _ => Err(StepError::Transient("the secret is being created".into())),
            }
        }
        Err(e) => Err(service_failure("creating the tenant secret", e).into()),
    }
}
