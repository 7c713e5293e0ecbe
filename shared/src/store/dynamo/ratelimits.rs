//! Rate-limit windows: version-conditioned reservations and refunds.

use super::*;

const REFUND_UPDATE: &str = "REMOVE hits.#hit ADD version :one";
const REFUND_CONDITION: &str = "attribute_exists(hits)";

fn rate_key(k: &str) -> Item {
    key(format!("RATE#{k}"), "RATE")
}

impl DynamoStore {
    /// Removes one hit from a window and moves its version (so a reservation that read the
    /// window before the refund is sent again); only if the window still exists.
    pub(super) fn refund_update(&self, k: &str, hit_id: &str) -> Result<Update, StoreError> {
        Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(REFUND_UPDATE)
                .condition_expression(REFUND_CONDITION)
                .expression_attribute_names("#hit", hit_id)
                .expression_attribute_values(":one", n(1))
                .build(),
        )
    }
}

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn rate_windows(&self, keys: &[String]) -> Result<Vec<RateWindow>, StoreError> {
        let mut wanted: Vec<&String> = keys.iter().collect();
        wanted.sort();
        wanted.dedup();
        let mut found: HashMap<String, Item> = HashMap::new();
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for k in &wanted {
            request = request.keys(rate_key(k));
        }
        let mut pending = Some(Self::build(request.build())?);
        // BatchGetItem may hand back unprocessed keys under throttling; ask again, a bounded number of times.
        for _ in 0..5 {
            let Some(req) = pending.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let Some(AttributeValue::S(pk)) = item.get("PK") {
                    found.insert(pk.clone(), item);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        if pending.is_some() {
            return Err(StoreError::Unavailable("rate-limit read throttled".into()));
        }
        keys.iter()
            .map(|k| match found.get(&format!("RATE#{k}")) {
                None => Ok(RateWindow::default()),
                Some(item) => {
                    let f = Fields { item, key: "RATE" };
                    Ok(RateWindow {
                        hits: f.number_map("hits")?,
                        version: f.n_or("version", 0)?,
                    })
                }
            })
            .collect()
    }

    async fn put_rate_windows(
        &self,
        writes: &[(String, RateWindow, u64, i64)],
    ) -> Result<bool, StoreError> {
        let mut items = Vec::with_capacity(writes.len());
        for (k, window, seen, expires_at) in writes {
            let mut item = rate_key(k);
            item.insert("entity".into(), s("rate_window"));
            item.insert("hits".into(), hash_map(&window.hits));
            item.insert("version".into(), n(window.version));
            item.insert("expires_at".into(), n(expires_at));
            let condition = if *seen == 0 {
                "attribute_not_exists(version)".to_string()
            } else {
                "version = :seen".to_string()
            };
            let put = Self::build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_values(
                        (*seen != 0).then(|| HashMap::from([(":seen".to_string(), n(seen))])),
                    )
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // One item needs no transaction; several are written all or nothing.
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) if e.refused() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn refund_rate_hit(&self, keys: &[String], hit_id: &str) -> Result<(), StoreError> {
        for k in keys {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(REFUND_UPDATE)
                .condition_expression(REFUND_CONDITION)
                .expression_attribute_names("#hit", hit_id)
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            // A failed condition: the window expired away, nothing to give back.
            conditional(result)?;
        }
        Ok(())
    }
}
