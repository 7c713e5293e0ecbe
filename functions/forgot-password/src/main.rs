//! Wires clients once per process and hands the handler to the Lambda runtime.

use lambda_http::{service_fn, Error};
use shared::config::{Config, ResetConfig};
use shared::email::SesMailer;
use shared::store::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let reset = ResetConfig::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = shared::aws::sdk_config().await;
    let store = DynamoStore::new(shared::dynamodb::Client::new(&sdk), &config.table_name);
    let mailer = SesMailer::new(shared::sesv2::Client::new(&sdk), &reset.sender_email);
    let app = forgot_password::App {
        store: Arc::new(store),
        mailer: Arc::new(mailer),
        config: reset,
    };
    let app = &app;
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(forgot_password::handle(app, req).await)
    }))
    .await
}
