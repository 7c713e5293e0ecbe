//! The single-table store: every rule about how data is keyed, written together and expired.
//! `DynamoStore` (`dynamo/`) is the real implementation; `MemoryStore` (`memory/`, tests only)
//! keeps the same contract in memory. Both are split by aggregate: users, tenants, resets,
//! sessions, rate limits, idempotency; partners, audit, provisioning and databases go beside
//! them. This page is the one place the key schema and access patterns are written down.
//!
//! # Key schema (table `TABLE_NAME`)
//!
//! Attributes: `PK` (S, partition), `SK` (S, sort), `GSI1PK`/`GSI1SK` (S, index `GSI1`),
//! `expires_at` (N, Unix seconds, the table's TTL attribute; code also checks it, since TTL
//! deletion is lazy).
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | user | `USER#<user_id>` | `USER` | email, name, password hash, platform-admin flag, status, session epoch; `GSI2PK=USERS`, `GSI2SK=<email>` (users written before the index existed appear once rewritten) |
//! | operator count | `OPERATORS` | `COUNT` | `n`: accounts that are operators and not disabled (invited ones included), moved in the transaction of every change of a flag or status; a decrease is conditioned on `n` staying at least 1 |
//! | email claim | `EMAIL#<email>` | `EMAIL` | `user_id`; written with the user in one transaction, so an email belongs to at most one user |
//! | invitation | `USER#<user_id>` | `INVITE#<tenant_id>` | role, tenant slug, `invited_by`, `invited_at`, `expires_at` (7 days): an existing account's pending grant, seen by no membership read (`INVITE#` sorts before `MEMBER#`); `GSI1PK=TENANT#<tenant_id>`, `GSI1SK=INVITE#<user_id>` (a tenant's pending invitations, for its seat count) |
//! | membership | `USER#<user_id>` | `MEMBER#<tenant_id>` | role, slug, `added_at` (ms); `GSI1PK=TENANT#<tenant_id>`, `GSI1SK=MEMBER#<added_at, 15 digits>#<user_id>` (newest first when read backwards) |
//! | tenant | `TENANT#<tenant_id>` | `TENANT` | slug, name, `name_lower`, status, plan, domains, billing info (JSON), partner, owner email, provisioning (JSON), ordered `redirect_origins`, `owners` (count, never below 1 once set), `version`; `GSI2PK=TENANTS`, `GSI2SK=<slug>`; when attached, `GSI1PK=PARTNER#<partner_id>`, `GSI1SK=TENANT#<slug>` |
//! | slug claim | `SLUG#<slug>` | `SLUG` | `tenant_id`; written with the tenant in one transaction; never released (a deleted tenant keeps it) |
//! | partner | `PARTNER#<partner_id>` | `PARTNER` | slug, name, domain, status, `margin_bp`, contact and billing info (JSON), `count_<status>` (attached tenants by status), `count_live` (those not deleted: the partner admins' quota), `version`; `GSI2PK=PARTNERS`, `GSI2SK=<slug>` |
//! | database | `DB#<db_id>` | `DB` | tenant, name, engine, host (no credentials), sealed connection string, `created_at`; `GSI1PK=TENANT#<tenant_id>`, `GSI1SK=DB#<created ms, 15 digits>#<db_id>` |
//! | redirect origin | `ORIGIN#<origin>` | `TENANT#<tenant_id>` | `tenant_id`; one per tenant that registered the origin, written and removed with the tenant's list (`Change::SetRedirectOrigins`); what a preflight of a mailed-link route reads |
//! | plan | `PLAN#<plan_id>` | `PLAN` | name, status (`active`/`retired`), `entitlements` (JSON: seats, stored bytes and objects, databases, largest upload, tenants per partner; null is unlimited), `features` (JSON list), `tenants` (how many tenants are on it: moved in the transaction of every tenant's creation, plan change and purge; an increase is conditioned on the plan being active), `version`; `GSI2PK=PLANS`, `GSI2SK=<plan_id>`. A built-in plan (`free`, `pro`, `enterprise`) is written by its first use or edit, until then read from the deployment's configuration |
//! | quota counters | `QUOTA#tenant:<tenant_id>` | `QUOTA` | `seats` (members and pending invitations), `databases`, `stored_bytes`, `stored_objects`, `storage_moves`, `storage_at` (the last move, Unix seconds): each moved in the transaction of what changes it; an increase of seats or databases is conditioned on staying within the plan's limit; a recount (the reconcile) is conditioned on the counters it read |
//! | storage ledger | `OBJ#<tenant_id>#<sha256(object key)>` | `OBJ` | `size`, `sequencer` (the S3 event's, per key), `present`, `at`; `expires_at` (19 days) once removed: what makes each S3 notification count once, in order |
//! | partner slug claim | `PSLUG#<slug>` | `PSLUG` | `partner_id` |
//! | reset token | `RESET#<sha256(token)>` | `RESET` | user, generation, `expires_at`; deleted when spent |
//! | partner admin | `USER#<user_id>` | `PARTNER#<partner_id>` | `GSI1PK=PARTNER#<partner_id>`, `GSI1SK=USER#<user_id>` |
//! | TOTP factor | `USER#<user_id>` | `MFA#TOTP` | `sealed` (the secret, AES-256-GCM under the data key, bound to `user|<id>|totp`), `confirmed`, `last_step` (the last time step accepted: replay refused), `created_at` |
//! | passkey | `USER#<user_id>` | `MFA#PASSKEY#<sha256(credential id), base64url>` (an id may be 1,023 bytes: too long for a sort key) | `credential_id` (base64url), `name`, `public_key` (the credential's key and extensions, `webauthn_rp`'s encoding, base64url), `state` (signature counter and flags; moved on each use, conditioned on the value read), `transports`, `created_at`, `last_used_at`; at most 10 per user |
//! | passkey registration | `USER#<user_id>` | `MFA#PASSKEY_PENDING` | `state` (the ceremony's server state), `expires_at` (5 minutes); one per user (a new start replaces it), deleted by the registration that spends it |
//! | recovery codes | `USER#<user_id>` | `MFA#RECOVERY` | `codes` (string set of the SHA-256 of each unused code; using one removes it, conditioned on it being there) |
//! | email change | `EMAILCHG#<sha256(token)>` | `EMAILCHG` | user, `from`, `to`, `session_epoch`, `expires_at` (24 hours); deleted when spent, with the user's email and both claims moved in the same transaction, conditioned on the epoch (a password change or reset since cancels it); the move also bumps `reset_generation` (reset links mailed to the old address die) |
//! | second-factor challenge | `MFACHAL#<sha256(token)>` | `MFACHAL` | user, audience, `session_epoch` (the challenge dies with it), client, `expires_at` (5 minutes), `passkey_state` (once a passkey assertion was asked for: its server state); deleted when spent, in the transaction that spends the code |
//! | session | `SESSION#<session_id>` | `SESSION` | user, audience, session epoch, revoked flag, `heads` (live token hash -> issued at, at most 4), `spent` (spent hash -> spent at, the newest 16), `created_at`, `last_used_at`, `client_ip`, `user_agent`, `expires_at`; `GSI1PK=SESSIONS#<user_id>`, `GSI1SK=<created_at, 15 digits>#<session_id>` |
//! | rate counter | `RATE#<policy>#<sha256(subject)>#<window number>` | `RATE` | `n` (attempts counted in this fixed window), `in_flight` (sign-ins not yet settled), `expires_at` (the window's end) |
//! | audit entry | `AUDIT#<scope>` | `<unix ms, 15 digits>#<random>` | actor, action, tenant, partner, details (JSON), request id, `at`; scope is `tenant:<id>`, `partner:<id>` or `platform`; `GSI2PK=AUDIT`, `GSI2SK=<SK>` |
//! | counter | `COUNT#<scope>` | `COUNT` | one number attribute per counter name |
//! | outbox event | `OUTBOX#<event id>` | `OUTBOX` | kind, detail (JSON), `created_at`; `GSI1PK=OUTBOX`, `GSI1SK=<created_at>#<id>` |
//! | reconcile position | `RECONCILE` | `POSITION` | `cursor`: where the scheduled reconcile's walk through the tenants goes on |
//! | feature flag | `FLAGS` | `FLAG#<key>` | `doc` (the flag as JSON: description, owner, state, rollout percentage, overrides, kill fields), `version`: one partition, so the whole catalogue is one consistent query |
//! | kill list | `FLAGS` | `KILLED` | `keys` (string set of killed flags' keys): added and removed in the transaction of the kill and of the state change that ends it; the one item each evaluation reads |
//! | impersonation approval | `IMPAPPR#<id>` | `IMPAPPR` | tenant, user, operator, reason, status (`pending`, `approved`, `declined`, `used`), `created_at`, `expires_at`, `decided_by`, `decided_at`; `GSI1PK=TENANT#<tenant_id>`, `GSI1SK=IMPAPPR#<created ms, 15 digits>#<id>` |
//! | open impersonation | `IMPERSONATIONS` | `<expires_at, 10 digits>#<id>` | tenant, user, operator, `write`: written by the start, removed by the stop or, once expired, by the reconcile that records its end |
//! | revoked impersonation | `REVOKED` | `IMP#<impersonation id>` | `expires_at` (when its token would have expired; TTL): the revocation list every function reads |
//! | idempotency key | `IDEMP#<sha256(route, subject, key)>` | `IDEMP` | fingerprint of the method, path and body, `state` (`pending` until `lease_until`, then `done` with the answer's status and data), `expires_at` |
//!
//! # Access patterns
//!
//! - sign in by email: `GetItem EMAIL#<email>` then `GetItem USER#<id>` (strongly consistent).
//! - a user's membership of one tenant (access decisions): `GetItem USER#<id> / MEMBER#<tenant>`.
//! - a user's memberships (`/auth/me`): one bounded page, `Query PK=USER#<id>, SK begins_with
//!   MEMBER#, Limit n`; never every page into memory.
//! - a tenant's users: `Query GSI1 GSI1PK=TENANT#<id>`, backwards (newest first), then one
//!   `BatchGetItem` of the page's users.
//! - every tenant (operators): `Query GSI2 GSI2PK=TENANTS` by slug, with a filter expression
//!   for status, plan and the `q` prefix; a partner's tenants: `Query GSI1 GSI1PK=PARTNER#<id>,
//!   GSI1SK begins_with TENANT#`. A filtered page reads at most a few index pages.
//! - tenant counts by status: `GetItem COUNT#tenants` (platform) or the partner item's
//!   `count_<status>`, kept in the transaction of every create, status change, attach and
//!   detach.
//! - the last owner: every demotion or removal of an owner decrements the tenant's `owners` in
//!   the same transaction, conditioned on `owners >= 2`, so two racing requests cannot both
//!   pass.
//! - every partner: `Query GSI2 GSI2PK=PARTNERS`; a partner's admins: `Query GSI1
//!   GSI1PK=PARTNER#<id>, GSI1SK begins_with USER#`; is a user an admin of a partner: `GetItem
//!   USER#<id> / PARTNER#<pid>` (consistent).
//! - every audit entry (operators): `Query GSI2 GSI2PK=AUDIT` backwards, the time range as a
//!   key condition, other filters as a filter expression; one tenant's: `Query PK=AUDIT#tenant:<id>`.
//! - the suspension check: `Query PK=USER#<id>, SK BETWEEN MEMBER# AND PARTNER#~` (memberships
//!   sort before partner grants; consistent), then one `BatchGetItem` of those tenants.
//! - a user's mailed-link scope: `Query PK=USER#<id>, SK begins_with MEMBER#, Limit 2` and
//!   `Query ... begins_with PARTNER#, Limit 1` (strongly consistent).
//! - sign-in: the session is one `PutItem` in a transaction with the rate-limit refund.
//! - refresh: `GetItem SESSION#<id>` (the id is part of the token), `GetItem USER#<id>`, then one
//!   `UpdateItem` conditioned on the presented hash still being a head and the session not
//!   revoked (spends it, adds the new head, forgets the oldest spent hashes). Inside the grace
//!   window a spent hash adds a head, conditioned on it still being spent at the same time.
//! - tenant by slug: `GetItem SLUG#<slug>` then `GetItem TENANT#<id>`.
//! - every user (operators): `Query GSI2 GSI2PK=USERS`, `GSI2SK begins_with <email prefix>`,
//!   status and operator flag as a filter expression; a user's sessions: `Query GSI1
//!   GSI1PK=SESSIONS#<user_id>` backwards (newest first), bounded.
//! - a user's account changes (`Change::UpdateUser`): one `UpdateItem` conditioned on the
//!   status and flag the handler read, with the operator count's `ADD` in the same
//!   transaction when the change moves it.
//! - password reset: a new token bumps the user's `reset_generation` and stores the token with
//!   that generation in one transaction, so earlier tokens die; consuming deletes the token and,
//!   conditioned on the same generation, changes the hash and bumps `session_epoch` (every
//!   refresh token dies) and `reset_generation` (sibling tokens die), in one transaction.
//! - commits (`changes.rs`): one `TransactWriteItems` of every change, each with its own
//!   condition; a refusal is reported by the keys of the changes that failed.
//! - a scope's audit: `Query PK=AUDIT#<scope>` (sort order is time order).
//! - events still to publish: `Query GSI1 GSI1PK=OUTBOX` (oldest first); a published event's
//!   item is deleted.
//! - the plan catalogue: `Query GSI2 GSI2PK=PLANS`; one plan: `GetItem PLAN#<id>` (consistent).
//! - the flag catalogue with its kill list: `Query PK=FLAGS` (consistent); the kill list alone:
//!   `GetItem FLAGS / KILLED`; one flag: `GetItem FLAGS / FLAG#<key>`.
//! - a tenant's impersonation approvals: `Query GSI1 GSI1PK=TENANT#<id>, begins_with IMPAPPR#`
//!   backwards; one: `GetItem IMPAPPR#<id>`; an impersonation's place on the revocation
//!   list: `GetItem REVOKED / IMP#<id>` (consistent); impersonations that expired unstopped:
//!   `Query PK=IMPERSONATIONS, SK < <now>` (consistent, oldest first).
//! - a tenant's usage: `GetItem QUOTA#tenant:<id>` (consistent); a seat recount: `Query GSI1
//!   GSI1PK=TENANT#<id>`, `begins_with MEMBER#` and `begins_with INVITE#` (those not expired),
//!   counted (`Select COUNT`).
//! - an S3 notification: `GetItem OBJ#<tenant>#<key hash>` (consistent), then one transaction of
//!   the ledger's mark (conditioned on the mark read) and the tenant's storage counters.
//! - idempotency: claiming is a `PutItem` conditioned on no live record (absent, expired, or
//!   pending past its lease); when refused, a consistent `GetItem` reads what holds the key.
//!   Finishing and releasing are conditioned on the claimant's fingerprint.
//! - rate limiting: one write adds the attempt to every counter it is limited by (an
//!   `UpdateItem` `ADD n 1` conditioned on `n` below the limit, or a `TransactWriteItems` of
//!   them when there are several): no read first, so concurrent attempts serialise in the
//!   table instead of racing versions, and a refused one writes nothing. Only when refused, a
//!   consistent `BatchGetItem` reads the full counters (how many are in flight). A refund is
//!   `ADD n -1` (with the in-flight count); settling a failed sign-in is `ADD in_flight -1`.

pub mod changes;
mod dynamo;
#[cfg(any(test, feature = "testing"))]
mod memory;
pub mod page;

pub use dynamo::DynamoStore;
#[cfg(any(test, feature = "testing"))]
pub use memory::MemoryStore;

use crate::domain::partner::{Partner, PartnerSlug};
use crate::domain::plan::{Plan, PlanId};
use crate::domain::tenant::{RedirectOrigin, Tenant, TenantSlug, TenantStatus};
use crate::domain::{Audience, Email, Membership, PartnerId, Role, TenantId, User, UserId};
use crate::store::page::Page;
use async_trait::async_trait;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would be broken (e.g. the email already belongs to a user).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A list cursor that this query did not make (tampered, or from another list).
    #[error("invalid cursor")]
    InvalidCursor,
    /// The item a change applies to does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The database could not be reached or refused the request.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database refused the request in a way retrying cannot fix (access denied, a
    /// malformed request, a missing table): a fault of this deployment, not an outage.
    #[error("store refused the request")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item exists but does not have the shape this code writes.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// One sign-in's session, stored as one item. Each refresh token belongs to exactly one session
/// (its text names the session), and only its SHA-256 is stored: a live token is a *head*; a
/// spent one is remembered (a bounded number of them) so that presenting it again is detected.
/// Usually there is one head; a refresh that lost a race inside the grace window adds a second,
/// so two tabs refreshing at once both stay signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: String,
    pub user_id: UserId,
    pub audience: Audience,
    /// The user's session epoch when the session began; a different current epoch ends it.
    pub session_epoch: u64,
    pub expires_at: i64,
    pub revoked: bool,
    /// Live token hashes, with when each was issued.
    pub heads: BTreeMap<String, i64>,
    /// Spent token hashes, with when each was spent (the newest `MAX_SPENT_REMEMBERED`).
    pub spent: BTreeMap<String, i64>,
    /// When the session's sign-in passed its second factor (Unix seconds), if it did: its
    /// access tokens carry it (`mfa_at`), for the actions that need a recent factor.
    pub mfa_at: Option<i64>,
    /// When the session began and when it was last refreshed (Unix seconds).
    pub created_at: i64,
    pub last_used_at: i64,
    /// The client's network address and user agent at sign-in (what `GET /account/sessions`
    /// shows, so a person can tell their devices apart), if known.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Session {
    /// Whether the session can still be refreshed for a user whose epoch is `epoch` at `now`.
    pub fn is_live(&self, epoch: u64, now: i64) -> bool {
        !self.revoked && self.session_epoch == epoch && self.expires_at > now
    }
}

/// Spent hashes a session remembers; older ones are forgotten (and then simply unknown).
pub const MAX_SPENT_REMEMBERED: usize = 16;
/// Live heads a session may have at once (tabs that refreshed within the grace window).
pub const MAX_SESSION_HEADS: usize = 4;

impl Session {
    /// Spent hashes to forget so that, after one more is added, at most `MAX_SPENT_REMEMBERED` remain.
    pub fn spent_to_forget(&self) -> Vec<String> {
        let mut by_age: Vec<(&String, &i64)> = self.spent.iter().collect();
        by_age.sort_by_key(|(_, t)| **t);
        let excess = (self.spent.len() + 1).saturating_sub(MAX_SPENT_REMEMBERED);
        by_age
            .into_iter()
            .take(excess)
            .map(|(h, _)| h.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// The presented token is no longer a head (another refresh spent it first), or the
    /// session was revoked meanwhile: read the session again to decide.
    Refused,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user and claims its email in one transaction.
    /// `StoreError::Conflict` if the email already belongs to someone.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// The email's claim alone (one read): whose it is, and the copy of the password hash it
    /// carries (`None` for a claim written before copies were kept). Sign-in starts Argon2 on
    /// the copy while it reads the user; the user's own hash decides if the two differ.
    async fn email_claim(&self, email: &Email) -> Result<Option<EmailClaim>, StoreError>;
    /// `user_by_id`, or for `None` a read of a key that never exists: the same round trip, so
    /// an unknown email's sign-in costs what a known one's does.
    async fn user_or_decoy(&self, id: Option<&UserId>) -> Result<Option<User>, StoreError>;
    /// Sets the claim's copy of the password hash (a claim without one, or one left behind).
    /// Refused quietly (`Ok(false)`) unless the claim is `user`'s.
    async fn copy_hash_to_claim(
        &self,
        email: &Email,
        user: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError>;
    /// The user's membership of one tenant, read strongly consistent (it decides access).
    async fn membership(
        &self,
        id: &UserId,
        tenant: &TenantId,
    ) -> Result<Option<Membership>, StoreError>;
    /// At most `n` of the user's memberships (by tenant id), read in one bounded query.
    async fn memberships_up_to(&self, id: &UserId, n: usize)
        -> Result<Vec<Membership>, StoreError>;
    /// The user's live invitation to `tenant`, if any (strongly consistent).
    async fn invite(&self, id: &UserId, tenant: &TenantId) -> Result<Option<Invite>, StoreError>;
    /// The user's live invitations (at most 100).
    async fn invites_of(&self, id: &UserId) -> Result<Vec<Invite>, StoreError>;
    /// Whether the user administers any partner (reseller).
    async fn holds_partner_role(&self, id: &UserId) -> Result<bool, StoreError>;
    /// Makes the user an admin of partner `partner_id` (idempotent).
    async fn grant_partner_admin(&self, id: &UserId, partner: &PartnerId)
        -> Result<(), StoreError>;
    /// Whether the user administers this partner (strongly consistent: it decides access).
    async fn is_partner_admin(&self, id: &UserId, partner: &PartnerId) -> Result<bool, StoreError>;
    /// At most `n` of the partners the user administers.
    async fn partners_of(&self, id: &UserId, n: usize) -> Result<Vec<PartnerId>, StoreError>;
    /// The users with these ids that exist, in no particular order (at most 100 ids).
    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError>;
    /// One page of every user matching `filter`, by email (index read). `InvalidCursor` for a
    /// cursor made for another filter.
    async fn users_page(
        &self,
        filter: &UserFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<User>, StoreError>;
    /// The user's TOTP factor, pending or confirmed (strongly consistent).
    async fn totp_factor(&self, id: &UserId) -> Result<Option<TotpFactor>, StoreError>;
    /// The user's passkeys, oldest first (strongly consistent).
    async fn passkeys(&self, id: &UserId) -> Result<Vec<Passkey>, StoreError>;
    /// The user's passkey registration in progress, if one is live at `now`.
    async fn passkey_pending(
        &self,
        id: &UserId,
        now: i64,
    ) -> Result<Option<PendingPasskey>, StoreError>;
    /// How many of the user's recovery codes are left unused.
    async fn recovery_codes_left(&self, id: &UserId) -> Result<usize, StoreError>;
    /// A sign-in's second-factor challenge by its hash (strongly consistent; one past its
    /// expiry reads as none).
    async fn mfa_challenge(&self, hash: &str) -> Result<Option<MfaChallenge>, StoreError>;
    /// A requested email change by its token's hash (strongly consistent; one past its expiry
    /// reads as none).
    async fn email_change(&self, hash: &str) -> Result<Option<EmailChange>, StoreError>;
    /// The platform's operator count (accounts whose [`crate::domain::Account::operator_weight`]
    /// is 1), strongly consistent; `None` if it was never kept (no operator was ever made).
    async fn operator_count(&self) -> Result<Option<i64>, StoreError>;
    /// At most `n` memberships and whether the user administers any partner, in one read
    /// where the store can (the suspension check on every request).
    async fn access_summary(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<(Vec<Membership>, bool), StoreError> {
        let partner = self.holds_partner_role(id).await?;
        Ok((self.memberships_up_to(id, n).await?, partner))
    }
}

/// An invitation of an existing account to a tenant: a grant that waits for the person to
/// accept it while signed in. Until then it grants nothing: no reader of memberships (access,
/// the link rule, the suspension check) sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invite {
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub role: Role,
    pub invited_by: UserId,
    /// Unix seconds.
    pub invited_at: i64,
    /// Unix seconds; an invitation past it is gone.
    pub expires_at: i64,
}

/// One member as a tenant's member list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    pub user_id: UserId,
    pub role: Role,
    /// When they joined (Unix ms): the list is newest first.
    pub added_at: i64,
}

/// What `GET /tenants` may filter on. `q` is a prefix of the slug or the (lower-cased) name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    pub plan: Option<PlanId>,
    pub partner: Option<PartnerId>,
    pub q: Option<String>,
}

impl TenantFilter {
    /// The query a cursor is bound to: a cursor from another filter is refused.
    pub fn query_name(&self) -> String {
        format!(
            "tenants:{}:{}:{}:{}",
            self.status.map(|s| s.as_str()).unwrap_or(""),
            self.plan.as_ref().map(|p| p.as_str()).unwrap_or(""),
            self.partner.as_ref().map(|p| p.as_str()).unwrap_or(""),
            self.q.as_deref().unwrap_or("")
        )
    }

    pub fn matches(&self, t: &Tenant) -> bool {
        self.status.is_none_or(|s| s == t.status)
            && self.plan.as_ref().is_none_or(|p| *p == t.plan)
            && self
                .partner
                .as_ref()
                .is_none_or(|p| t.partner.as_ref() == Some(p))
            && self.q.as_deref().is_none_or(|q| {
                t.slug.as_str().starts_with(q) || t.name.to_lowercase().starts_with(q)
            })
    }
}

/// What `GET /users` may filter on. `q` is a prefix of the (normalised) email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub q: Option<String>,
    pub status: Option<crate::domain::UserStatus>,
    pub operator: Option<bool>,
}

impl UserFilter {
    /// The query a cursor is bound to: a cursor from another filter is refused.
    pub fn query_name(&self) -> String {
        format!(
            "users:{}:{}:{}",
            self.q.as_deref().unwrap_or(""),
            self.status.map(|s| s.as_str()).unwrap_or(""),
            self.operator.map(|o| o.to_string()).unwrap_or_default(),
        )
    }

    pub fn matches(&self, u: &User) -> bool {
        self.q
            .as_deref()
            .is_none_or(|q| u.email.as_str().starts_with(q))
            && self.status.is_none_or(|s| s == u.status)
            && self.operator.is_none_or(|o| o == u.platform_admin)
    }
}

/// What `GET /audit` may filter on; times are Unix ms, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub tenant: Option<TenantId>,
    pub partner: Option<PartnerId>,
    pub actor: Option<UserId>,
    pub action: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl AuditFilter {
    pub fn query_name(&self) -> String {
        format!(
            "audit:{}:{}:{}:{}:{}:{}",
            self.tenant.as_ref().map(|t| t.as_str()).unwrap_or(""),
            self.partner.as_ref().map(|p| p.as_str()).unwrap_or(""),
            self.actor.as_ref().map(|a| a.as_str()).unwrap_or(""),
            self.action.as_deref().unwrap_or(""),
            self.from_ms.map(|t| t.to_string()).unwrap_or_default(),
            self.to_ms.map(|t| t.to_string()).unwrap_or_default(),
        )
    }

    pub fn matches(&self, e: &changes::AuditEntry) -> bool {
        let ms: i64 =
            e.id.split('#')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
        self.tenant
            .as_ref()
            .is_none_or(|t| e.tenant.as_ref() == Some(t))
            && self
                .partner
                .as_ref()
                .is_none_or(|p| e.partner.as_ref() == Some(p))
            && self.actor.as_ref().is_none_or(|a| &e.actor == a)
            && self.action.as_deref().is_none_or(|a| e.action == a)
            && self.from_ms.is_none_or(|f| ms >= f)
            && self.to_ms.is_none_or(|t| ms <= t)
    }
}

/// A user's TOTP factor as stored: the secret sealed under the data key (bound to the user),
/// whether a first code confirmed it, and the last time step a code was accepted for (a code
/// is accepted once: a later one must be of a later step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    pub sealed: String,
    pub confirmed: bool,
    pub last_step: u64,
    pub created_at: i64,
}

/// A passkey as stored (see `access::passkeys`): the credential id and the encoded public key
/// and state are base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: String,
    pub name: String,
    pub public_key: String,
    pub state: String,
    pub transports: u8,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The sort key of a passkey item: its credential id hashed (an id may be up to 1,023 bytes,
/// too long for a sort key once encoded).
pub fn passkey_key(credential_id: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "MFA#PASSKEY#{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(credential_id.as_bytes()))
    )
}

/// The most tenants one redirect origin's index entries are read for.
pub const MAX_ORIGIN_TENANTS: usize = 1000;

/// A passkey registration started and not yet finished: the ceremony's server state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPasskey {
    pub state: String,
    pub expires_at: i64,
}

/// A sign-in whose password was right, waiting for its second factor: stored by the hash of
/// the opaque token the client holds, single use, short-lived; wrong codes are counted per
/// account (`access::factors::limits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub hash: String,
    pub user_id: UserId,
    pub audience: Audience,
    pub expires_at: i64,
    /// The user's session epoch at the password step: a reset, a password change or the end
    /// of every session since voids the challenge.
    pub session_epoch: u64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The server state of the passkey assertion asked for (`POST /auth/mfa/passkey`), if any.
    pub passkey_state: Option<String>,
}

/// A requested change of a user's email, waiting for the new address to be proved: stored by
/// the hash of the token mailed to it (single use, 24 hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    pub hash: String,
    pub user_id: UserId,
    pub from: Email,
    pub to: Email,
    /// The user's session epoch when the change was asked for: a password change or reset,
    /// or the end of every session, moves it and so cancels the change.
    pub session_epoch: u64,
    pub expires_at: i64,
}

/// An email's claim, as sign-in reads it (`UserStore::email_claim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailClaim {
    pub user_id: UserId,
    pub password_hash: Option<String>,
}

/// A tenant's registered database. The connection string is stored only sealed (AES-256-GCM
/// under the data key, bound to the tenant and the record); `host` is what may be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRecord {
    pub id: crate::domain::DatabaseId,
    pub tenant: TenantId,
    pub name: String,
    pub engine: String,
    /// `host:port/dbname`, without credentials.
    pub host: String,
    pub sealed: String,
    /// How connections are secured: `disable`, `require`, `verify-ca` or `verify-full`
    /// (a registration from before TLS was offered reads as `disable`: it connected in plain
    /// text).
    pub tls: String,
    /// The CA certificates (PEM) the server's certificate is checked against instead of the
    /// public roots, sealed like the connection string.
    pub ca_sealed: Option<String>,
    pub created_at: i64,
}

#[async_trait]
pub trait DatabaseStore: Send + Sync {
    async fn database(
        &self,
        id: &crate::domain::DatabaseId,
    ) -> Result<Option<DatabaseRecord>, StoreError>;
    /// One page of the tenant's databases, newest first.
    async fn tenant_databases(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<DatabaseRecord>, StoreError>;
}

/// Partners: the records, their slug claims and their admins (read side; writes are changes).
#[async_trait]
pub trait PartnerStore: Send + Sync {
    async fn partner_by_slug(&self, slug: &PartnerSlug) -> Result<Option<Partner>, StoreError>;
    async fn partner_by_id(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError>;
    /// One page of every partner, by slug.
    async fn partners_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Partner>, StoreError>;
    /// One page of a partner's admins, by user id.
    async fn partner_admins_page(
        &self,
        partner: &PartnerId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<UserId>, StoreError>;
}

/// What a single-use mailed token is for: each is spent only by its own route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// `POST /auth/reset-password`: the user exists and is active.
    Reset,
    /// `POST /auth/accept-invitation`: the user was invited and has no password yet.
    Invitation,
}

crate::domain::named_enum!(TokenPurpose { Reset => "reset", Invitation => "invitation" });

/// A password-reset or invitation token as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetTokenRecord {
    pub token_hash: String,
    pub purpose: TokenPurpose,
    pub user_id: UserId,
    /// The user's `reset_generation` this token belongs to; a newer request or a reset moves it.
    pub generation: u64,
    pub expires_at: i64,
}

#[async_trait]
pub trait TenantStore: CommitStore + Send + Sync {
    /// Creates the tenant and claims its slug in one transaction (`Conflict` if taken).
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.commit(vec![changes::Change::CreateTenant(tenant.clone())])
            .await
            .map_err(|e| match e {
                changes::CommitError::Store(e) => e,
                _ => StoreError::Conflict("a tenant with this slug already exists"),
            })
    }
    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError>;
    async fn tenant_by_id(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    /// The tenants that registered `origin` as a redirect origin, deleted ones included (at most
    /// [`MAX_ORIGIN_TENANTS`]; index read).
    async fn tenants_with_origin(
        &self,
        origin: &RedirectOrigin,
    ) -> Result<Vec<TenantId>, StoreError>;
    /// The tenants with these ids that exist, in no particular order (at most 100 ids).
    async fn tenants_by_ids(&self, ids: &[TenantId]) -> Result<Vec<Tenant>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.tenant_by_id(id).await?);
        }
        Ok(out)
    }
    /// Adds `user` to `tenant` in `role` (an owner also counts towards the tenant's owners);
    /// `Conflict` if already a member (a role is never overwritten by an add).
    async fn add_membership(
        &self,
        user: &UserId,
        tenant: &Tenant,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut all = vec![changes::Change::AddMembership {
            user: user.clone(),
            tenant: tenant.clone(),
            role,
            at: crate::runtime::time::now_ms(),
        }];
        if role == Role::Owner {
            all.push(changes::Change::AdjustOwners {
                tenant: tenant.id.clone(),
                by: 1,
            });
        }
        self.commit(all).await.map_err(|e| match e {
            changes::CommitError::Store(e) => e,
            _ => StoreError::Conflict("already a member of this tenant"),
        })
    }
    /// Where the scheduled reconcile's walk through every tenant stands (a `tenants_page`
    /// cursor), kept between runs so each run goes on where the last stopped.
    async fn reconcile_position(&self) -> Result<Option<String>, StoreError>;
    /// Keeps `cursor` as the reconcile's position (`None`: the walk starts again).
    async fn set_reconcile_position(&self, cursor: Option<&str>) -> Result<(), StoreError>;
    /// One page of tenants matching `filter`, by slug (a partner's own index when the filter
    /// names a partner). `InvalidCursor` for a cursor made for another filter.
    async fn tenants_page(
        &self,
        filter: &TenantFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Tenant>, StoreError>;
    /// Every member of the tenant with their role (index read: eventually consistent, so
    /// only for notices, never for access decisions).
    async fn tenant_members(&self, tenant_id: &TenantId)
        -> Result<Vec<(UserId, Role)>, StoreError>;
    /// One page of the tenant's members, newest first (index read). `InvalidCursor` for a
    /// cursor not made by this query for this tenant.
    async fn tenant_members_page(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<MemberEntry>, StoreError>;
    /// Replaces the ordered list (`NotFound` if the tenant is gone).
    async fn set_redirect_origins(
        &self,
        tenant_id: &TenantId,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ResetStore: Send + Sync {
    /// Stores a new token for `user` and makes every earlier token of theirs invalid, atomically.
    /// `Conflict` if another request for the same user won a race.
    async fn create_reset_token(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: i64,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError>;
    async fn reset_token(&self, token_hash: &str) -> Result<Option<ResetTokenRecord>, StoreError>;
    /// Spends `token` and sets the new password hash, ending every session of the user and
    /// every other outstanding token, and marks the email verified, all or nothing. An
    /// invitation also makes the invited user active. `false` if the token was already spent,
    /// expired at `now`, superseded, or the user is not in the state its purpose needs
    /// (active for a reset, invited for an invitation).
    /// Spends the token and sets the new password, on the user and on the copy its email's
    /// claim (`email`) keeps, with `audit`, in one transaction.
    async fn consume_reset_token(
        &self,
        token: &ResetTokenRecord,
        email: &Email,
        new_password_hash: &str,
        now: i64,
        audit: &changes::AuditEntry,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a session whose only head is in `session.heads`, and in the same write gives back
    /// `refund` (the sign-in's rate-limit reservation: a success is not a failure) and
    /// `audit` (the sign-in's entry). If the refund cannot be applied (its windows expired
    /// away), the session is still created.
    async fn create_session(
        &self,
        session: &Session,
        refund: Option<&RateHit>,
        audit: Option<&changes::AuditEntry>,
    ) -> Result<(), StoreError>;
    /// The session, read strongly consistent (it decides access).
    async fn session(&self, session_id: &str) -> Result<Option<Session>, StoreError>;
    /// Spends head `old` and makes `new` a head at `now`, forgetting `forget` spent hashes,
    /// only if `old` is still a head and the session is not revoked: of two concurrent
    /// rotations of one token, exactly one succeeds.
    async fn rotate_session(
        &self,
        session_id: &str,
        old: &str,
        new: &str,
        now: i64,
        forget: &[String],
    ) -> Result<RotateOutcome, StoreError>;
    /// A concurrent refresh inside the grace window: adds head `new`, only if `spent` is still
    /// remembered as spent at `spent_at`, the session is not revoked and has room for a head.
    async fn add_session_head(
        &self,
        session_id: &str,
        spent: &str,
        spent_at: i64,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn revoke_session(&self, session_id: &str) -> Result<(), StoreError>;
    /// At most `n` of the user's sessions, newest first, whatever their state (index read:
    /// for showing, never for deciding; a session's own item decides).
    async fn user_sessions(&self, user: &UserId, n: usize) -> Result<Vec<Session>, StoreError>;
}

/// The key (`PK`, `SK`) of the provisioning fault switch for `step` of the tenant `slug`: an
/// item only tests write, read by `provision-step` built with its `faults` feature (never in a
/// deployed build; `make bench` checks the release binary has no trace of it).
#[cfg(any(test, feature = "testing"))]
pub fn fault_switch_key(slug: &str, step: &str) -> (String, String) {
    (format!("FAULT#{slug}"), step.to_string())
}

/// One counted attempt: the counters (`keys`) it was added to, and whether it was added as in
/// flight (a sign-in until its password is checked). A refund takes it back from each; a
/// sign-in's refund rides in the session's own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateHit {
    pub keys: Vec<String>,
    pub in_flight: bool,
}

/// A fixed-window counter an attempt is added to: its key (policy, subject, window), the
/// most it may count, and when it may be forgotten (the window's end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCounter {
    pub key: String,
    pub limit: u64,
    pub expires_at: i64,
}

/// Where a counter stands: attempts counted, and how many of them are still in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterState {
    pub count: u64,
    pub in_flight: u64,
}

/// What adding an attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// Counted under every counter.
    Taken,
    /// Nothing written: these counters (by their index in the request) were at their limits.
    Full(Vec<(usize, CounterState)>),
}

#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Adds one attempt to every counter, all or nothing, each only while its count is below
    /// its limit (one conditional write: concurrent attempts never pass a full counter and
    /// never contend on a version). With `in_flight`, the attempt is also counted as in flight
    /// until it is settled or refunded.
    async fn take_attempt(
        &self,
        counters: &[RateCounter],
        in_flight: bool,
    ) -> Result<Take, StoreError>;
    /// Where each counter stands (zero for one not written), read strongly consistent.
    async fn counter_states(&self, keys: &[String]) -> Result<Vec<CounterState>, StoreError>;
    /// Settles an in-flight attempt as a failure: it stays counted, no longer in flight.
    async fn settle_attempt(&self, hit: &RateHit) -> Result<(), StoreError>;
    /// Takes an attempt back from each counter (a counter already forgotten is skipped).
    async fn refund_attempt(&self, hit: &RateHit) -> Result<(), StoreError>;
}

/// What holds an idempotency key when a request tries to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free (or its record expired or lapsed): this request does the work.
    Claimed,
    /// Another request holds the key and has not finished.
    InProgress { fingerprint: String },
    /// The work was done; its answer is kept.
    Done {
        fingerprint: String,
        status: u16,
        data: String,
    },
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `id` for a request with `fingerprint` until `lease_until`, unless a live record
    /// holds it (a `Done` one not expired at `now`, or a pending one whose lease has not ended).
    async fn claim_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Keeps the answer of the claim made with `fingerprint` until `expires_at`.
    async fn complete_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        status: u16,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Gives up the pending claim made with `fingerprint` (nothing else is removed).
    async fn release_idempotency(&self, id: &str, fingerprint: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Succeeds when the table can be read.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Commits of changes from any aggregate, all or nothing (`changes.rs`), and their reads.
#[async_trait]
pub trait CommitStore: Send + Sync {
    async fn commit(&self, changes: Vec<changes::Change>) -> Result<(), changes::CommitError>;
    /// A scope's audit entries, oldest first (at most `limit`).
    async fn audit_entries(
        &self,
        scope: &str,
        limit: usize,
    ) -> Result<Vec<changes::AuditEntry>, StoreError>;
    /// A counter's value (0 if never counted).
    async fn counter(&self, scope: &str, name: &str) -> Result<i64, StoreError>;
    /// A quota counter's value (`Change::Quota`), `None` if it was never counted.
    async fn quota(&self, scope: &str, name: &str) -> Result<Option<i64>, StoreError>;
    async fn outbox_event(&self, id: &str) -> Result<Option<changes::OutboxEvent>, StoreError>;
    /// Every counter of a scope.
    async fn counters(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError>;
    /// Forgets an event once published (what remains is what still has to be published).
    async fn outbox_published(&self, id: &str) -> Result<(), StoreError>;
    /// The oldest events still waiting to be published (at most `limit`).
    async fn pending_events(&self, limit: usize) -> Result<Vec<changes::OutboxEvent>, StoreError>;
    /// One page of audit entries matching `filter`, newest first.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<changes::AuditEntry>, StoreError>;
}

/// The most plans the catalogue holds.
pub const MAX_PLANS: usize = 200;

/// The plan catalogue (`PLAN#<id>`); built-in plans not stored yet are not here (see
/// `crate::plans`, which merges them in).
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// The stored plan `id` (strongly consistent), `None` if it was never stored.
    async fn stored_plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError>;
    /// Every stored plan, by id (at most [`MAX_PLANS`]).
    async fn stored_plans(&self) -> Result<Vec<Plan>, StoreError>;
}

/// The most flags the catalogue holds (a count conditioned in each creation's transaction).
pub const MAX_FLAGS: usize = 100;
/// The counter scope and name of the flag catalogue's size (`Change::Quota`).
pub const FLAGS_COUNT: (&str, &str) = ("flags", "flags");

/// Feature flags and their kill list.
#[async_trait]
pub trait FlagStore: Send + Sync {
    /// Every flag, by key, and the kill list, in one strongly consistent read of the `FLAGS`
    /// partition (at most [`MAX_FLAGS`] flags).
    async fn flags(&self) -> Result<(Vec<crate::domain::flag::Flag>, Vec<String>), StoreError>;
    /// One flag (strongly consistent).
    async fn flag(
        &self,
        key: &crate::domain::flag::FlagKey,
    ) -> Result<Option<crate::domain::flag::Flag>, StoreError>;
    /// The keys on the kill list: one small item, strongly consistent.
    async fn kill_list(&self) -> Result<Vec<String>, StoreError>;
}

/// Impersonation's records: owners' approvals of write access, and the revocation list.
#[async_trait]
pub trait ImpersonationStore: Send + Sync {
    /// One approval (strongly consistent).
    async fn approval(
        &self,
        id: &str,
    ) -> Result<Option<crate::domain::impersonation::Approval>, StoreError>;
    /// The tenant's approvals, newest first (at most `limit`).
    async fn approvals_of(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<crate::domain::impersonation::Approval>, StoreError>;
    /// Whether impersonation `id` is on the revocation list: one strongly consistent read.
    async fn impersonation_revoked(&self, id: &str) -> Result<bool, StoreError>;
    /// Started impersonations whose tokens expired before `now` and whose end is not recorded,
    /// oldest first (at most `limit`).
    async fn lapsed_impersonations(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::domain::impersonation::Open>, StoreError>;
}

/// One object of a tenant's storage as the ledger knows it (`Change::RecordObject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMark {
    /// Its size in bytes while it exists (0 once removed).
    pub size: i64,
    /// The S3 event's `sequencer` for the key: which of two events about one key is the later.
    pub sequencer: String,
    /// Whether the object exists. A removed object's mark stays for 19 days (`expires_at`),
    /// so that an older creation delivered late is recognised as older and not counted.
    pub present: bool,
    /// When it was recorded (Unix seconds).
    pub at: i64,
}

/// How long a removed object's mark is kept: longer than a notification can wait in the meter's
/// queue (4 days) and its dead-letter queue (14 days), so a creation delivered that late is
/// still known to be older.
pub const REMOVED_MARK_TTL_SECS: i64 = 19 * 86_400;

/// What a tenant uses: its quota counters (`QUOTA#tenant:<id>`), the storage ledger, and the
/// recounts the reconcile makes.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Every quota counter of `scope`, in one strongly consistent read.
    async fn quotas(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError>;
    /// The ledger's mark of one of the tenant's objects (by the SHA-256 of its key).
    async fn object_mark(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<ObjectMark>, StoreError>;
    /// The seats a tenant holds, counted from the records: its members (invited ones
    /// included) and the invitations to it still pending at `now`.
    async fn count_seats(&self, tenant: &TenantId, now: i64) -> Result<i64, StoreError>;
    /// The tenant's registered databases, counted from the records.
    async fn count_databases(&self, tenant: &TenantId) -> Result<i64, StoreError>;
}

/// Everything a function may ask of the store.
pub trait Store:
    UserStore
    + PlanStore
    + FlagStore
    + ImpersonationStore
    + UsageStore
    + TenantStore
    + PartnerStore
    + DatabaseStore
    + SessionStore
    + ResetStore
    + RateLimitStore
    + IdempotencyStore
    + CommitStore
    + Health
{
}
impl<
        T: UserStore
            + PlanStore
            + FlagStore
            + ImpersonationStore
            + UsageStore
            + TenantStore
            + PartnerStore
            + DatabaseStore
            + SessionStore
            + ResetStore
            + RateLimitStore
            + IdempotencyStore
            + CommitStore
            + Health,
    > Store for T
{
}
