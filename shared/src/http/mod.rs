//! HTTP: what every API function does with a request before and after its handler. The Lambda
//! proxy event (`proxy_event`), the request context and the one entry point that wraps every
//! handler (`request`), the JSON envelope (`envelope`), the error catalogue and its conversions
//! (`error`), CORS (`cors`), the request in hand with its caller (`call`), list paging (`page`)
//! `Idempotency-Key` replay (`idempotency`), and direct invocations beside HTTP (`invoke`).

pub mod call;
pub mod cors;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod invoke;
pub mod proxy_event;
pub mod request;
