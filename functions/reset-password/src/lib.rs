//! `POST /auth/reset-password` `{token,password}`: spends a single-use reset token and sets a
//! new password. In one transaction the token is spent, the hash changes, every other token of
//! the user dies and every session (refresh token) ends. No automatic sign-in follows.
//!
//! `POST /auth/accept-invitation` `{token,password}`: the same for an invitation token (valid 7
//! days): the invited user sets a first password, becomes active and has a verified email.
//! `POST /auth/verify-email` `{token}`: the link mailed to a new address (`POST /account/email`)
//! moves the account onto it: the token is spent, the new address claimed, the old one
//! released and the user's email changed (and marked verified), in one transaction.
//!
//! Each route spends only its own kind of token.
//!
//! CORS: the two mailed-link routes (reset and invitation) are also open to a live tenant's
//! registered redirect origins, since its users' links land on its own page, which then calls
//! them from the browser. This function answers their preflights itself (the gateway's `Cors`
//! mock answers every other path, for the platform's origin only): an origin is allowed when it
//! is the platform's, or when a tenant that is not suspended or deleted registered it (the
//! `ORIGIN#` index, one query). No credentials travel (the token is in the body), so the grant
//! lets a tenant's page read the answer and nothing more.

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::access::ratelimit::{self, Decision, RatePolicy};
use shared::access::{opaque, password, policy};
use shared::domain::UserStatus;
use shared::http::idempotency::Idempotent;
use shared::http::request::{json_body, matched, RequestContext, DEFAULT_BODY_LIMIT};
use shared::mail::links::link_target;
use shared::mail::{self, Mailer};
use shared::runtime::config::LinkConfig;
use shared::runtime::time::now_unix;
use shared::store::changes::{Change, Refusal};
use shared::store::{Store, TokenPurpose};
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

/// Reset attempts per client address (IPv6: per /64) per minute.
pub const ATTEMPTS_PER_ADDRESS: RatePolicy = RatePolicy {
    name: "reset-ip",
    limit: 10,
    window_secs: 60,
};

pub struct App {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub links: LinkConfig,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Reset,
    AcceptInvitation,
    VerifyEmail,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("POST", "/auth/reset-password", Route::Reset),
    ("POST", "/auth/accept-invitation", Route::AcceptInvitation),
    ("POST", "/auth/verify-email", Route::VerifyEmail),
];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

/// The routes whose links a tenant's own page receives.
const MAILED_LINK_ROUTES: &[&str] = &["/auth/reset-password", "/auth/accept-invitation"];

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let mailed_link = MAILED_LINK_ROUTES.contains(&shared::http::request::resource(&req));
    let origin = shared::http::request::header(&req, "origin").map(str::to_string);
    if mailed_link && req.method() == lambda_http::http::Method::OPTIONS {
        return preflight(app, &req, origin.as_deref()).await;
    }
    let mut response = shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await;
    if let (true, Some(origin)) = (mailed_link, origin.as_deref()) {
        if !response
            .headers()
            .contains_key("access-control-allow-origin")
        {
            match tenant_origin(app, origin).await {
                Ok(true) => shared::http::cors::allow(origin, response.headers_mut()),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(cause = %shared::runtime::logging::chain(&e), "tenant origins not read: no CORS grant")
                }
            }
        }
    }
    response
}

/// `OPTIONS` on a mailed-link route.
async fn preflight(app: &App, req: &Request, origin: Option<&str>) -> Response<Body> {
    let allowed = match origin {
        None => false,
        Some(o) if shared::http::cors::configured(o) => true,
        Some(o) => match tenant_origin(app, o).await {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::error!(cause = %shared::runtime::logging::chain(&e), "tenant origins not read: preflight refused");
                return shared::http::envelope::render(
                    &RequestContext::from_request(req).request_id,
                    Err(e.into()),
                );
            }
        },
    };
    tracing::info!(allowed, "mailed-link preflight");
    shared::http::cors::preflight(origin, allowed, "POST,OPTIONS")
}

/// Whether `origin` is a registered redirect origin of a tenant that is not suspended or
/// deleted.
async fn tenant_origin(app: &App, origin: &str) -> Result<bool, shared::store::StoreError> {
    let Ok(origin) = shared::domain::tenant::RedirectOrigin::parse(origin, true) else {
        return Ok(false);
    };
    let ids = app.store.tenants_with_origin(&origin).await?;
    for some in ids.chunks(100) {
        let live = app.store.tenants_by_ids(some).await?.iter().any(|t| {
            matches!(
                t.status,
                shared::domain::tenant::TenantStatus::Active
                    | shared::domain::tenant::TenantStatus::Provisioning
            ) && t.redirect_origins.contains(&origin)
        });
        if live {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match matched(&req, ROUTES)? {
        Route::Reset => reset_password(app, &ctx, &req, TokenPurpose::Reset).await,
        Route::AcceptInvitation => reset_password(app, &ctx, &req, TokenPurpose::Invitation).await,
        Route::VerifyEmail => verify_email(app, &ctx, &req).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    token: String,
}

fn invalid_email_token() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidOrExpiredToken,
        "this confirmation link is invalid or has expired; ask for the change again",
    )
}

/// `POST /auth/verify-email`: the holder of the link moves the account onto the new address.
async fn verify_email(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<ApiResponse, ApiError> {
    let now = now_unix();
    let address = ratelimit::address_subject(&ctx.client_ip);
    if let Decision::Limited { retry_after_secs } = ratelimit::reserve(
        app.store.as_ref(),
        &[(ATTEMPTS_PER_ADDRESS, address.as_str())],
        now,
    )
    .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let body: VerifyBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let hash = opaque::hash_presented(&body.token).ok_or_else(invalid_email_token)?;
    let store = app.store.as_ref();
    let change = store
        .email_change(&hash)
        .await?
        .ok_or_else(invalid_email_token)?;
    let user = match store.user_by_id(&change.user_id).await? {
        Some(u)
            if u.is_active()
                && u.email == change.from
                && u.session_epoch == change.session_epoch =>
        {
            u
        }
        _ => return Err(invalid_email_token()),
    };
    store
        .commit(vec![
            Change::ChangeEmail {
                hash,
                now,
                user: user.id.clone(),
                from: change.from.clone(),
                to: change.to.clone(),
                session_epoch: change.session_epoch,
                password_hash: user.password_hash.clone(),
            },
            Change::Audit(ctx.account_audit(
                user.id.clone(),
                Some(&user.id),
                "account.email_changed",
                json!({}),
            )),
        ])
        .await
        .map_err(|e| {
            e.answer(|reasons| {
                if reasons.contains(&Refusal::EmailTaken) {
                    ApiError::refused(
                        ErrorCode::EmailTaken,
                        "this address belongs to another account now",
                    )
                } else {
                    invalid_email_token()
                }
            })
        })?;
    tracing::info!(user_id = %user.id, "email changed");
    Ok(ApiResponse::ok(
        json!({"email_changed": true, "email": change.to}),
    ))
}

#[derive(Deserialize)]
struct ResetBody {
    token: String,
    password: String,
}

/// Expired, spent, superseded, unknown, malformed and other-purpose tokens all look the same.
fn invalid_token(purpose: TokenPurpose) -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidOrExpiredToken,
        match purpose {
            TokenPurpose::Reset => "this reset link is invalid or has expired; request a new one",
            TokenPurpose::Invitation => {
                "this invitation is invalid or has expired; ask for a new one"
            }
        },
    )
}

async fn reset_password(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
    purpose: TokenPurpose,
) -> Result<ApiResponse, ApiError> {
    let now = now_unix();
    let address = ratelimit::address_subject(&ctx.client_ip);
    let limits = [(ATTEMPTS_PER_ADDRESS, address.as_str())];
    if let Decision::Limited { retry_after_secs } =
        ratelimit::reserve(app.store.as_ref(), &limits, now).await?
    {
        tracing::warn!(retry_after_secs, "reset-password rate limited");
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }

    let body: ResetBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let hash = opaque::hash_presented(&body.token).ok_or_else(|| invalid_token(purpose))?;
    // A retry with the same Idempotency-Key (a reply lost on the way back) gets the first
    // success again rather than "invalid token"; the key is scoped to this token.
    let route = match purpose {
        TokenPurpose::Reset => "reset-password",
        TokenPurpose::Invitation => "accept-invitation",
    };
    Idempotent::of_request(app.store.as_ref(), req, route, &hash, now)?
        .run(|| consume(app, ctx, &hash, body.password, now, purpose))
        .await
}

/// Spends the token whose hash is `hash` and sets `password`, then sends the notice.
async fn consume(
    app: &App,
    ctx: &RequestContext,
    hash: &str,
    password: String,
    now: i64,
    purpose: TokenPurpose,
) -> Result<ApiResponse, ApiError> {
    let invalid_token = || invalid_token(purpose);
    let token = match app.store.reset_token(hash).await? {
        Some(t) if t.expires_at > now && t.purpose == purpose => t,
        _ => return Err(invalid_token()),
    };
    let required = match purpose {
        TokenPurpose::Reset => UserStatus::Active,
        TokenPurpose::Invitation => UserStatus::Invited,
    };
    let user = match app.store.user_by_id(&token.user_id).await? {
        Some(u) if u.status == required && u.reset_generation == token.generation => u,
        _ => return Err(invalid_token()),
    };
    // The policy is checked before anything is spent: a weak password keeps the link usable.
    policy::check(&password, &user.email)
        .map_err(|weak| ApiError::refused(ErrorCode::WeakPassword, weak.to_string()))?;
    let new_hash = password::hash_password(password)
        .await
        .map_err(ApiError::internal)?;
    if !app
        .store
        .consume_reset_token(
            &token,
            &user.email,
            &new_hash,
            now,
            &ctx.account_audit(
                user.id.clone(),
                Some(&user.id),
                match purpose {
                    TokenPurpose::Reset => "account.password_reset",
                    TokenPurpose::Invitation => "account.invitation_accepted",
                },
                json!({}),
            ),
        )
        .await?
    {
        return Err(invalid_token());
    }
    if purpose == TokenPurpose::Invitation {
        tracing::info!(user_id = %user.id, "invitation accepted; account active");
        return Ok(ApiResponse::ok(json!({"invitation_accepted": true})));
    }
    tracing::info!(user_id = %user.id, "password reset; every session ended");

    // Named as in the reset mail; the password has changed even if this read fails.
    let tenant_name = match link_target(app.store.as_ref(), &user, &app.links).await {
        Ok(target) => target.name,
        Err(_) => shared::mail::links::PLATFORM_NAME.to_string(),
    };
    // The password has changed whatever happens to the notice; a failed send is only logged.
    let sent = match mail::password_changed(&user.email, &tenant_name) {
        Ok(notice) => app.mailer.send(&notice).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::error!(user_id = %user.id, cause = %shared::runtime::logging::chain(&e), "password-changed notice not sent");
    }
    Ok(ApiResponse::ok(json!({"password_reset": true})))
}
