//! The one library every function builds on. Each folder is one layer; a function crate holds
//! only its routes and handlers (`functions/<name>/src/`), and every rule about data is here.
//!
//! | layer | what it holds |
//! |---|---|
//! | `http` | the proxy event, the request context and entry point, the envelope, the error catalogue, CORS, paging, idempotency, `Call` |
//! | `domain` | users, roles and ids; tenants, partners and their field rules |
//! | `access` | passwords, tokens, the caller, the tenant gate, rate limits, sealing of tenant secrets |
//! | `store` | the single-table store (DynamoDB and in-memory), its changes and typed refusals |
//! | `provisioning` | the artifacts a tenant gets and the pure rules of a provisioning run |
//! | `mail` | the mailer and its templates, invitations, where mailed links point |
//! | `events` | the domain events and the outbox |
//! | `runtime` | configuration, AWS clients, a function's start, logs, metrics, the clock |
//!
//! How they depend on each other: `domain` uses no other layer. `store` uses `domain`, the
//! clock and the hashing primitives of `access`, and never `http` (the store knows nothing of
//! answers; `http::error` converts its errors and refusals). `provisioning` uses `domain` and
//! `events`. `access`, `mail`, `events` and `http` use the store. `runtime::startup` wires a
//! function's parts together, so it uses them all.

pub mod access;
pub mod domain;
pub mod events;
pub mod flags;
pub mod http;
pub mod mail;
pub mod plans;
pub mod provisioning;
pub mod runtime;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use http::envelope::ApiResponse;
pub use http::error::{ApiError, ErrorCode};

// The SDK crates, re-exported so function crates build clients without their own copies.
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_eventbridge as eventbridge;
pub use aws_sdk_secretsmanager as secretsmanager;
pub use aws_sdk_sesv2 as sesv2;
