//! Feature flags and impersonation's records (read side).

use super::*;
use crate::domain::flag::{Flag, FlagKey};
use crate::domain::impersonation::Approval;

#[async_trait]
impl FlagStore for MemoryStore {
    async fn flags(&self) -> Result<(Vec<Flag>, Vec<String>), StoreError> {
        Ok(self.with(|d| {
            (
                d.flags
                    .values()
                    .take(crate::store::MAX_FLAGS)
                    .cloned()
                    .collect(),
                d.kill_list.iter().cloned().collect(),
            )
        }))
    }

    async fn flag(&self, key: &FlagKey) -> Result<Option<Flag>, StoreError> {
        Ok(self.with(|d| d.flags.get(key).cloned()))
    }

    async fn kill_list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.with(|d| d.kill_list.iter().cloned().collect()))
    }
}

#[async_trait]
impl ImpersonationStore for MemoryStore {
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        Ok(self.with(|d| d.approvals.get(id).cloned()))
    }

    async fn approvals_of(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut all: Vec<Approval> = self.with(|d| {
            d.approvals
                .values()
                .filter(|a| &a.tenant_id == tenant)
                .cloned()
                .collect()
        });
        all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn lapsed_impersonations(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::domain::impersonation::Open>, StoreError> {
        let mut lapsed: Vec<_> = self.with(|d| {
            d.open_impersonations
                .values()
                .filter(|o| o.expires_at < now)
                .cloned()
                .collect()
        });
        lapsed.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        lapsed.truncate(limit);
        Ok(lapsed)
    }

    async fn impersonation_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|d| d.revoked.contains_key(id)))
    }
}
