//! Sign-in. Routes:
//! - `POST /auth/login` `{email,password,audience?}` -> access + refresh tokens
//! - `POST /auth/refresh` `{refresh_token}` -> rotated tokens; a reused token revokes its family
//! - `POST /auth/logout` `{refresh_token}` -> revokes the family
//! - `GET /auth/me` -> the caller and their memberships
//! - `GET /.well-known/jwks.json`, `GET /health/live`, `GET /health/ready`

use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use shared::auth::access::{authenticate, current_user};
use shared::auth::jwt::TokenKeys;
use shared::auth::{opaque, password};
use shared::domain::{Audience, Email, User};
use shared::ratelimit::{self, Decision, RatePolicy};
use shared::request::{json_body, RequestContext, DEFAULT_BODY_LIMIT};
use shared::store::{RefreshFamily, RefreshTokenRecord, RotateOutcome, Store};
use shared::time::now_unix;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

/// Failed sign-ins per account (by the email sent, known or not) in 15 minutes.
pub const LOGIN_FAILURES_PER_ACCOUNT: RatePolicy = RatePolicy {
    name: "login-fail-email",
    limit: 10,
    window_secs: 900,
};
/// Failed sign-ins per client address in 15 minutes.
pub const LOGIN_FAILURES_PER_ADDRESS: RatePolicy = RatePolicy {
    name: "login-fail-ip",
    limit: 10,
    window_secs: 900,
};

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub refresh_ttl_secs: i64,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let path = req.raw_http_path().to_string();
    match (req.method().as_str(), path.as_str()) {
        ("POST", "/auth/login") => login(app, &ctx, &req).await,
        ("POST", "/auth/refresh") => refresh(app, &req).await,
        ("POST", "/auth/logout") => logout(app, &req).await,
        ("GET", "/auth/me") => me(app, &req).await,
        ("GET", "/.well-known/jwks.json") => {
            // A JWK Set (RFC 7517) at the top level for standard verifiers, and in `data`.
            Ok(ApiResponse::ok(app.keys.jwks())
                .hoisted()
                .header("cache-control", "public, max-age=300"))
        }
        ("GET", "/health/live") => Ok(ApiResponse::ok(json!({"status": "live"}))),
        ("GET", "/health/ready") => ready(app).await,
        (
            _,
            "/auth/login"
            | "/auth/refresh"
            | "/auth/logout"
            | "/auth/me"
            | "/.well-known/jwks.json"
            | "/health/live"
            | "/health/ready",
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::route_not_found()),
    }
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    audience: Option<Audience>,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized {
        code: "INVALID_CREDENTIALS",
        message: "email or password is incorrect",
    }
}

fn invalid_refresh() -> ApiError {
    ApiError::Unauthorized {
        code: "INVALID_REFRESH_TOKEN",
        message: "the refresh token is invalid, expired or revoked",
    }
}

async fn login(app: &App, ctx: &RequestContext, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: LoginBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    if body.password.is_empty() || body.password.len() > password::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_request(format!(
            "password must be between 1 and {} bytes",
            password::MAX_PASSWORD_BYTES
        )));
    }
    let audience = body.audience.unwrap_or(Audience::Portal);
    let limits = [
        (LOGIN_FAILURES_PER_ACCOUNT, email.as_str()),
        (LOGIN_FAILURES_PER_ADDRESS, ctx.client_ip.as_str()),
    ];
    let now = now_unix();
    if let Decision::Limited { retry_after_secs } =
        ratelimit::check(app.store.as_ref(), &limits, now).await?
    {
        tracing::warn!(
            retry_after_secs,
            "sign-in refused: too many recent failures"
        );
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }

    let user = app.store.user_by_email(&email).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = password::verify_password(body.password, stored_hash)
        .await
        .map_err(ApiError::internal)?;
    let user = match user {
        Some(user) if verified && user.is_active() => user,
        _ => {
            ratelimit::record(app.store.as_ref(), &limits, now).await?;
            tracing::info!("sign-in failed");
            return Err(invalid_credentials());
        }
    };
    if audience == Audience::Operator && !user.platform_admin {
        tracing::warn!(user_id = %user.id, "operator sign-in refused: not a platform admin");
        return Err(ApiError::Forbidden {
            code: "OPERATOR_AUDIENCE_DENIED",
            message: "this account may not sign in as a platform operator",
        });
    }
    let tokens = start_session(app, &user, audience, now).await?;
    tracing::info!(user_id = %user.id, audience = audience.as_str(), "signed in");
    Ok(ApiResponse::ok(tokens))
}

/// Issues an access token and the first refresh token of a new family.
async fn start_session(
    app: &App,
    user: &User,
    audience: Audience,
    now: i64,
) -> Result<serde_json::Value, ApiError> {
    let family = RefreshFamily {
        family_id: opaque::random_id(),
        user_id: user.id.clone(),
        revoked: false,
        expires_at: now + app.refresh_ttl_secs,
    };
    let minted = opaque::mint();
    let record = RefreshTokenRecord {
        token_hash: minted.hash,
        family_id: family.family_id.clone(),
        user_id: user.id.clone(),
        audience,
        used: false,
        session_epoch: user.session_epoch,
        expires_at: family.expires_at,
    };
    app.store.create_session(&family, &record).await?;
    token_pair(
        app,
        user,
        audience,
        minted.plaintext,
        family.expires_at,
        now,
    )
}

fn token_pair(
    app: &App,
    user: &User,
    audience: Audience,
    refresh: String,
    refresh_expires_at: i64,
    now: i64,
) -> Result<serde_json::Value, ApiError> {
    let access = app
        .keys
        .issue(&user.id, audience, user.session_epoch, now)
        .map_err(ApiError::internal)?;
    Ok(json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": access.expires_in,
        "refresh_token": refresh,
        "refresh_expires_in": (refresh_expires_at - now).max(0),
        "audience": audience.as_str(),
    }))
}

async fn refresh(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: RefreshBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let hash = opaque::hash_presented(&body.refresh_token).ok_or_else(invalid_refresh)?;
    let now = now_unix();
    let record = app
        .store
        .refresh_token(&hash)
        .await?
        .ok_or_else(invalid_refresh)?;
    if record.used {
        app.store.revoke_family(&record.family_id).await?;
        tracing::warn!(user_id = %record.user_id, family = %record.family_id, "refresh token reused: family revoked");
        return Err(invalid_refresh());
    }
    if record.expires_at <= now {
        return Err(invalid_refresh());
    }
    match app.store.refresh_family(&record.family_id).await? {
        Some(f) if !f.revoked && f.expires_at > now => {}
        _ => return Err(invalid_refresh()),
    }
    let user = match app.store.user_by_id(&record.user_id).await? {
        Some(u) if u.is_active() && u.session_epoch == record.session_epoch => u,
        _ => return Err(invalid_refresh()),
    };
    if record.audience == Audience::Operator && !user.platform_admin {
        return Err(invalid_refresh());
    }
    let minted = opaque::mint();
    let next = RefreshTokenRecord {
        token_hash: minted.hash,
        used: false,
        ..record.clone()
    };
    match app.store.rotate_refresh_token(&hash, &next).await? {
        RotateOutcome::Rotated => {}
        RotateOutcome::AlreadyUsed => {
            // Lost a race with another use of the same token: treat it as reuse.
            app.store.revoke_family(&record.family_id).await?;
            tracing::warn!(user_id = %record.user_id, family = %record.family_id, "concurrent refresh token reuse: family revoked");
            return Err(invalid_refresh());
        }
        RotateOutcome::FamilyRevoked => return Err(invalid_refresh()),
    }
    let tokens = token_pair(
        app,
        &user,
        record.audience,
        minted.plaintext,
        record.expires_at,
        now,
    )?;
    Ok(ApiResponse::ok(tokens))
}

async fn logout(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: RefreshBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    // Unknown or malformed tokens get the same answer: logout is idempotent and no oracle.
    if let Some(hash) = opaque::hash_presented(&body.refresh_token) {
        if let Some(record) = app.store.refresh_token(&hash).await? {
            app.store.revoke_family(&record.family_id).await?;
            tracing::info!(user_id = %record.user_id, "signed out");
        }
    }
    Ok(ApiResponse::ok(json!({"signed_out": true})))
}

async fn me(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let principal = authenticate(&app.keys, req, &[Audience::Portal, Audience::Operator])?;
    let user = current_user(app.store.as_ref(), &principal).await?;
    let memberships = app.store.memberships(&user.id).await?;
    Ok(ApiResponse::ok(json!({
        "user": {
            "id": user.id,
            "email": user.email,
            "platform_admin": user.platform_admin,
            "status": user.status,
            "created_at": user.created_at,
        },
        "audience": principal.audience.as_str(),
        "memberships": memberships,
    })))
}

async fn ready(app: &App) -> Result<ApiResponse, ApiError> {
    app.store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("database", e))?;
    Ok(ApiResponse::ok(
        json!({"status": "ready", "checks": {"database": "ok"}}),
    ))
}
