//! Builds the query router's store, keys and data key once per process and hands the handler
//! to the runtime. Database pools are made on first use and live as long as the process.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let cfg = s.read(shared::runtime::config::QueryConfig::from_env())?;
    let seeds = s.read(shared::runtime::config::builtin_plans_from_env())?;
    let secrets = shared::aws_client!(shared::secretsmanager, &s.sdk);
    // The data key and the token keys are independent reads: made at once.
    let (raw, keys) = tokio::join!(
        s.timed(
            "data-key",
            shared::runtime::aws::secret_string(&secrets, &cfg.data_key_secret_id),
        ),
        s.verifying_keys_with_cursor_key()
    );
    let data_key = shared::access::crypto::DataKey::from_base64(&raw?)?;
    let app = query_router::App::new(s.store(), keys?, data_key, &cfg, seeds);
    s.serve(app, query_router::handle).await
}
