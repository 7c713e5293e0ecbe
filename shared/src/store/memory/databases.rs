//! Registered tenant databases.

use super::*;

#[async_trait]
impl DatabaseStore for MemoryStore {
    async fn database(
        &self,
        id: &crate::domain::DatabaseId,
    ) -> Result<Option<DatabaseRecord>, StoreError> {
        Ok(self.with(|d| d.databases.get(id).cloned()))
    }

    async fn tenant_databases(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<DatabaseRecord>, StoreError> {
        let query = format!("tenant-databases:{tenant}");
        let partition = format!("TENANT#{tenant}");
        let after = position_after(&query, cursor, "GSI1PK", &partition, "GSI1SK")?;
        let position = |db: &DatabaseRecord| format!("DB#{:015}#{}", db.created_at, db.id);
        let mut all: Vec<DatabaseRecord> = self.with(|d| {
            d.databases
                .values()
                .filter(|db| &db.tenant == tenant)
                .cloned()
                .collect()
        });
        all.sort_by_key(|db| std::cmp::Reverse(position(db)));
        Ok(page_after(
            all,
            after.as_deref(),
            limit,
            position,
            |last| {
                crate::store::page::encode(
                    &query,
                    BTreeMap::from([
                        ("GSI1PK".to_string(), partition.clone()),
                        ("GSI1SK".to_string(), last.to_string()),
                    ]),
                )
            },
            true,
        ))
    }
}
