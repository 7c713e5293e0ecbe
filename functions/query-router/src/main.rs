//! Builds the query router's store, keys and data key once per process and hands the handler
//! to the runtime. Database pools are made on first use and live as long as the process.

use shared::startup::{serve, Startup};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let cfg = s.read(shared::config::QueryConfig::from_env())?;
    let secrets = shared::aws_client!(shared::secretsmanager, &s.sdk);
    let raw = shared::aws::secret_string(&secrets, &cfg.data_key_secret_id).await?;
    let data_key = shared::crypto::DataKey::from_base64(&raw)?;
    let app = query_router::App::new(
        s.store(),
        s.verifying_keys().await?,
        data_key,
        cfg.allow_private_hosts,
        cfg.statement_timeout_ms,
    );
    serve(app, query_router::handle).await
}
