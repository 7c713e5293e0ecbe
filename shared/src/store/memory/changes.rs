//! Commits, all or nothing: every condition is checked under the one lock before anything
//! is applied, as DynamoDB checks a transaction.

use super::*;
use crate::store::changes::{AuditEntry, Change, CommitError, OutboxEvent, MAX_CHANGES};

/// Whether `change`'s condition holds against `d`.
fn holds(d: &Data, change: &Change) -> bool {
    match change {
        Change::AddMembership { user, tenant, .. } => !d
            .memberships
            .get(user)
            .is_some_and(|ms| ms.iter().any(|m| m.tenant_id == tenant.id)),
        Change::SetRedirectOrigins { tenant, .. } => d.tenants.contains_key(tenant),
        Change::Audit(a) => !d
            .audit
            .get(&a.scope)
            .is_some_and(|es| es.iter().any(|e| e.id == a.id)),
        Change::Count { .. } => true,
        Change::Outbox(e) => !d.outbox.contains_key(&e.id),
    }
}

fn apply(d: &mut Data, change: Change) {
    match change {
        Change::AddMembership { user, tenant, role } => {
            let list = d.memberships.entry(user).or_default();
            list.push(Membership {
                tenant_id: tenant.id.clone(),
                tenant_slug: tenant.slug.to_string(),
                role,
            });
            list.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        }
        Change::SetRedirectOrigins { tenant, origins } => {
            if let Some(t) = d.tenants.get_mut(&tenant) {
                t.redirect_origins = origins;
            }
        }
        Change::Audit(a) => {
            let list = d.audit.entry(a.scope.clone()).or_default();
            list.push(a);
            list.sort_by(|x, y| x.id.cmp(&y.id));
        }
        Change::Count { scope, name, by } => *d.counters.entry((scope, name)).or_default() += by,
        Change::Outbox(e) => {
            d.outbox.insert(e.id.clone(), e);
        }
    }
}

#[async_trait]
impl CommitStore for MemoryStore {
    async fn commit(&self, changes: Vec<Change>) -> Result<(), CommitError> {
        if changes.len() > MAX_CHANGES {
            return Err(CommitError::TooMany);
        }
        self.with(|d| {
            let refused: Vec<String> = changes
                .iter()
                .filter(|c| !holds(d, c))
                .map(Change::key)
                .collect();
            if !refused.is_empty() {
                return Err(CommitError::Refused { keys: refused });
            }
            for c in changes {
                apply(d, c);
            }
            Ok(())
        })
    }

    async fn audit_entries(
        &self,
        scope: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.with(|d| {
            let mut list = d.audit.get(scope).cloned().unwrap_or_default();
            list.truncate(limit.clamp(1, crate::page::MAX_LIMIT));
            list
        }))
    }

    async fn counter(&self, scope: &str, name: &str) -> Result<i64, StoreError> {
        Ok(self.with(|d| {
            d.counters
                .get(&(scope.to_string(), name.to_string()))
                .copied()
                .unwrap_or(0)
        }))
    }

    async fn outbox_event(&self, id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        Ok(self.with(|d| d.outbox.get(id).cloned()))
    }
}
