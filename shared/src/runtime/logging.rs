//! JSON log lines on stdout. Every line inside a request carries that request's span fields
//! (`request_id`, method, path). Nothing here ever formats a password, token or secret: callers
//! log ids and outcomes, never credentials.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once per process (`RUST_LOG` overrides the `info` default).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::stdout)
        .try_init();
}

/// An error and all its causes on one line, for logs.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
