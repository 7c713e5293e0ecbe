//! Feature flags with their kill list, and impersonation's approvals and revocation list.

use super::*;
use crate::domain::flag::{Flag, FlagKey};
use crate::domain::impersonation::{Approval, ApprovalStatus};

const FLAGS_PK: &str = "FLAGS";
const KILLED_SK: &str = "KILLED";
const REVOKED_PK: &str = "REVOKED";
const OPEN_PK: &str = "IMPERSONATIONS";

fn open_sk(expires_at: i64, id: &str) -> String {
    format!("{expires_at:010}#{id}")
}

impl DynamoStore {
    fn parse_flag(item: &Item) -> Result<Flag, StoreError> {
        let f = Fields { item, key: "FLAG" };
        let mut flag: Flag =
            serde_json::from_str(f.s("doc")?).map_err(|_| f.corrupt("doc is not a flag".into()))?;
        flag.version = f.n("version")?;
        Ok(flag)
    }

    /// `Change::SaveFlag`: the whole flag, conditioned on the version read.
    pub(super) fn save_flag_item(
        &self,
        flag: &Flag,
        expect_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(FLAGS_PK, &format!("FLAG#{}", flag.key));
        item.insert("entity".into(), s("flag"));
        let doc = serde_json::to_string(flag).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        item.insert("doc".into(), s(doc));
        item.insert("version".into(), n(flag.version));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = if expect_version == 0 {
            put.condition_expression("attribute_not_exists(PK)")
        } else {
            put.condition_expression("#version = :expect")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expect", n(expect_version))
        };
        Ok(TransactWriteItem::builder()
            .put(Self::build(put.build())?)
            .build())
    }

    /// `Change::DeleteFlag`.
    pub(super) fn delete_flag_item(
        &self,
        flag: &FlagKey,
        expect_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(FLAGS_PK, &format!("FLAG#{flag}"))))
            .condition_expression("#version = :expect")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expect", n(expect_version));
        Ok(TransactWriteItem::builder()
            .delete(Self::build(d.build())?)
            .build())
    }

    /// `Change::KillList`: the key added to or removed from the set.
    pub(super) fn kill_list_item(
        &self,
        flag: &FlagKey,
        killed: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let verb = if killed { "ADD" } else { "DELETE" };
        self.update_item(
            FLAGS_PK.to_string(),
            KILLED_SK,
            &format!("{verb} #keys :key"),
            "",
            &[("#keys", "keys")],
            vec![(":key", AttributeValue::Ss(vec![flag.to_string()]))],
        )
    }

    /// `Change::PutApproval`.
    pub(super) fn put_approval_item(&self, a: &Approval) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(format!("IMPAPPR#{}", a.id), "IMPAPPR");
        item.insert("entity".into(), s("impersonation_approval"));
        item.insert("tenant_id".into(), s(a.tenant_id.as_str()));
        item.insert("user_id".into(), s(a.user_id.as_str()));
        item.insert("operator_id".into(), s(a.operator_id.as_str()));
        item.insert("reason".into(), s(&a.reason));
        item.insert("status".into(), s(a.status.as_str()));
        item.insert("created_at".into(), n(a.created_at));
        item.insert("expires_at".into(), n(a.expires_at));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", a.tenant_id)));
        item.insert(
            "GSI1SK".into(),
            s(format!("IMPAPPR#{:015}#{}", a.created_at, a.id)),
        );
        self.put(item, "attribute_not_exists(PK)")
    }

    /// `Change::DecideApproval`: conditioned on the status read and on not having lapsed.
    pub(super) fn decide_approval_item(
        &self,
        id: &str,
        from: ApprovalStatus,
        to: ApprovalStatus,
        by: Option<&UserId>,
        at: i64,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut names = vec![("#status", "status"), ("#exp", "expires_at")];
        let mut values = vec![
            (":to", s(to.as_str())),
            (":from", s(from.as_str())),
            (":at", n(at)),
            (":exp", n(expires_at)),
        ];
        let expression = match by {
            Some(by) => {
                names.extend([("#by", "decided_by"), ("#at", "decided_at")]);
                values.push((":by", s(by.as_str())));
                "SET #status = :to, #by = :by, #at = :at, #exp = :exp"
            }
            None => {
                names.push(("#used", "used_at"));
                "SET #status = :to, #used = :at, #exp = :exp"
            }
        };
        self.update_item(
            format!("IMPAPPR#{id}"),
            "IMPAPPR",
            expression,
            "#status = :from AND #exp > :at",
            &names,
            values,
        )
    }

    /// `Change::RevokeImpersonation`.
    pub(super) fn revoke_impersonation_item(
        &self,
        id: &str,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(REVOKED_PK, &format!("IMP#{id}"));
        item.insert("entity".into(), s("revoked_impersonation"));
        item.insert("expires_at".into(), n(expires_at));
        self.put(item, "attribute_not_exists(PK)")
    }

    /// `Change::OpenImpersonation`.
    pub(super) fn open_impersonation_item(
        &self,
        o: &crate::domain::impersonation::Open,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(OPEN_PK, &open_sk(o.expires_at, &o.id));
        item.insert("entity".into(), s("open_impersonation"));
        item.insert("tenant_id".into(), s(o.tenant_id.as_str()));
        item.insert("user_id".into(), s(o.user_id.as_str()));
        item.insert("operator_id".into(), s(o.operator_id.as_str()));
        item.insert("write".into(), AttributeValue::Bool(o.write));
        self.put(item, "attribute_not_exists(PK)")
    }

    /// `Change::CloseImpersonation`.
    pub(super) fn close_impersonation_item(
        &self,
        id: &str,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.delete_item(
            OPEN_PK.to_string(),
            &open_sk(expires_at, id),
            "attribute_exists(PK)",
            vec![],
            &[],
        )
    }

    fn parse_approval(item: &Item) -> Result<Approval, StoreError> {
        let f = Fields {
            item,
            key: "IMPAPPR",
        };
        let pk = f.s("PK")?;
        let status = ApprovalStatus::parse(f.s("status")?)
            .ok_or_else(|| f.corrupt("unknown approval status".into()))?;
        Ok(Approval {
            id: pk.trim_start_matches("IMPAPPR#").to_string(),
            tenant_id: f.tenant_id("tenant_id")?,
            user_id: f.user_id("user_id")?,
            operator_id: f.user_id("operator_id")?,
            reason: f.s("reason")?.to_string(),
            status,
            created_at: f.n("created_at")?,
            expires_at: f.n("expires_at")?,
            decided_by: f.opt_s("decided_by").and_then(UserId::parse),
            decided_at: if item.contains_key("decided_at") {
                Some(f.n("decided_at")?)
            } else {
                None
            },
        })
    }

    /// Every item of a base-table partition, strongly consistent, page by page (at most
    /// `most` items).
    async fn whole_partition(&self, pk: &str, most: usize) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() && items.len() < most => start = Some(k.clone()),
                _ => return Ok(items),
            }
        }
    }
}

fn kill_keys(item: &Item) -> Vec<String> {
    match item.get("keys") {
        Some(AttributeValue::Ss(keys)) => keys.clone(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl FlagStore for DynamoStore {
    async fn flags(&self) -> Result<(Vec<Flag>, Vec<String>), StoreError> {
        let items = self
            .whole_partition(FLAGS_PK, crate::store::MAX_FLAGS + 1)
            .await?;
        let mut flags = Vec::new();
        let mut killed = Vec::new();
        for item in &items {
            match item
                .get("SK")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(KILLED_SK) => killed = kill_keys(item),
                Some(sk) if sk.starts_with("FLAG#") => flags.push(Self::parse_flag(item)?),
                _ => {}
            }
        }
        flags.truncate(crate::store::MAX_FLAGS);
        Ok((flags, killed))
    }

    async fn flag(&self, flag: &FlagKey) -> Result<Option<Flag>, StoreError> {
        self.get(FLAGS_PK.to_string(), &format!("FLAG#{flag}"))
            .await?
            .map(|item| Self::parse_flag(&item))
            .transpose()
    }

    async fn kill_list(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .get(FLAGS_PK.to_string(), KILLED_SK)
            .await?
            .map(|item| kill_keys(&item))
            .unwrap_or_default())
    }
}

#[async_trait]
impl ImpersonationStore for DynamoStore {
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.get(format!("IMPAPPR#{id}"), "IMPAPPR")
            .await?
            .map(|item| Self::parse_approval(&item))
            .transpose()
    }

    async fn approvals_of(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<Approval>, StoreError> {
        let (items, _) = self
            .page_query(PageQuery {
                query_name: format!("tenant-approvals:{tenant}"),
                index: Some("GSI1"),
                partition: ("GSI1PK", format!("TENANT#{tenant}")),
                sort: Some((
                    "GSI1SK",
                    "begins_with(#sk, :prefix)".to_string(),
                    vec![(":prefix", s("IMPAPPR#"))],
                )),
                filter: None,
                forward: false,
                limit,
                cursor: None,
            })
            .await?;
        items.iter().map(Self::parse_approval).collect()
    }

    async fn lapsed_impersonations(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::domain::impersonation::Open>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK < :now")
            .expression_attribute_values(":pk", s(OPEN_PK))
            .expression_attribute_values(":now", s(format!("{now:010}#")))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(100))
            .send()
            .await
            .map_err(unavailable)?;
        let mut lapsed = Vec::new();
        for item in out.items() {
            let f = Fields { item, key: OPEN_PK };
            let (expires_at, id) = f
                .s("SK")?
                .split_once('#')
                .ok_or_else(|| f.corrupt("bad sort key".into()))?;
            lapsed.push(crate::domain::impersonation::Open {
                id: id.to_string(),
                tenant_id: f.tenant_id("tenant_id")?,
                user_id: f.user_id("user_id")?,
                operator_id: f.user_id("operator_id")?,
                write: f.bool("write")?,
                expires_at: expires_at
                    .parse()
                    .map_err(|_| f.corrupt("bad expiry".into()))?,
            });
        }
        Ok(lapsed)
    }

    async fn impersonation_revoked(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(REVOKED_PK.to_string(), &format!("IMP#{id}"))
            .await?
            .is_some())
    }
}
