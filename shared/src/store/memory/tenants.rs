//! Tenants, slug claims, memberships (write side), redirect origins.

use super::*;

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.with(|d| {
            if d.slugs.contains_key(&tenant.slug) || d.tenants.contains_key(&tenant.id) {
                return Err(StoreError::Conflict(
                    "a tenant with this slug already exists",
                ));
            }
            d.slugs.insert(tenant.slug.clone(), tenant.id.clone());
            d.tenants.insert(tenant.id.clone(), tenant.clone());
            Ok(())
        })
    }

    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.slugs.get(slug).and_then(|id| d.tenants.get(id)).cloned()))
    }

    async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.tenants.get(id).cloned()))
    }

    async fn add_membership(
        &self,
        user: &UserId,
        tenant: &Tenant,
        role: Role,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            let list = d.memberships.entry(user.clone()).or_default();
            if list.iter().any(|m| m.tenant_id == tenant.id) {
                return Err(StoreError::Conflict("already a member of this tenant"));
            }
            list.push(Membership {
                tenant_id: tenant.id.clone(),
                tenant_slug: tenant.slug.to_string(),
                role,
            });
            list.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
            Ok(())
        })
    }

    async fn tenant_members(&self, tenant_id: &str) -> Result<Vec<(UserId, Role)>, StoreError> {
        Ok(self.with(|d| {
            let mut out: Vec<(UserId, Role)> = d
                .memberships
                .iter()
                .flat_map(|(u, ms)| {
                    ms.iter()
                        .filter(|m| m.tenant_id == tenant_id)
                        .map(|m| (u.clone(), m.role))
                })
                .collect();
            out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            out
        }))
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &str,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        self.with(|d| match d.tenants.get_mut(tenant_id) {
            Some(t) => {
                t.redirect_origins = origins.to_vec();
                Ok(())
            }
            None => Err(StoreError::NotFound("tenant")),
        })
    }
}
