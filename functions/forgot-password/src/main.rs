//! Builds forgot-password's clients once per process and hands the handler to the runtime.

use shared::runtime::config::ResetConfig;
use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let app = forgot_password::App {
        store: s.store(),
        mailer: s.mailer()?,
        config: s.read(ResetConfig::from_env())?,
        links: s.links()?,
    };
    s.serve(app, forgot_password::handle).await
}
