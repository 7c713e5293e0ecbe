//! Builds tenants' clients and verify-only keys once per process and hands the handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let provisioning = s.read(shared::runtime::config::ProvisioningConfig::from_env())?;
    let app = tenants::App {
        store: s.store(),
        keys: s.verifying_keys_with_cursor_key().await?,
        mailer: s.mailer()?,
        events: s.events()?,
        links: s.links()?,
        local_mode: s.config.local_mode,
        recovery_window_secs: provisioning.recovery_window_secs,
        partner_max_tenants: provisioning.partner_max_tenants,
        seeds: s.read(shared::runtime::config::builtin_plans_from_env())?,
        flags: shared::flags::Evaluator::new(),
    };
    s.serve(app, tenants::handle).await
}
