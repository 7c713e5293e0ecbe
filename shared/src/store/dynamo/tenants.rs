//! Tenants, their slug claims, memberships (write side) and redirect origins.

use super::*;

impl DynamoStore {
    /// A membership item: under the user, indexed under the tenant (GSI1).
    pub(super) fn membership_item(user: &UserId, tenant: &Tenant, role: Role) -> Item {
        let mut item = key(format!("USER#{user}"), &format!("MEMBER#{}", tenant.id));
        item.insert("entity".into(), s("membership"));
        item.insert("tenant_id".into(), s(tenant.id.as_str()));
        item.insert("tenant_slug".into(), s(tenant.slug.as_str()));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("role".into(), s(role.as_str()));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", tenant.id)));
        item.insert("GSI1SK".into(), s(format!("USER#{user}")));
        item
    }

    fn parse_tenant(item: &Item) -> Result<Tenant, StoreError> {
        let f = Fields {
            item,
            key: "TENANT",
        };
        let origins = f
            .strings("redirect_origins")?
            .iter()
            .map(|o| RedirectOrigin::parse(o, true).map_err(|e| f.corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Tenant {
            id: f.tenant_id("tenant_id")?,
            slug: TenantSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            status: TenantStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown tenant status".into()))?,
            redirect_origins: origins,
            created_at: f.n("created_at")?,
        })
    }
}

pub(super) fn origin_list(origins: &[RedirectOrigin]) -> AttributeValue {
    AttributeValue::L(origins.iter().map(|o| s(o.as_str())).collect())
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let mut claim = key(format!("SLUG#{}", tenant.slug), "SLUG");
        claim.insert("entity".into(), s("slug_claim"));
        claim.insert("tenant_id".into(), s(tenant.id.as_str()));
        let mut item = key(format!("TENANT#{}", tenant.id), "TENANT");
        item.insert("entity".into(), s("tenant"));
        item.insert("tenant_id".into(), s(tenant.id.as_str()));
        item.insert("slug".into(), s(tenant.slug.as_str()));
        item.insert("name".into(), s(&tenant.name));
        item.insert("status".into(), s(tenant.status.as_str()));
        item.insert(
            "redirect_origins".into(),
            origin_list(&tenant.redirect_origins),
        );
        item.insert("created_at".into(), n(tenant.created_at));
        let result = self
            .transact(vec![
                self.put(claim, "attribute_not_exists(PK)")?,
                self.put(item, "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "a tenant with this slug already exists")
    }

    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        let Some(claim) = self.get(format!("SLUG#{slug}"), "SLUG").await? else {
            return Ok(None);
        };
        let id = Fields {
            item: &claim,
            key: "SLUG",
        }
        .tenant_id("tenant_id")?;
        self.tenant_by_id(&id).await
    }

    async fn tenant_by_id(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.get(format!("TENANT#{id}"), "TENANT")
            .await?
            .as_ref()
            .map(Self::parse_tenant)
            .transpose()
    }

    async fn add_membership(
        &self,
        user: &UserId,
        tenant: &Tenant,
        role: Role,
    ) -> Result<(), StoreError> {
        let item = Self::membership_item(user, tenant, role);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict("already a member of this tenant"))
        }
    }

    async fn tenant_members(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Vec<(UserId, Role)>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .tenant_members_page(tenant_id, crate::page::MAX_LIMIT, cursor.as_deref())
                .await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    async fn tenant_members_page(
        &self,
        tenant_id: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<crate::page::Page<(UserId, Role)>, StoreError> {
        let partition = format!("TENANT#{tenant_id}");
        let query = format!("tenant-members:{tenant_id}");
        let start = match cursor {
            None => None,
            Some(c) => {
                // Only a position inside this tenant's own partition of the index.
                let position = crate::page::decode_within(&query, c, "GSI1PK", &partition)
                    .map_err(|_| StoreError::InvalidCursor)?;
                Some(
                    position
                        .into_iter()
                        .map(|(k, v)| (k, s(v)))
                        .collect::<Item>(),
                )
            }
        };
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
            .expression_attribute_values(":pk", s(partition))
            .expression_attribute_values(":prefix", s("USER#"))
            .limit(i32::try_from(limit.clamp(1, crate::page::MAX_LIMIT)).unwrap_or(1))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut items = Vec::with_capacity(page.items().len());
        for item in page.items() {
            let f = Fields {
                item,
                key: "MEMBER",
            };
            let role = Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?;
            items.push((f.user_id("user_id")?, role));
        }
        let next_cursor = page.last_evaluated_key.filter(|k| !k.is_empty()).map(|k| {
            let position = k
                .into_iter()
                .filter_map(|(name, v)| v.as_s().ok().map(|v| (name, v.clone())))
                .collect();
            crate::page::encode(&query, position)
        });
        Ok(crate::page::Page { items, next_cursor })
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &TenantId,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("TENANT#{tenant_id}"), "TENANT")))
            .update_expression("SET redirect_origins = :o")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":o", origin_list(origins))
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::NotFound("tenant"))
        }
    }
}
