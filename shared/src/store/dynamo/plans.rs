//! The plan catalogue, a tenant's quota counters and the storage ledger.

use super::*;
use crate::domain::plan::{Entitlements, PlanStatus};
use crate::store::changes::{STORAGE_AT, STORAGE_MOVES, STORED_BYTES, STORED_OBJECTS};

impl DynamoStore {
    /// A plan's own fields (never its tenant count), as `SET` pairs.
    fn plan_fields(p: &Plan) -> Vec<(&'static str, AttributeValue)> {
        vec![
            ("entity", s("plan")),
            ("plan_id", s(p.id.as_str())),
            ("name", s(&p.name)),
            ("status", s(p.status.as_str())),
            (
                "entitlements",
                s(serde_json::to_string(&p.entitlements).unwrap_or_default()),
            ),
            (
                "features",
                AttributeValue::L(p.features.iter().map(s).collect()),
            ),
            ("version", n(p.version)),
            ("updated_at", n(p.updated_at)),
            ("GSI2PK", s("PLANS")),
            ("GSI2SK", s(p.id.as_str())),
        ]
    }

    /// `Change::SavePlan`: the plan's fields, conditioned on the version read.
    pub(super) fn save_plan_item(
        &self,
        p: &Plan,
        expect_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut sets = vec!["#created = if_not_exists(#created, :created)".to_string()];
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("PLAN#{}", p.id), "PLAN")))
            .expression_attribute_names("#created", "created_at")
            .expression_attribute_values(":created", n(p.created_at));
        for (i, (name, value)) in Self::plan_fields(p).into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            u = u
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        u = if expect_version == 0 {
            u.condition_expression("attribute_not_exists(PK)")
        } else {
            u.condition_expression("#version = :expect")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expect", n(expect_version))
        };
        let u = u.update_expression(format!("SET {}", sets.join(", ")));
        Ok(TransactWriteItem::builder()
            .update(Self::build(u.build())?)
            .build())
    }

    /// `Change::UsePlan`: the tenant count's move; a built-in plan's first use stores its seed.
    pub(super) fn use_plan_item(&self, p: &Plan, by: i64) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("PLAN#{}", p.id), "PLAN")))
            .expression_attribute_names("#tenants", "tenants")
            .expression_attribute_values(":by", n(by));
        let mut sets = Vec::new();
        if p.builtin() {
            // Stored as seeded unless it is stored already (each field only where missing).
            let mut seed = Self::plan_fields(p);
            seed.push(("created_at", n(p.created_at)));
            for (i, (name, value)) in seed.into_iter().enumerate() {
                let value = if name == "version" { n(1) } else { value };
                sets.push(format!("#a{i} = if_not_exists(#a{i}, :v{i})"));
                u = u
                    .expression_attribute_names(format!("#a{i}"), name)
                    .expression_attribute_values(format!(":v{i}"), value);
            }
        }
        let condition = match (by > 0, p.builtin()) {
            (true, true) => Some("attribute_not_exists(PK) OR #status = :active"),
            (true, false) => Some("#status = :active"),
            (false, true) => None,
            (false, false) => Some("attribute_exists(PK)"),
        };
        if let Some(c) = condition {
            u = u.condition_expression(c);
            if by > 0 {
                u = u
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":active", s(PlanStatus::Active.as_str()));
            }
        }
        let expression = if sets.is_empty() {
            "ADD #tenants :by".to_string()
        } else {
            format!("ADD #tenants :by SET {}", sets.join(", "))
        };
        let u = u.update_expression(expression);
        Ok(TransactWriteItem::builder()
            .update(Self::build(u.build())?)
            .build())
    }

    /// `Change::DeletePlan`: only a stored plan no tenant is counted on.
    pub(super) fn delete_plan_item(&self, id: &PlanId) -> Result<TransactWriteItem, StoreError> {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("PLAN#{id}"), "PLAN")))
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(#tenants) OR #tenants <= :zero)",
            )
            .expression_attribute_names("#tenants", "tenants")
            .expression_attribute_values(":zero", n(0));
        Ok(TransactWriteItem::builder()
            .delete(Self::build(d.build())?)
            .build())
    }

    /// `Change::RecordObject`: the ledger's mark (conditioned on the mark read) and the
    /// tenant's storage counters moved by the difference.
    pub(super) fn record_object_items(
        &self,
        tenant: &TenantId,
        hash: &str,
        before: Option<&ObjectMark>,
        after: &ObjectMark,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut mark = key(format!("OBJ#{tenant}#{hash}"), "OBJ");
        mark.insert("entity".into(), s("object_mark"));
        mark.insert("size".into(), n(after.size));
        mark.insert("sequencer".into(), s(&after.sequencer));
        mark.insert("present".into(), AttributeValue::Bool(after.present));
        mark.insert("at".into(), n(after.at));
        if !after.present {
            mark.insert(
                "expires_at".into(),
                n(after.at + crate::store::REMOVED_MARK_TTL_SECS),
            );
        }
        let mut put = Put::builder().table_name(&self.table).set_item(Some(mark));
        put = match before {
            None => put.condition_expression("attribute_not_exists(PK)"),
            Some(b) => put
                .condition_expression("#seq = :seq")
                .expression_attribute_names("#seq", "sequencer")
                .expression_attribute_values(":seq", s(&b.sequencer)),
        };
        let (size_before, count_before) =
            before.filter(|b| b.present).map_or((0, 0), |b| (b.size, 1));
        let (size_after, count_after) = if after.present {
            (after.size, 1)
        } else {
            (0, 0)
        };
        let counters = self.update_item(
            format!("QUOTA#{}", crate::store::changes::tenant_scope(tenant)),
            "QUOTA",
            "ADD #bytes :bytes, #objects :objects, #moves :one SET #at = :at",
            "",
            &[
                ("#bytes", STORED_BYTES),
                ("#objects", STORED_OBJECTS),
                ("#moves", STORAGE_MOVES),
                ("#at", STORAGE_AT),
            ],
            vec![
                (":bytes", n(size_after - size_before)),
                (":objects", n(count_after - count_before)),
                (":one", n(1)),
                (":at", n(after.at)),
            ],
        )?;
        Ok(vec![
            TransactWriteItem::builder()
                .put(Self::build(put.build())?)
                .build(),
            counters,
        ])
    }

    /// `Change::SetQuotas`: each counter set, conditioned on what the recount read.
    pub(super) fn set_quotas_item(
        &self,
        scope: &str,
        values: &[(String, Option<i64>, i64)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("QUOTA#{scope}"), "QUOTA")));
        let mut sets = Vec::new();
        let mut conditions = Vec::new();
        for (i, (name, read, to)) in values.iter().enumerate() {
            u = u
                .expression_attribute_names(format!("#c{i}"), name)
                .expression_attribute_values(format!(":to{i}"), n(to));
            sets.push(format!("#c{i} = :to{i}"));
            match read {
                None => conditions.push(format!("attribute_not_exists(#c{i})")),
                Some(v) => {
                    conditions.push(format!("#c{i} = :was{i}"));
                    u = u.expression_attribute_values(format!(":was{i}"), n(v));
                }
            }
        }
        let u = u
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(conditions.join(" AND "));
        Ok(TransactWriteItem::builder()
            .update(Self::build(u.build())?)
            .build())
    }

    fn parse_plan(item: &Item) -> Result<Plan, StoreError> {
        let f = Fields { item, key: "PLAN" };
        let id = PlanId::parse(f.s("plan_id")?).ok_or_else(|| f.corrupt("bad plan id".into()))?;
        let entitlements: Entitlements = serde_json::from_str(f.s("entitlements")?)
            .map_err(|_| f.corrupt("bad entitlements".into()))?;
        Ok(Plan {
            id,
            name: f.s("name")?.to_string(),
            status: PlanStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown plan status".into()))?,
            entitlements,
            features: f.strings("features")?,
            tenants: f.n_or("tenants", 0)?,
            version: f.n_or("version", 1)?,
            created_at: f.n_or("created_at", 0)?,
            updated_at: f.n_or("updated_at", 0)?,
        })
    }

    /// Counts the items of the tenant's GSI1 partition whose sort key begins with `prefix`
    /// (and pass `filter`), page by page.
    async fn count_tenant_index(
        &self,
        tenant: &TenantId,
        prefix: &str,
        filter: Option<(&str, AttributeValue)>,
    ) -> Result<i64, StoreError> {
        let mut total = 0i64;
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                .expression_attribute_values(":pk", s(format!("TENANT#{tenant}")))
                .expression_attribute_values(":prefix", s(prefix))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take());
            if let Some((expression, value)) = &filter {
                q = q
                    .filter_expression(*expression)
                    .expression_attribute_values(":now", value.clone());
            }
            let out = q.send().await.map_err(unavailable)?;
            total += i64::from(out.count());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(total),
            }
        }
    }
}

#[async_trait]
impl PlanStore for DynamoStore {
    async fn stored_plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        self.get(format!("PLAN#{id}"), "PLAN")
            .await?
            .map(|item| Self::parse_plan(&item))
            .transpose()
    }

    async fn stored_plans(&self) -> Result<Vec<Plan>, StoreError> {
        let mut plans = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI2")
                .key_condition_expression("GSI2PK = :pk")
                .expression_attribute_values(":pk", s("PLANS"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                plans.push(Self::parse_plan(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && plans.len() < crate::store::MAX_PLANS => {
                    start = Some(k.clone())
                }
                _ => break,
            }
        }
        plans.truncate(crate::store::MAX_PLANS);
        Ok(plans)
    }
}

#[async_trait]
impl UsageStore for DynamoStore {
    async fn quotas(&self, scope: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let Some(item) = self.get(format!("QUOTA#{scope}"), "QUOTA").await? else {
            return Ok(BTreeMap::new());
        };
        Ok(item
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_n().ok()?.parse().ok()?)))
            .collect())
    }

    async fn object_mark(
        &self,
        tenant: &TenantId,
        hash: &str,
    ) -> Result<Option<ObjectMark>, StoreError> {
        let Some(item) = self.get(format!("OBJ#{tenant}#{hash}"), "OBJ").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "OBJ",
        };
        Ok(Some(ObjectMark {
            size: f.n("size")?,
            sequencer: f.s("sequencer")?.to_string(),
            present: f.bool("present")?,
            at: f.n_or("at", 0)?,
        }))
    }

    async fn count_seats(&self, tenant: &TenantId, now: i64) -> Result<i64, StoreError> {
        let members = self.count_tenant_index(tenant, "MEMBER#", None).await?;
        let invites = self
            .count_tenant_index(tenant, "INVITE#", Some(("expires_at > :now", n(now))))
            .await?;
        Ok(members + invites)
    }

    async fn count_databases(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        self.count_tenant_index(tenant, "DB#", None).await
    }
}
