//! Builds reconcile's clients and verify-only keys once per process and hands every
//! invocation (the route, the schedule, a direct invoke) to `reconcile::handle_event`.

use shared::runtime::startup::Startup;
use std::time::Duration;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let s = Startup::begin().await?;
    let storage = s.read(shared::runtime::config::StorageConfig::from_env())?;
    let provisioning = s.read(shared::runtime::config::ProvisioningConfig::from_env())?;
    let state_machine_arn = std::env::var("STATE_MACHINE_ARN")
        .map_err(|_| "environment variable STATE_MACHINE_ARN is required")?;
    let app = reconcile::App {
        store: s.store(),
        keys: s.verifying_keys().await?,
        s3: s.s3(),
        secrets: s.secrets(),
        sfn: shared::aws_client!(aws_sdk_sfn, &s.sdk),
        events: s.events()?,
        mailer: s.mailer()?,
        bucket: storage.bucket,
        secret_prefix: std::env::var("TENANT_SECRET_PREFIX").unwrap_or_default(),
        state_machine_arn,
        stale_after_secs: provisioning.stale_after_secs,
        // The template gives the function 120 s; the runs it waits for take seconds.
        wait: Duration::from_secs(60),
        // A pass walks for 30 s at most (300 pages of tenants here take about that), then
        // leaves 60 s for the runs it started and 30 s of margin.
        walk: Duration::from_secs(30),
    };
    let app: &'static reconcile::App = Box::leak(Box::new(app));
    s.started().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            // Every line of the run names its invocation (an HTTP request's lines, its request).
            let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
            // Boxed: the handler's future is too deep to nest inline in the runtime's.
            Ok::<_, std::convert::Infallible>(
                Box::pin(reconcile::handle_event(app, event.payload))
                    .instrument(span)
                    .await,
            )
        },
    ))
    .await
}
