//! Commits: every change becomes one item of a single `TransactWriteItems`, with its condition.

use super::*;
use crate::store::changes::{AuditEntry, Change, CommitError, OutboxEvent, MAX_CHANGES};

impl DynamoStore {
    fn change_item(&self, change: &Change) -> Result<TransactWriteItem, StoreError> {
        Ok(match change {
            Change::AddMembership { user, tenant, role } => self.put(
                Self::membership_item(user, tenant, *role),
                "attribute_not_exists(PK)",
            )?,
            Change::SetRedirectOrigins { tenant, origins } => TransactWriteItem::builder()
                .update(Self::build(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(format!("TENANT#{tenant}"), "TENANT")))
                        .update_expression("SET redirect_origins = :o")
                        .condition_expression("attribute_exists(PK)")
                        .expression_attribute_values(":o", super::tenants::origin_list(origins))
                        .build(),
                )?)
                .build(),
            Change::Audit(a) => {
                let mut item = key(format!("AUDIT#{}", a.scope), &a.id);
                item.insert("entity".into(), s("audit"));
                item.insert("actor".into(), s(a.actor.as_str()));
                item.insert("action".into(), s(&a.action));
                item.insert("details".into(), s(&a.details));
                item.insert("at".into(), n(a.at));
                self.put(item, "attribute_not_exists(PK)")?
            }
            Change::Count { scope, name, by } => TransactWriteItem::builder()
                .update(Self::build(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(format!("COUNT#{scope}"), "COUNT")))
                        .update_expression("ADD #name :by")
                        .expression_attribute_names("#name", name)
                        .expression_attribute_values(":by", n(by))
                        .build(),
                )?)
                .build(),
            Change::Outbox(e) => {
                let mut item = key(format!("OUTBOX#{}", e.id), "OUTBOX");
                item.insert("entity".into(), s("outbox"));
                item.insert("event_id".into(), s(&e.id));
                item.insert("kind".into(), s(&e.kind));
                item.insert("detail".into(), s(&e.detail));
                item.insert("created_at".into(), n(e.created_at));
                item.insert("GSI1PK".into(), s("OUTBOX"));
                item.insert("GSI1SK".into(), s(format!("{:015}#{}", e.created_at, e.id)));
                self.put(item, "attribute_not_exists(PK)")?
            }
        })
    }
}

#[async_trait]
impl CommitStore for DynamoStore {
    async fn commit(&self, changes: Vec<Change>) -> Result<(), CommitError> {
        if changes.len() > MAX_CHANGES {
            return Err(CommitError::TooMany);
        }
        if changes.is_empty() {
            return Ok(());
        }
        let items = changes
            .iter()
            .map(|c| self.change_item(c))
            .collect::<Result<Vec<_>, _>>()?;
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(TxError::Refused { keys }) => Err(CommitError::Refused { keys }),
            Err(e) => Err(CommitError::Store(e.into())),
        }
    }

    async fn audit_entries(
        &self,
        scope: &str,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(format!("AUDIT#{scope}")))
            .consistent_read(true)
            .limit(i32::try_from(limit.clamp(1, crate::page::MAX_LIMIT)).unwrap_or(1))
            .send()
            .await
            .map_err(unavailable)?;
        page.items()
            .iter()
            .map(|item| {
                let f = Fields { item, key: "AUDIT" };
                Ok(AuditEntry {
                    scope: scope.to_string(),
                    id: f.s("SK")?.to_string(),
                    actor: f.user_id("actor")?,
                    action: f.s("action")?.to_string(),
                    details: f.s("details")?.to_string(),
                    at: f.n("at")?,
                })
            })
            .collect()
    }

    async fn counter(&self, scope: &str, name: &str) -> Result<i64, StoreError> {
        match self.get(format!("COUNT#{scope}"), "COUNT").await? {
            Some(item) => Fields {
                item: &item,
                key: "COUNT",
            }
            .n_or(name, 0),
            None => Ok(0),
        }
    }

    async fn outbox_event(&self, id: &str) -> Result<Option<OutboxEvent>, StoreError> {
        let Some(item) = self.get(format!("OUTBOX#{id}"), "OUTBOX").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "OUTBOX",
        };
        Ok(Some(OutboxEvent {
            id: f.s("event_id")?.to_string(),
            kind: f.s("kind")?.to_string(),
            detail: f.s("detail")?.to_string(),
            created_at: f.n("created_at")?,
        }))
    }
}
