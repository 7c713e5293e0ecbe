//! This instance's hold on each registered database: a small connection pool and the catalogue
//! last read through it, kept across warm invocations, bounded: at most `MAX_DATABASES` of them
//! (the least recently used is closed to make room) and none idle longer than `IDLE`. A route
//! that sees a registration removed (here, or gone through another instance) lets it go too.

use crate::query::Catalog;
use crate::target::{Conn, Endpoint, Unusable};
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use lru::LruCache;
use shared::domain::DatabaseId;
use shared::ApiError;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Connections per database and function instance: one tenant cannot exhaust a database.
pub const POOL_SIZE: usize = 4;
/// How long a catalogue read is trusted.
pub const CATALOG_TTL: Duration = Duration::from_secs(30);
/// Databases an instance holds pools for: at most `POOL_SIZE` times as many sockets.
pub const MAX_DATABASES: usize = 32;
/// A pool unused this long is closed.
pub const IDLE: Duration = Duration::from_secs(300);

/// Makes and checks the connections of one database's pool.
pub struct Manager(pub Endpoint);

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = Unusable;

    async fn create(&self) -> Result<Conn, Unusable> {
        self.0.connect().await
    }

    /// A connection the server closed is not handed out again. (A broken one that still looks
    /// open fails its statement, which the query retries once on a fresh connection.)
    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<Unusable> {
        if conn.client.is_closed() {
            Err(RecycleError::message("closed"))
        } else {
            Ok(())
        }
    }
}

pub type Pool = managed::Pool<Manager>;

/// A new pool for a database reached through `endpoint`.
pub fn pool(endpoint: Endpoint) -> Result<Pool, ApiError> {
    let timeout = Some(crate::target::CONNECT_TIMEOUT);
    Pool::builder(Manager(endpoint))
        .max_size(POOL_SIZE)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(ApiError::internal)
}

/// A pool with nowhere to connect: what tests hold for a database without one.
pub fn unconnected() -> Pool {
    let target = crate::target::Target {
        config: tokio_postgres::Config::new(),
        host: "db.invalid".into(),
        addrs: vec![],
        display: String::new(),
    };
    let endpoint = Endpoint::new(target, crate::tls::Mode::Disable, None)
        .expect("plain text needs no TLS configuration");
    Pool::builder(Manager(endpoint))
        .max_size(1)
        .build()
        .expect("a pool without timeouts needs no runtime")
}

/// What an instance holds for one database.
struct Held {
    pool: Option<Pool>,
    catalog: Option<(Instant, Arc<Catalog>)>,
    used: Instant,
}

/// The pools and catalogues of this instance, by database. Nothing is held across an `.await`:
/// two requests that miss at once both open (or load), and the later one's result is kept, as a
/// lock held over a connection attempt would stall every other database's requests.
pub struct Pools {
    held: Mutex<LruCache<DatabaseId, Held>>,
    catalog_ttl: Duration,
    idle: Duration,
}

impl Default for Pools {
    fn default() -> Self {
        Pools::new(MAX_DATABASES, CATALOG_TTL, IDLE)
    }
}

impl Pools {
    pub fn new(max_databases: usize, catalog_ttl: Duration, idle: Duration) -> Self {
        Pools {
            held: Mutex::new(LruCache::new(
                NonZeroUsize::new(max_databases).unwrap_or(NonZeroUsize::MIN),
            )),
            catalog_ttl,
            idle,
        }
    }

    /// The held entry of `id` (made if missing), marked used now; the idle ones and, when full,
    /// the least recently used one are let go of (their pools closed).
    fn touch<T>(&self, id: &DatabaseId, f: impl FnOnce(&mut Held) -> T) -> T {
        let mut held = lock(&self.held);
        let now = Instant::now();
        let idle: Vec<DatabaseId> = held
            .iter()
            .filter(|(k, h)| *k != id && now.duration_since(h.used) >= self.idle)
            .map(|(k, _)| k.clone())
            .collect();
        for k in idle {
            if let Some(h) = held.pop(&k) {
                close(h, &k, "idle");
            }
        }
        if held.get_mut(id).is_none() {
            let fresh = Held {
                pool: None,
                catalog: None,
                used: now,
            };
            if let Some((k, h)) = held.push(id.clone(), fresh) {
                if &k != id {
                    close(h, &k, "least recently used");
                }
            }
        }
        let entry = held.get_mut(id).expect("just made");
        entry.used = now;
        f(entry)
    }

    /// The pool of database `id`, made by `open` on first use. A failed `open` is not kept.
    pub async fn pool<F>(&self, id: &DatabaseId, open: impl FnOnce() -> F) -> Result<Pool, ApiError>
    where
        F: Future<Output = Result<Pool, ApiError>>,
    {
        if let Some(pool) = self.touch(id, |h| h.pool.clone()) {
            return Ok(pool);
        }
        let pool = open().await?;
        let replaced = self.touch(id, |h| h.pool.replace(pool.clone()));
        if let Some(old) = replaced {
            old.close();
        }
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
        let ttl = self.catalog_ttl;
        let fresh = self.touch(id, |h| {
            h.catalog
                .as_ref()
                .filter(|(at, _)| at.elapsed() < ttl)
                .map(|(_, c)| c.clone())
        });
        if let Some(catalog) = fresh {
            return Ok(catalog);
        }
        let catalog = Arc::new(load().await?);
        self.touch(id, |h| h.catalog = Some((Instant::now(), catalog.clone())));
        Ok(catalog)
    }

    /// Closes and drops this instance's pool and catalogue of database `id`.
    pub fn forget(&self, id: &DatabaseId) {
        if let Some(h) = lock(&self.held).pop(id) {
            close(h, id, "forgotten");
        }
    }

    /// How many databases this instance holds now.
    pub fn held(&self) -> usize {
        lock(&self.held).len()
    }
}

fn close(h: Held, id: &DatabaseId, why: &str) {
    if let Some(pool) = h.pool {
        pool.close();
        tracing::info!(db_id = %id, why, "a database's pool was closed");
    }
}

/// A panic while the map was held leaves it whole (each change is one insert or remove).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn idle_pool() -> Pool {
        unconnected()
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
        let pools = Pools::new(MAX_DATABASES, Duration::ZERO, IDLE);
        let id = DatabaseId::new_random();
        let loaded = AtomicUsize::new(0);
        let load = || async {
            let n = loaded.fetch_add(1, Ordering::SeqCst);
            Ok(catalog(&format!("read {n}")))
        };
        pools.catalog(&id, load).await.unwrap();
        assert_eq!(pools.catalog(&id, load).await.unwrap().schema, "read 1");
    }

    #[tokio::test]
    async fn past_the_bound_the_least_recently_used_pool_is_closed() {
        let pools = Pools::new(2, CATALOG_TTL, IDLE);
        let ids: Vec<DatabaseId> = (0..3).map(|_| DatabaseId::new_random()).collect();
        let open = || async { Ok(idle_pool()) };
        let first = pools.pool(&ids[0], open).await.unwrap();
        let second = pools.pool(&ids[1], open).await.unwrap();
        // The first is used again: the second is now the least recently used.
        pools.pool(&ids[0], open).await.unwrap();
        let third = pools.pool(&ids[2], open).await.unwrap();
        assert_eq!(pools.held(), 2);
        assert!(second.is_closed(), "the least recently used pool is closed");
        assert!(!first.is_closed() && !third.is_closed());
        // Its database opens a new pool when it is used again.
        let again = pools.pool(&ids[1], open).await.unwrap();
        assert!(!again.is_closed());
        assert!(
            first.is_closed(),
            "which pushed out the next least recently used"
        );
    }

    #[tokio::test]
    async fn a_pool_idle_past_the_timeout_is_closed_at_the_next_use_of_any() {
        let pools = Pools::new(8, CATALOG_TTL, Duration::from_millis(50));
        let (a, b) = (DatabaseId::new_random(), DatabaseId::new_random());
        let open = || async { Ok(idle_pool()) };
        let old = pools.pool(&a, open).await.unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        pools.pool(&b, open).await.unwrap();
        assert!(old.is_closed());
        assert_eq!(pools.held(), 1);
    }
}
