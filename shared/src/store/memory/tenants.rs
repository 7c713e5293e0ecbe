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

    async fn tenant_by_id(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
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

    async fn tenant_members(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Vec<(UserId, Role)>, StoreError> {
        Ok(self.with(|d| {
            let mut out: Vec<(UserId, Role)> = d
                .memberships
                .iter()
                .flat_map(|(u, ms)| {
                    ms.iter()
                        .filter(|m| &m.tenant_id == tenant_id)
                        .map(|m| (u.clone(), m.role))
                })
                .collect();
            out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            out
        }))
    }

    async fn tenant_members_page(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<crate::page::Page<(UserId, Role)>, StoreError> {
        let partition = format!("TENANT#{tenant_id}");
        let query = format!("tenant-members:{tenant_id}");
        let after = match cursor {
            None => None,
            Some(c) => {
                // Only a position inside this tenant's own partition of the index.
                let position = crate::page::decode_within(&query, c, "GSI1PK", &partition)
                    .map_err(|_| StoreError::InvalidCursor)?;
                position.get("GSI1SK").cloned()
            }
        };
        let all = self.tenant_members(tenant_id).await?;
        let limit = limit.clamp(1, crate::page::MAX_LIMIT);
        let rest: Vec<_> = all
            .into_iter()
            .filter(|(u, _)| after.as_ref().is_none_or(|a| format!("USER#{u}") > *a))
            .collect();
        let items: Vec<_> = rest.iter().take(limit).cloned().collect();
        // Like DynamoDB with a limit: a full page has a position after it, even if nothing
        // follows.
        let next_cursor = (items.len() == limit).then(|| {
            let last = &items[items.len() - 1].0;
            crate::page::encode(
                &query,
                std::collections::BTreeMap::from([
                    ("GSI1PK".to_string(), partition.clone()),
                    ("GSI1SK".to_string(), format!("USER#{last}")),
                ]),
            )
        });
        Ok(crate::page::Page { items, next_cursor })
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &TenantId,
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
