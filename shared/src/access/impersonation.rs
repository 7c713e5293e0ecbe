//! Impersonation at request time: what every function does with a token that says an operator
//! acts as a user (`act`, see `jwt`). [`admit`] runs before any route sees the caller:
//!
//! 1. the impersonation must not be on the revocation list (read at most every
//!    [`REVOCATION_TTL`] per instance, so a stop reaches every warm instance within 2 seconds);
//! 2. the operator must still be an active platform admin (a revoked operator's sessions end);
//! 3. a change is refused (403 `IMPERSONATION_READ_ONLY`) unless an owner approved write access,
//!    and a change of the account itself (`/account/...`, `/auth/...`) or of its memberships
//!    elsewhere (`.../join`) is refused always;
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
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
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
}

/// How long an instance keeps the revocation list it read.
pub const REVOCATION_TTL: Duration = Duration::from_secs(2);

type Cached = Option<(Instant, Arc<HashSet<String>>)>;
static REVOKED: Mutex<Cached> = Mutex::new(None);

fn cache() -> std::sync::MutexGuard<'static, Cached> {
    REVOKED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether impersonation `id` was ended: from this instance's copy of the list while it is
/// fresh, else read again.
pub async fn revoked<S: Store + ?Sized>(store: &S, id: &str) -> Result<bool, StoreError> {
    let fresh = cache()
        .as_ref()
        .filter(|(at, _)| at.elapsed() < REVOCATION_TTL)
        .map(|(_, ids)| ids.clone());
    let ids = match fresh {
        Some(ids) => ids,
        None => {
            let now = crate::runtime::time::now_unix();
            let ids: Arc<HashSet<String>> = Arc::new(
                store
                    .revoked_impersonations(now)
                    .await?
                    .into_iter()
                    .collect(),
            );
            *cache() = Some((Instant::now(), ids.clone()));
            ids
        }
    };
    Ok(ids.contains(id))
}

/// Marks `id` revoked in this instance's copy at once (the instance that ended it).
pub fn forget(id: &str) {
    if let Some((_, ids)) = cache().as_mut() {
        let mut next: HashSet<String> = ids.as_ref().clone();
        next.insert(id.to_string());
        *ids = Arc::new(next);
    }
}

fn read_only(message: &'static str) -> ApiError {
    ApiError::refused(ErrorCode::ImpersonationReadOnly, message)
}

/// Whether `method` changes anything.
fn mutating(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Routes whose changes are the account's own, never made by someone acting as it.
fn account_route(path: &str) -> bool {
    path == "/account"
        || path.starts_with("/account/")
        || path.starts_with("/auth/")
        || path.ends_with("/join")
}

/// What an impersonation may do with `method` on the route `resource` (step 3 of the module's
/// list).
pub fn may(imp: &Impersonation, method: &str, resource: &str) -> Result<(), ApiError> {
    if !mutating(method) {
        return Ok(());
    }
    if account_route(resource) {
        return Err(read_only(
            "acting as a user never changes their account, their sessions or their memberships",
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
    let actor_ok = store
        .user_by_id(&imp.actor)
        .await?
        .is_some_and(|u| u.is_active() && u.platform_admin);
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
        }
    }

    #[test]
    fn read_only_unless_approved_and_never_the_account() {
        let (read, write) = (imp(false), imp(true));
        for (method, path) in [
            ("GET", "/tenants/{slug}"),
            ("HEAD", "/tenants/{slug}/users"),
            ("GET", "/account/sessions"),
            ("GET", "/auth/me"),
        ] {
            assert!(may(&read, method, path).is_ok(), "{method} {path}");
            assert!(may(&write, method, path).is_ok(), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/tenants/{slug}/users"),
            ("PATCH", "/tenants/{slug}"),
            ("DELETE", "/databases/{db_id}"),
            ("PUT", "/tenants/{slug}/redirect-origins"),
        ] {
            assert_eq!(may(&read, method, path).unwrap_err().status(), 403);
            assert!(may(&write, method, path).is_ok(), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/account/password"),
            ("PATCH", "/account"),
            ("DELETE", "/account/sessions"),
            ("POST", "/account/mfa/totp"),
            ("POST", "/auth/logout"),
            ("POST", "/tenants/{slug}/join"),
            ("DELETE", "/tenants/{slug}/join"),
        ] {
            assert_eq!(
                may(&write, method, path).unwrap_err().status(),
                403,
                "{method} {path}"
            );
        }
    }
}
