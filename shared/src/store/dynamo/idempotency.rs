//! Idempotency keys: claimed by conditional write, finished or released by their claimant.

use super::*;

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let pk = format!("IDEMP#{id}");
        // A refused claim reads the holder; if the holder vanished in between (released or
        // expired), the claim is tried again.
        for _ in 0..3 {
            let mut item = key(pk.clone(), "IDEMP");
            item.insert("entity".into(), s("idempotency_key"));
            item.insert("fingerprint".into(), s(fingerprint));
            item.insert("state".into(), s("pending"));
            item.insert("expires_at".into(), n(lease_until));
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR expires_at <= :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            if conditional(result)? {
                return Ok(IdempotencyClaim::Claimed);
            }
            let Some(held) = self.get(pk.clone(), "IDEMP").await? else {
                continue;
            };
            let f = Fields {
                item: &held,
                key: "IDEMP",
            };
            if f.n::<i64>("expires_at")? <= now {
                continue;
            }
            let theirs = f.s("fingerprint")?.to_string();
            return match f.s("state")? {
                "pending" => Ok(IdempotencyClaim::InProgress {
                    fingerprint: theirs,
                }),
                "done" => Ok(IdempotencyClaim::Done {
                    fingerprint: theirs,
                    status: f.n("response_status")?,
                    data: f.s("response_data")?.to_string(),
                }),
                other => Err(f.corrupt(format!("unknown state {other}"))),
            };
        }
        Err(StoreError::Conflict("idempotency key is contended"))
    }

    async fn complete_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        status: u16,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("IDEMP#{id}"), "IDEMP")))
            .update_expression(
                "SET #state = :done, response_status = :status, response_data = :data, expires_at = :exp",
            )
            .condition_expression("fingerprint = :fp AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":status", n(status))
            .expression_attribute_values(":data", s(data))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict("idempotency claim lost"))
        }
    }

    async fn release_idempotency(&self, id: &str, fingerprint: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("IDEMP#{id}"), "IDEMP")))
            .condition_expression("fingerprint = :fp AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        // A failed condition: someone else's record, or already gone; nothing of ours to release.
        conditional(result).map(drop)
    }
}
