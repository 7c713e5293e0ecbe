//! Fixed-window attempt counters, settled and refunded.

use super::*;
use crate::store::{CounterState, RateCounter, Take};

/// Takes `hit` back from each of its counters (one already forgotten is skipped).
pub(super) fn refund_in(d: &mut Data, hit: &RateHit) {
    for k in &hit.keys {
        if let Some(c) = d.rate.get_mut(k) {
            c.count = c.count.saturating_sub(1);
            if hit.in_flight {
                c.in_flight = c.in_flight.saturating_sub(1);
            }
        }
    }
}

impl MemoryStore {
    /// Where counter `key` stands (for tests).
    pub fn rate_counter(&self, key: &str) -> CounterState {
        self.with(|d| d.rate.get(key).copied().unwrap_or_default())
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn take_attempt(
        &self,
        counters: &[RateCounter],
        in_flight: bool,
    ) -> Result<Take, StoreError> {
        Ok(self.with(|d| {
            let full: Vec<(usize, CounterState)> = counters
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let state = d.rate.get(&c.key).copied().unwrap_or_default();
                    (state.count >= c.limit).then_some((i, state))
                })
                .collect();
            if !full.is_empty() {
                return Take::Full(full);
            }
            for c in counters {
                let state = d.rate.entry(c.key.clone()).or_default();
                state.count += 1;
                state.in_flight += u64::from(in_flight);
            }
            Take::Taken
        }))
    }

    async fn counter_states(&self, keys: &[String]) -> Result<Vec<CounterState>, StoreError> {
        Ok(self.with(|d| {
            keys.iter()
                .map(|k| d.rate.get(k).copied().unwrap_or_default())
                .collect()
        }))
    }

    async fn settle_attempt(&self, hit: &RateHit) -> Result<(), StoreError> {
        self.with(|d| {
            for k in &hit.keys {
                if let Some(c) = d.rate.get_mut(k) {
                    c.in_flight = c.in_flight.saturating_sub(1);
                }
            }
        });
        Ok(())
    }

    async fn refund_attempt(&self, hit: &RateHit) -> Result<(), StoreError> {
        self.with(|d| refund_in(d, hit));
        Ok(())
    }
}
