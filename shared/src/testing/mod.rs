//! Fixtures for handler tests across function crates: users and tenants in any `Store`, and
//! calling a handler with a proxy event and reading its envelope. Not used at run time.

use crate::access::password::hash_password;
use crate::domain::tenant::{Tenant, TenantSlug, TenantStatus};
use crate::domain::{Email, Role, User, UserId, UserStatus};
use crate::store::Store;
use lambda_http::{Body, Response};
use serde_json::Value;

#[cfg(feature = "testing")]
pub mod authenticator;

pub const PASSWORD: &str = "correct horse battery staple";

/// An active user with a unique email and `PASSWORD`, stored.
pub async fn user(store: &dyn Store, platform_admin: bool) -> User {
    user_with_status(store, platform_admin, UserStatus::Active).await
}

/// Like `user`, with the given status (e.g. a disabled account).
pub async fn user_with_status(store: &dyn Store, platform_admin: bool, status: UserStatus) -> User {
    let user = User {
        id: UserId::new_random(),
        email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).expect("valid email"),
        password_hash: hash_password(PASSWORD.into()).await.expect("hashing works"),
        platform_admin,
        status,
        session_epoch: 0,
        reset_generation: 0,
        email_verified: false,
        last_sign_in_at: None,
        name: None,
        // Operators of handler tests have enrolled a factor (operators must have one).
        factors: crate::domain::Factors {
            totp: platform_admin,
            passkeys: 0,
        },
        created_at: crate::runtime::time::now_unix(),
    };
    store.create_user(&user).await.expect("user stored");
    user
}

/// An active tenant with a unique slug, stored, with `user` as a member in `role` if given.
pub async fn tenant(store: &dyn Store, name: &str, member: Option<(&User, Role)>) -> Tenant {
    let id = crate::domain::TenantId::new_random();
    let mut tenant = Tenant::new(
        TenantSlug::parse(&format!("t-{}", &id.as_str()[..12])).expect("valid slug"),
        name.to_string(),
        crate::runtime::time::now_unix(),
    );
    tenant.status = TenantStatus::Active;
    store.create_tenant(&tenant).await.expect("tenant stored");
    if let Some((user, role)) = member {
        store
            .add_membership(&user.id, &tenant, role)
            .await
            .expect("membership stored");
    }
    tenant
}

/// Status and parsed JSON body of a handler's response.
pub fn read(resp: &Response<Body>) -> (u16, Value) {
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        Body::Binary(b) => serde_json::from_slice(b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (resp.status().as_u16(), body)
}

/// An `Authorization` header value for `user` signed in with `audience` now.
pub async fn bearer(
    keys: &crate::access::jwt::TokenKeys,
    user: &User,
    audience: crate::domain::Audience,
) -> String {
    // A user with a second factor signed in with it (operators must have one).
    let now = crate::runtime::time::now_unix();
    let context = crate::access::jwt::TokenContext {
        session_id: None,
        mfa_at: user.mfa().then_some(now),
    };
    let token = keys
        .issue_in(&user.id, audience, user.session_epoch, now, &context)
        .await
        .expect("token issued")
        .token;
    format!("Bearer {token}")
}
