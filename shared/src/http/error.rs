//! The one place where failures become HTTP statuses and public messages. Every error code the
//! API answers is one variant of [`ErrorCode`], with its status and its string (the catalogue);
//! `infra/openapi.yaml`'s `ErrorCode` lists the same codes (`shared/tests/error_catalogue.rs`
//! holds the two equal). Domain and store errors convert into `ApiError` here, in the HTTP
//! layer; the internal cause of a 5xx goes to the log, never to the client.

use std::borrow::Cow;
use std::error::Error as StdError;

type Cause = Box<dyn StdError + Send + Sync>;

/// Declares the catalogue: each code's variant, HTTP status and string, in one line.
macro_rules! catalogue {
    ($($(#[doc = $doc:literal])* $variant:ident = $status:literal $code:literal,)*) => {
        /// Every error code the API answers, with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// The whole catalogue, in order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The HTTP status every answer with this code has.
            pub const fn status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// The code as clients see it (`SNAKE_CASE`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

catalogue! {
    // 400: the request itself is wrong.
    /// Generic malformed request (an unreadable event, a bad parameter).
    InvalidRequest = 400 "INVALID_REQUEST",
    InvalidJson = 400 "INVALID_JSON",
    /// A field failed its rule; the message names the field.
    InvalidField = 400 "INVALID_FIELD",
    InvalidCursor = 400 "INVALID_CURSOR",
    InvalidIdempotencyKey = 400 "INVALID_IDEMPOTENCY_KEY",
    InvalidOrExpiredToken = 400 "INVALID_OR_EXPIRED_TOKEN",
    WeakPassword = 400 "WEAK_PASSWORD",
    InvalidRedirectOrigin = 400 "INVALID_REDIRECT_ORIGIN",
    UnknownTable = 400 "UNKNOWN_TABLE",
    InvalidValue = 400 "INVALID_VALUE",
    InvalidQuery = 400 "INVALID_QUERY",
    /// A second-factor code (TOTP or recovery code) that did not verify, or was used already.
    InvalidMfaCode = 400 "INVALID_MFA_CODE",
    // 401: who the caller is could not be established.
    InvalidCredentials = 401 "INVALID_CREDENTIALS",
    InvalidToken = 401 "INVALID_TOKEN",
    InvalidRefreshToken = 401 "INVALID_REFRESH_TOKEN",
    /// A sign-in's second-factor token that is unknown, spent or expired: sign in again.
    InvalidMfaToken = 401 "INVALID_MFA_TOKEN",
    // 403: known caller, not allowed.
    OperatorAudienceDenied = 403 "OPERATOR_AUDIENCE_DENIED",
    AccountSuspended = 403 "ACCOUNT_SUSPENDED",
    TenantSuspended = 403 "TENANT_SUSPENDED",
    Forbidden = 403 "FORBIDDEN",
    /// An operator without a second factor: only enrolling one is open to them.
    MfaEnrollmentRequired = 403 "MFA_ENROLLMENT_REQUIRED",
    /// The action needs a sign-in that passed a second factor within the last minutes.
    MfaRequired = 403 "MFA_REQUIRED",
    /// An impersonation token (read-only unless write access was approved) on a change, or on
    /// a change of the account itself, which it never makes.
    ImpersonationReadOnly = 403 "IMPERSONATION_READ_ONLY",
    /// Nobody may act as this user here: an operator, a partner admin, oneself, or a user of a
    /// tenant that is not active.
    ImpersonationForbidden = 403 "IMPERSONATION_FORBIDDEN",
    /// Write access as a tenant's user needs an owner's approval first.
    ApprovalRequired = 403 "APPROVAL_REQUIRED",
    // 404: nothing there, or nothing this caller may see.
    RouteNotFound = 404 "ROUTE_NOT_FOUND",
    TenantNotFound = 404 "TENANT_NOT_FOUND",
    PartnerNotFound = 404 "PARTNER_NOT_FOUND",
    MemberNotFound = 404 "MEMBER_NOT_FOUND",
    AdminNotFound = 404 "ADMIN_NOT_FOUND",
    DatabaseNotFound = 404 "DATABASE_NOT_FOUND",
    NotAttached = 404 "NOT_ATTACHED",
    UserNotFound = 404 "USER_NOT_FOUND",
    SessionNotFound = 404 "SESSION_NOT_FOUND",
    PasskeyNotFound = 404 "PASSKEY_NOT_FOUND",
    PlanNotFound = 404 "PLAN_NOT_FOUND",
    FlagNotFound = 404 "FLAG_NOT_FOUND",
    ApprovalNotFound = 404 "APPROVAL_NOT_FOUND",
    /// A record a change applies to vanished under it.
    NotFound = 404 "NOT_FOUND",
    MethodNotAllowed = 405 "METHOD_NOT_ALLOWED",
    // 409: the request conflicts with the current state.
    SlugTaken = 409 "SLUG_TAKEN",
    LastOwner = 409 "LAST_OWNER",
    /// The address belongs to another account (found when a change of address is confirmed).
    EmailTaken = 409 "EMAIL_TAKEN",
    /// The change would leave the platform without an operator who can act.
    LastOperator = 409 "LAST_OPERATOR",
    /// The user has this kind of factor already.
    FactorExists = 409 "FACTOR_EXISTS",
    /// An operator's last second factor stays.
    LastFactor = 409 "LAST_FACTOR",
    /// An account holds at most 10 passkeys.
    PasskeyLimit = 409 "PASSKEY_LIMIT",
    AlreadyMember = 409 "ALREADY_MEMBER",
    AlreadyAdmin = 409 "ALREADY_ADMIN",
    PartnerTerminated = 409 "PARTNER_TERMINATED",
    /// A partner admin's partner has as many live tenants as its quota allows.
    PartnerTenantLimit = 409 "PARTNER_TENANT_LIMIT",
    /// A tenant has as many registered databases as its plan allows.
    DatabaseLimit = 409 "DATABASE_LIMIT",
    /// A tenant has as many seats (members and pending invitations) as its plan allows.
    SeatLimit = 409 "SEAT_LIMIT",
    /// An upload would take the tenant's stored bytes past its plan's limit.
    StorageLimit = 409 "STORAGE_LIMIT",
    /// An upload would take the tenant's stored objects past its plan's limit.
    ObjectLimit = 409 "OBJECT_LIMIT",
    /// A plan id of the catalogue is taken.
    PlanExists = 409 "PLAN_EXISTS",
    /// A plan with tenants on it cannot be deleted (retire it instead).
    PlanInUse = 409 "PLAN_IN_USE",
    /// A built-in plan (free, pro, enterprise) can be retired but not deleted.
    PlanBuiltin = 409 "PLAN_BUILTIN",
    /// A retired plan takes no new tenants.
    PlanRetired = 409 "PLAN_RETIRED",
    /// A flag key of the catalogue is taken.
    FlagExists = 409 "FLAG_EXISTS",
    /// One axis of a flag holds at most 100 overrides.
    OverrideLimit = 409 "OVERRIDE_LIMIT",
    InvalidState = 409 "INVALID_STATE",
    OffboardingInProgress = 409 "OFFBOARDING_IN_PROGRESS",
    RecoveryWindowPassed = 409 "RECOVERY_WINDOW_PASSED",
    ConcurrentUpdate = 409 "CONCURRENT_UPDATE",
    IdempotencyInProgress = 409 "IDEMPOTENCY_IN_PROGRESS",
    PreconditionFailed = 412 "PRECONDITION_FAILED",
    /// The change needs an `If-Match` header (the `ETag` of what was read).
    PreconditionRequired = 428 "PRECONDITION_REQUIRED",
    PayloadTooLarge = 413 "PAYLOAD_TOO_LARGE",
    // 422: well-formed, but cannot be done as asked.
    IdempotencyKeyReused = 422 "IDEMPOTENCY_KEY_REUSED",
    DatabaseUnreachable = 422 "DATABASE_UNREACHABLE",
    DatabaseHostNotAllowed = 422 "DATABASE_HOST_NOT_ALLOWED",
    /// `sslmode=disable` where the platform forbids plain-text database connections.
    DatabaseTlsRequired = 422 "DATABASE_TLS_REQUIRED",
    QueryTimeout = 422 "QUERY_TIMEOUT",
    ReadOnly = 422 "READ_ONLY",
    PermissionDenied = 422 "PERMISSION_DENIED",
    DatabaseError = 422 "DATABASE_ERROR",
    /// A query's rows are more than one answer may carry.
    ResultTooLarge = 422 "RESULT_TOO_LARGE",
    TooManyRequests = 429 "TOO_MANY_REQUESTS",
    /// API Gateway's own answer when its throttles refuse (the template's gateway responses).
    Throttled = 429 "THROTTLED",
    InternalError = 500 "INTERNAL_ERROR",
    ServiceUnavailable = 503 "SERVICE_UNAVAILABLE",
    /// API Gateway's own answer when a function outlives the integration timeout.
    GatewayTimeout = 504 "GATEWAY_TIMEOUT",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is refused; the status is the code's.
    #[error("refused ({code}): {message}")]
    Refused {
        code: ErrorCode,
        message: Cow<'static, str>,
    },
    /// `allow` is the resource's methods, for the `Allow` header (RFC 9110).
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// `If-Match` named a version that is no longer current.
    #[error("precondition failed")]
    PreconditionFailed,
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
    /// A refusal with `code` (its status from the catalogue) and a message for the client.
    pub fn refused(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Refused {
            code,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::refused(ErrorCode::InvalidRequest, message)
    }

    /// A path this function serves, with a method it does not.
    pub fn method_not_allowed(allow: &[&str]) -> Self {
        ApiError::MethodNotAllowed {
            allow: allow.join(", "),
        }
    }

    /// Another request changed the record between this one's read and its write.
    pub fn concurrent_update() -> Self {
        ApiError::refused(
            ErrorCode::ConcurrentUpdate,
            "the resource was changed by another request; read it again and retry",
        )
    }

    pub fn route_not_found() -> Self {
        ApiError::refused(ErrorCode::RouteNotFound, "no such route")
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
        self.error_code().status()
    }

    /// The catalogue entry of this answer.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::Refused { code, .. } => *code,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::PreconditionFailed => ErrorCode::PreconditionFailed,
            ApiError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            ApiError::TooManyRequests { .. } => ErrorCode::TooManyRequests,
            ApiError::Unavailable { .. } => ErrorCode::ServiceUnavailable,
            ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// Whether this is a refusal with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.error_code() == code
    }

    /// The text a client sees. 5xx messages are fixed strings: causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Refused { message, .. } => message.to_string(),
            ApiError::MethodNotAllowed { .. } => {
                "this method is not allowed on this route".to_string()
            }
            ApiError::PreconditionFailed => {
                "the resource changed since it was read (If-Match); read it again".to_string()
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
        crate::runtime::logging::chain(self)
    }
}

/// What the store's failures mean to a client. A refused commit is decided by each handler
/// from its typed reasons; what reaches here unhandled is a conflict with another request.
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match err {
            StoreError::Conflict(_) => ApiError::concurrent_update(),
            StoreError::NotFound(what) => {
                ApiError::refused(ErrorCode::NotFound, format!("the {what} no longer exists"))
            }
            StoreError::InvalidCursor => ApiError::refused(
                ErrorCode::InvalidCursor,
                "the cursor is not valid for this list",
            ),
            StoreError::Unavailable(cause) => ApiError::unavailable("database", cause),
            rejected @ StoreError::Rejected(_) => ApiError::internal(rejected),
            corrupt @ StoreError::Corrupt { .. } => ApiError::internal(corrupt),
        }
    }
}

impl crate::store::changes::CommitError {
    /// This failure as an answer: `refused` decides what the store's typed reasons mean for
    /// this request; any other failure answers as a store error.
    pub fn answer(
        self,
        refused: impl FnOnce(&[crate::store::changes::Refusal]) -> ApiError,
    ) -> ApiError {
        use crate::store::changes::CommitError;
        match self {
            CommitError::Refused { reasons } => refused(&reasons),
            CommitError::Store(e) => e.into(),
            e @ CommitError::TooMany => ApiError::internal(e),
        }
    }
}

/// A field that failed its rule, as the client sees it.
impl From<crate::domain::fields::FieldError> for ApiError {
    fn from(e: crate::domain::fields::FieldError) -> Self {
        ApiError::refused(ErrorCode::InvalidField, e.to_string())
    }
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
            Err(e) if e.is(ErrorCode::ConcurrentUpdate) && tries < 3 => {
                let jitter = rand::random::<u64>() % 25;
                tokio::time::sleep(std::time::Duration::from_millis(5 + jitter)).await;
            }
            other => return other,
        }
    }
}
