//! The one place where failures become HTTP statuses and public messages. Domain modules keep
//! their own `thiserror` enums and convert into `ApiError`; the internal cause of a 5xx goes to
//! the log, never to the client.

use std::error::Error as StdError;

type Cause = Box<dyn StdError + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request ({code}): {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("unauthorized ({code})")]
    Unauthorized {
        code: &'static str,
        message: &'static str,
    },
    #[error("forbidden ({code})")]
    Forbidden {
        code: &'static str,
        message: &'static str,
    },
    #[error("not found ({code})")]
    NotFound { code: &'static str, message: String },
    /// `allow` is the resource's methods, for the `Allow` header (RFC 9110).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("conflict ({code}): {message}")]
    Conflict { code: &'static str, message: String },
    /// `If-Match` named a version that is no longer current.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Well-formed, but contradicts what an earlier request established (e.g. an
    /// `Idempotency-Key` reused with a different body).
    #[error("unprocessable ({code}): {message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("too many requests, retry after {retry_after_secs}s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("dependency unavailable: {dependency}")]
    Unavailable {
        dependency: &'static str,
        #[source]
        cause: Cause,
    },
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::bad_request("INVALID_REQUEST", message)
    }

    /// A path this function serves, with a method it does not.
    pub fn method_not_allowed(allow: &[&str]) -> Self {
        ApiError::MethodNotAllowed {
            allow: allow.join(", "),
        }
    }

    /// Another request changed the record between this one's read and its write.
    pub fn concurrent_update() -> Self {
        ApiError::Conflict {
            code: "CONCURRENT_UPDATE",
            message: "the resource was changed by another request; read it again and retry".into(),
        }
    }

    pub fn route_not_found() -> Self {
        ApiError::NotFound {
            code: "ROUTE_NOT_FOUND",
            message: "no such route".into(),
        }
    }

    pub fn unavailable(dependency: &'static str, cause: impl Into<Cause>) -> Self {
        ApiError::Unavailable {
            dependency,
            cause: cause.into(),
        }
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        ApiError::Internal(cause.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict { .. } => 409,
            ApiError::PreconditionFailed => 412,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Unprocessable { .. } => 422,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => code,
            ApiError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            ApiError::PreconditionFailed => "PRECONDITION_FAILED",
            ApiError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            ApiError::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            ApiError::Unavailable { .. } => "SERVICE_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The text a client sees. 5xx messages are fixed strings: causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::BadRequest { message, .. }
            | ApiError::NotFound { message, .. }
            | ApiError::Conflict { message, .. }
            | ApiError::Unprocessable { message, .. } => message.clone(),
            ApiError::MethodNotAllowed { .. } => {
                "this method is not allowed on this route".to_string()
            }
            ApiError::PreconditionFailed => {
                "the resource changed since it was read (If-Match); read it again".to_string()
            }
            ApiError::Unauthorized { message, .. } | ApiError::Forbidden { message, .. } => {
                (*message).to_string()
            }
            ApiError::PayloadTooLarge { limit } => {
                format!("request body must be at most {limit} bytes")
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                format!("too many attempts; retry after {retry_after_secs} seconds")
            }
            ApiError::Unavailable { .. } => {
                "a service this request depends on is unavailable; retry later".to_string()
            }
            ApiError::Internal(_) => "an internal error occurred".to_string(),
        }
    }

    /// The full cause chain, for the log line of a failed request.
    pub fn cause_chain(&self) -> String {
        chain(self)
    }
}

/// An error and all its causes on one line, for logs.
pub fn chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Runs a read-check-write request again (three tries in all) when its version-conditioned
/// write lost to a concurrent change (`CONCURRENT_UPDATE`). Each try reads afresh and re-checks
/// everything, and a refused transaction wrote nothing, so a retry is safe. Provisioning
/// writes a new tenant's record several times in its first second: without this, a client's
/// first change to a new tenant would often be refused for no reason of its own. A write with
/// `If-Match` answers 412 instead and is never retried.
pub async fn retry_on_contention<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(ApiError::Conflict {
                code: "CONCURRENT_UPDATE",
                ..
            }) if tries < 3 => {
                let jitter = rand::random::<u64>() % 25;
                tokio::time::sleep(std::time::Duration::from_millis(5 + jitter)).await;
            }
            other => return other,
        }
    }
}
