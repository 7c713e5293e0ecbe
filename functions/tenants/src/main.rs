//! Wires clients once per process and hands the handler to the Lambda runtime.

use lambda_http::{service_fn, Error};
use shared::auth::jwt::TokenKeys;
use shared::config::Config;
use shared::store::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = shared::aws::sdk_config().await;
    let secrets = shared::secretsmanager::Client::new(&sdk);
    let keys = TokenKeys::load(&secrets, &config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "signing keys unavailable"))?;
    let store = DynamoStore::new(shared::dynamodb::Client::new(&sdk), &config.table_name);
    let app = tenants::App {
        store: Arc::new(store),
        keys,
    };
    let app = &app;
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(tenants::handle(app, req).await)
    }))
    .await
}
