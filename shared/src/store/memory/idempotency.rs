//! Idempotency keys.

use super::*;

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.with(|d| {
            if let Some(held) = d.idempotency.get(id).filter(|r| r.until > now) {
                return Ok(match &held.answer {
                    None => IdempotencyClaim::InProgress {
                        fingerprint: held.fingerprint.clone(),
                    },
                    Some((status, data)) => IdempotencyClaim::Done {
                        fingerprint: held.fingerprint.clone(),
                        status: *status,
                        data: data.clone(),
                    },
                });
            }
            d.idempotency.insert(
                id.to_string(),
                IdempotencyRecord {
                    fingerprint: fingerprint.to_string(),
                    answer: None,
                    until: lease_until,
                },
            );
            Ok(IdempotencyClaim::Claimed)
        })
    }

    async fn complete_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        status: u16,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|d| match d.idempotency.get_mut(id) {
            // As on DynamoDB: only the claimant's pending record is completed.
            Some(r) if r.fingerprint == fingerprint && r.answer.is_none() => {
                r.answer = Some((status, data.to_string()));
                r.until = expires_at;
                Ok(())
            }
            _ => Err(StoreError::Conflict("idempotency claim lost")),
        })
    }

    async fn release_idempotency(&self, id: &str, fingerprint: &str) -> Result<(), StoreError> {
        self.with(|d| {
            if d.idempotency
                .get(id)
                .is_some_and(|r| r.fingerprint == fingerprint && r.answer.is_none())
            {
                d.idempotency.remove(id);
            }
            Ok(())
        })
    }
}
