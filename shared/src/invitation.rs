//! Invitations to a tenant or a partner: a single-use token (the reset-token machinery, with
//! its own purpose), valid 7 days, mailed to an invited user who has no password yet. A new
//! invitation moves the user's token generation, so every earlier one dies. The link's origin
//! follows the mailed-link rule (`links.rs`).

use crate::auth::opaque;
use crate::config::LinkConfig;
use crate::domain::{Email, User, UserId, UserStatus};
use crate::email::{self, Mailer};
use crate::links::link_target;
use crate::store::{Store, TokenPurpose};

pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 60 * 60;

/// A user invited by email who has not set a password yet: cannot sign in (no password hash
/// verifies against this one) until they accept.
pub fn invited_user(email: Email, now: i64) -> User {
    User {
        id: UserId::new_random(),
        email,
        password_hash: "!invited: no password yet".into(),
        platform_admin: false,
        status: UserStatus::Invited,
        session_epoch: 0,
        reset_generation: 0,
        email_verified: false,
        last_sign_in_at: None,
        created_at: now,
    }
}

/// What an invitation is to: the tenant's or partner's name, the role, and who invites.
pub struct Invite<'a> {
    pub place: &'a str,
    pub role: &'a str,
    pub invited_by: &'a User,
}

/// What sending needs: the store (tokens, the link rule), the mailer and the link settings.
pub struct Sender<'a> {
    pub store: &'a dyn Store,
    pub mailer: &'a dyn Mailer,
    pub links: &'a LinkConfig,
}

/// Mints a fresh invitation for `user` (invalidating earlier ones) and mails it. The error is
/// a short text safe to record (no token, no address).
pub async fn send(
    by: &Sender<'_>,
    user: &User,
    invite: &Invite<'_>,
    now: i64,
) -> Result<(), String> {
    let (store, mailer, links) = (by.store, by.mailer, by.links);
    let (place, role, invited_by) = (invite.place, invite.role, invite.invited_by);
    let token = opaque::mint();
    store
        .create_reset_token(
            user,
            &token.hash,
            now + INVITATION_TTL_SECS,
            TokenPurpose::Invitation,
        )
        .await
        .map_err(|e| {
            format!(
                "the invitation could not be stored: {}",
                crate::error::chain(&e)
            )
        })?;
    let origin = match link_target(store, user, links).await {
        Ok(t) => t.origin,
        Err(_) => links.platform_origin.clone(),
    };
    let link = format!("{origin}/accept-invitation#token={}", token.plaintext);
    let message = email::invitation(
        &user.email,
        place,
        role,
        &invited_by.email,
        &link,
        INVITATION_TTL_SECS / 86_400,
    )
    .map_err(|e| {
        format!(
            "the invitation could not be written: {}",
            crate::error::chain(&e)
        )
    })?;
    mailer.send(&message).await.map_err(|e| {
        format!(
            "the invitation could not be sent: {}",
            crate::error::chain(&e)
        )
    })
}

/// Tells an existing user they were given access. A failure is logged only: the access stands.
pub async fn notify_access(mailer: &dyn Mailer, user: &User, place: &str, role: &str, by: &User) {
    if let Err(e) = try_notify_access(mailer, user, place, role, by).await {
        tracing::error!(user_id = %user.id, cause = %e, "access notice not sent");
    }
}

/// `notify_access`, reporting a failure (a short text safe to record) to the caller.
pub async fn try_notify_access(
    mailer: &dyn Mailer,
    user: &User,
    place: &str,
    role: &str,
    by: &User,
) -> Result<(), String> {
    let message = email::access_granted(&user.email, place, role, &by.email).map_err(|e| {
        format!(
            "the notice could not be written: {}",
            crate::error::chain(&e)
        )
    })?;
    mailer
        .send(&message)
        .await
        .map_err(|e| format!("the notice could not be sent: {}", crate::error::chain(&e)))
}
