//! Tenants, slug claims, memberships (write side), redirect origins.

use super::*;

#[async_trait]
impl TenantStore for MemoryStore {
    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.slugs.get(slug).and_then(|id| d.tenants.get(id)).cloned()))
    }

    async fn tenant_by_id(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.tenants.get(id).cloned()))
    }

    async fn reconcile_position(&self) -> Result<Option<String>, StoreError> {
        Ok(self.with(|d| d.reconcile_position.clone()))
    }

    async fn set_reconcile_position(&self, cursor: Option<&str>) -> Result<(), StoreError> {
        self.with(|d| d.reconcile_position = cursor.map(str::to_string));
        Ok(())
    }

    async fn tenants_page(
        &self,
        filter: &TenantFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Tenant>, StoreError> {
        let query = filter.query_name();
        let (pk_attr, pk, sk_attr) = match &filter.partner {
            Some(p) => ("GSI1PK", format!("PARTNER#{p}"), "GSI1SK"),
            None => ("GSI2PK", "TENANTS".to_string(), "GSI2SK"),
        };
        let after = super::position_after(&query, cursor, pk_attr, &pk, sk_attr)?;
        let prefix = if filter.partner.is_some() {
            "TENANT#"
        } else {
            ""
        };
        let mut all: Vec<Tenant> = self.with(|d| {
            d.tenants
                .values()
                .filter(|t| filter.matches(t))
                .cloned()
                .collect()
        });
        all.sort_by(|a, b| a.slug.cmp(&b.slug));
        Ok(super::page_after(
            all,
            after.as_deref(),
            limit,
            |t| format!("{prefix}{}", t.slug),
            |last| {
                crate::store::page::encode(
                    &query,
                    std::collections::BTreeMap::from([
                        (pk_attr.to_string(), pk.clone()),
                        (sk_attr.to_string(), last.to_string()),
                    ]),
                )
            },
            false,
        ))
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
    ) -> Result<Page<MemberEntry>, StoreError> {
        let partition = format!("TENANT#{tenant_id}");
        let query = format!("tenant-members:{tenant_id}");
        let after = super::position_after(&query, cursor, "GSI1PK", &partition, "GSI1SK")?;
        let position = |m: &MemberEntry| format!("MEMBER#{:015}#{}", m.added_at, m.user_id);
        let mut all: Vec<MemberEntry> = self.with(|d| {
            d.memberships
                .iter()
                .flat_map(|(u, ms)| {
                    ms.iter()
                        .filter(|m| &m.tenant_id == tenant_id)
                        .map(|m| MemberEntry {
                            user_id: u.clone(),
                            role: m.role,
                            added_at: d
                                .member_added
                                .get(&(u.clone(), m.tenant_id.clone()))
                                .copied()
                                .unwrap_or(0),
                        })
                })
                .collect()
        });
        all.sort_by_key(|m| std::cmp::Reverse(position(m)));
        Ok(super::page_after(
            all,
            after.as_deref(),
            limit,
            position,
            |last| {
                crate::store::page::encode(
                    &query,
                    std::collections::BTreeMap::from([
                        ("GSI1PK".to_string(), partition.clone()),
                        ("GSI1SK".to_string(), last.to_string()),
                    ]),
                )
            },
            true,
        ))
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &TenantId,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        self.with(|d| match d.tenants.get_mut(tenant_id) {
            Some(t) => {
                t.redirect_origins = origins.to_vec();
                t.version += 1;
                Ok(())
            }
            None => Err(StoreError::NotFound("tenant")),
        })
    }

    async fn tenants_with_origin(
        &self,
        origin: &RedirectOrigin,
    ) -> Result<Vec<TenantId>, StoreError> {
        Ok(self.with(|d| {
            d.tenants
                .values()
                .filter(|t| t.redirect_origins.contains(origin))
                .map(|t| t.id.clone())
                .take(crate::store::MAX_ORIGIN_TENANTS)
                .collect()
        }))
    }
}
