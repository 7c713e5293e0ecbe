//! The tenant database registry and a safe query router. Routes (see `infra/openapi.yaml`):
//!
//! | route | module | who |
//! |---|---|---|
//! | `GET`/`POST /tenants/{slug}/databases` | `registry` | the tenant's owners and admins; operators (the gate's `Manager`) |
//! | `DELETE /tenants/{slug}/databases/{db_id}` | `registry` | the tenant's owners and admins; operators (the gate's `Manager`) |
//! | `GET /query/v1/{db_id}/tables` | `query` | members of the tenant that owns `db_id` (the gate's `database`) |
//! | `POST /query/v1/{db_id}/tables/{table}` | `query` | members of the tenant that owns `db_id` (the gate's `database`) |
//!
//! A registration is tested before it is stored, and its connection string is stored only
//! sealed (AES-256-GCM, bound to the tenant and the database id). Queries are built by `sql`
//! (identifiers from the catalogue, values as parameters) and run in a read-only transaction
//! with a statement timeout, on a small pool per database (`pools`) that lives across warm
//! invocations. `target` decides which hosts may be reached.

mod pools;
mod query;
mod registry;
pub mod sql;
pub mod target;

pub use pools::{Pools, CATALOG_TTL, POOL_SIZE};
pub use query::Catalog;

use lambda_http::{Body, Request, Response};
use shared::auth::access::{signed_in, Caller};
use shared::auth::gate::{self, DatabaseDenied, Granted, Intent, Need};
use shared::auth::jwt::TokenKeys;
use shared::crypto::DataKey;
use shared::request::{matched, path_param, RequestContext};
use shared::store::{DatabaseRecord, Store};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub data_key: DataKey,
    /// `ALLOW_PRIVATE_DATABASE_HOSTS`: loopback and private hosts may be registered (local use).
    pub allow_private: bool,
    /// `QUERY_TIMEOUT_MS`: each statement's timeout.
    pub statement_timeout_ms: u64,
    /// This instance's connection pools and catalogues, per database (public so that handler
    /// tests can see what a route kept or let go of).
    pub pools: Pools,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        keys: TokenKeys,
        data_key: DataKey,
        allow_private: bool,
        statement_timeout_ms: u64,
    ) -> Self {
        App {
            store,
            keys,
            data_key,
            allow_private,
            statement_timeout_ms,
            pools: Pools::default(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    ListDatabases,
    RegisterDatabase,
    DeleteDatabase,
    Tables,
    Query,
}

const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/tenants/{slug}/databases", Route::ListDatabases),
    ("POST", "/tenants/{slug}/databases", Route::RegisterDatabase),
    (
        "DELETE",
        "/tenants/{slug}/databases/{db_id}",
        Route::DeleteDatabase,
    ),
    ("GET", "/query/v1/{db_id}/tables", Route::Tables),
    ("POST", "/query/v1/{db_id}/tables/{table}", Route::Query),
];

/// This function's routes (method, resource template): `infra/checks/tests/routes.rs` holds
/// them equal to the template's events.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.0, r.1))
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    let caller = signed_in(&app.keys, app.store.as_ref(), &req).await?;
    match route {
        Route::ListDatabases => {
            registry::list(app, &req, managed(app, &req, &caller, Intent::Read).await?).await
        }
        Route::RegisterDatabase => {
            let granted = managed(app, &req, &caller, Intent::Write).await?;
            registry::register(app, &ctx, &req, &caller, granted).await
        }
        Route::DeleteDatabase => {
            let granted = managed(app, &req, &caller, Intent::Write).await?;
            registry::remove(app, &ctx, &req, &caller, granted).await
        }
        Route::Tables => {
            let (member, record) = admitted(app, member_database(app, &req, &caller).await)?;
            query::tables(app, member, record).await
        }
        Route::Query => {
            let (member, record) = admitted(app, member_database(app, &req, &caller).await)?;
            query::select(app, &req, member, record).await
        }
    }
}

/// The tenant in the path, for its owners, admins and operators (the gate's `Manager`).
async fn managed(
    app: &App,
    req: &Request,
    caller: &Caller,
    intent: Intent,
) -> Result<Granted, ApiError> {
    let slug = path_param(req, "slug");
    gate::tenant(
        app.store.as_ref(),
        caller,
        slug.as_deref(),
        Need::Manager,
        intent,
    )
    .await
}

/// The database in the path and its tenant, for the tenant's members (the gate's `database`).
async fn member_database(
    app: &App,
    req: &Request,
    caller: &Caller,
) -> Result<(Granted, DatabaseRecord), DatabaseDenied> {
    let id = path_param(req, "db_id");
    gate::database(app.store.as_ref(), caller, id.as_deref(), Intent::Read).await
}

/// The gate's answer for a database route. A registration the gate found gone (removed,
/// perhaps through another instance) is let go of by this instance too: the gate only answers,
/// the route decides what this instance keeps.
fn admitted(
    app: &App,
    answer: Result<(Granted, DatabaseRecord), DatabaseDenied>,
) -> Result<(Granted, DatabaseRecord), ApiError> {
    answer.map_err(|denied| {
        if let DatabaseDenied::Gone(id) = &denied {
            app.pools.forget(id);
        }
        denied.into()
    })
}
