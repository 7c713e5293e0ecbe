//! Partners, their slug claims and their admins.

use super::*;
use crate::domain::fields::Hostname;
use crate::domain::partner::{Partner, PartnerSlug, PartnerStatus};

impl DynamoStore {
    pub(super) fn partner_item(p: &Partner) -> Item {
        let mut item = key(format!("PARTNER#{}", p.id), "PARTNER");
        item.insert("entity".into(), s("partner"));
        item.insert("partner_id".into(), s(p.id.as_str()));
        item.insert("slug".into(), s(p.slug.as_str()));
        item.insert("created_at".into(), n(p.created_at));
        item.insert("GSI2PK".into(), s("PARTNERS"));
        item.insert("GSI2SK".into(), s(p.slug.as_str()));
        for (status, count) in &p.tenant_counts {
            item.insert(format!("count_{status}"), n(count));
        }
        for (name, value) in Self::partner_mutable(p) {
            item.insert(name.to_string(), value);
        }
        item
    }

    fn partner_mutable(p: &Partner) -> Vec<(&'static str, AttributeValue)> {
        let mut fields = vec![
            ("name", s(&p.name)),
            ("domain", s(p.domain.as_str())),
            ("status", s(p.status.as_str())),
            ("margin_bp", n(p.margin_bp)),
            ("contact_info", json_attr(&p.contact_info)),
            ("billing_info", json_attr(&p.billing_info)),
            ("updated_at", n(p.updated_at)),
            ("version", n(p.version)),
        ];
        // Once set, only ever replaced by another list.
        if let Some(plans) = &p.allowed_plans {
            fields.push((
                "allowed_plans",
                AttributeValue::L(plans.iter().map(|id| s(id.as_str())).collect()),
            ));
        }
        fields
    }

    /// An update of the partner's own fields (never its counts), conditioned on the version.
    pub(super) fn partner_update(
        &self,
        p: &Partner,
        expect_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut sets = Vec::new();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("PARTNER#{}", p.id), "PARTNER")))
            .condition_expression("#version = :expect")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expect", n(expect_version));
        for (i, (name, value)) in Self::partner_mutable(p).into_iter().enumerate() {
            sets.push(format!("#a{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        let update = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .build();
        Ok(TransactWriteItem::builder()
            .update(Self::build(update)?)
            .build())
    }

    fn parse_partner(item: &Item) -> Result<Partner, StoreError> {
        let f = Fields {
            item,
            key: "PARTNER",
        };
        let mut tenant_counts = BTreeMap::new();
        for (name, v) in item {
            // `count_live` is the cap's own counter (`changes::LIVE_COUNT`), not a status.
            if let Some(status) = name
                .strip_prefix("count_")
                .filter(|s| *s != crate::store::changes::LIVE_COUNT)
            {
                let count = v
                    .as_n()
                    .ok()
                    .and_then(|x| x.parse().ok())
                    .ok_or_else(|| f.corrupt(format!("bad number in {name}")))?;
                tenant_counts.insert(status.to_string(), count);
            }
        }
        Ok(Partner {
            id: PartnerId::parse(f.s("partner_id")?)
                .ok_or_else(|| f.corrupt("bad partner id".into()))?,
            slug: PartnerSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            domain: Hostname::parse(f.s("domain")?)
                .ok_or_else(|| f.corrupt("bad domain".into()))?,
            status: PartnerStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown partner status".into()))?,
            margin_bp: f.n("margin_bp")?,
            contact_info: f.json_object("contact_info")?,
            billing_info: f.json_object("billing_info")?,
            tenant_counts,
            allowed_plans: match item.get("allowed_plans") {
                None => None,
                Some(_) => Some(
                    f.strings("allowed_plans")?
                        .iter()
                        .map(|id| {
                            crate::domain::plan::PlanId::parse(id)
                                .ok_or_else(|| f.corrupt("bad plan id".into()))
                        })
                        .collect::<Result<_, _>>()?,
                ),
            },
            version: f.n("version")?,
            created_at: f.n("created_at")?,
            updated_at: f.n("updated_at")?,
        })
    }
}

#[async_trait]
impl PartnerStore for DynamoStore {
    async fn partner_by_slug(&self, slug: &PartnerSlug) -> Result<Option<Partner>, StoreError> {
        let Some(claim) = self.get(format!("PSLUG#{slug}"), "PSLUG").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &claim,
            key: "PSLUG",
        };
        let id = PartnerId::parse(f.s("partner_id")?)
            .ok_or_else(|| f.corrupt("bad partner id".into()))?;
        self.partner_by_id(&id).await
    }

    async fn partner_by_id(&self, id: &PartnerId) -> Result<Option<Partner>, StoreError> {
        self.get(format!("PARTNER#{id}"), "PARTNER")
            .await?
            .as_ref()
            .map(Self::parse_partner)
            .transpose()
    }

    async fn partners_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Partner>, StoreError> {
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: "partners".to_string(),
                index: Some("GSI2"),
                partition: ("GSI2PK", "PARTNERS".to_string()),
                sort: None,
                filter: None,
                forward: true,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(Self::parse_partner)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn partner_admins_page(
        &self,
        partner: &PartnerId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<UserId>, StoreError> {
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: format!("partner-admins:{partner}"),
                index: Some("GSI1"),
                partition: ("GSI1PK", format!("PARTNER#{partner}")),
                sort: Some((
                    "GSI1SK",
                    "begins_with(#sk, :prefix)".to_string(),
                    vec![(":prefix", s("USER#"))],
                )),
                filter: None,
                forward: true,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(|item| {
                Fields {
                    item,
                    key: "PARTNER_ADMIN",
                }
                .user_id("user_id")
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }
}
