//! Rate-limit windows and refunds.

use super::*;

pub(super) fn refund_in(d: &mut Data, keys: &[String], hit_id: &str) {
    for k in keys {
        if let Some(w) = d.rate.get_mut(k) {
            w.hits.remove(hit_id);
            w.version += 1;
        }
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn rate_windows(&self, keys: &[String]) -> Result<Vec<RateWindow>, StoreError> {
        Ok(self.with(|d| {
            keys.iter()
                .map(|k| d.rate.get(k).cloned().unwrap_or_default())
                .collect()
        }))
    }

    async fn put_rate_windows(
        &self,
        writes: &[(String, RateWindow, u64, i64)],
    ) -> Result<bool, StoreError> {
        self.with(|d| {
            let current = |k: &String| d.rate.get(k).map_or(0, |w| w.version);
            if writes.iter().any(|(k, _, seen, _)| current(k) != *seen) {
                return Ok(false);
            }
            for (k, w, _, _) in writes {
                d.rate.insert(k.clone(), w.clone());
            }
            Ok(true)
        })
    }

    async fn refund_rate_hit(&self, keys: &[String], hit_id: &str) -> Result<(), StoreError> {
        self.with(|d| refund_in(d, keys, hit_id));
        Ok(())
    }
}
