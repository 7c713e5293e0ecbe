//! `POST /auth/forgot-password` `{email}`: always the same 200 body, and never faster than the
//! configured floor, whether the email is known, unknown, disabled or rate-limited. For a known
//! active user it stores a fresh single-use token (only its SHA-256) and emails a link to the
//! user's tenant's primary redirect origin. The client's `Host` or any URL it sends is ignored.

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use shared::auth::opaque;
use shared::config::ResetConfig;
use shared::domain::{Email, User};
use shared::email::{self, Mailer};
use shared::ratelimit::{self, Decision, RatePolicy};
use shared::request::{json_body, RequestContext, DEFAULT_BODY_LIMIT};
use shared::store::{Store, StoreError};
use shared::tenant::RedirectOrigin;
use shared::time::now_unix;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Reset requests per client address per hour.
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

/// Where reset links point when neither the tenant nor the configuration names an origin.
const LAST_RESORT_ORIGIN: &str = "http://localhost";
/// Name used in mail for users without a tenant (platform operators).
const PLATFORM_NAME: &str = "SaaS Control Plane";

pub struct App {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub config: ResetConfig,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match (req.method().as_str(), req.raw_http_path()) {
        ("POST", "/auth/forgot-password") => forgot_password(app, &ctx, &req).await,
        (_, "/auth/forgot-password") => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::route_not_found()),
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
        Err(Failure::AfterLookup(cause)) => {
            tracing::error!(cause = %cause, "password reset could not be completed");
            Ok(ApiResponse::ok(accepted()))
        }
    }
}

enum Failure {
    BeforeLookup(StoreError),
    AfterLookup(String),
}

async fn request_reset(app: &App, ctx: &RequestContext, email: &Email) -> Result<(), Failure> {
    let now = now_unix();
    let limits = [
        (REQUESTS_PER_ADDRESS, ctx.client_ip.as_str()),
        (REQUESTS_PER_EMAIL, email.as_str()),
    ];
    let decision = ratelimit::check(app.store.as_ref(), &limits, now)
        .await
        .map_err(Failure::BeforeLookup)?;
    ratelimit::record(app.store.as_ref(), &limits, now)
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
        return Ok(());
    };
    send_reset(app, &user, now)
        .await
        .map_err(Failure::AfterLookup)
}

async fn send_reset(app: &App, user: &User, now: i64) -> Result<(), String> {
    let token = opaque::mint();
    match app
        .store
        .create_reset_token(user, &token.hash, now + app.config.token_ttl_secs)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            tracing::info!(user_id = %user.id, "concurrent reset request already issued a token");
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    }
    let (tenant_name, origin) = link_target(app, user).await.map_err(|e| e.to_string())?;
    let link = format!("{origin}/reset-password#token={}", token.plaintext);
    let message = email::password_reset(
        &user.email,
        &tenant_name,
        &link,
        app.config.token_ttl_secs / 60,
    );
    app.mailer.send(&message).await.map_err(|e| e.to_string())?;
    tracing::info!(user_id = %user.id, "password reset link sent");
    Ok(())
}

/// The tenant name for the mail and the origin the link points at: the user's tenant's primary
/// redirect origin, else the configured fallback, else `http://localhost` (with a warning).
async fn link_target(app: &App, user: &User) -> Result<(String, RedirectOrigin), StoreError> {
    let memberships = app.store.memberships(&user.id).await?;
    let tenant = match memberships.first() {
        Some(m) => app.store.tenant_by_id(&m.tenant_id).await?,
        None => None,
    };
    let name = tenant
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_else(|| PLATFORM_NAME.to_string());
    if let Some(primary) = tenant.as_ref().and_then(|t| t.redirect_origins.first()) {
        return Ok((name, primary.clone()));
    }
    if let Some(fallback) = &app.config.fallback_origin {
        return Ok((name, fallback.clone()));
    }
    let slug = tenant
        .as_ref()
        .map(|t| t.slug.to_string())
        .unwrap_or_else(|| "(no tenant)".into());
    tracing::warn!(tenant = %slug, "no redirect origin configured for the tenant or PASSWORD_RESET_ALLOWED_ORIGINS/FRONTEND_URL; reset link points at http://localhost");
    let origin = RedirectOrigin::parse(LAST_RESORT_ORIGIN).map_err(|e| StoreError::Corrupt {
        key: "origin".into(),
        reason: e,
    })?;
    Ok((name, origin))
}
