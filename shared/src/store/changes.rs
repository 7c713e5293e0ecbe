//! Composable writes: changes from any aggregate committed together, all or nothing (one
//! `TransactWriteItems` on DynamoDB, up to 100 changes). A mutation, its audit entry, its
//! counter updates and its outgoing event go in one commit, so a crash or a race can never
//! leave one without the others. Each change carries its own condition; when one fails, the
//! commit names which change refused, by its key, and nothing is written.

use crate::domain::{Role, TenantId, UserId};
use crate::tenant::{RedirectOrigin, Tenant};

/// The most changes one commit may hold (DynamoDB's transaction limit).
pub const MAX_CHANGES: usize = 100;

/// An append-only record of who did what to which tenant (or to the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `tenant:<id>` or `platform`.
    pub scope: String,
    /// Unique within the scope; sorts by time (`<unix ms, zero-padded>#<random>`).
    pub id: String,
    pub actor: UserId,
    /// What happened, e.g. `redirect_origins.replaced`.
    pub action: String,
    /// A small JSON object with the details (never secrets).
    pub details: String,
    pub at: i64,
}

impl AuditEntry {
    pub fn new(
        scope: String,
        actor: UserId,
        action: &str,
        details: serde_json::Value,
        at_ms: i64,
    ) -> Self {
        AuditEntry {
            scope,
            id: format!("{at_ms:015}#{}", crate::auth::opaque::random_id()),
            actor,
            action: action.to_string(),
            details: details.to_string(),
            at: at_ms / 1000,
        }
    }
}

/// An event to publish after the commit (the outbox): stored with the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique; a second event with the same id refuses the commit.
    pub id: String,
    /// e.g. `TenantCreated`.
    pub kind: String,
    /// The event's JSON body.
    pub detail: String,
    pub created_at: i64,
}

/// One change of a commit, with its condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Adds `user` to `tenant` in `role`; refused if already a member.
    AddMembership {
        user: UserId,
        tenant: Tenant,
        role: Role,
    },
    /// Replaces the tenant's redirect origins; refused if the tenant does not exist.
    SetRedirectOrigins {
        tenant: TenantId,
        origins: Vec<RedirectOrigin>,
    },
    /// Appends an audit entry; refused if its id is taken.
    Audit(AuditEntry),
    /// Adds `by` to counter `name` of `scope` (starting from 0).
    Count {
        scope: String,
        name: String,
        by: i64,
    },
    /// Stores an outgoing event; refused if its id is taken.
    Outbox(OutboxEvent),
}

impl Change {
    /// The key (partition key) this change writes: what a refusal names.
    pub fn key(&self) -> String {
        match self {
            Change::AddMembership { user, .. } => format!("USER#{user}"),
            Change::SetRedirectOrigins { tenant, .. } => format!("TENANT#{tenant}"),
            Change::Audit(a) => format!("AUDIT#{}", a.scope),
            Change::Count { scope, .. } => format!("COUNT#{scope}"),
            Change::Outbox(e) => format!("OUTBOX#{}", e.id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Conditions failed: the keys of the changes that refused. Nothing was written.
    #[error("commit refused by {keys:?}")]
    Refused { keys: Vec<String> },
    #[error("a commit holds at most {MAX_CHANGES} changes")]
    TooMany,
    #[error(transparent)]
    Store(#[from] super::StoreError),
}
