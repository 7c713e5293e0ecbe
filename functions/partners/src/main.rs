//! Builds partners' clients and verify-only keys once per process and hands the handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let app = partners::App {
        store: s.store(),
        keys: s.verifying_keys_with_cursor_key().await?,
        mailer: s.mailer()?,
        links: s.links()?,
        events: s.events()?,
    };
    s.serve(app, partners::handle).await
}
