//! Who is calling and what they may do. The access token proves identity; the stored user
//! record decides permission, so a revoked admin flag or a disabled account takes effect at
//! once, whatever tokens are still alive.

use super::jwt::{Principal, TokenKeys};
use crate::domain::tenant::{Tenant, TenantStatus};
use crate::domain::{Audience, Role, User};
use crate::http::error::ApiError;
use crate::http::error::ErrorCode;
use crate::http::request::bearer_token;
use crate::store::{Store, StoreError, TenantStore, UserStore};
use lambda_http::Request;

fn invalid_token() -> ApiError {
    ApiError::refused(ErrorCode::InvalidToken, "a valid access token is required")
}

/// The caller's verified token for one of `audiences`, or a 401.
pub async fn authenticate(
    keys: &TokenKeys,
    req: &Request,
    audiences: &[Audience],
) -> Result<Principal, ApiError> {
    let token = bearer_token(req).ok_or_else(invalid_token)?;
    keys.verify(token, audiences).await.map_err(|why| {
        tracing::info!(reason = %why, "access token rejected");
        invalid_token()
    })
}

/// The caller's current, active user record. A token for a deleted or disabled user, or one
/// issued before the user's sessions were ended (password reset), is a 401.
pub async fn current_user<S: UserStore + ?Sized>(
    store: &S,
    principal: &Principal,
) -> Result<User, ApiError> {
    match store.user_by_id(&principal.user_id).await? {
        Some(user) if user.is_active() && user.session_epoch == principal.session_epoch => {
            if principal.audience == Audience::Operator && !user.platform_admin {
                return Err(invalid_token());
            }
            Ok(user)
        }
        _ => Err(invalid_token()),
    }
}

pub fn account_suspended_error() -> ApiError {
    ApiError::refused(
        ErrorCode::AccountSuspended,
        "every tenant of this account is suspended",
    )
}

/// How many memberships the suspension check reads (one bounded query). A user with more
/// than this is never held suspended by it.
pub const SUSPENSION_CHECK_MEMBERSHIPS: usize = 100;

/// Whether every tenant the user belongs to is suspended, so the account may not be used.
/// Operators and partner admins are never held this way, nor is a user with no membership.
pub async fn account_suspended<S: UserStore + TenantStore + ?Sized>(
    store: &S,
    user: &User,
) -> Result<bool, StoreError> {
    Ok(summary(store, user).await?.is_some_and(|s| s.suspended))
}

/// What one read of the user's partition says about their access, kept for the rest of the
/// request so tenant routes need not read the same membership again.
#[derive(Debug, Clone)]
pub struct AccessSummary {
    /// The user's memberships, every one of them when `complete`.
    pub memberships: Vec<crate::domain::Membership>,
    pub complete: bool,
    /// Whether the user administers any partner.
    pub partner_admin: bool,
    /// Every tenant of the user is suspended (see [`account_suspended`]).
    pub suspended: bool,
}

/// The user's access summary; `None` for platform admins, who are never held suspended.
async fn summary<S: UserStore + TenantStore + ?Sized>(
    store: &S,
    user: &User,
) -> Result<Option<AccessSummary>, StoreError> {
    if user.platform_admin {
        return Ok(None);
    }
    let (memberships, partner_admin) = store
        .access_summary(&user.id, SUSPENSION_CHECK_MEMBERSHIPS)
        .await?;
    let complete = memberships.len() < SUSPENSION_CHECK_MEMBERSHIPS;
    let suspended = if partner_admin || memberships.is_empty() || !complete {
        false
    } else {
        let ids: Vec<_> = memberships.iter().map(|m| m.tenant_id.clone()).collect();
        let tenants = store.tenants_by_ids(&ids).await?;
        // A tenant that is gone, or not suspended, leaves the account usable.
        tenants.len() == ids.len()
            && tenants
                .iter()
                .all(|t| t.access_status() == TenantStatus::Suspended)
    };
    Ok(Some(AccessSummary {
        memberships,
        complete,
        partner_admin,
        suspended,
    }))
}

/// A signed-in caller, as the database sees them: the stored user, and whether they act as a
/// platform operator (operator token AND stored flag).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub operator: bool,
    /// Read once by `signed_in` for everyone but platform admins.
    pub summary: Option<AccessSummary>,
    /// The session the caller's token was issued in, if it names one.
    pub session_id: Option<String>,
    /// When the caller's sign-in passed its second factor, if it did.
    pub mfa_at: Option<i64>,
    /// Set when an operator acts as this user: they see its one tenant and no other.
    pub impersonation: Option<super::impersonation::Impersonation>,
}

impl Caller {
    /// Whether the caller's sign-in passed a second factor within [`RECENT_FACTOR_SECS`]: what
    /// the most sensitive actions (granting operator rights) ask for.
    pub fn recent_factor(&self, now: i64) -> bool {
        self.mfa_at
            .is_some_and(|at| at <= now + 60 && now - at <= RECENT_FACTOR_SECS)
    }
}

/// How recent a second factor must be for the actions that ask for one.
pub const RECENT_FACTOR_SECS: i64 = 600;

static OPERATOR_FACTOR_REQUIRED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Sets, once per process, whether operators must have a second factor (`OPERATOR_MFA`,
/// `required` unless a local stack says `optional`). Unset, it is required.
pub fn set_operator_factor_required(required: bool) {
    let _ = OPERATOR_FACTOR_REQUIRED.set(required);
}

fn operator_factor_required() -> bool {
    *OPERATOR_FACTOR_REQUIRED.get().unwrap_or(&true)
}

/// The refusal for an operator token of an account without a second factor: such a token
/// can do nothing but enroll one.
pub fn enrollment_required() -> ApiError {
    ApiError::refused(
        ErrorCode::MfaEnrollmentRequired,
        "operators must enroll a second factor first: add an authenticator app under Account",
    )
}

/// Where operators must have a second factor: an operator token of an account without one,
/// or from a sign-in that did not pass it, is admitted only by enrolment routes.
pub fn factor_gate(principal: &Principal, user: &User, admit: Admit) -> Result<(), ApiError> {
    if admit == Admit::Enrolled
        && principal.audience == Audience::Operator
        && operator_factor_required()
    {
        if !user.mfa() {
            return Err(enrollment_required());
        }
        // Enrolled, but this token's sign-in did not pass the factor (it predates the
        // enrolment): it stays an enrolment token.
        if principal.mfa_at.is_none() {
            return Err(ApiError::refused(
                ErrorCode::MfaRequired,
                "sign in again with your second factor",
            ));
        }
    }
    Ok(())
}

/// Which signed-in callers a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Every route but enrolment: an operator token of an account without a second factor is
    /// refused (where operators must have one).
    Enrolled,
    /// Enrolling a second factor (and reading one's own account to do so).
    Enrolling,
}

/// The caller of a route open to portal and operator tokens. A user whose tenants are all
/// suspended gets 403 `ACCOUNT_SUSPENDED`, whatever token they still hold.
pub async fn signed_in<S: Store + ?Sized>(
    keys: &TokenKeys,
    store: &S,
    req: &Request,
    request_id: &str,
) -> Result<Caller, ApiError> {
    signed_in_as(keys, store, req, Admit::Enrolled, request_id).await
}

/// `signed_in`, for the routes `admit` says.
pub async fn signed_in_as<S: Store + ?Sized>(
    keys: &TokenKeys,
    store: &S,
    req: &Request,
    admit: Admit,
    request_id: &str,
) -> Result<Caller, ApiError> {
    let principal = authenticate(keys, req, &[Audience::Portal, Audience::Operator]).await?;
    let user = current_user(store, &principal).await?;
    factor_gate(&principal, &user, admit)?;
    impersonated(store, &principal, req, request_id).await?;
    let operator = principal.audience == Audience::Operator && user.platform_admin;
    let mut summary = summary(store, &user).await?;
    if let (Some(imp), Some(s)) = (&principal.impersonation, summary.as_mut()) {
        // Acting as the user shows their one tenant: memberships elsewhere are not read.
        s.memberships.retain(|m| m.tenant_id == imp.tenant);
        s.partner_admin = false;
    }
    if !operator && summary.as_ref().is_some_and(|s| s.suspended) {
        return Err(account_suspended_error());
    }
    Ok(Caller {
        user,
        operator,
        summary,
        session_id: principal.session_id,
        mfa_at: principal.mfa_at,
        impersonation: principal.impersonation,
    })
}

/// `impersonation::admit` for this request (nothing for a token that is not an
/// impersonation's).
pub async fn impersonated<S: Store + ?Sized>(
    store: &S,
    principal: &Principal,
    req: &Request,
    request_id: &str,
) -> Result<(), ApiError> {
    super::impersonation::admit(
        store,
        principal,
        req.method().as_str(),
        crate::http::request::resource(req),
        req.uri().path(),
        request_id,
    )
    .await
}

/// The answer for a tenant that does not exist, or that the caller may not know exists.
pub fn tenant_not_found() -> ApiError {
    ApiError::refused(ErrorCode::TenantNotFound, "no such tenant")
}

/// The answer for a member of a suspended tenant.
pub fn tenant_suspended() -> ApiError {
    ApiError::refused(ErrorCode::TenantSuspended, "this tenant is suspended")
}

/// What the caller is to one tenant, read from stored records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantAccess {
    pub operator: bool,
    /// An admin of the partner the tenant is attached to.
    pub partner_admin: bool,
    /// The caller's role in the tenant, if a member.
    pub role: Option<Role>,
}

impl TenantAccess {
    /// May the caller know the tenant exists?
    pub fn sees(&self) -> bool {
        self.operator || self.partner_admin || self.role.is_some()
    }

    /// Operators and the tenant's owners and admins.
    pub fn manages(&self) -> bool {
        self.operator || matches!(self.role, Some(Role::Owner | Role::Admin))
    }
}

pub async fn tenant_access<S: UserStore + ?Sized>(
    store: &S,
    caller: &Caller,
    tenant: &Tenant,
) -> Result<TenantAccess, StoreError> {
    if caller
        .impersonation
        .as_ref()
        .is_some_and(|imp| imp.tenant != tenant.id)
    {
        // Acting as a user reaches their one tenant, no other: as if they had no role there.
        return Ok(TenantAccess {
            operator: false,
            partner_admin: false,
            role: None,
        });
    }
    // The memberships read at sign-in of this request, when they are all there; else one read.
    let role = match &caller.summary {
        Some(s) if s.complete => s
            .memberships
            .iter()
            .find(|m| m.tenant_id == tenant.id)
            .map(|m| m.role),
        _ => store
            .membership(&caller.user.id, &tenant.id)
            .await?
            .map(|m| m.role),
    };
    let partner_admin = match &tenant.partner {
        Some(_) if caller.operator => false,
        // Not an admin of any partner: not of this one either.
        Some(_) if caller.summary.as_ref().is_some_and(|s| !s.partner_admin) => false,
        Some(p) => store.is_partner_admin(&caller.user.id, p).await?,
        None => false,
    };
    Ok(TenantAccess {
        operator: caller.operator,
        partner_admin,
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, UserId, UserStatus};
    use crate::http::proxy_event::ProxyRequest;
    use crate::runtime::time::now_unix;
    use crate::store::MemoryStore;

    fn user(admin: bool, status: UserStatus) -> User {
        User {
            id: UserId::new_random(),
            email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap(),
            password_hash: "$argon2id$unused".into(),
            platform_admin: admin,
            status,
            session_epoch: 0,
            reset_generation: 0,
            email_verified: false,
            last_sign_in_at: None,
            name: None,
            factors: Default::default(),
            created_at: 0,
        }
    }

    /// What an operator route checks: an operator-audience token AND the stored flag.
    async fn operator(
        keys: &TokenKeys,
        store: &MemoryStore,
        req: &Request,
    ) -> Result<User, ApiError> {
        let principal = authenticate(keys, req, &[Audience::Operator]).await?;
        current_user(store, &principal).await
    }

    fn with_token(token: &str) -> Request {
        ProxyRequest::new("GET", "/x")
            .header("authorization", &format!("Bearer {token}"))
            .to_lambda_request()
    }

    #[tokio::test]
    async fn operator_needs_operator_audience_and_stored_flag() {
        let keys =
            TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 60).unwrap();
        let store = MemoryStore::new();
        let admin = user(true, UserStatus::Active);
        let plain = user(false, UserStatus::Active);
        let disabled_admin = user(true, UserStatus::Disabled);
        for u in [&admin, &plain, &disabled_admin] {
            store.create_user(u).await.unwrap();
        }
        let mut tokens = std::collections::HashMap::new();
        for u in [&admin, &plain, &disabled_admin] {
            for aud in [Audience::Portal, Audience::Operator] {
                let t = keys
                    .issue(&u.id, aud, u.session_epoch, now_unix())
                    .await
                    .unwrap();
                tokens.insert((u.id.clone(), aud), t.token);
            }
        }
        let token = |u: &User, aud| tokens[&(u.id.clone(), aud)].clone();

        assert_eq!(
            operator(
                &keys,
                &store,
                &with_token(&token(&admin, Audience::Operator))
            )
            .await
            .unwrap()
            .id,
            admin.id
        );
        let refused = [
            (
                "a portal token of an admin",
                with_token(&token(&admin, Audience::Portal)),
            ),
            // The token says operator; the database says the flag is gone.
            (
                "a user who lost the flag",
                with_token(&token(&plain, Audience::Operator)),
            ),
            (
                "a disabled admin",
                with_token(&token(&disabled_admin, Audience::Operator)),
            ),
            (
                "no token",
                ProxyRequest::new("GET", "/x").to_lambda_request(),
            ),
        ];
        for (what, req) in refused {
            let err = operator(&keys, &store, &req).await.unwrap_err();
            assert_eq!(err.status(), 401, "{what}");
        }
    }

    #[tokio::test]
    async fn token_from_before_the_sessions_were_ended_is_refused() {
        let keys =
            TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 60).unwrap();
        let store = MemoryStore::new();
        let mut u = user(false, UserStatus::Active);
        u.session_epoch = 1;
        store.create_user(&u).await.unwrap();
        let before = keys
            .issue(&u.id, Audience::Portal, 0, now_unix())
            .await
            .unwrap()
            .token;
        let current = keys
            .issue(&u.id, Audience::Portal, 1, now_unix())
            .await
            .unwrap()
            .token;
        let before = authenticate(&keys, &with_token(&before), &[Audience::Portal])
            .await
            .unwrap();
        let current = authenticate(&keys, &with_token(&current), &[Audience::Portal])
            .await
            .unwrap();
        assert_eq!(
            current_user(&store, &before).await.unwrap_err().status(),
            401
        );
        assert_eq!(current_user(&store, &current).await.unwrap().id, u.id);
    }
}
