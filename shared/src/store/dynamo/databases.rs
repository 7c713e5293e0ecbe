//! Registered tenant databases.

use super::*;
use crate::domain::DatabaseId;

fn parse_database(item: &Item) -> Result<DatabaseRecord, StoreError> {
    let f = Fields { item, key: "DB" };
    Ok(DatabaseRecord {
        id: DatabaseId::parse(f.s("db_id")?).ok_or_else(|| f.corrupt("bad db id".into()))?,
        tenant: f.tenant_id("tenant_id")?,
        name: f.s("name")?.to_string(),
        engine: f.s("engine")?.to_string(),
        host: f.s("host")?.to_string(),
        sealed: f.s("sealed")?.to_string(),
        tls: f.opt_s("tls").unwrap_or("disable").to_string(),
        ca_sealed: f.opt_s("ca_sealed").map(str::to_string),
        created_at: f.n("created_at")?,
    })
}

#[async_trait]
impl DatabaseStore for DynamoStore {
    async fn database(&self, id: &DatabaseId) -> Result<Option<DatabaseRecord>, StoreError> {
        self.get(format!("DB#{id}"), "DB")
            .await?
            .as_ref()
            .map(parse_database)
            .transpose()
    }

    async fn tenant_databases(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<DatabaseRecord>, StoreError> {
        let (items, next_cursor) = self
            .page_query(PageQuery {
                query_name: format!("tenant-databases:{tenant}"),
                index: Some("GSI1"),
                partition: ("GSI1PK", format!("TENANT#{tenant}")),
                sort: Some((
                    "GSI1SK",
                    "begins_with(#sk, :prefix)".to_string(),
                    vec![(":prefix", s("DB#"))],
                )),
                filter: None,
                forward: false,
                limit,
                cursor,
            })
            .await?;
        let items = items
            .iter()
            .map(parse_database)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, next_cursor })
    }
}
