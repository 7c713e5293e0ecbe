//! Builds login's clients and keys once per process and hands the handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::access::password::warm_up();
    let s = Startup::begin().await?;
    // The signing keys and the factor key are read in the background from here on: a sign-in
    // needs them only after the password's verify, so a cold start does not wait for them
    // (a read that fails is tried again by the request that needs it, answered 503 meanwhile).
    let app = login::App {
        store: s.store(),
        keys: s.signing_keys_deferred()?,
        factor_key: s.factor_key_deferred()?,
        mailer: s.mailer()?,
        refresh_ttl_secs: s.config.refresh_token_ttl_secs,
        reuse_grace_secs: s.config.refresh_reuse_grace_secs,
        impersonation_ttl_secs: s.config.impersonation_ttl_secs,
        // Without PLATFORM_ORIGIN (or with an IP address there) passkeys are unavailable; the
        // sign-in itself does not depend on it.
        relying_party: std::env::var("PLATFORM_ORIGIN")
            .ok()
            .and_then(|o| shared::access::passkeys::RelyingParty::from_origin(&o)),
    };
    s.serve(app, login::handle).await
}
