//! Wires clients once per process and hands the handler to the Lambda runtime.

use lambda_http::{service_fn, Error};
use shared::auth::jwt::TokenKeys;
use shared::config::Config;
use shared::store::DynamoStore;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let started = std::time::Instant::now();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let sdk = shared::aws::sdk_config().await;
    let secrets = shared::secretsmanager::Client::new(&sdk);
    let secret = shared::aws::secret_string(&secrets, &config.jwt_signing_key_secret_id)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "signing keys unavailable"))?;
    let keys =
        TokenKeys::from_secret_json(&secret, &config.jwt_issuer, config.access_token_ttl_secs)
            .inspect_err(|e| tracing::error!(error = %e, "signing keys invalid"))?;
    let store = DynamoStore::new(shared::dynamodb::Client::new(&sdk), &config.table_name);
    let app = login::App {
        store: Arc::new(store),
        keys,
        refresh_ttl_secs: config.refresh_token_ttl_secs,
    };
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "login initialised"
    );
    let app = &app;
    lambda_http::run(service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(login::handle(app, req).await)
    }))
    .await
}
