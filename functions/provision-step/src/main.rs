//! Builds provision-step's clients once per process and hands the task handler to the runtime.

use shared::runtime::startup::Startup;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let s = Startup::begin().await?;
    let storage = s.read(shared::runtime::config::StorageConfig::from_env())?;
    let app = provision_step::App {
        store: s.store(),
        s3: s.s3(),
        secrets: s.secrets(),
        mailer: s.mailer()?,
        links: s.links()?,
        bucket: storage.bucket,
        secret_prefix: std::env::var("TENANT_SECRET_PREFIX").unwrap_or_default(),
        provisioning: s.read(shared::runtime::config::ProvisioningConfig::from_env())?,
        events: Some(s.events()?),
        #[cfg(feature = "faults")]
        faults: provision_step::faults::Faults {
            client: shared::aws_client!(aws_sdk_dynamodb, &s.sdk),
            table: s.config.table_name.clone(),
        },
    };
    let app: &'static provision_step::App = Box::leak(Box::new(app));
    s.started().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            // Every line of the task names its invocation, as request lines name their request.
            let span = tracing::info_span!("task", request_id = %event.context.request_id);
            // Boxed: the handler's future is too deep to nest inline in the runtime's.
            Box::pin(provision_step::handle(app, event.payload))
                .instrument(span)
                .await
        },
    ))
    .await
}
