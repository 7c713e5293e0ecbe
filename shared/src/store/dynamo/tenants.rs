//! Tenants, their slug claims, memberships (write side) and redirect origins.

use super::*;

impl DynamoStore {
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
            id: f.s("tenant_id")?.to_string(),
            slug: TenantSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            status: TenantStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown tenant status".into()))?,
            redirect_origins: origins,
            created_at: f.n("created_at")?,
        })
    }
}

fn origin_list(origins: &[RedirectOrigin]) -> AttributeValue {
    AttributeValue::L(origins.iter().map(|o| s(o.as_str())).collect())
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let mut claim = key(format!("SLUG#{}", tenant.slug), "SLUG");
        claim.insert("entity".into(), s("slug_claim"));
        claim.insert("tenant_id".into(), s(&tenant.id));
        let mut item = key(format!("TENANT#{}", tenant.id), "TENANT");
        item.insert("entity".into(), s("tenant"));
        item.insert("tenant_id".into(), s(&tenant.id));
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
        .s("tenant_id")?
        .to_string();
        self.tenant_by_id(&id).await
    }

    async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
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
        let mut item = key(format!("USER#{user}"), &format!("MEMBER#{}", tenant.id));
        item.insert("entity".into(), s("membership"));
        item.insert("tenant_id".into(), s(&tenant.id));
        item.insert("tenant_slug".into(), s(tenant.slug.as_str()));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("role".into(), s(role.as_str()));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", tenant.id)));
        item.insert("GSI1SK".into(), s(format!("USER#{user}")));
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

    async fn tenant_members(&self, tenant_id: &str) -> Result<Vec<(UserId, Role)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                .expression_attribute_values(":pk", s(format!("TENANT#{tenant_id}")))
                .expression_attribute_values(":prefix", s("USER#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let f = Fields {
                    item,
                    key: "MEMBER",
                };
                let role =
                    Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?;
                out.push((f.user_id("user_id")?, role));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &str,
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
