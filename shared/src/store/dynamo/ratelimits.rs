//! Fixed-window attempt counters: conditional adds, settles and refunds.

use super::*;
use crate::store::{CounterState, RateCounter, Take};

fn rate_key(k: &str) -> Item {
    key(format!("RATE#{k}"), "RATE")
}

/// A refund: one attempt less (and one less in flight), only if the counter still exists.
const REFUND: &str = "ADD n :minus";
const REFUND_IN_FLIGHT: &str = "ADD n :minus, in_flight :minus";
/// Settling a failed sign-in: still counted, no longer in flight.
const SETTLE: &str = "ADD in_flight :minus";

impl DynamoStore {
    /// Takes `hit` back from counter `k`, only if the counter still exists.
    pub(super) fn refund_update(&self, k: &str, hit: &RateHit) -> Result<Update, StoreError> {
        Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(if hit.in_flight {
                    REFUND_IN_FLIGHT
                } else {
                    REFUND
                })
                .condition_expression("attribute_exists(n)")
                .expression_attribute_values(":minus", n(-1))
                .build(),
        )
    }

    /// Adds one attempt to counter `c`, only while it is below its limit: `Ok(false)` when full.
    async fn add_attempt(&self, c: &RateCounter, in_flight: bool) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(rate_key(&c.key)))
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(c.limit))
            .expression_attribute_values(":exp", n(c.expires_at))
            .expression_attribute_values(":entity", s("rate_counter"));
        update = if in_flight {
            update.update_expression(
                "ADD n :one, in_flight :one SET expires_at = :exp, entity = :entity",
            )
        } else {
            update.update_expression("ADD n :one SET expires_at = :exp, entity = :entity")
        };
        conditional(update.send().await)
    }

    /// Applies `update` (a refund or a settle, each `ADD ... :minus`) to each counter in
    /// `keys` that still exists; one forgotten since (its window ended) is skipped.
    async fn subtract(&self, keys: &[String], update: &str) -> Result<(), StoreError> {
        for k in keys {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(update)
                .condition_expression("attribute_exists(n)")
                .expression_attribute_values(":minus", n(-1))
                .send()
                .await;
            conditional(result)?;
        }
        Ok(())
    }

    async fn counter_state(&self, k: &str) -> Result<CounterState, StoreError> {
        let Some(item) = self.get(format!("RATE#{k}"), "RATE").await? else {
            return Ok(CounterState::default());
        };
        let f = Fields {
            item: &item,
            key: "RATE",
        };
        Ok(CounterState {
            count: f.n_or("n", 0)?,
            in_flight: f.n_or("in_flight", 0)?,
        })
    }
}

#[async_trait]
impl RateLimitStore for DynamoStore {
    /// Each counter is its own conditional add, all sent at once (one round trip, and
    /// concurrent attempts serialise per item instead of conflicting as transactions would).
    /// No counter ever passes its limit; an attempt one counter refuses is taken back from the
    /// others, so for that moment it may be counted there once too often (as in flight, when
    /// in flight: a sign-in waiting on it waits rather than being refused).
    async fn take_attempt(
        &self,
        counters: &[RateCounter],
        in_flight: bool,
    ) -> Result<Take, StoreError> {
        let added =
            futures_util::future::join_all(counters.iter().map(|c| self.add_attempt(c, in_flight)))
                .await;
        let mut full = Vec::new();
        let mut taken = Vec::new();
        let mut failure = None;
        for (i, result) in added.into_iter().enumerate() {
            match result {
                Ok(true) => taken.push(counters[i].key.clone()),
                Ok(false) => full.push(i),
                Err(e) => failure = Some(e),
            }
        }
        if full.is_empty() && failure.is_none() {
            return Ok(Take::Taken);
        }
        if !taken.is_empty() {
            self.refund_attempt(&RateHit {
                keys: taken,
                in_flight,
            })
            .await?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut states = Vec::with_capacity(full.len());
        for i in full {
            states.push((i, self.counter_state(&counters[i].key).await?));
        }
        Ok(Take::Full(states))
    }

    async fn counter_states(&self, keys: &[String]) -> Result<Vec<CounterState>, StoreError> {
        futures_util::future::join_all(keys.iter().map(|k| self.counter_state(k)))
            .await
            .into_iter()
            .collect()
    }

    async fn settle_attempt(&self, hit: &RateHit) -> Result<(), StoreError> {
        self.subtract(&hit.keys, SETTLE).await
    }

    async fn refund_attempt(&self, hit: &RateHit) -> Result<(), StoreError> {
        let update = if hit.in_flight {
            REFUND_IN_FLIGHT
        } else {
            REFUND
        };
        self.subtract(&hit.keys, update).await
    }
}
