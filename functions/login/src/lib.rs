//! Sign-in. Routes:
//! - `POST /auth/login` `{email,password,audience?}` -> access + refresh tokens, or, for an
//!   account with a second factor, a short-lived single-use `mfa_token` instead
//! - `POST /auth/mfa/passkey` `{mfa_token}` -> the options of a passkey assertion for that sign-in
//! - `POST /auth/mfa` `{mfa_token, code | recovery_code | passkey}` -> the tokens, once the factor
//!   checks
//! - `POST /auth/refresh` `{refresh_token}` -> rotated tokens; a reused token revokes its session
//! - `POST /auth/logout` `{refresh_token}` -> revokes the session
//! - `GET /auth/me` -> the caller and their memberships
//! - `GET /account/sessions` -> the caller's live sessions (devices), the current one marked
//! - `DELETE /account/sessions` -> every other session of the caller ends (the epoch moves, so
//!   sessions of any age and their access tokens stop at once); the caller gets fresh tokens
//! - `POST /account/password` `{current_password,new_password}` -> the caller's password
//!   changes, every other session ends, and the caller gets fresh tokens (here, because only
//!   this function can sign them)
//! - `POST /auth/impersonate` (RFC 8693 token exchange, operators) -> a 15-minute access token
//!   acting as a tenant's user; `DELETE /auth/impersonate` (with that token) ends it at once
//!   (`impersonate`)
//! - `GET /.well-known/jwks.json`, `GET /health/live`, `GET /health/ready`
//!
//! A sign-in makes six DynamoDB calls (seven for a portal sign-in), four of them writes, in
//! three steps, so its latency is about one Argon2 verify plus three round trips:
//! 1. the rate-limit reservation (three conditional adds at once: the account from this
//!    network, the account from anywhere, this address) beside the email and user reads;
//! 2. Argon2 beside the membership read of the suspension check (portal only);
//! 3. the session item, written together with the reservation's refund (after a wrong
//!    password, the write that settles the attempt as a failure instead).

mod impersonate;

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::access::caller::{
    account_suspended, account_suspended_error, authenticate, current_user, factor_gate, Admit,
};
use shared::access::crypto::DataKey;
use shared::access::factors::{self, FactorError, Proof};
use shared::access::jwt::{TokenContext, TokenKeys};
use shared::access::passkeys::{self, RelyingParty};
use shared::access::ratelimit::{self, Decision, RatePolicy, Reservation};
use shared::access::{opaque, password};
use shared::domain::{Audience, Email, User};
use shared::http::request::{json_body, matched, RequestContext, DEFAULT_BODY_LIMIT};
use shared::runtime::deferred::Deferred;
use shared::runtime::time::now_unix;
use shared::store::changes::{AuditEntry, Change, CommitError, Refusal};
use shared::store::MfaChallenge;
use shared::store::{RotateOutcome, Session, Store, StoreError};
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Failed sign-ins of one account (by the email sent, known or not) from one client network
/// (an IPv4 address, an IPv6 /64) in a 15-minute window: what stops a guesser, without letting
/// failures from elsewhere lock the owner out.
pub const LOGIN_FAILURES_PER_ACCOUNT_NETWORK: RatePolicy = RatePolicy {
    name: "login-fail-email-net",
    limit: 10,
    window_secs: 900,
};
/// Failed sign-ins of one account from anywhere in a 15-minute window: the ceiling on
/// guessing spread over many networks (about 9,600 guesses a day at most).
pub const LOGIN_FAILURES_PER_ACCOUNT: RatePolicy = RatePolicy {
    name: "login-fail-email",
    limit: 100,
    window_secs: 900,
};
/// Failed sign-ins per client address (IPv6: per /64) in a 15-minute window, whatever the
/// accounts.
pub const LOGIN_FAILURES_PER_ADDRESS: RatePolicy = RatePolicy {
    name: "login-fail-ip",
    limit: 10,
    window_secs: 900,
};

/// A second step's body: a passkey assertion is a few kilobytes at most.
const PASSKEY_BODY_LIMIT: usize = 32 * 1024;

impl App {
    /// The access-token keys (a 503 while their secret cannot be read).
    async fn keys(&self) -> Result<&TokenKeys, ApiError> {
        self.keys
            .get("access-token keys")
            .await
            .map_err(|e| ApiError::unavailable("secrets", e))
    }

    /// The factor key (a 503 while its secret cannot be read).
    async fn factor_key(&self) -> Result<&DataKey, ApiError> {
        self.factor_key
            .get("factor key")
            .await
            .map_err(|e| ApiError::unavailable("secrets", e))
    }
}

/// How long a sign-in's second-factor token lives.
pub const MFA_CHALLENGE_TTL_SECS: i64 = 300;

pub struct App {
    pub store: Arc<dyn Store>,
    /// Read from the start on, awaited where first needed: a sign-in needs them only after
    /// the password's verify, so a cold start does not wait for the read.
    pub keys: Deferred<TokenKeys>,
    /// The notice that a password was changed.
    pub mailer: Arc<dyn shared::mail::Mailer>,
    /// Opens the users' second-factor secrets (read like `keys`).
    pub factor_key: Deferred<DataKey>,
    pub refresh_ttl_secs: i64,
    /// A refresh token presented again within this many seconds of its rotation is a
    /// concurrent refresh (two tabs), not a theft.
    pub reuse_grace_secs: i64,
    /// Passkeys' relying party (the console's origin); `None` where that origin is an IP
    /// address (passkeys unavailable).
    pub relying_party: Option<RelyingParty>,
    /// `IMPERSONATION_TTL_SECONDS`: how long an impersonation token lives (at most 900).
    pub impersonation_ttl_secs: i64,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Login,
    Mfa,
    MfaPasskey,
    Refresh,
    Logout,
    Me,
    ChangePassword,
    Sessions,
    EndOtherSessions,
    Impersonate,
    EndImpersonation,
    Jwks,
    Live,
    Ready,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("POST", "/auth/login", Route::Login),
    ("POST", "/auth/mfa", Route::Mfa),
    ("POST", "/auth/mfa/passkey", Route::MfaPasskey),
    ("POST", "/auth/refresh", Route::Refresh),
    ("POST", "/auth/logout", Route::Logout),
    ("GET", "/auth/me", Route::Me),
    ("POST", "/account/password", Route::ChangePassword),
    ("GET", "/account/sessions", Route::Sessions),
    ("DELETE", "/account/sessions", Route::EndOtherSessions),
    ("POST", "/auth/impersonate", Route::Impersonate),
    ("DELETE", "/auth/impersonate", Route::EndImpersonation),
    ("GET", "/.well-known/jwks.json", Route::Jwks),
    ("GET", "/health/live", Route::Live),
    ("GET", "/health/ready", Route::Ready),
];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    match matched(&req, ROUTES)? {
        Route::Login => login(app, &ctx, &req).await,
        Route::Mfa => mfa(app, &ctx, &req).await,
        Route::MfaPasskey => mfa_passkey(app, &req).await,
        Route::Refresh => refresh(app, &ctx, &req).await,
        Route::Logout => logout(app, &req).await,
        Route::Me => me(app, &ctx, &req).await,
        Route::ChangePassword => change_password(app, &ctx, &req).await,
        Route::Sessions => sessions(app, &ctx, &req).await,
        Route::Impersonate => impersonate::start(app, &ctx, &req).await,
        Route::EndImpersonation => impersonate::end(app, &ctx, &req).await,
        Route::EndOtherSessions => end_other_sessions(app, &ctx, &req).await,
        // A JWK Set (RFC 7517) at the top level for standard verifiers, and in `data`.
        Route::Jwks => Ok(ApiResponse::ok(app.keys().await?.jwks().await)
            .hoisted()
            .header("cache-control", "public, max-age=300")),
        Route::Live => Ok(ApiResponse::ok(json!({"status": "live"}))),
        Route::Ready => ready(app).await,
    }
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    audience: Option<Audience>,
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

fn invalid_credentials() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidCredentials,
        "email or password is incorrect",
    )
}

fn invalid_refresh() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidRefreshToken,
        "the refresh token is invalid, expired or revoked",
    )
}

/// The user read, if it succeeded and found one.
fn user_ref(user: &Result<Option<User>, StoreError>) -> Option<&User> {
    user.as_ref().ok().and_then(|u| u.as_ref())
}

/// Whether every tenant of `user` is suspended (portal sign-ins of active users only; `None`
/// otherwise).
async fn suspension(
    store: &dyn Store,
    audience: Audience,
    user: Option<&User>,
) -> Result<Option<bool>, StoreError> {
    match user {
        Some(u) if audience == Audience::Portal && u.is_active() => {
            account_suspended(store, u).await.map(Some)
        }
        _ => Ok(None),
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
    let address = ratelimit::address_subject(&ctx.client_ip);
    let account_network = ratelimit::account_network_subject(email.as_str(), &ctx.client_ip);
    let limits = [
        (LOGIN_FAILURES_PER_ACCOUNT_NETWORK, account_network.as_str()),
        (LOGIN_FAILURES_PER_ACCOUNT, email.as_str()),
        (LOGIN_FAILURES_PER_ADDRESS, address.as_str()),
    ];
    let now = now_unix();
    let store = app.store.as_ref();
    // Each phase's duration goes on the `signed in` line (`make bench` prints their medians):
    // where a sign-in's time goes, read from the logs.
    let started = Instant::now();
    // Counted (in flight) before the password is checked: parallel guesses cannot all slip
    // past the limit, and parallel right passwords wait for each other rather than fail. The
    // email's claim is read beside it (one round trip for both); nothing of it is used until
    // the reservation is held.
    let (decision, claim) = tokio::join!(
        ratelimit::reserve_attempt(store, &limits, now),
        store.email_claim(&email)
    );
    let reserved = started.elapsed();
    let reservation = match decision? {
        Decision::Reserved(r) => r,
        Decision::Limited { retry_after_secs } => {
            tracing::warn!(
                retry_after_secs,
                "sign-in refused: too many recent failures"
            );
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    };
    let claim = claim?;
    let owner = claim.as_ref().map(|c| c.user_id.clone());
    let copy = claim.as_ref().and_then(|c| c.password_hash.clone());
    // Argon2 starts on the claim's copy of the hash (a dummy for an unknown email) while the
    // user is read (a key that never exists for an unknown email: the same round trip) and,
    // for a portal sign-in, its memberships for the suspension check. Their answers (or
    // failures) are looked at only after Argon2, so they tell a guesser nothing, and Argon2's
    // cost hides them. A claim without a copy (written before copies were kept) waits for the
    // user's own hash: one round trip more, until its next successful sign-in keeps a copy.
    let (verified, (user, suspended)) = if owner.is_some() && copy.is_none() {
        let user = store.user_or_decoy(owner.as_ref()).await;
        let hash = user_ref(&user).map(|u| u.password_hash.clone());
        let (verified, suspended) = tokio::join!(
            password::verify_password(body.password.clone(), hash),
            suspension(store, audience, user_ref(&user))
        );
        (verified, (user, suspended))
    } else {
        tokio::join!(
            password::verify_password(body.password.clone(), copy.clone()),
            async {
                let user = store.user_or_decoy(owner.as_ref()).await;
                let suspended = suspension(store, audience, user_ref(&user)).await;
                (user, suspended)
            }
        )
    };
    let checked = started.elapsed();
    let mut verified = verified.map_err(ApiError::internal)?;
    let user = user?;
    // The user's own hash decides: a copy left behind by a change that did not carry it to
    // the claim is checked again against the real one (and replaced below).
    let stale_copy = matches!((&user, &copy), (Some(u), Some(c)) if &u.password_hash != c);
    if stale_copy {
        tracing::warn!(
            "an email claim's password-hash copy differs from the user's; checking the user's"
        );
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        verified = password::verify_password(body.password, hash)
            .await
            .map_err(ApiError::internal)?;
    }
    let user = match user {
        Some(user) if verified && user.is_active() => user,
        _ => {
            // The reservation stays: it is this failure, counted, no longer in flight. The
            // same write for a known and an unknown email; a failure of it changes nothing
            // the caller sees (the attempt then stays in flight until its window ends).
            // And its audit entry, the same write for a known and an unknown email (an
            // unknown one is named by no account).
            let entry = sign_in_audit(ctx, owner.as_ref(), "auth.sign_in_failed", json!({}));
            let (settled, audited) = tokio::join!(
                ratelimit::settle_failed(store, &reservation),
                store.commit(vec![Change::Audit(entry)])
            );
            if let Err(e) = settled {
                tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed sign-in not settled");
            }
            if let Err(e) = audited {
                tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed sign-in not audited");
            }
            tracing::info!("sign-in failed");
            return Err(invalid_credentials());
        }
    };
    // The right password: keep the claim's copy current for the next sign-in.
    if copy.is_none() || stale_copy {
        if let Err(e) = store
            .copy_hash_to_claim(&email, &user.id, &user.password_hash)
            .await
        {
            tracing::warn!(cause = %shared::runtime::logging::chain(&e), "the claim's password-hash copy was not kept");
        }
    }
    if audience == Audience::Operator && !user.platform_admin {
        // The password was right: not a guess, so not counted.
        ratelimit::refund(app.store.as_ref(), &reservation).await?;
        tracing::warn!(user_id = %user.id, "operator sign-in refused: not a platform admin");
        return Err(ApiError::refused(
            ErrorCode::OperatorAudienceDenied,
            "this account may not sign in as a platform operator",
        ));
    }
    if suspended? == Some(true) {
        // The password was right: not a guess, so not counted.
        ratelimit::refund(app.store.as_ref(), &reservation).await?;
        tracing::warn!(user_id = %user.id, "sign-in refused: every tenant of the account is suspended");
        return Err(account_suspended_error());
    }
    if user.mfa() {
        // The password was right: not a guess, so not counted. The tokens wait for the factor.
        ratelimit::refund(app.store.as_ref(), &reservation).await?;
        return second_factor_challenge(app, ctx, req, &user, audience, now).await;
    }
    let tokens = start_session(
        app,
        ctx,
        req,
        &user,
        audience,
        now,
        Some(&reservation),
        None,
        true,
    )
    .await?;
    let us = |d: std::time::Duration| d.as_micros() as u64;
    tracing::info!(
        user_id = %user.id,
        audience = audience.as_str(),
        reserve_us = us(reserved),
        verify_us = us(checked - reserved),
        session_us = us(started.elapsed() - checked),
        "signed in"
    );
    Ok(ApiResponse::ok(tokens))
}

/// An authentication event's audit entry (scope `platform`): the account it concerns as the
/// actor (the platform itself for an email no account has), the client's address, never a
/// password or a code.
fn sign_in_audit(
    ctx: &RequestContext,
    user: Option<&shared::domain::UserId>,
    action: &str,
    details: serde_json::Value,
) -> AuditEntry {
    let actor = user.cloned().unwrap_or_else(shared::domain::UserId::system);
    ctx.account_audit(actor, user, action, details)
}

/// A right password for an account with a second factor: a single-use token, valid five
/// minutes, that `POST /auth/mfa` exchanges for the session once the factor checks. Only its
/// hash is stored.
async fn second_factor_challenge(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
    user: &User,
    audience: Audience,
    now: i64,
) -> Result<ApiResponse, ApiError> {
    let token = opaque::mint();
    app.store
        .commit(vec![Change::PutChallenge(MfaChallenge {
            hash: token.hash,
            user_id: user.id.clone(),
            audience,
            expires_at: now + MFA_CHALLENGE_TTL_SECS,
            session_epoch: user.session_epoch,
            client_ip: Some(ctx.client_ip.clone()).filter(|ip| !ip.is_empty()),
            user_agent: shared::http::request::user_agent(req),
            passkey_state: None,
        })])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(user_id = %user.id, audience = audience.as_str(), "password accepted: second factor asked");
    Ok(ApiResponse::ok(json!({
        "mfa_required": true,
        "mfa_token": token.plaintext,
        "expires_in": MFA_CHALLENGE_TTL_SECS,
        "methods": methods(user.factors),
        "audience": audience.as_str(),
    })))
}

/// The second factors a challenge may be answered with, for an account holding `factors`.
fn methods(factors: shared::domain::Factors) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(3);
    if factors.totp {
        out.push("totp");
    }
    if factors.passkeys > 0 {
        out.push("passkey");
    }
    out.push("recovery_code");
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaBody {
    mfa_token: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
    /// A passkey assertion (`AuthenticationResponseJSON`) for the options
    /// `POST /auth/mfa/passkey` gave.
    #[serde(default)]
    passkey: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasskeyOptionsBody {
    mfa_token: String,
}

/// `POST /auth/mfa/passkey` `{mfa_token}`: the options of a passkey assertion for this
/// sign-in (its server state kept on the challenge; asking again replaces it). Nothing is
/// counted: only the answer, at `POST /auth/mfa`, is a guess.
async fn mfa_passkey(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: PasskeyOptionsBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let hash = opaque::hash_presented(&body.mfa_token).ok_or_else(invalid_mfa_token)?;
    let store = app.store.as_ref();
    let challenge = store
        .mfa_challenge(&hash)
        .await?
        .ok_or_else(invalid_mfa_token)?;
    let no_passkey = || {
        ApiError::refused(
            ErrorCode::InvalidState,
            "this account has no passkey here: use your authenticator app or a recovery code",
        )
    };
    let rp = app.relying_party.as_ref().ok_or_else(no_passkey)?;
    let passkeys = store.passkeys(&challenge.user_id).await?;
    if passkeys.is_empty() {
        return Err(no_passkey());
    }
    let started = passkeys::start_assertion(rp, &passkeys).map_err(ApiError::internal)?;
    store
        .commit(vec![Change::ChallengePasskey {
            hash,
            state: started.state,
            now: now_unix(),
        }])
        .await
        .map_err(|e| e.answer(|_| invalid_mfa_token()))?;
    Ok(ApiResponse::ok(json!({ "options": started.options })))
}

/// What a second step presents: a code, or a passkey assertion.
enum Presented {
    Code(Proof),
    Passkey(Box<serde_json::value::RawValue>),
}

impl MfaBody {
    fn presented(self) -> Option<Presented> {
        match (
            self.passkey,
            Proof::from_fields(self.code, self.recovery_code),
        ) {
            (Some(p), None) => Some(Presented::Passkey(p)),
            (None, Some(proof)) => Some(Presented::Code(proof)),
            _ => None,
        }
    }
}

/// Checks a passkey assertion for `challenge`: the change that records the passkey's use
/// (conditioned on its counter as read), or `FactorError::Wrong` for any response that does not
/// verify (the reason is logged).
async fn check_passkey(
    app: &App,
    challenge: &MfaChallenge,
    response: &serde_json::value::RawValue,
    now: i64,
) -> Result<Change, FactorError> {
    let (Some(rp), Some(state)) = (
        app.relying_party.as_ref(),
        challenge.passkey_state.as_deref(),
    ) else {
        return Err(FactorError::Missing);
    };
    let all = app
        .store
        .passkeys(&challenge.user_id)
        .await
        .map_err(FactorError::Store)?;
    match passkeys::finish_assertion(
        rp,
        &challenge.user_id,
        state,
        response.get().as_bytes(),
        &all,
    ) {
        Ok(used) => Ok(Change::UsePasskey {
            user: challenge.user_id.clone(),
            id: used.id,
            before: used.before,
            after: used.after,
            at: now,
        }),
        Err(passkeys::PasskeyError::Refused(why)) => {
            tracing::info!(why, "passkey assertion refused");
            Err(FactorError::Wrong)
        }
        Err(e) => {
            tracing::error!(cause = %e, "a stored passkey does not decode");
            Err(FactorError::Sealed)
        }
    }
}

fn invalid_mfa_token() -> ApiError {
    ApiError::refused(
        ErrorCode::InvalidMfaToken,
        "the sign-in expired or was completed already: sign in again",
    )
}

/// `POST /auth/mfa`: the second step of a sign-in. The code is counted before it is checked
/// (five failures per account in 15 minutes), and the challenge is spent in the same
/// transaction as the code (a TOTP step, or a recovery code), so neither can serve twice.
async fn mfa(app: &App, ctx: &RequestContext, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: MfaBody = json_body(req, PASSKEY_BODY_LIMIT)?;
    let hash = opaque::hash_presented(&body.mfa_token).ok_or_else(invalid_mfa_token)?;
    let presented = body.presented().ok_or_else(|| {
        ApiError::invalid_request("give one of code (6 digits), recovery_code or passkey")
    })?;
    let store = app.store.as_ref();
    let now = now_unix();
    let challenge = store
        .mfa_challenge(&hash)
        .await?
        .ok_or_else(invalid_mfa_token)?;
    let limits = factors::limits(&challenge.user_id);
    let reservation = match ratelimit::reserve_attempt(store, &limits, now).await? {
        Decision::Reserved(r) => r,
        Decision::Limited { retry_after_secs } => {
            tracing::warn!(user_id = %challenge.user_id, retry_after_secs, "second factor refused: too many failures");
            return Err(ApiError::TooManyRequests { retry_after_secs });
        }
    };
    let (reservation, user_id) = (&reservation, &challenge.user_id);
    let failed = |why: &'static str| async move {
        let entry = sign_in_audit(ctx, Some(user_id), "auth.mfa_failed", json!({}));
        let (settled, audited) = tokio::join!(
            ratelimit::settle_failed(store, reservation),
            store.commit(vec![Change::Audit(entry)])
        );
        if let Err(e) = settled {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed second factor not settled");
        }
        if let Err(e) = audited {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed second factor not audited");
        }
        tracing::info!(user_id = %user_id, why, "second factor failed");
        factors::wrong_code()
    };
    let checked = match &presented {
        Presented::Code(proof) => {
            factors::check(
                store,
                app.factor_key().await?,
                &challenge.user_id,
                proof,
                now,
            )
            .await
        }
        Presented::Passkey(response) => check_passkey(app, &challenge, response, now).await,
    };
    let spend = match checked {
        Ok(change) => change,
        Err(FactorError::Wrong | FactorError::Missing) => return Err(failed("wrong code").await),
        Err(FactorError::Sealed) => return Err(ApiError::internal(FactorError::Sealed)),
        Err(FactorError::Store(e)) => return Err(e.into()),
    };
    match store
        .commit(vec![
            Change::SpendChallenge {
                hash: hash.clone(),
                now,
            },
            spend,
        ])
        .await
    {
        Ok(()) => {}
        Err(CommitError::Refused { reasons }) if reasons.contains(&Refusal::ChallengeGone) => {
            ratelimit::refund(store, reservation).await?;
            return Err(invalid_mfa_token());
        }
        Err(CommitError::Refused { .. }) => return Err(failed("code used already").await),
        Err(e) => return Err(e.answer(|_| ApiError::concurrent_update())),
    }
    // The account as it is now: disabled, its sessions ended, or its flag gone meanwhile.
    let user = match store.user_by_id(&challenge.user_id).await? {
        Some(u)
            if u.is_active()
                && u.session_epoch == challenge.session_epoch
                && (challenge.audience != Audience::Operator || u.platform_admin) =>
        {
            u
        }
        _ => {
            ratelimit::refund(store, reservation).await?;
            return Err(invalid_mfa_token());
        }
    };
    let tokens = start_session(
        app,
        ctx,
        req,
        &user,
        challenge.audience,
        now,
        Some(reservation),
        Some(now),
        true,
    )
    .await?;
    tracing::info!(user_id = %user.id, audience = challenge.audience.as_str(), "signed in with a second factor");
    Ok(ApiResponse::ok(tokens))
}

/// The signed-in caller of a portal or operator token, and their account as it is now. A
/// token of an operator acting as the user passes the impersonation checks (read-only, the
/// account's own changes refused, audited).
async fn caller(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<(shared::access::jwt::Principal, User), ApiError> {
    let principal = authenticate(
        app.keys().await?,
        req,
        &[Audience::Portal, Audience::Operator],
    )
    .await?;
    let user = current_user(app.store.as_ref(), &principal).await?;
    shared::access::caller::impersonated(app.store.as_ref(), &principal, req, &ctx.request_id)
        .await?;
    Ok((principal, user))
}

/// `GET /account/sessions`: the caller's live sessions, newest first, the current one marked.
async fn sessions(app: &App, ctx: &RequestContext, req: &Request) -> Result<ApiResponse, ApiError> {
    let (principal, user) = caller(app, ctx, req).await?;
    let current = principal.session_id.as_deref();
    let items: Vec<_> = shared::access::sessions::live(app.store.as_ref(), &user)
        .await?
        .iter()
        .map(|s| shared::access::sessions::view(s, current))
        .collect();
    Ok(ApiResponse::ok(json!({ "items": items })))
}

/// `DELETE /account/sessions`: "sign out my other devices". Every session ends (the session
/// epoch moves: sessions of any age, listed or not, and their access tokens stop at once), and
/// the caller's own continues as a new one, whose tokens are the answer.
async fn end_other_sessions(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<ApiResponse, ApiError> {
    let (principal, user) = caller(app, ctx, req).await?;
    let store = app.store.as_ref();
    factor_gate(&principal, &user, Admit::Enrolled)?;
    store
        .commit(vec![
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit: shared::store::changes::UserEdit {
                    end_sessions: true,
                    expect_epoch: Some(user.session_epoch),
                    ..Default::default()
                },
            },
            Change::Audit(sign_in_audit(
                ctx,
                Some(&user.id),
                "session.revoked_others",
                json!({}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    let mut changed = user.clone();
    changed.session_epoch += 1;
    let tokens = start_session(
        app,
        ctx,
        req,
        &changed,
        principal.audience,
        now_unix(),
        None,
        principal.mfa_at,
        false,
    )
    .await?;
    tracing::info!(user_id = %user.id, "every other session ended");
    Ok(ApiResponse::ok(tokens))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`: the current password is checked (counted like a sign-in's, so a
/// stolen token cannot guess it), the policy applies to the new one, and in one transaction
/// the hash changes (with its copy on the email's claim), every session ends (the epoch
/// moves) and the audit entry is written. The caller gets tokens of a new session; the
/// account's owner is mailed.
async fn change_password(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<ApiResponse, ApiError> {
    let (principal, user) = caller(app, ctx, req).await?;
    let store = app.store.as_ref();
    factor_gate(&principal, &user, Admit::Enrolled)?;
    let body: PasswordBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    for (field, value) in [
        ("current_password", &body.current_password),
        ("new_password", &body.new_password),
    ] {
        if value.is_empty() || value.len() > password::MAX_PASSWORD_BYTES {
            return Err(ApiError::refused(
                ErrorCode::InvalidField,
                format!(
                    "{field} must be between 1 and {} bytes",
                    password::MAX_PASSWORD_BYTES
                ),
            ));
        }
    }
    shared::access::policy::check(&body.new_password, &user.email)
        .map_err(|weak| ApiError::refused(ErrorCode::WeakPassword, weak.to_string()))?;
    let now = now_unix();
    let network = ratelimit::account_network_subject(user.email.as_str(), &ctx.client_ip);
    let limits = [
        (LOGIN_FAILURES_PER_ACCOUNT_NETWORK, network.as_str()),
        (LOGIN_FAILURES_PER_ACCOUNT, user.email.as_str()),
    ];
    let reservation = match ratelimit::reserve_attempt(store, &limits, now).await? {
        Decision::Reserved(r) => r,
        Decision::Limited { retry_after_secs } => {
            return Err(ApiError::TooManyRequests { retry_after_secs })
        }
    };
    let (verified, new_hash) = tokio::join!(
        password::verify_password(body.current_password, Some(user.password_hash.clone())),
        password::hash_password(body.new_password)
    );
    if !verified.map_err(ApiError::internal)? {
        if let Err(e) = ratelimit::settle_failed(store, &reservation).await {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "failed password check not settled");
        }
        return Err(ApiError::refused(
            ErrorCode::InvalidCredentials,
            "the current password is not right",
        ));
    }
    let new_hash = new_hash.map_err(ApiError::internal)?;
    store
        .commit(vec![
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit: shared::store::changes::UserEdit {
                    password_hash: Some(new_hash.clone()),
                    end_sessions: true,
                    expect_epoch: Some(user.session_epoch),
                    ..Default::default()
                },
            },
            Change::ClaimHash {
                email: user.email.clone(),
                user: user.id.clone(),
                hash: new_hash.clone(),
            },
            Change::Audit(sign_in_audit(
                ctx,
                Some(&user.id),
                "account.password_changed",
                json!({}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    let mut changed = user.clone();
    changed.password_hash = new_hash;
    changed.session_epoch += 1;
    let tokens = start_session(
        app,
        ctx,
        req,
        &changed,
        principal.audience,
        now,
        Some(&reservation),
        principal.mfa_at,
        false,
    )
    .await?;
    tracing::info!(user_id = %user.id, "password changed; every other session ended");
    let sent = match shared::mail::password_changed(&user.email, shared::mail::links::PLATFORM_NAME)
    {
        Ok(notice) => app.mailer.send(&notice).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::error!(user_id = %user.id, cause = %shared::runtime::logging::chain(&e), "password-changed notice not sent");
    }
    Ok(ApiResponse::ok(tokens))
}

/// Writes a new session with its first refresh token, giving the sign-in's attempt back.
#[allow(clippy::too_many_arguments)]
async fn start_session(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
    user: &User,
    audience: Audience,
    now: i64,
    reservation: Option<&Reservation>,
    mfa_at: Option<i64>,
    signed_in: bool,
) -> Result<serde_json::Value, ApiError> {
    let session_id = opaque::random_id();
    let minted = opaque::mint_for(&session_id);
    let session = Session {
        session_id,
        user_id: user.id.clone(),
        audience,
        session_epoch: user.session_epoch,
        expires_at: now + app.refresh_ttl_secs,
        revoked: false,
        heads: BTreeMap::from([(minted.hash, now)]),
        spent: BTreeMap::new(),
        mfa_at,
        created_at: now,
        last_used_at: now,
        client_ip: Some(ctx.client_ip.clone()).filter(|ip| !ip.is_empty()),
        user_agent: shared::http::request::user_agent(req),
    };
    // A sign-in is audited in the session's own write (a password change audits itself).
    let audit = signed_in.then(|| {
        sign_in_audit(
            ctx,
            Some(&user.id),
            "auth.signed_in",
            json!({"audience": audience.as_str(), "mfa": mfa_at.is_some(), "session_id": session.session_id}),
        )
    });
    // The keys first (read since the start; long there by now on any path that verified a
    // password): no session is written that no token could be signed for. The password was
    // right, so its attempt is given back.
    if let Err(e) = app.keys().await {
        if let Some(r) = reservation {
            if let Err(e) = ratelimit::refund(app.store.as_ref(), r).await {
                tracing::error!(cause = %shared::runtime::logging::chain(&e), "sign-in attempt not refunded");
            }
        }
        return Err(e);
    }
    app.store
        .create_session(&session, reservation, audit.as_ref())
        .await?;
    token_pair(app, user, &session, minted.plaintext, now).await
}

async fn token_pair(
    app: &App,
    user: &User,
    session: &Session,
    refresh: String,
    now: i64,
) -> Result<serde_json::Value, ApiError> {
    let (audience, refresh_expires_at) = (session.audience, session.expires_at);
    let context = TokenContext {
        session_id: Some(session.session_id.clone()),
        mfa_at: session.mfa_at,
    };
    let access = app
        .keys()
        .await?
        .issue_in(&user.id, audience, user.session_epoch, now, &context)
        .await
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

/// The session's user, if the session may still be refreshed for them. A portal session of a
/// user whose tenants are all suspended is refused (403 `ACCOUNT_SUSPENDED`), not ended: it
/// works again once a tenant is resumed.
async fn session_user(app: &App, session: &Session) -> Result<User, ApiError> {
    match app.store.user_by_id(&session.user_id).await? {
        Some(u)
            if u.is_active()
                && u.session_epoch == session.session_epoch
                && (session.audience != Audience::Operator || u.platform_admin) =>
        {
            if session.audience == Audience::Portal
                && account_suspended(app.store.as_ref(), &u).await?
            {
                return Err(account_suspended_error());
            }
            Ok(u)
        }
        _ => Err(invalid_refresh()),
    }
}

/// The answer to a refresh that issued `refresh_token` in `session`.
async fn refreshed(
    app: &App,
    user: &User,
    session: &Session,
    refresh_token: String,
    now: i64,
) -> Result<ApiResponse, ApiError> {
    let tokens = token_pair(app, user, session, refresh_token, now).await?;
    Ok(ApiResponse::ok(tokens))
}

async fn refresh(app: &App, ctx: &RequestContext, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: RefreshBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    let (session_id, hash) = opaque::session_of(&body.refresh_token).ok_or_else(invalid_refresh)?;
    // The keys before the rotation: a token is never spent for an answer that cannot be signed.
    app.keys().await?;
    let now = now_unix();
    // Twice at most: a rotation refused because a concurrent refresh spent the same token
    // first is decided again on what that refresh wrote.
    for _ in 0..2 {
        let session = match app.store.session(&session_id).await? {
            Some(s) if !s.revoked && s.expires_at > now => s,
            _ => return Err(invalid_refresh()),
        };
        let next = opaque::mint_for(&session_id);
        if session.heads.contains_key(&hash) {
            let user = session_user(app, &session).await?;
            let forget = session.spent_to_forget();
            match app
                .store
                .rotate_session(&session_id, &hash, &next.hash, now, &forget)
                .await?
            {
                RotateOutcome::Rotated => {
                    return refreshed(app, &user, &session, next.plaintext, now).await
                }
                RotateOutcome::Refused => continue,
            }
        }
        let Some(&spent_at) = session.spent.get(&hash) else {
            // Not a token of this session, or spent so long ago it is forgotten.
            return Err(invalid_refresh());
        };
        if now - spent_at < app.reuse_grace_secs {
            // Two tabs refreshed at once: the later one gets a pair of its own.
            let user = session_user(app, &session).await?;
            if app
                .store
                .add_session_head(&session_id, &hash, spent_at, &next.hash, now)
                .await?
            {
                tracing::info!(user_id = %session.user_id, "concurrent refresh inside the grace window");
                return refreshed(app, &user, &session, next.plaintext, now).await;
            }
            return Err(invalid_refresh());
        }
        let entry = sign_in_audit(
            ctx,
            Some(&session.user_id),
            "auth.refresh_reused",
            json!({ "session_id": session_id }),
        );
        let (revoked, audited) = tokio::join!(
            app.store.revoke_session(&session_id),
            app.store.commit(vec![Change::Audit(entry)])
        );
        revoked?;
        if let Err(e) = audited {
            tracing::error!(cause = %shared::runtime::logging::chain(&e), "refresh reuse not audited");
        }
        tracing::warn!(user_id = %session.user_id, "refresh token reused: session revoked");
        return Err(invalid_refresh());
    }
    Err(invalid_refresh())
}

async fn logout(app: &App, req: &Request) -> Result<ApiResponse, ApiError> {
    let body: RefreshBody = json_body(req, DEFAULT_BODY_LIMIT)?;
    // Unknown or malformed tokens get the same answer: logout is idempotent and no oracle.
    if let Some((session_id, hash)) = opaque::session_of(&body.refresh_token) {
        if let Some(session) = app.store.session(&session_id).await? {
            if session.heads.contains_key(&hash) || session.spent.contains_key(&hash) {
                app.store.revoke_session(&session_id).await?;
                tracing::info!(user_id = %session.user_id, "signed out");
            }
        }
    }
    Ok(ApiResponse::ok(json!({"signed_out": true})))
}

async fn me(app: &App, ctx: &RequestContext, req: &Request) -> Result<ApiResponse, ApiError> {
    let (principal, user) = caller(app, ctx, req).await?;
    if principal.audience == Audience::Portal
        && account_suspended(app.store.as_ref(), &user).await?
    {
        return Err(account_suspended_error());
    }
    // One bounded read each: a user with more memberships sees the first page of them; the
    // invitations waiting for them to accept (`POST /tenants/{slug}/join`) come beside.
    let (memberships, invitations) = tokio::join!(
        app.store
            .memberships_up_to(&user.id, shared::store::page::MAX_LIMIT),
        app.store.invites_of(&user.id)
    );
    let (mut memberships, mut invitations) = (memberships?, invitations?);
    let impersonation = principal.impersonation.as_ref().map(|imp| {
        // Acting as the user shows their one tenant.
        memberships.retain(|m| m.tenant_id == imp.tenant);
        invitations.clear();
        json!({
            "id": imp.id,
            "operator_id": imp.actor,
            "tenant_id": imp.tenant,
            "write": imp.write,
            "expires_at": imp.expires_at,
        })
    });
    Ok(ApiResponse::ok(json!({
        "impersonation": impersonation,
        "user": {
            "id": user.id,
            "email": user.email,
            "platform_admin": user.platform_admin,
            "status": user.status,
            "email_verified": user.email_verified,
            "last_sign_in_at": user.last_sign_in_at,
            "created_at": user.created_at,
        },
        "audience": principal.audience.as_str(),
        "memberships": memberships,
        "invitations": invitations,
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
