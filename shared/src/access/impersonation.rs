//! Impersonation at request time: what every function does with a token that says an operator
//! acts as a user (`act`, see `jwt`). [`admit`] runs before any route sees the caller:
//!
//! 1. the impersonation must not be on the revocation list (each instance reads an
//!    impersonation's place on it at most every [`REVOCATION_TTL`], so a stop reaches every
//!    warm instance within 2 seconds);
//! 2. the operator must still be an active platform admin, in the session epoch it started in
//!    (revoking the operator, resetting their password or ending their sessions ends it);
//! 3. a change is refused (403 `IMPERSONATION_READ_ONLY`) unless an owner approved write access
//!    and the route is one of [`WRITE_ROUTES`] (the tenant's own settings and data); who has
//!    access, where links go and the account itself are never changed this way;
//! 4. the request is audited in the tenant's audit, naming the operator as actor and the user in
//!    the details, before it runs: if the entry cannot be written, the request is not served.
//!
//! The tenant gate (`gate`) then shows such a caller its one tenant and no other.

use crate::access::jwt::Principal;
use crate::domain::{TenantId, UserId};
use crate::http::error::{ApiError, ErrorCode};
use crate::store::changes::{AuditEntry, AuditTarget, Change};
use crate::store::{Store, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What an impersonation token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impersonation {
    /// The impersonation's id (the token's `jti`).
    pub id: String,
    /// The operator acting.
    pub actor: UserId,
    /// The one tenant it acts in.
    pub tenant: TenantId,
    /// Whether an owner approved write access.
    pub write: bool,
    /// When the token expires (Unix seconds).
    pub expires_at: i64,
    /// The operator's session epoch when it started (`act.sep`).
    pub actor_epoch: u64,
}

/// How long an instance keeps its answer to whether an impersonation was revoked.
pub const REVOCATION_TTL: Duration = Duration::from_secs(2);

/// This instance's answers for the impersonations it saw: whether each was revoked, and when
/// that was read. A stale answer is read again.
static REVOKED: Mutex<Option<HashMap<String, (Instant, bool)>>> = Mutex::new(None);

fn cache() -> std::sync::MutexGuard<'static, Option<HashMap<String, (Instant, bool)>>> {
    REVOKED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether impersonation `id` was ended: this instance's answer while it is fresh (2 seconds),
/// else one strongly consistent read of its place on the list.
pub async fn revoked<S: Store + ?Sized>(store: &S, id: &str) -> Result<bool, StoreError> {
    let fresh = cache()
        .as_ref()
        .and_then(|c| c.get(id).copied())
        .filter(|(at, _)| at.elapsed() < REVOCATION_TTL)
        .map(|(_, revoked)| revoked);
    if let Some(revoked) = fresh {
        return Ok(revoked);
    }
    let revoked = store.impersonation_revoked(id).await?;
    let mut c = cache();
    let c = c.get_or_insert_with(HashMap::new);
    // Entries outlive their tokens by little: drop the stale ones as new ones come.
    c.retain(|_, (at, _)| at.elapsed() < REVOCATION_TTL);
    c.insert(id.to_string(), (Instant::now(), revoked));
    Ok(revoked)
}

/// Marks `id` revoked in this instance at once (the instance that ended it).
pub fn forget(id: &str) {
    cache()
        .get_or_insert_with(HashMap::new)
        .insert(id.to_string(), (Instant::now(), true));
}

fn read_only(message: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::ImpersonationReadOnly, message)
}

/// The changes an operator with write access may make as the user: the tenant's own settings
/// and data. Never who has access (members, invitations, approvals), where links and
/// credentials go (redirect origins), or the account itself (password, e-mail, factors,
/// sessions, memberships): those stay refused with write access too, so nothing made through
/// an impersonation outlives it.
pub const WRITE_ROUTES: &[(&str, &str)] = &[
    ("PATCH", "/tenants/{slug}"),
    ("POST", "/tenants/{slug}/storage/presign"),
    ("POST", "/tenants/{slug}/databases"),
    ("DELETE", "/tenants/{slug}/databases/{db_id}"),
];

/// Requests sent as `POST` that only read: a query of the query plane, which is read-only.
pub const READS_BY_POST: &[(&str, &str)] = &[("POST", "/query/v1/{db_id}/tables/{table}")];

/// What an impersonation may do with `method` on the route `resource` (step 3 of the module's
/// list).
pub fn may(imp: &Impersonation, method: &str, resource: &str) -> Result<(), ApiError> {
    let is = |list: &[(&str, &str)]| list.iter().any(|(m, r)| *m == method && *r == resource);
    if matches!(method, "GET" | "HEAD" | "OPTIONS") || is(READS_BY_POST) {
        return Ok(());
    }
    if !is(WRITE_ROUTES) {
        return Err(read_only(
            "acting as a user never changes who has access, where links go, or the account itself",
        ));
    }
    if !imp.write {
        return Err(read_only(
            "this impersonation is read-only: write access needs an owner's approval",
        ));
    }
    Ok(())
}

/// Steps 1-4 of the module's list, for a principal whose token is an impersonation token
/// (nothing for any other).
/// `resource` is the matched route's template (what decides), `path` the path asked for (what
/// the audit records).
pub async fn admit<S: Store + ?Sized>(
    store: &S,
    principal: &Principal,
    method: &str,
    resource: &str,
    path: &str,
    request_id: &str,
) -> Result<(), ApiError> {
    let Some(imp) = &principal.impersonation else {
        return Ok(());
    };
    let invalid = || ApiError::refused(ErrorCode::InvalidToken, "a valid access token is required");
    if revoked(store, &imp.id).await? {
        tracing::info!(impersonation = %imp.id, "impersonation token refused: ended");
        return Err(invalid());
    }
    // Still an operator, in the sessions it had when it started: a reset of the operator's
    // password or an end of their sessions ends their impersonations too.
    let actor_ok = store
        .user_by_id(&imp.actor)
        .await?
        .is_some_and(|u| u.is_active() && u.platform_admin && u.session_epoch == imp.actor_epoch);
    if !actor_ok {
        tracing::warn!(impersonation = %imp.id, "impersonation token refused: its operator is no longer one");
        return Err(invalid());
    }
    let allowed = may(imp, method, resource);
    let entry = AuditEntry::new(
        AuditTarget::Tenant(imp.tenant.clone()),
        imp.actor.clone(),
        "impersonation.request",
        json!({
            "impersonation": imp.id,
            "user_id": principal.user_id,
            "method": method,
            "path": path,
            "write": imp.write,
            "refused": allowed.is_err(),
        }),
        crate::runtime::time::now_ms(),
        request_id,
    );
    store
        .commit(vec![Change::Audit(entry)])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    allowed
}

/// The audit details of a change made through an impersonation: both identities.
pub fn annotate(details: &mut serde_json::Value, imp: &Impersonation) {
    if let Some(o) = details.as_object_mut() {
        o.insert("impersonated_by".into(), json!(imp.actor));
        o.insert("impersonation".into(), json!(imp.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(write: bool) -> Impersonation {
        Impersonation {
            id: crate::domain::impersonation::new_id(),
            actor: UserId::new_random(),
            tenant: TenantId::new_random(),
            write,
            expires_at: 0,
            actor_epoch: 0,
        }
    }

    #[test]
    fn read_only_unless_approved_and_never_access_links_or_the_account() {
        let (read, write) = (imp(false), imp(true));
        for (method, path) in [
            ("GET", "/tenants/{slug}"),
            ("HEAD", "/tenants/{slug}/users"),
            ("GET", "/account/sessions"),
            ("GET", "/auth/me"),
            // The query plane answers read-only queries.
            ("POST", "/query/v1/{db_id}/tables/{table}"),
        ] {
            assert!(may(&read, method, path).is_ok(), "{method} {path}");
            assert!(may(&write, method, path).is_ok(), "{method} {path}");
        }
        for (method, path) in WRITE_ROUTES {
            assert_eq!(may(&read, method, path).unwrap_err().status(), 403);
            assert!(may(&write, method, path).is_ok(), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/tenants/{slug}/users"),
            ("PATCH", "/tenants/{slug}/users/{user_id}"),
            ("DELETE", "/tenants/{slug}/users/{user_id}"),
            ("PUT", "/tenants/{slug}/redirect-origins"),
            ("POST", "/tenants/{slug}/impersonation-approvals"),
            (
                "POST",
                "/tenants/{slug}/impersonation-approvals/{approval_id}/approve",
            ),
            ("DELETE", "/tenants/{slug}"),
            ("POST", "/account/password"),
            ("PATCH", "/account"),
            ("DELETE", "/account/sessions"),
            ("POST", "/account/mfa/totp"),
            ("POST", "/auth/logout"),
            ("POST", "/auth/impersonate"),
            ("POST", "/tenants/{slug}/join"),
            ("DELETE", "/tenants/{slug}/join"),
            ("POST", "/partners"),
            ("PUT", "/users/{user_id}/operator"),
        ] {
            assert_eq!(
                may(&write, method, path).unwrap_err().status(),
                403,
                "{method} {path}"
            );
        }
    }
}
