//! Builds reset-password's clients once per process and hands the handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::access::password::warm_up();
    let s = Startup::begin().await?;
    let app = reset_password::App {
        store: s.store(),
        mailer: s.mailer()?,
        links: s.links()?,
    };
    s.serve(app, reset_password::handle).await
}
