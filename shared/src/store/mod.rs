//! The single-table store: every rule about how data is keyed, written together and expired.
//! `DynamoStore` is the real implementation; `MemoryStore` keeps the same contract in memory for
//! fast unit tests of domain logic.
//!
//! # Key schema (table `TABLE_NAME`)
//!
//! Attributes: `PK` (S, partition), `SK` (S, sort), `GSI1PK`/`GSI1SK` (S, index `GSI1`),
//! `expires_at` (N, Unix seconds, the table's TTL attribute; code also checks it, since TTL
//! deletion is lazy).
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | user | `USER#<user_id>` | `USER` | email, password hash, platform-admin flag, status, session epoch |
//! | email claim | `EMAIL#<email>` | `EMAIL` | `user_id`; written with the user in one transaction, so an email belongs to at most one user |
//! | membership | `USER#<user_id>` | `MEMBER#<tenant_id>` | role, slug; `GSI1PK=TENANT#<tenant_id>`, `GSI1SK=USER#<user_id>` |
//! | refresh token | `REFRESH#<sha256(token)>` | `REFRESH` | family, user, audience, used flag, session epoch, `expires_at` |
//! | refresh family | `FAMILY#<family_id>` | `FAMILY` | user, revoked flag, `expires_at` |
//! | rate window | `RATE#<policy>#<sha256(subject)>` | `RATE` | recent hit times (trimmed to about the limit), `expires_at` |
//!
//! # Access patterns
//!
//! - sign in by email: `GetItem EMAIL#<email>` then `GetItem USER#<id>` (strongly consistent).
//! - a user's memberships: `Query PK=USER#<id>, SK begins_with MEMBER#`.
//! - a tenant's users: `Query GSI1 GSI1PK=TENANT#<id>`.
//! - refresh: `GetItem REFRESH#<hash>`, `GetItem FAMILY#<id>`; rotation is one transaction
//!   (old token marked used only if unused, new token put, family checked unrevoked).
//! - rate limiting: `BatchGetItem` of every key a request is limited by; each hit is a
//!   `list_append` update, trimmed by a write conditioned on the list size it read.

mod dynamo;
mod memory;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

use crate::domain::{Audience, Email, Membership, User, UserId};
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule would be broken (e.g. the email already belongs to a user).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database could not be reached or refused the request.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item exists but does not have the shape this code writes.
    #[error("corrupt item {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl From<StoreError> for crate::error::ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => crate::error::ApiError::Conflict {
                code: "CONFLICT",
                message: what.to_string(),
            },
            StoreError::Unavailable(cause) => {
                crate::error::ApiError::unavailable("database", cause)
            }
            corrupt @ StoreError::Corrupt { .. } => crate::error::ApiError::internal(corrupt),
        }
    }
}

/// One refresh token as stored: only its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub user_id: UserId,
    pub audience: Audience,
    pub used: bool,
    /// The user's session epoch when the family began; a different current epoch kills it.
    pub session_epoch: u64,
    pub expires_at: i64,
}

/// All refresh tokens descended from one sign-in. Revoking the family ends the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    pub family_id: String,
    pub user_id: UserId,
    pub revoked: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    Rotated,
    /// The presented token had already been used: a sign of theft; the caller revokes the family.
    AlreadyUsed,
    /// The family was revoked (or is gone) meanwhile.
    FamilyRevoked,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user and claims its email in one transaction.
    /// `StoreError::Conflict` if the email already belongs to someone.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    async fn memberships(&self, id: &UserId) -> Result<Vec<Membership>, StoreError>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a family with its first token, atomically.
    async fn create_session(
        &self,
        family: &RefreshFamily,
        first: &RefreshTokenRecord,
    ) -> Result<(), StoreError>;
    async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    async fn refresh_family(&self, family_id: &str) -> Result<Option<RefreshFamily>, StoreError>;
    /// Marks `old_hash` used and stores `next`, only if `old_hash` was unused and the family
    /// is not revoked: two concurrent rotations of one token cannot both succeed.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        next: &RefreshTokenRecord,
    ) -> Result<RotateOutcome, StoreError>;
    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// The hit times recorded under each key (empty for unknown keys), in the order asked.
    async fn rate_hits(&self, keys: &[String]) -> Result<Vec<Vec<i64>>, StoreError>;
    /// Appends `now` to `key` atomically (no hit is lost to a race), then drops hits older
    /// than `window_secs` beyond the newest `keep`, so an item stays about the size of the
    /// limit it enforces.
    async fn record_rate_hit(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
        keep: usize,
    ) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Succeeds when the table can be read.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything a function may ask of the store.
pub trait Store: UserStore + SessionStore + RateLimitStore + Health {}
impl<T: UserStore + SessionStore + RateLimitStore + Health> Store for T {}

/// Keeps the hits inside the window, oldest first, at most the newest `keep` of them.
pub(crate) fn trim_hits(mut hits: Vec<i64>, now: i64, window_secs: i64, keep: usize) -> Vec<i64> {
    hits.retain(|&t| t > now - window_secs);
    hits.sort_unstable();
    let excess = hits.len().saturating_sub(keep);
    hits.drain(..excess);
    hits
}
