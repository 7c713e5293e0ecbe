//! The plan catalogue, quota counters and the storage ledger (read side).

use super::*;

#[async_trait]
impl PlanStore for MemoryStore {
    async fn stored_plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        Ok(self.with(|d| d.plans.get(id).cloned()))
    }

    async fn stored_plans(&self) -> Result<Vec<Plan>, StoreError> {
        let mut all: Vec<Plan> = self.with(|d| d.plans.values().cloned().collect());
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.truncate(crate::store::MAX_PLANS);
        Ok(all)
    }
}

#[async_trait]
impl UsageStore for MemoryStore {
    async fn quotas(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let key = format!("QUOTA#{scope}");
        Ok(self.with(|d| {
            d.counters
                .iter()
                .filter(|((s, _), _)| *s == key)
                .map(|((_, name), v)| (name.clone(), *v))
                .collect()
        }))
    }

    async fn object_mark(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<ObjectMark>, StoreError> {
        Ok(self.with(|d| d.objects.get(&(tenant.clone(), key.to_string())).cloned()))
    }

    async fn count_seats(&self, tenant: &TenantId, now: i64) -> Result<i64, StoreError> {
        Ok(self.with(|d| {
            let members = d
                .memberships
                .values()
                .flatten()
                .filter(|m| &m.tenant_id == tenant)
                .count();
            let invites = d
                .invites
                .iter()
                .filter(|((_, t), i)| t == tenant && i.expires_at > now)
                .count();
            (members + invites) as i64
        }))
    }

    async fn count_databases(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        Ok(self.with(|d| {
            d.databases
                .values()
                .filter(|db| &db.tenant == tenant)
                .count() as i64
        }))
    }
}
