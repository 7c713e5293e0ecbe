//! This instance's hold on each registered database: a small connection pool and the catalogue
//! last read through it, kept across warm invocations and let go of together when a route sees
//! the registration removed (here, or gone through another instance).

use crate::query::Catalog;
use crate::registry::{owner_of, unusable};
use crate::target;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use shared::access::crypto::DataKey;
use shared::domain::DatabaseId;
use shared::store::DatabaseRecord;
use shared::ApiError;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connections per database and function instance: one tenant cannot exhaust a database.
pub const POOL_SIZE: usize = 4;
/// How long a catalogue read is trusted.
pub const CATALOG_TTL: Duration = Duration::from_secs(30);

/// The pools and catalogues of this instance, by database. Nothing is held across an `.await`:
/// two requests that miss at once both open (or load), and the later one's result is kept, as a
/// lock held over a connection attempt would stall every other database's requests.
pub struct Pools {
    pools: Mutex<HashMap<DatabaseId, Pool>>,
    catalogs: Mutex<HashMap<DatabaseId, (Instant, Arc<Catalog>)>>,
    catalog_ttl: Duration,
}

impl Default for Pools {
    fn default() -> Self {
        Pools::new(CATALOG_TTL)
    }
}

impl Pools {
    pub fn new(catalog_ttl: Duration) -> Self {
        Pools {
            pools: Mutex::new(HashMap::new()),
            catalogs: Mutex::new(HashMap::new()),
            catalog_ttl,
        }
    }

    /// The pool of database `id`, made by `open` on first use. A failed `open` is not kept.
    pub async fn pool<F>(&self, id: &DatabaseId, open: impl FnOnce() -> F) -> Result<Pool, ApiError>
    where
        F: Future<Output = Result<Pool, ApiError>>,
    {
        if let Some(pool) = lock(&self.pools).get(id) {
            return Ok(pool.clone());
        }
        let pool = open().await?;
        lock(&self.pools).insert(id.clone(), pool.clone());
        Ok(pool)
    }

    /// The catalogue of database `id`, read by `load` when there is none younger than the
    /// catalogue's time to live. A failed `load` is not kept.
    pub async fn catalog<F>(
        &self,
        id: &DatabaseId,
        load: impl FnOnce() -> F,
    ) -> Result<Arc<Catalog>, ApiError>
    where
        F: Future<Output = Result<Catalog, ApiError>>,
    {
        if let Some((at, catalog)) = lock(&self.catalogs).get(id) {
            if at.elapsed() < self.catalog_ttl {
                return Ok(catalog.clone());
            }
        }
        let catalog = Arc::new(load().await?);
        lock(&self.catalogs).insert(id.clone(), (Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    /// Closes and drops this instance's pool and catalogue of database `id`.
    pub fn forget(&self, id: &DatabaseId) {
        if let Some(pool) = lock(&self.pools).remove(id) {
            pool.close();
        }
        lock(&self.catalogs).remove(id);
    }
}

/// A panic while a map was held leaves it whole (each change is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A new pool for `record`, from its sealed connection string.
pub async fn open(
    data_key: &DataKey,
    allow_private: bool,
    record: &DatabaseRecord,
) -> Result<Pool, ApiError> {
    let plain = data_key
        .open(&record.sealed, &owner_of(&record.tenant, &record.id))
        .map_err(|e| {
            tracing::error!(db_id = %record.id, cause = %e, "a stored connection string does not open");
            ApiError::internal(e)
        })?;
    let raw = String::from_utf8(plain).map_err(ApiError::internal)?;
    // Checked again at use: a name may resolve elsewhere now than at registration.
    let target = target::resolve(&raw, allow_private)
        .await
        .map_err(unusable)?;
    let manager = Manager::from_config(
        target.config,
        tokio_postgres::NoTls,
        ManagerConfig {
            // A broken connection is found and replaced before it is handed out.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(target::CONNECT_TIMEOUT))
        .create_timeout(Some(target::CONNECT_TIMEOUT))
        .recycle_timeout(Some(target::CONNECT_TIMEOUT))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A pool that never connects (none of these tests asks it for a connection).
    fn idle_pool() -> Pool {
        let manager = Manager::new(tokio_postgres::Config::new(), tokio_postgres::NoTls);
        Pool::builder(manager).max_size(1).build().unwrap()
    }

    fn catalog(schema: &str) -> Catalog {
        Catalog {
            schema: schema.into(),
            ..Catalog::default()
        }
    }

    #[tokio::test]
    async fn a_database_keeps_one_pool_until_forgotten() {
        let pools = Pools::default();
        let (a, b) = (DatabaseId::new_random(), DatabaseId::new_random());
        let opened = AtomicUsize::new(0);
        let open = || async {
            opened.fetch_add(1, Ordering::SeqCst);
            Ok(idle_pool())
        };
        let first = pools.pool(&a, open).await.unwrap();
        pools.pool(&a, open).await.unwrap();
        assert_eq!(
            opened.load(Ordering::SeqCst),
            1,
            "the second use reuses the pool"
        );
        pools.pool(&b, open).await.unwrap();
        assert_eq!(
            opened.load(Ordering::SeqCst),
            2,
            "each database has its own"
        );

        pools.forget(&a);
        assert!(
            first.is_closed(),
            "a forgotten pool's connections are closed"
        );
        let again = pools.pool(&a, open).await.unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 3);
        assert!(!again.is_closed());
        assert!(
            !pools.pool(&b, open).await.unwrap().is_closed(),
            "forgetting one database leaves the others"
        );
    }

    #[tokio::test]
    async fn a_failed_open_is_tried_again_next_time() {
        let pools = Pools::default();
        let id = DatabaseId::new_random();
        let refused = pools
            .pool(&id, || async { Err(ApiError::internal("unreachable")) })
            .await;
        assert!(refused.is_err());
        let opened = AtomicUsize::new(0);
        pools
            .pool(&id, || async {
                opened.fetch_add(1, Ordering::SeqCst);
                Ok(idle_pool())
            })
            .await
            .unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_catalogue_is_read_once_until_its_database_is_forgotten() {
        let pools = Pools::default();
        let id = DatabaseId::new_random();
        let loaded = AtomicUsize::new(0);
        let load = || async {
            let n = loaded.fetch_add(1, Ordering::SeqCst);
            Ok(catalog(&format!("read {n}")))
        };
        assert_eq!(pools.catalog(&id, load).await.unwrap().schema, "read 0");
        assert_eq!(pools.catalog(&id, load).await.unwrap().schema, "read 0");
        pools.forget(&id);
        assert_eq!(pools.catalog(&id, load).await.unwrap().schema, "read 1");
    }

    #[tokio::test]
    async fn a_catalogue_older_than_its_time_to_live_is_read_again() {
        let pools = Pools::new(Duration::ZERO);
        let id = DatabaseId::new_random();
        let loaded = AtomicUsize::new(0);
        let load = || async {
            let n = loaded.fetch_add(1, Ordering::SeqCst);
            Ok(catalog(&format!("read {n}")))
        };
        pools.catalog(&id, load).await.unwrap();
        assert_eq!(pools.catalog(&id, load).await.unwrap().schema, "read 1");
    }
}
