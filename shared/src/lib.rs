//! The one library every function builds on: configuration, AWS clients, the HTTP envelope
//! and typed errors, request context, logging, identity (passwords, tokens, rate limits) and the
//! single-table store. Handlers live in `functions/<name>/src/lib.rs`; rules about data live here.

pub mod auth;
pub mod aws;
pub mod call;
pub mod call_log;
pub mod config;
pub mod cors;
pub mod crypto;
pub mod domain;
pub mod email;
pub mod envelope;
pub mod error;
pub mod events;
pub mod fields;
pub mod idempotency;
pub mod invitation;
pub mod links;
pub mod logging;
pub mod metrics;
pub mod page;
pub mod partner;
pub mod provisioning;
pub mod proxy_event;
pub mod ratelimit;
pub mod request;
pub mod startup;
pub mod store;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;

pub use envelope::ApiResponse;
pub use error::{ApiError, ErrorCode};

// The SDK crates, re-exported so function crates build clients without their own copies.
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_eventbridge as eventbridge;
pub use aws_sdk_secretsmanager as secretsmanager;
pub use aws_sdk_sesv2 as sesv2;
