//! Invitations to a tenant or a partner: a single-use token (the reset-token machinery, with
//! its own purpose), valid 7 days, mailed to an invited user who has no password yet. A new
//! invitation moves the user's token generation, so every earlier one dies. The link's origin
//! follows the mailed-link rule (`links.rs`).
//!
//! [`invite_by_email`] is the one invite-by-email flow (a tenant's members, a partner's
//! admins): find the user by email or create an invited one, commit them with the [`Grant`]
//! and its audit entry, then mail the invitation (no password yet) or an access notice. Someone
//! who holds the grant but never set a password is invited afresh; anyone else who holds it
//! already is refused.

use crate::access::opaque;
use crate::access::ratelimit::{self, Decision, RatePolicy};
use crate::domain::{Email, User, UserId, UserStatus};
use crate::http::error::ApiError;
use crate::mail::links::link_target;
use crate::mail::{self, Mailer};
use crate::runtime::config::LinkConfig;
use crate::store::changes::{Change, Refusal};
use crate::store::{Store, StoreError, TokenPurpose};
use std::future::Future;

pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 60 * 60;

/// Invitations and access notices mailed for one place (a tenant, a partner) in an hour: a
/// team's onboarding fits, a mail cannon does not. Each bounce or complaint counts against the
/// platform's SES reputation, and a paused SES account sends nobody their reset.
pub const INVITES_PER_PLACE: RatePolicy = RatePolicy {
    name: "invite-place",
    limit: 50,
    window_secs: 3600,
};
/// Invitations one person sends in an hour, wherever they send them from.
pub const INVITES_PER_ACTOR: RatePolicy = RatePolicy {
    name: "invite-actor",
    limit: 100,
    window_secs: 3600,
};

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
        name: None,
        factors: Default::default(),
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
    /// Where the events a grant commits are published (`None`: left in the outbox for the
    /// reconcile).
    pub events: Option<&'a dyn crate::events::EventPublisher>,
}

impl Sender<'_> {
    /// Commits `changes`, publishing the events among them when this sender has a publisher.
    async fn commit(&self, changes: Vec<Change>) -> Result<(), crate::store::changes::CommitError> {
        match self.events {
            Some(events) => crate::events::commit_and_publish(self.store, events, changes).await,
            None => self.store.commit(changes).await,
        }
    }
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
                crate::runtime::logging::chain(&e)
            )
        })?;
    let origin = match link_target(store, user, links).await {
        Ok(t) => t.origin,
        Err(_) => links.platform_origin.clone(),
    };
    let link = format!("{origin}/accept-invitation#token={}", token.plaintext);
    let message = mail::invitation(
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
            crate::runtime::logging::chain(&e)
        )
    })?;
    mailer.send(&message).await.map_err(|e| {
        format!(
            "the invitation could not be sent: {}",
            crate::runtime::logging::chain(&e)
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
    let message = mail::access_granted(&user.email, place, role, &by.email).map_err(|e| {
        format!(
            "the notice could not be written: {}",
            crate::runtime::logging::chain(&e)
        )
    })?;
    mailer.send(&message).await.map_err(|e| {
        format!(
            "the notice could not be sent: {}",
            crate::runtime::logging::chain(&e)
        )
    })
}

/// What an invitation by email gives: a role in a tenant, a partner's admin rights.
pub trait Grant: Sync {
    /// What a user who holds the grant already holds (a tenant role, or nothing more).
    type Held: Send;

    /// What `user` holds of this grant today, if anything.
    fn held(
        &self,
        store: &dyn Store,
        user: &User,
    ) -> impl Future<Output = Result<Option<Self::Held>, StoreError>> + Send;

    /// The changes that give `user` the grant, with this request's audit entry.
    fn changes(&self, user: &User, new_user: bool) -> Vec<Change>;

    /// The audit change of a fresh invitation to someone who holds the grant but never set a
    /// password.
    fn reinvited(&self, user: &User, held: &Self::Held) -> Change;

    /// Whether the caller may re-send an invitation to someone who holds `held` (a tenant's
    /// admin may not re-invite an owner: the link would carry owner rights). Yes by default.
    fn may_reinvite(&self, _held: &Self::Held) -> Result<(), ApiError> {
        Ok(())
    }

    /// The refusal for someone who holds it already (e.g. `ALREADY_MEMBER`), and the store's
    /// reason for the same when a concurrent grant won.
    fn already(&self) -> ApiError;
    fn already_reason(&self) -> Refusal;

    /// What the mail names: the place, the role, who invites.
    fn invite(&self) -> Invite<'_>;

    /// The place's name in rate-limit keys, e.g. `tenant:<id>` (see [`INVITES_PER_PLACE`]).
    fn place_key(&self) -> String;

    /// For a grant an existing account must accept before it counts (a tenant role): the
    /// tenant and the role. `None` (the default): the grant is given at once.
    fn consent(&self) -> Option<(&crate::domain::tenant::Tenant, crate::domain::Role)> {
        None
    }

    /// The changes of an invitation to an existing account (`again`: one was already waiting
    /// and is replaced): the audit entry, with the same action a new account's invitation
    /// records, so the audit tells the two apart no more than the answer; and what a new
    /// invitation takes (a seat).
    fn invited(&self, _user: &User, _again: bool) -> Vec<Change> {
        Vec::new()
    }

    /// Whether there is room for one more holder of the grant (a tenant's seats): checked
    /// before a grant or invitation that adds one. Yes by default.
    fn room(&self) -> Result<(), ApiError> {
        Ok(())
    }

    /// The answer when the commit was refused because the last room was taken meanwhile
    /// (`Refusal::QuotaReached`).
    fn full(&self) -> ApiError {
        ApiError::concurrent_update()
    }
}

/// What [`invite_by_email`] did.
#[derive(Debug)]
pub enum Outcome<H> {
    /// The user held the grant without a password: a fresh invitation replaced the old.
    Reinvited(H),
    /// The grant was given (to a new invited user if `new_user`).
    Granted { new_user: bool },
    /// An existing account was invited to a grant it must accept (`again`: an invitation was
    /// already waiting, and was sent afresh). It holds nothing until it accepts.
    Pending { again: bool },
}

/// The user invited (as stored after the flow) and what happened.
#[derive(Debug)]
pub struct Invited<H> {
    pub user: User,
    pub outcome: Outcome<H>,
}

/// The invite-by-email flow; see the module's header.
pub async fn invite_by_email<G: Grant>(
    by: &Sender<'_>,
    grant: &G,
    email: Email,
    now: i64,
) -> Result<Invited<G::Held>, ApiError> {
    let store = by.store;
    let invite = grant.invite();
    // Counted before anything is looked at or written, whoever the address turns out to be: a
    // refused request changes nothing and sends nothing.
    let place = grant.place_key();
    let limits = [
        (INVITES_PER_PLACE, place.as_str()),
        (INVITES_PER_ACTOR, invite.invited_by.id.as_str()),
    ];
    if let Decision::Limited { retry_after_secs } = ratelimit::reserve(store, &limits, now).await? {
        tracing::warn!(place = invite.place, invited_by = %invite.invited_by.id, retry_after_secs, "invitation refused: mail limit");
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let existing = store.user_by_email(&email).await?;
    let held = match &existing {
        Some(u) => grant.held(store, u).await?,
        None => None,
    };
    match (existing, held) {
        (Some(user), Some(held)) if user.status == UserStatus::Invited => {
            grant.may_reinvite(&held)?;
            store
                .commit(vec![grant.reinvited(&user, &held)])
                .await
                .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
            send_or_fail(by, &user, &invite, now).await?;
            Ok(Invited {
                user,
                outcome: Outcome::Reinvited(held),
            })
        }
        (_, Some(_)) => Err(grant.already()),
        (Some(user), None) if grant.consent().is_some() => {
            let again = invite_pending(by, grant, &user, now).await?;
            Ok(Invited {
                user,
                outcome: Outcome::Pending { again },
            })
        }
        (existing, None) => {
            let new_user = existing.is_none();
            let user = existing.unwrap_or_else(|| invited_user(email, now));
            let mut changes = Vec::new();
            if new_user {
                changes.push(Change::CreateUser(user.clone()));
            }
            grant.room()?;
            changes.extend(grant.changes(&user, new_user));
            by.commit(changes).await.map_err(|e| {
                e.answer(|reasons| {
                    if reasons.contains(&grant.already_reason()) {
                        grant.already()
                    } else if reasons.contains(&Refusal::QuotaReached) {
                        grant.full()
                    } else {
                        ApiError::concurrent_update()
                    }
                })
            })?;
            tracing::info!(place = invite.place, role = invite.role, user_id = %user.id, invited_by = %invite.invited_by.id, new_user, "access granted by email");
            if user.status == UserStatus::Invited {
                send_or_fail(by, &user, &invite, now).await?;
            } else {
                notify_access(
                    by.mailer,
                    &user,
                    invite.place,
                    invite.role,
                    invite.invited_by,
                )
                .await;
            }
            Ok(Invited {
                user,
                outcome: Outcome::Granted { new_user },
            })
        }
    }
}

/// Invites an existing account to a grant it must accept: stores the invitation (replacing a
/// waiting one) with the audit entry, and mails a notice to an active account. Nothing of the
/// account changes: no membership, no token (its invitations elsewhere live on), no link.
/// Whether an invitation was already waiting.
async fn invite_pending<G: Grant>(
    by: &Sender<'_>,
    grant: &G,
    user: &User,
    now: i64,
) -> Result<bool, ApiError> {
    let Some((tenant, role)) = grant.consent() else {
        return Ok(false);
    };
    let store = by.store;
    let again = store.invite(&user.id, &tenant.id).await?.is_some();
    let invite = grant.invite();
    let mut changes = vec![Change::PutInvite {
        replaces: again,
        user: user.id.clone(),
        invite: crate::store::Invite {
            tenant_id: tenant.id.clone(),
            tenant_slug: tenant.slug.as_str().to_string(),
            role,
            invited_by: invite.invited_by.id.clone(),
            invited_at: now,
            expires_at: now + INVITATION_TTL_SECS,
        },
    }];
    if !again {
        grant.room()?;
    }
    changes.extend(grant.invited(user, again));
    by.commit(changes).await.map_err(|e| {
        e.answer(|reasons| {
            if reasons.contains(&Refusal::QuotaReached) {
                grant.full()
            } else {
                ApiError::concurrent_update()
            }
        })
    })?;
    tracing::info!(place = invite.place, role = invite.role, user_id = %user.id, invited_by = %invite.invited_by.id, again, "existing account invited");
    if user.is_active() {
        // The answer does not change with the mail: it would tell this account from a new one.
        if let Err(cause) = try_notify_pending(by.mailer, by.links, user, &invite).await {
            tracing::error!(user_id = %user.id, cause = %cause, "invitation notice not sent");
        }
    }
    Ok(again)
}

/// Tells an existing account it was invited to something it must accept while signed in (the
/// console's address, the platform's origin), reporting a failure as a short text.
pub async fn try_notify_pending(
    mailer: &dyn Mailer,
    links: &LinkConfig,
    user: &User,
    invite: &Invite<'_>,
) -> Result<(), String> {
    let link = format!("{}/console/", links.platform_origin);
    let message = mail::invitation_pending(
        &user.email,
        invite.place,
        invite.role,
        &invite.invited_by.email,
        &link,
        INVITATION_TTL_SECS / 86_400,
    )
    .map_err(|e| crate::runtime::logging::chain(&e))?;
    mailer
        .send(&message)
        .await
        .map_err(|e| crate::runtime::logging::chain(&e))
}

/// `send`, as the API's answer: 503 when the invitation could not be sent.
async fn send_or_fail(
    by: &Sender<'_>,
    user: &User,
    invite: &Invite<'_>,
    now: i64,
) -> Result<(), ApiError> {
    send(by, user, invite, now).await.map_err(|why| {
        tracing::error!(user_id = %user.id, place = invite.place, cause = %why, "invitation not sent");
        ApiError::unavailable("mail", why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenant::{RedirectOrigin, Tenant};
    use crate::domain::Role;
    use crate::mail::RecordingMailer;
    use crate::store::changes::{AuditEntry, AuditTarget};
    use crate::store::{MemoryStore, UserStore};

    /// A member's role in `tenant`, as the tenants function grants it (without the audit).
    struct Member<'a> {
        tenant: &'a Tenant,
        by: &'a User,
    }

    impl Grant for Member<'_> {
        type Held = Role;

        async fn held(&self, store: &dyn Store, user: &User) -> Result<Option<Role>, StoreError> {
            Ok(store
                .membership(&user.id, &self.tenant.id)
                .await?
                .map(|m| m.role))
        }

        fn changes(&self, user: &User, _: bool) -> Vec<Change> {
            vec![Change::AddMembership {
                user: user.id.clone(),
                tenant: self.tenant.clone(),
                role: Role::Member,
                at: 0,
            }]
        }

        fn reinvited(&self, user: &User, _: &Role) -> Change {
            Change::Audit(AuditEntry::new(
                AuditTarget::Tenant(self.tenant.id.clone()),
                self.by.id.clone(),
                "member.reinvited",
                serde_json::json!({"user_id": user.id}),
                0,
                "test",
            ))
        }

        fn already(&self) -> ApiError {
            ApiError::refused(crate::ErrorCode::AlreadyMember, "already")
        }

        fn already_reason(&self) -> Refusal {
            Refusal::AlreadyMember
        }

        fn invite(&self) -> Invite<'_> {
            Invite {
                place: &self.tenant.name,
                role: "member",
                invited_by: self.by,
            }
        }

        fn place_key(&self) -> String {
            format!("tenant:{}", self.tenant.id)
        }
    }

    fn fixture() -> (MemoryStore, RecordingMailer, LinkConfig) {
        let links = LinkConfig {
            platform_origin: RedirectOrigin::parse("https://console.example.com", false).unwrap(),
        };
        (MemoryStore::new(), RecordingMailer::default(), links)
    }

    #[tokio::test]
    async fn invites_afresh_until_a_password_is_set_then_refuses() {
        let (store, mailer, links) = fixture();
        let by = Sender {
            store: &store,
            mailer: &mailer,
            links: &links,
            events: None,
        };
        let inviter = crate::testing::user(&store, true).await;
        let tenant = crate::testing::tenant(&store, "Acme", None).await;
        let grant = Member {
            tenant: &tenant,
            by: &inviter,
        };
        let email = Email::parse("new@example.com").unwrap();

        let first = invite_by_email(&by, &grant, email.clone(), 100)
            .await
            .unwrap();
        assert!(matches!(first.outcome, Outcome::Granted { new_user: true }));
        assert_eq!(first.user.status, UserStatus::Invited);
        let again = invite_by_email(&by, &grant, email.clone(), 200)
            .await
            .unwrap();
        assert!(matches!(again.outcome, Outcome::Reinvited(Role::Member)));
        assert_eq!(again.user.id, first.user.id);
        let sent = mailer.sent();
        assert_eq!(sent.len(), 2);
        assert!(sent
            .iter()
            .all(|m| m.to == email && m.text.contains("accept-invitation")));
        assert_ne!(sent[0].text, sent[1].text, "a fresh token each time");

        // Someone with a password who holds the grant is refused; one without it is granted
        // and told, with no invitation.
        let active = crate::testing::user(&store, false).await;
        let granted = invite_by_email(&by, &grant, active.email.clone(), 300)
            .await
            .unwrap();
        assert!(matches!(
            granted.outcome,
            Outcome::Granted { new_user: false }
        ));
        assert!(!mailer.sent()[2].text.contains("accept-invitation"));
        let refused = invite_by_email(&by, &grant, active.email.clone(), 400)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "ALREADY_MEMBER");
        assert_eq!(mailer.sent().len(), 3);
    }

    #[tokio::test]
    async fn a_place_and_an_actor_mail_a_bounded_number_of_invitations() {
        let (store, mailer, links) = fixture();
        let by = Sender {
            store: &store,
            mailer: &mailer,
            links: &links,
            events: None,
        };
        let inviter = crate::testing::user(&store, true).await;
        let tenant = crate::testing::tenant(&store, "Acme", None).await;
        let grant = Member {
            tenant: &tenant,
            by: &inviter,
        };
        let email = |i: usize| Email::parse(&format!("person{i}@example.com")).unwrap();
        for i in 0..INVITES_PER_PLACE.limit {
            invite_by_email(&by, &grant, email(i), 1_000).await.unwrap();
        }
        let refused = invite_by_email(&by, &grant, email(999), 1_000)
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 429);
        // Refused before anything: no user, no membership, no mail.
        assert_eq!(mailer.sent().len(), INVITES_PER_PLACE.limit);
        assert!(store.user_by_email(&email(999)).await.unwrap().is_none());
        // The hour passes.
        invite_by_email(&by, &grant, email(999), 1_000 + 3_601)
            .await
            .unwrap();

        // One actor across many places.
        let busy = crate::testing::user(&store, false).await;
        let mut sent = 0;
        let mut refused_at = None;
        for place in 0..INVITES_PER_ACTOR.limit / INVITES_PER_PLACE.limit + 1 {
            let t = crate::testing::tenant(&store, &format!("T{place}"), None).await;
            let g = Member {
                tenant: &t,
                by: &busy,
            };
            for i in 0..INVITES_PER_PLACE.limit {
                match invite_by_email(&by, &g, email(10_000 + place * 100 + i), 1_000).await {
                    Ok(_) => sent += 1,
                    Err(e) => {
                        assert_eq!(e.status(), 429);
                        refused_at.get_or_insert(sent);
                    }
                }
            }
        }
        assert_eq!(refused_at, Some(INVITES_PER_ACTOR.limit));
        assert_eq!(sent, INVITES_PER_ACTOR.limit);
    }
}
