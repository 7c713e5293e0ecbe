//! users: the platform's accounts. Routes (see `../shared/DESIGN.md` and `infra/openapi.yaml`):
//!
//! | route | module | who |
//! |---|---|---|
//! | `GET /users` (`q` email prefix, `status`, `operator`, `partner_admin`, paged) | `directory` | operator |
//! | `GET /users/{user_id}` (profile, memberships, partner grants, invitations, live sessions) | `directory` | operator |
//! | `POST /users/{user_id}/disable`, `/enable` | `directory` | operator (never oneself, never the last operator) |
//! | `PUT /users/{user_id}/operator` (grant operator rights) | `directory` | operator signed in with a second factor within the last 10 minutes |
//! | `DELETE /users/{user_id}/operator` (revoke operator rights) | `directory` | operator (never the last operator) |
//! | `DELETE /users/{user_id}/mfa` (reset a user's second factors; the user is mailed) | `factors` | operator |
//! | `DELETE /users/{user_id}/sessions`, `DELETE /users/{user_id}/sessions/{session_id}` | `directory` | operator |
//! | `DELETE /users/{user_id}` (for good) | `directory` | operator (never oneself, never a tenant's last owner) |
//! | `GET`/`PATCH /account`, `POST /account/email`, `DELETE /account/sessions/{session_id}` | `account` | every signed-in user (`GET`/`DELETE /account/sessions`, the list and "all others", are login's: ending the others gives the caller fresh tokens) |
//! | `GET /account/mfa`, `POST`/`DELETE /account/mfa/totp`, `POST /account/mfa/totp/confirm`, `POST /account/mfa/recovery-codes` | `factors` | every signed-in user (an operator without a factor: only `GET /account`, `GET /account/mfa` and enrolling) |
//! | `POST /account/mfa/passkeys/options`, `POST /account/mfa/passkeys`, `PATCH`/`DELETE /account/mfa/passkeys/{passkey_id}` | `passkeys` | every signed-in user (the same: enrolling is open to an operator without a factor) |
//!
//! And one direct invocation (`first_operator`), an IAM-only action no route reaches: the first
//! operator's invitation, which `make deploy` and `make dev` run once the stack is up.
//!
//! Every change commits its audit entry (scope `platform`, the target user's id and the
//! client's address in its details) in the same transaction.

mod account;
mod directory;
mod factors;
pub mod first_operator;
mod passkeys;

use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use shared::access::caller::Admit;
use shared::access::crypto::DataKey;
use shared::access::gate;
use shared::access::jwt::TokenKeys;
use shared::domain::User;
use shared::http::request::{matched, RequestContext};
use shared::mail::Mailer;
use shared::runtime::config::LinkConfig;
use shared::store::changes::AuditEntry;
use shared::store::Store;
use shared::{ApiError, ApiResponse, ErrorCode};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub mailer: Arc<dyn Mailer>,
    pub links: LinkConfig,
    /// Seals and opens second-factor secrets.
    pub factor_key: DataKey,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    List,
    Get,
    Disable,
    Enable,
    GrantOperator,
    RevokeOperator,
    ResetFactors,
    EndSessions,
    EndSession,
    Remove,
    Account,
    EditAccount,
    ChangeEmail,
    EndAccountSession,
    MfaStatus,
    StartTotp,
    ConfirmTotp,
    RemoveTotp,
    NewRecoveryCodes,
    StartPasskey,
    AddPasskey,
    RenamePasskey,
    RemovePasskey,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/users", Route::List),
    ("GET", "/users/{user_id}", Route::Get),
    ("DELETE", "/users/{user_id}", Route::Remove),
    ("POST", "/users/{user_id}/disable", Route::Disable),
    ("POST", "/users/{user_id}/enable", Route::Enable),
    ("PUT", "/users/{user_id}/operator", Route::GrantOperator),
    ("DELETE", "/users/{user_id}/operator", Route::RevokeOperator),
    ("DELETE", "/users/{user_id}/mfa", Route::ResetFactors),
    ("DELETE", "/users/{user_id}/sessions", Route::EndSessions),
    (
        "DELETE",
        "/users/{user_id}/sessions/{session_id}",
        Route::EndSession,
    ),
    ("GET", "/account", Route::Account),
    ("PATCH", "/account", Route::EditAccount),
    ("POST", "/account/email", Route::ChangeEmail),
    (
        "DELETE",
        "/account/sessions/{session_id}",
        Route::EndAccountSession,
    ),
    ("GET", "/account/mfa", Route::MfaStatus),
    ("POST", "/account/mfa/totp", Route::StartTotp),
    ("DELETE", "/account/mfa/totp", Route::RemoveTotp),
    ("POST", "/account/mfa/totp/confirm", Route::ConfirmTotp),
    (
        "POST",
        "/account/mfa/recovery-codes",
        Route::NewRecoveryCodes,
    ),
    ("POST", "/account/mfa/passkeys/options", Route::StartPasskey),
    ("POST", "/account/mfa/passkeys", Route::AddPasskey),
    (
        "PATCH",
        "/account/mfa/passkeys/{passkey_id}",
        Route::RenamePasskey,
    ),
    (
        "DELETE",
        "/account/mfa/passkeys/{passkey_id}",
        Route::RemovePasskey,
    ),
];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

/// Every invocation: an API Gateway request, or the first operator's direct invocation.
pub async fn handle_event(app: &App, payload: Value) -> Value {
    if shared::http::invoke::is_http(&payload) {
        return shared::http::invoke::serve_http(payload, |req| handle(app, req)).await;
    }
    first_operator::invoke(app, payload).await
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    // An operator without a second factor may read their account and enroll one, nothing else.
    let admit = match route {
        Route::Account
        | Route::MfaStatus
        | Route::StartTotp
        | Route::ConfirmTotp
        | Route::StartPasskey
        | Route::AddPasskey => Admit::Enrolling,
        _ => Admit::Enrolled,
    };
    let call = Call::signed_in_as(app, &app.keys, app.store.as_ref(), &ctx, &req, admit).await?;
    match route {
        Route::Account => account::get(&call).await,
        Route::EditAccount => account::edit(&call).await,
        Route::ChangeEmail => account::change_email(&call).await,
        Route::EndAccountSession => account::end_session(&call).await,
        Route::MfaStatus => factors::status(&call).await,
        Route::StartTotp => factors::start(&call).await,
        Route::ConfirmTotp => factors::confirm(&call).await,
        Route::RemoveTotp => factors::remove(&call).await,
        Route::NewRecoveryCodes => factors::new_recovery_codes(&call).await,
        Route::StartPasskey => passkeys::start(&call).await,
        Route::AddPasskey => passkeys::finish(&call).await,
        Route::RenamePasskey => passkeys::rename(&call).await,
        Route::RemovePasskey => passkeys::remove(&call).await,
        operators_only => {
            gate::operator(&call.caller)?;
            match operators_only {
                Route::List => directory::list(&call).await,
                Route::Get => directory::get(&call).await,
                Route::Disable => directory::set_disabled(&call, true).await,
                Route::Enable => directory::set_disabled(&call, false).await,
                Route::GrantOperator => directory::grant_operator(&call).await,
                Route::RevokeOperator => directory::revoke_operator(&call).await,
                Route::ResetFactors => factors::reset(&call).await,
                Route::EndSessions => directory::end_sessions(&call).await,
                Route::EndSession => directory::end_session(&call).await,
                Route::Remove => directory::remove(&call).await,
                _ => Err(ApiError::route_not_found()),
            }
        }
    }
}

/// One request in hand (`shared::http::call`): this app, the request and its signed-in caller.
pub(crate) type Call<'a> = shared::http::call::Call<'a, App>;

/// An audit entry about `user`: scope `platform`, the user's id and the client's address in
/// the details (never an email or a name: a removed user's entries keep the id alone).
pub(crate) fn user_audit(
    call: &Call<'_>,
    action: &str,
    user: &shared::domain::UserId,
    details: Value,
) -> AuditEntry {
    call.ctx
        .account_audit(call.caller.user.id.clone(), Some(user), action, details)
}

pub(crate) fn user_not_found() -> ApiError {
    ApiError::refused(ErrorCode::UserNotFound, "no such user")
}

pub(crate) fn session_not_found() -> ApiError {
    ApiError::refused(ErrorCode::SessionNotFound, "no such session")
}

/// A user as the API shows them (never the password hash).
pub(crate) fn user_view(u: &User) -> Value {
    json!({
        "user_id": u.id,
        "email": u.email,
        "name": u.name,
        "status": u.status,
        "operator": u.platform_admin,
        "email_verified": u.email_verified,
        "mfa": u.mfa(),
        "factors": {"totp": u.factors.totp, "passkeys": u.factors.passkeys},
        "last_sign_in_at": u.last_sign_in_at,
        "created_at": u.created_at,
    })
}

/// The partners a user administers, each with its slug and name (as a user's page and one's
/// own account show them), read a few at a time.
pub(crate) async fn partner_grants(
    store: &dyn Store,
    ids: Vec<shared::domain::PartnerId>,
) -> Result<Vec<Value>, ApiError> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    stream::iter(ids)
        .map(|id| async move {
            let p = store.partner_by_id(&id).await?;
            Ok::<_, ApiError>(json!({
                "partner_id": id,
                "slug": p.as_ref().map(|p| p.slug.as_str().to_string()),
                "name": p.as_ref().map(|p| p.name.clone()),
            }))
        })
        .buffered(8)
        .try_collect()
        .await
}

/// Ends the session named by the path's `{session_id}`, if it is `user`'s (the same 404 for
/// another's as for none), with its audit entry in the same transaction.
pub(crate) async fn end_one_session(
    call: &Call<'_>,
    user: &shared::domain::UserId,
) -> Result<ApiResponse, ApiError> {
    let session_id = shared::http::request::path_param(call.req, "session_id")
        .filter(|s| shared::access::opaque::is_session_id(s))
        .ok_or_else(session_not_found)?;
    call.store
        .commit(vec![
            shared::store::changes::Change::RevokeSession {
                session_id: session_id.clone(),
                user: user.clone(),
            },
            shared::store::changes::Change::Audit(user_audit(
                call,
                "session.revoked",
                user,
                json!({"session_id": session_id}),
            )),
        ])
        .await
        .map_err(|e| e.answer(|_| session_not_found()))?;
    Ok(ApiResponse::ok(
        json!({"user_id": user, "session_id": session_id, "revoked": true}),
    ))
}
