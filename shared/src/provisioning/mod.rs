//! What provisioning makes for a tenant, where it lives, and how to tell whether it is still
//! there: shared by `provision-step` (which makes and retires the artifacts) and `reconcile`
//! (which looks for drift). The state machine that orders the steps is
//! `infra/statemachines/provisioning.asl.json`. The rules that decide a run (its mode, how a
//! step settles, when a tenant moves on, what the reconcile redrives) are in `rules`.

pub mod rules;

use crate::domain::tenant::Tenant;
use crate::events::EventKind;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What started a provisioning run: one of the platform's events (the state machine passes
/// its `detail-type`), or the reconcile, which starts runs directly with `detail-type`
/// `Reconcile` (not an event the platform publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCause {
    Event(EventKind),
    Reconcile,
}

impl RunCause {
    pub fn as_str(self) -> &'static str {
        match self {
            RunCause::Event(kind) => kind.as_str(),
            RunCause::Reconcile => "Reconcile",
        }
    }

    pub fn parse(s: &str) -> Option<RunCause> {
        match s {
            "Reconcile" => Some(RunCause::Reconcile),
            // Only the kinds that start a run: other events never reach the state machine.
            other => EventKind::parse(other)
                .filter(|k| EventKind::PROVISIONING.contains(k))
                .map(RunCause::Event),
        }
    }
}

/// The marker object under a tenant's prefix: its existence says the prefix is provisioned.
pub fn marker_key(t: &Tenant) -> String {
    format!("{}.tenant", t.storage_prefix())
}

/// Whether an object key is a tenant's marker (`tenants/<id>/.tenant`): the platform's object,
/// not the tenant's, so its storage usage (the meter, the recount) leaves it out.
pub fn is_marker(key: &str) -> bool {
    key.strip_prefix("tenants/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, name)| name == ".tenant")
}

/// The name of a tenant's data-key secret: `<prefix>tenants/<tenant id>`, where the prefix is
/// the stack's (`TENANT_SECRET_PREFIX`), so the template can grant exactly these secrets.
pub fn secret_name(prefix: &str, t: &Tenant) -> String {
    format!("{prefix}tenants/{}", t.id)
}

/// The object tag that marks a retired tenant's objects; the bucket's lifecycle rule expires
/// objects carrying it once the recovery window has passed.
pub const RETIRED_TAG: (&str, &str) = ("offboarded", "true");

/// Whether an artifact is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Present,
    /// Scheduled for deletion (a secret in its recovery window).
    Retired,
    Missing,
}

/// A failed call to a service, sorted the way the state machine retries: transient
/// (throttling, timeouts, 5xx, no connection) or permanent (anything the same call would get
/// again: refused, invalid, not allowed).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct ServiceFailure {
    pub transient: bool,
    pub what: &'static str,
    pub cause: String,
}

/// Sorts an SDK error (any service) into transient or permanent.
pub fn service_failure<E>(what: &'static str, err: SdkError<E, HttpResponse>) -> ServiceFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            let status = e.raw().status().as_u16();
            let code = e.err().code().unwrap_or_default();
            status == 429 || status >= 500 || THROTTLING_CODES.contains(&code)
        }
        _ => false,
    };
    ServiceFailure {
        transient,
        what,
        cause: aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
    }
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "InternalServiceError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// Is the tenant's marker object there?
pub async fn marker_presence(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    t: &Tenant,
) -> Result<Presence, ServiceFailure> {
    match s3
        .head_object()
        .bucket(bucket)
        .key(marker_key(t))
        .send()
        .await
    {
        Ok(_) => Ok(Presence::Present),
        Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(Presence::Missing),
        Err(e) => Err(service_failure("reading the storage marker", e)),
    }
}

/// Is the tenant's secret there, retired (scheduled for deletion) or gone? With its ARN.
pub async fn secret_presence(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<(Presence, Option<String>), ServiceFailure> {
    match sm.describe_secret().secret_id(name).send().await {
        Ok(out) => {
            let presence = if out.deleted_date().is_some() {
                Presence::Retired
            } else {
                Presence::Present
            };
            Ok((presence, out.arn().map(str::to_string)))
        }
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {
            Ok((Presence::Missing, None))
        }
        Err(e) => Err(service_failure("reading the tenant secret", e)),
    }
}
