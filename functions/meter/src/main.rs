//! Builds the meter's store once per process and hands every S3 notification to
//! `meter::handle`.

use shared::runtime::startup::Startup;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let s = Startup::begin().await?;
    let storage = s.read(shared::runtime::config::StorageConfig::from_env())?;
    let app = meter::App {
        store: s.store(),
        bucket: storage.bucket,
    };
    let app: &'static meter::App = Box::leak(Box::new(app));
    s.started().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let span = tracing::info_span!("notification", request_id = %event.context.request_id);
            meter::handle(app, event.payload).instrument(span).await
        },
    ))
    .await
}
