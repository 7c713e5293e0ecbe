//! Builds users' clients and verify-only keys once per process and hands every invocation (an
//! HTTP request, or the direct invocation that invites the first operator) to
//! `users::handle_event`.

use shared::runtime::startup::Startup;
use tracing::Instrument;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let s = Startup::begin().await?;
    // The token keys (with the store's first connection) and the factor key: read at once.
    let (keys, factor_key) = tokio::join!(s.verifying_keys_with_cursor_key(), s.factor_key());
    let app = users::App {
        store: s.store(),
        keys: keys?,
        mailer: s.mailer()?,
        links: s.links()?,
        factor_key: factor_key?,
    };
    let app: &'static users::App = Box::leak(Box::new(app));
    s.started().await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
            Ok::<_, std::convert::Infallible>(
                Box::pin(users::handle_event(app, event.payload))
                    .instrument(span)
                    .await,
            )
        },
    ))
    .await
}
