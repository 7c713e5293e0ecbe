//! In-memory store with the same contract as `DynamoStore` (uniqueness, single-use rotation,
//! revocation, version-conditioned windows), for fast tests of domain logic without the
//! network; one module per aggregate, beside the DynamoDB ones. Built only for tests.

mod changes;
mod databases;
mod flags;
mod idempotency;
mod partners;
mod plans;
mod ratelimits;
mod resets;
mod sessions;
mod tenants;
mod users;

use super::*;
use crate::domain::UserStatus;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Data {
    users: HashMap<UserId, User>,
    emails: HashMap<Email, UserId>,
    memberships: HashMap<UserId, Vec<Membership>>,
    /// When each membership began (Unix ms).
    member_added: HashMap<(UserId, TenantId), i64>,
    partners: HashMap<PartnerId, Partner>,
    databases: HashMap<crate::domain::DatabaseId, DatabaseRecord>,
    partner_slugs: HashMap<PartnerSlug, PartnerId>,
    partner_admins: HashMap<UserId, Vec<PartnerId>>,
    sessions: HashMap<String, Session>,
    rate: HashMap<String, crate::store::CounterState>,
    tenants: HashMap<TenantId, Tenant>,
    slugs: HashMap<TenantSlug, TenantId>,
    resets: HashMap<String, ResetTokenRecord>,
    idempotency: HashMap<String, IdempotencyRecord>,
    audit: HashMap<String, Vec<crate::store::changes::AuditEntry>>,
    counters: HashMap<(String, String), i64>,
    /// The password-hash copy each email claim carries (`UserStore::email_claim`); missing
    /// for a claim stored without one (tests of the fallback remove it).
    claim_hashes: HashMap<Email, String>,
    outbox: HashMap<String, crate::store::changes::OutboxEvent>,
    reconcile_position: Option<String>,
    invites: HashMap<(UserId, TenantId), crate::store::Invite>,
    /// The platform's operator count (`None`: never kept).
    operators: Option<i64>,
    totp: HashMap<UserId, TotpFactor>,
    recovery: HashMap<UserId, Vec<String>>,
    challenges: HashMap<String, MfaChallenge>,
    /// Passkeys by user, in registration order.
    passkeys: HashMap<UserId, Vec<crate::store::Passkey>>,
    pending_passkeys: HashMap<UserId, crate::store::PendingPasskey>,
    email_changes: HashMap<String, EmailChange>,
    plans: HashMap<crate::domain::plan::PlanId, crate::domain::plan::Plan>,
    /// The storage ledger: each object's mark by tenant and key hash.
    objects: HashMap<(TenantId, String), ObjectMark>,
    flags: std::collections::BTreeMap<crate::domain::flag::FlagKey, crate::domain::flag::Flag>,
    kill_list: std::collections::BTreeSet<String>,
    approvals: HashMap<String, crate::domain::impersonation::Approval>,
    /// Revoked impersonations and when their tokens would have expired.
    revoked: HashMap<String, i64>,
    open_impersonations: HashMap<String, crate::domain::impersonation::Open>,
}

impl Data {
    /// Moves the operator count (kept from the first operator on, as DynamoDB's `ADD` does).
    fn count_operators(&mut self, delta: i64) {
        if delta != 0 {
            self.operators = Some(self.operators.unwrap_or(0) + delta);
        }
    }
}

struct IdempotencyRecord {
    fingerprint: String,
    /// `Some((status, data))` once done.
    answer: Option<(u16, String)>,
    /// The lease end while pending, the retention end once done.
    until: i64,
}

#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        let mut guard = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl Health for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One page of `sorted` after position `after` (by `position_of`), as DynamoDB gives it: a
/// full page has a cursor even when nothing follows. `descending`: positions fall.
fn page_after<T>(
    sorted: Vec<T>,
    after: Option<&str>,
    limit: usize,
    position_of: impl Fn(&T) -> String,
    cursor_for: impl Fn(&str) -> String,
    descending: bool,
) -> crate::store::page::Page<T> {
    let limit = limit.clamp(1, crate::store::page::MAX_LIMIT);
    let items: Vec<T> = sorted
        .into_iter()
        .filter(|item| {
            after.is_none_or(|a| {
                let p = position_of(item);
                if descending {
                    p.as_str() < a
                } else {
                    p.as_str() > a
                }
            })
        })
        .take(limit)
        .collect();
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|last| cursor_for(&position_of(last))))
        .flatten();
    crate::store::page::Page { items, next_cursor }
}

/// The sort position a cursor made for `query` names, refused unless it lies in the partition
/// `pk_attr = pk` (as the DynamoDB store refuses it).
fn position_after(
    query: &str,
    cursor: Option<&str>,
    pk_attr: &str,
    pk: &str,
    sk_attr: &str,
) -> Result<Option<String>, StoreError> {
    let Some(c) = cursor else {
        return Ok(None);
    };
    crate::store::page::decode_within(query, c, pk_attr, pk)
        .map_err(|_| StoreError::InvalidCursor)?
        .get(sk_attr)
        .cloned()
        .map(Some)
        .ok_or(StoreError::InvalidCursor)
}
