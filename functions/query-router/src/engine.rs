//! The database engines the router speaks, behind one trait. PostgreSQL is the only one: no
//! other server can be installed and tested on the machines this is built on, and an engine
//! nothing tests would be a stub (the README says what a second one needs). The routes, the
//! gate, the sealing, the limits and the gate's kept decisions are engine-free; an engine owns
//! how a registration is checked and tested, how it reads its catalogue, how it builds and runs
//! a query that binds every value, and what it holds per database on an instance.

use crate::query::{self, Asker};
use crate::sql::QueryBody;
use crate::target::{self, Unusable};
use crate::App;
use async_trait::async_trait;
use serde_json::Value;
use shared::domain::DatabaseId;
use shared::store::DatabaseRecord;
use shared::ApiError;

/// What a tested registration may show and must keep (its connection string and CA are sealed
/// by the registry, whatever the engine).
pub struct Tested {
    /// `host:port/dbname`, without credentials.
    pub display: String,
    /// How its connections are secured (`tls::Mode`'s names).
    pub tls: &'static str,
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// The `engine` a registration names.
    fn name(&self) -> &'static str;

    /// Checks a connection string (and CA certificates) against the platform's rules and
    /// connects once: why it cannot work, or what may be shown of it.
    async fn test(
        &self,
        app: &App,
        connection_string: &str,
        ca: Option<&str>,
    ) -> Result<Tested, Unusable>;

    /// The tables and columns the database's user may read (`GET /query/v1/{db}/tables`).
    async fn tables(&self, app: &App, record: &DatabaseRecord) -> Result<Value, ApiError>;

    /// One page of rows of `table`, as `body` asks, run as `asker`.
    async fn select(
        &self,
        app: &App,
        record: &DatabaseRecord,
        asker: &Asker,
        table: &str,
        body: &QueryBody,
    ) -> Result<Value, ApiError>;

    /// Lets go of what this instance holds for database `id` (its registration is gone).
    fn forget(&self, app: &App, id: &DatabaseId);
}

/// PostgreSQL through `tokio-postgres` (TLS by rustls): `target`, `tls`, `pools`, `query`, `sql`.
pub struct Postgres;

#[async_trait]
impl Engine for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn test(
        &self,
        app: &App,
        connection_string: &str,
        ca: Option<&str>,
    ) -> Result<Tested, Unusable> {
        let endpoint = target::endpoint(connection_string, None, ca, app.rules).await?;
        target::probe(&endpoint).await?;
        Ok(Tested {
            display: endpoint.target().display.clone(),
            tls: endpoint.mode().as_str(),
        })
    }

    async fn tables(&self, app: &App, record: &DatabaseRecord) -> Result<Value, ApiError> {
        query::tables(app, record).await
    }

    async fn select(
        &self,
        app: &App,
        record: &DatabaseRecord,
        asker: &Asker,
        table: &str,
        body: &QueryBody,
    ) -> Result<Value, ApiError> {
        query::select(app, record, asker, table, body).await
    }

    fn forget(&self, app: &App, id: &DatabaseId) {
        app.pools.forget(id);
    }
}

/// Every engine this build speaks.
pub const ENGINES: &[&dyn Engine] = &[&Postgres];

/// The engine of `name`, if this build speaks it.
pub fn named(name: &str) -> Option<&'static dyn Engine> {
    ENGINES.iter().copied().find(|e| e.name() == name)
}
