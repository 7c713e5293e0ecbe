//! `POST /auth/forgot-password` `{email}`: always the same 200 body, and never faster than the
//! configured floor, whether the email is known, unknown, disabled or rate-limited. For a known
//! active user it stores a fresh single-use token (only its SHA-256) and emails a link. The link
//! points at the user's tenant's primary redirect origin only when the user is that tenant's
//! alone (`shared::mail::links`); otherwise at `PLATFORM_ORIGIN`. The client's `Host` or any URL it
//! sends is ignored.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::access::opaque;
use shared::access::ratelimit::{self, Decision, RatePolicy};
use shared::domain::{Email, User};
use shared::http::request::{json_body, matched, RequestContext, DEFAULT_BODY_LIMIT};
use shared::mail::links::link_target;
use shared::mail::{self, Mailer};
use shared::runtime::config::{LinkConfig, ResetConfig};
use shared::runtime::time::now_unix;
use shared::store::{Store, StoreError};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Reset requests per client address (IPv6: per /64) per hour.
pub const REQUESTS_PER_ADDRESS: RatePolicy = RatePolicy {
    name: "forgot-ip",
    limit: 5,
    window_secs: 3600,
};
/// Reset requests per email per hour.
pub const REQUESTS_PER_EMAIL: RatePolicy = RatePolicy {
    name: "forgot-email",
    limit: 3,
    window_secs: 3600,
};

pub struct App {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub config: ResetConfig,
    pub links: LinkConfig,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Forgot,
}

const ROUTES: &[(&str, &str, Route)] = &[("POST", "/auth/forgot-password", Route::Forgot)];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match matched(&req, ROUTES)? {
        Route::Forgot => forgot_password(app, &ctx, &req).await,
    }
}

#[derive(Deserialize)]
struct ForgotBody {
    email: String,
}

/// The one answer every well-formed request gets.
pub fn accepted() -> serde_json::Value {
    json!({"message": "If an account exists for this email, a password reset link has been sent to it."})
}

async fn forgot_password(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<ApiResponse, ApiError> {
    // The shape of the input says nothing about accounts, so a malformed request fails fast.
    let body: ForgotBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let floor = Instant::now() + Duration::from_millis(app.config.min_response_ms);

    let result = request_reset(app, ctx, &email).await;
    let elapsed_over = Instant::now().saturating_duration_since(floor);
    if !elapsed_over.is_zero() {
        tracing::warn!(over_ms = elapsed_over.as_millis() as u64, "forgot-password work exceeded the response floor; raise FORGOT_PASSWORD_MIN_RESPONSE_MS");
    }
    tokio::time::sleep_until(floor).await;
    match result {
        Ok(()) => Ok(ApiResponse::ok(accepted())),
        // Failures before the account is looked up are the same for every email: report them.
        Err(Failure::BeforeLookup(e)) => Err(e.into()),
        // After it, a 5xx would tell known emails from unknown ones: log and answer as usual.
        Err(after @ Failure::AfterLookup(_)) => {
            tracing::error!(cause = %shared::runtime::logging::chain(&after), "password reset could not be completed");
            Ok(ApiResponse::ok(accepted()))
        }
    }
}

/// Why a reset request did not complete.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// Before the account is looked up: the same for every email, so it may be reported.
    #[error("before the account lookup: {0}")]
    BeforeLookup(#[source] StoreError),
    /// After it: reporting it would tell known emails from unknown ones.
    #[error("after the account lookup: {0}")]
    AfterLookup(#[source] Box<dyn std::error::Error + Send + Sync>),
}

async fn request_reset(app: &App, ctx: &RequestContext, email: &Email) -> Result<(), Failure> {
    let now = now_unix();
    let address = ratelimit::address_subject(&ctx.client_ip);
    let limits = [
        (REQUESTS_PER_ADDRESS, address.as_str()),
        (REQUESTS_PER_EMAIL, email.as_str()),
    ];
    // A refused request is not counted, so a victim's recovery cannot be held shut by
    // someone asking for it every few minutes.
    let decision = ratelimit::reserve(app.store.as_ref(), &limits, now)
        .await
        .map_err(Failure::BeforeLookup)?;
    if let Decision::Limited { .. } = decision {
        tracing::warn!("forgot-password rate limited: no email sent");
        return Ok(());
    }
    let user = app
        .store
        .user_by_email(email)
        .await
        .map_err(Failure::BeforeLookup)?;
    let Some(user) = user.filter(User::is_active) else {
        tracing::info!("forgot-password for an unknown or inactive account: no email sent");
        decoy_reset(app, now).await;
        return Ok(());
    };
    send_reset(app, &user, now)
        .await
        .map_err(Failure::AfterLookup)
}

/// Where a decoy reset goes: SES's mailbox simulator, which accepts and delivers nowhere (no
/// bounce, no complaint, nothing against the account's reputation).
pub const DECOY_RECIPIENT: &str = "success@simulator.amazonses.com";

/// For an unknown or inactive account, the work of a real reset, to no one: the same reads of
/// the link rule, the same token transaction (which the table refuses: there is no such user,
/// so nothing is written), and a mail of the same shape to [`DECOY_RECIPIENT`]. The floor hides
/// the work when it is quick; when load makes it outlast the floor, a known and an unknown
/// email still cost alike. Nothing here can fail the request.
async fn decoy_reset(app: &App, now: i64) {
    let Ok(to) = Email::parse(DECOY_RECIPIENT) else {
        return;
    };
    let decoy = shared::mail::invitation::invited_user(to, now);
    if let Err(e) = send_reset(app, &decoy, now).await {
        tracing::debug!(cause = %e, "decoy reset");
    }
}

async fn send_reset(
    app: &App,
    user: &User,
    now: i64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The message is made before the token is stored: storing it ends the user's earlier
    // link, which must not happen for a mail that then cannot be sent.
    let target = link_target(app.store.as_ref(), user, &app.links).await?;
    let token = opaque::mint();
    let link = format!("{}/reset-password#token={}", target.origin, token.plaintext);
    let message = mail::password_reset(
        &user.email,
        &target.name,
        &link,
        app.config.token_ttl_secs / 60,
    )?;
    match app
        .store
        .create_reset_token(
            user,
            &token.hash,
            now + app.config.token_ttl_secs,
            shared::store::TokenPurpose::Reset,
        )
        .await
    {
        Ok(()) => {}
        // The decoy's write is always refused (no such user); it still mails, as a real one.
        Err(_) if user.email.as_str() == DECOY_RECIPIENT => {}
        Err(StoreError::Conflict(_)) => {
            tracing::info!(user_id = %user.id, "concurrent reset request already issued a token");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    app.mailer.send(&message).await?;
    tracing::info!(user_id = %user.id, "password reset link sent");
    Ok(())
}
