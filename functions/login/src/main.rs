//! Builds login's clients and keys once per process and hands the handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::access::password::warm_up();
    let s = Startup::begin().await?;
    let app = login::App {
        store: s.store(),
        keys: s.signing_keys().await?,
        refresh_ttl_secs: s.config.refresh_token_ttl_secs,
        reuse_grace_secs: s.config.refresh_reuse_grace_secs,
    };
    s.serve(app, login::handle).await
}
