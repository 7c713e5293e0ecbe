//! Tenants, their slug claims, memberships (write side) and redirect origins.

use super::*;

/// The scheduled reconcile's position in its walk through the tenants: one item.
const RECONCILE_PK: &str = "RECONCILE";
const RECONCILE_SK: &str = "POSITION";

impl DynamoStore {
    /// A membership item: under the user, indexed under the tenant (GSI1), newest first.
    pub(super) fn membership_item(user: &UserId, tenant: &Tenant, role: Role, at_ms: i64) -> Item {
        let mut item = key(format!("USER#{user}"), &format!("MEMBER#{}", tenant.id));
        item.insert("entity".into(), s("membership"));
        item.insert("tenant_id".into(), s(tenant.id.as_str()));
        item.insert("tenant_slug".into(), s(tenant.slug.as_str()));
        item.insert("user_id".into(), s(user.as_str()));
        item.insert("role".into(), s(role.as_str()));
        item.insert("added_at".into(), n(at_ms));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", tenant.id)));
        item.insert("GSI1SK".into(), s(format!("MEMBER#{at_ms:015}#{user}")));
        item
    }

    pub(super) fn tenant_item(t: &Tenant) -> Item {
        let mut item = key(format!("TENANT#{}", t.id), "TENANT");
        item.insert("entity".into(), s("tenant"));
        item.insert("tenant_id".into(), s(t.id.as_str()));
        item.insert("slug".into(), s(t.slug.as_str()));
        item.insert("created_at".into(), n(t.created_at));
        item.insert("owners".into(), n(t.owners));
        item.insert("redirect_origins".into(), origin_list(&t.redirect_origins));
        item.insert("GSI2PK".into(), s("TENANTS"));
        item.insert("GSI2SK".into(), s(t.slug.as_str()));
        for (name, value) in Self::tenant_mutable(t) {
            if let Some(v) = value {
                item.insert(name.to_string(), v);
            }
        }
        item
    }

    /// The attributes a tenant update writes (`None`: removed).
    fn tenant_mutable(t: &Tenant) -> Vec<(&'static str, Option<AttributeValue>)> {
        vec![
            ("name", Some(s(&t.name))),
            ("name_lower", Some(s(t.name.to_lowercase()))),
            ("status", Some(s(t.status.as_str()))),
            ("plan", Some(s(t.plan.as_str()))),
            (
                "domains",
                Some(AttributeValue::L(
                    t.domains.iter().map(|d| s(d.as_str())).collect(),
                )),
            ),
            ("billing_info", Some(json_attr(&t.billing_info))),
            (
                "provisioning",
                Some(s(
                    serde_json::to_string(&t.provisioning).unwrap_or_else(|_| "{}".into())
                )),
            ),
            ("run", t.run.as_ref().map(|r| s(json_text(r)))),
            (
                "offboarding",
                t.offboarding.as_ref().map(|o| s(json_text(o))),
            ),
            ("created_by", t.created_by.as_ref().map(|u| s(u.as_str()))),
            ("owner_email", t.owner_email.as_ref().map(|e| s(e.as_str()))),
            ("partner_id", t.partner.as_ref().map(|p| s(p.as_str()))),
            (
                "GSI1PK",
                t.partner.as_ref().map(|p| s(format!("PARTNER#{p}"))),
            ),
            (
                "GSI1SK",
                t.partner.as_ref().map(|_| s(format!("TENANT#{}", t.slug))),
            ),
            ("updated_at", Some(n(t.updated_at))),
            ("version", Some(n(t.version))),
        ]
    }

    /// An update of every mutable attribute, conditioned on the version read.
    pub(super) fn tenant_update(
        &self,
        t: &Tenant,
        expect_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("TENANT#{}", t.id), "TENANT")))
            .condition_expression("#version = :expect")
            .expression_attribute_values(":expect", n(expect_version));
        for (i, (name, value)) in Self::tenant_mutable(t).into_iter().enumerate() {
            update = update.expression_attribute_names(format!("#a{i}"), name);
            match value {
                Some(v) => {
                    sets.push(format!("#a{i} = :v{i}"));
                    update = update.expression_attribute_values(format!(":v{i}"), v);
                }
                None => removes.push(format!("#a{i}")),
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update
            .expression_attribute_names("#version", "version")
            .update_expression(expression)
            .build();
        Ok(TransactWriteItem::builder()
            .update(Self::build(update)?)
            .build())
    }

    pub(super) fn parse_tenant(item: &Item) -> Result<Tenant, StoreError> {
        let f = Fields {
            item,
            key: "TENANT",
        };
        let origins = f
            .strings("redirect_origins")?
            .iter()
            .map(|o| RedirectOrigin::parse(o, true).map_err(|e| f.corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        let domains = f
            .strings("domains")?
            .iter()
            .map(|d| {
                crate::domain::fields::Hostname::parse(d)
                    .ok_or_else(|| f.corrupt("bad domain".into()))
            })
            .collect::<Result<_, _>>()?;
        let provisioning = match f.opt_s("provisioning") {
            None => Default::default(),
            Some(raw) => {
                serde_json::from_str(raw).map_err(|_| f.corrupt("bad provisioning".into()))?
            }
        };
        let run = f
            .opt_s("run")
            .map(|raw| serde_json::from_str(raw).map_err(|_| f.corrupt("bad run".into())))
            .transpose()?;
        let offboarding = f
            .opt_s("offboarding")
            .map(|raw| serde_json::from_str(raw).map_err(|_| f.corrupt("bad offboarding".into())))
            .transpose()?;
        Ok(Tenant {
            id: f.tenant_id("tenant_id")?,
            slug: TenantSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            status: TenantStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown tenant status".into()))?,
            plan: match f.opt_s("plan") {
                None => crate::domain::plan::PlanId::free(),
                Some(p) => crate::domain::plan::PlanId::parse(p)
                    .ok_or_else(|| f.corrupt("unknown plan".into()))?,
            },
            domains,
            billing_info: f.json_object("billing_info")?,
            partner: match f.opt_s("partner_id") {
                None => None,
                Some(p) => {
                    Some(PartnerId::parse(p).ok_or_else(|| f.corrupt("bad partner id".into()))?)
                }
            },
            owner_email: f.opt_s("owner_email").and_then(|e| Email::parse(e).ok()),
            provisioning,
            run,
            offboarding,
            created_by: f.opt_s("created_by").and_then(UserId::parse),
            redirect_origins: origins,
            owners: f.n_or("owners", 0)?,
            version: f.n_or("version", 1)?,
            created_at: f.n("created_at")?,
            updated_at: f.n_or("updated_at", 0)?,
        })
    }
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

pub(super) fn origin_list(origins: &[RedirectOrigin]) -> AttributeValue {
    AttributeValue::L(origins.iter().map(|o| s(o.as_str())).collect())
}

#[async_trait]
impl TenantStore for DynamoStore {
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

    async fn tenants_by_ids(&self, ids: &[TenantId]) -> Result<Vec<Tenant>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut unique: Vec<&TenantId> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .into_iter()
            .map(|id| key(format!("TENANT#{id}"), "TENANT"))
            .collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(Self::parse_tenant)
            .collect()
    }

    async fn reconcile_position(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(RECONCILE_PK.into(), RECONCILE_SK)
            .await?
            .and_then(|item| item.get("cursor")?.as_s().ok().cloned()))
    }

    async fn set_reconcile_position(&self, cursor: Option<&str>) -> Result<(), StoreError> {
        match cursor {
            Some(c) => {
                let mut item = key(RECONCILE_PK, RECONCILE_SK);
                item.insert("entity".into(), s("reconcile_position"));
                item.insert("cursor".into(), s(c));
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(RECONCILE_PK, RECONCILE_SK)))
                    .send()
                    .await
                    .map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn tenants_page(
        &self,
        filter: &TenantFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Tenant>, StoreError> {
        let mut conditions = Vec::new();
        let mut values: Vec<(String, AttributeValue)> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        if let Some(st) = filter.status {
            conditions.push("#st = :st".to_string());
            names.push(("#st".into(), "status".into()));
            values.push((":st".into(), s(st.as_str())));
        }
        if let Some(plan) = &filter.plan {
            conditions.push("#plan = :plan".to_string());
            names.push(("#plan".into(), "plan".into()));
            values.push((":plan".into(), s(plan.as_str())));
        }
        if let Some(q) = &filter.q {
            conditions.push("(begins_with(slug, :q) OR begins_with(name_lower, :q))".to_string());
            values.push((":q".into(), s(q.to_lowercase())));
        }
        let filter_expr =
            (!conditions.is_empty()).then(|| (conditions.join(" AND "), values, names));
        let (index, partition, sort) = match &filter.partner {
            Some(p) => (
                "GSI1",
                ("GSI1PK", format!("PARTNER#{p}")),
                Some((
                    "GSI1SK",
                    "begins_with(#sk, :prefix)".to_string(),
                    vec![(":prefix", s("TENANT#"))],
                )),
            ),
            None => ("GSI2", ("GSI2PK", "TENANTS".to_string()), None),
        };
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: filter.query_name(),
                index: Some(index),
                partition,
                sort,
                filter: filter_expr,
                forward: true,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(Self::parse_tenant)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn tenant_members(
        &self,
        tenant_id: &TenantId,
    ) -> Result<Vec<(UserId, Role)>, StoreError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .tenant_members_page(tenant_id, crate::store::page::MAX_LIMIT, cursor.as_deref())
                .await?;
            out.extend(page.items.into_iter().map(|m| (m.user_id, m.role)));
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
    ) -> Result<Page<MemberEntry>, StoreError> {
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: format!("tenant-members:{tenant_id}"),
                index: Some("GSI1"),
                partition: ("GSI1PK", format!("TENANT#{tenant_id}")),
                sort: Some((
                    "GSI1SK",
                    "begins_with(#sk, :prefix)".to_string(),
                    vec![(":prefix", s("MEMBER#"))],
                )),
                filter: None,
                forward: false,
                limit,
                cursor,
            })
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let f = Fields {
                item,
                key: "MEMBER",
            };
            let role = Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?;
            out.push(MemberEntry {
                user_id: f.user_id("user_id")?,
                role,
                added_at: f.n_or("added_at", 0)?,
            });
        }
        Ok(Page {
            items: out,
            next_cursor,
        })
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &TenantId,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        let tenant = self
            .tenant_by_id(tenant_id)
            .await?
            .ok_or(StoreError::NotFound("tenant"))?;
        crate::store::CommitStore::commit(
            self,
            vec![crate::store::changes::Change::SetRedirectOrigins {
                tenant: tenant_id.clone(),
                before: tenant.redirect_origins,
                origins: origins.to_vec(),
            }],
        )
        .await
        .map_err(|_| StoreError::NotFound("tenant"))
    }

    async fn tenants_with_origin(
        &self,
        origin: &RedirectOrigin,
    ) -> Result<Vec<TenantId>, StoreError> {
        // Every page (an entry left by a deleted tenant must not hide a live one), up to a
        // bound no honest origin reaches.
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(format!("ORIGIN#{}", origin.as_str())))
                .set_exclusive_start_key(start)
                .limit(100)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                out.push(
                    Fields {
                        item,
                        key: "ORIGIN",
                    }
                    .tenant_id("tenant_id")?,
                );
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() || out.len() >= crate::store::MAX_ORIGIN_TENANTS {
                return Ok(out);
            }
        }
    }
}
