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

mod decisions;
mod engine;
mod pools;
mod query;
mod registry;
pub mod sql;
pub mod target;
pub mod tls;

pub use decisions::{Decisions, DECISION_TTL};
pub use pools::{unconnected, Pool, Pools, CATALOG_TTL, IDLE, MAX_DATABASES, POOL_SIZE};
pub use query::Catalog;
pub use target::Rules;

use lambda_http::{Body, Request, Response};
use shared::access::crypto::DataKey;
use shared::access::gate::{DatabaseDenied, Granted, Intent, Need};
use shared::access::jwt::TokenKeys;
use shared::domain::{Audience, DatabaseId};
use shared::http::request::{matched, RequestContext};
use shared::store::{DatabaseRecord, Store};
use shared::{ApiError, ApiResponse};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub data_key: DataKey,
    /// Which hosts and which TLS modes may be used (`ALLOW_PRIVATE_DATABASE_HOSTS`,
    /// `ALLOW_PLAINTEXT_DATABASES`).
    pub rules: Rules,
    /// `QUERY_TIMEOUT_MS`: each statement's timeout.
    pub statement_timeout_ms: u64,
    /// The built-in plans' limits until they are stored (a tenant's plan says how many
    /// databases it may register).
    pub seeds: shared::domain::plan::BuiltinPlans,
    /// This instance's connection pools and catalogues, per database (public so that handler
    /// tests can bound it and see what a route kept or let go of).
    pub pools: Pools,
    /// The gate's recent yes for the query routes (`decisions`: the revocation delay).
    pub decisions: Decisions,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        keys: TokenKeys,
        data_key: DataKey,
        cfg: &shared::runtime::config::QueryConfig,
        seeds: shared::domain::plan::BuiltinPlans,
    ) -> Self {
        App {
            store,
            keys,
            data_key,
            rules: Rules {
                allow_private: cfg.allow_private_hosts,
                allow_plaintext: cfg.allow_plaintext,
                statement_timeout_ms: cfg.statement_timeout_ms,
            },
            statement_timeout_ms: cfg.statement_timeout_ms,
            seeds,
            pools: Pools::default(),
            decisions: Decisions::default(),
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

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

/// A request in hand of this function.
pub(crate) type Call<'a> = shared::http::call::Call<'a, App>;

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    if let Route::Tables | Route::Query = route {
        let admitted = admit(app, &ctx, &req).await?;
        let (record, asker) = (&admitted.record, &admitted.asker);
        let engine = engine::named(&record.engine)
            .ok_or_else(|| ApiError::internal("a registration of an engine this build lacks"))?;
        let answer = match route {
            Route::Tables => engine.tables(app, record).await?,
            _ => {
                let (table, body) = query::request(&req)?;
                engine.select(app, record, asker, &table, &body).await?
            }
        };
        return Ok(ApiResponse::ok(answer));
    }
    let call = Call::signed_in(app, &app.keys, app.store.as_ref(), &ctx, &req).await?;
    // The registry is for the tenant's owners and admins, and operators (the gate's
    // `Manager`); queries for its members (the gate's `database`).
    match route {
        Route::ListDatabases => {
            registry::list(&call, call.tenant(Need::Manager, Intent::Read).await?).await
        }
        Route::RegisterDatabase => {
            registry::register(&call, call.tenant(Need::Manager, Intent::Write).await?).await
        }
        Route::DeleteDatabase => {
            registry::remove(&call, call.tenant(Need::Manager, Intent::Write).await?).await
        }
        Route::Tables | Route::Query => unreachable!("answered above"),
    }
}

/// The caller and database of a query route, admitted by the gate (its members), or by this
/// instance's recent yes for the same token holder (`decisions`): then without any read.
async fn admit(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
) -> Result<Arc<decisions::Admitted>, ApiError> {
    let principal = shared::access::caller::authenticate(
        &app.keys,
        req,
        &[Audience::Portal, Audience::Operator],
    )
    .await?;
    let db = shared::http::request::path_param(req, "db_id")
        .as_deref()
        .and_then(DatabaseId::parse);
    // An operator acting as a user is checked and audited on every request: never kept.
    let keepable = principal.impersonation.is_none();
    if let Some(kept) = db
        .as_ref()
        .filter(|_| keepable)
        .and_then(|db| app.decisions.get(&principal, db))
    {
        return Ok(kept);
    }
    let call = Call::signed_in(app, &app.keys, app.store.as_ref(), ctx, req).await?;
    let (member, record) = admitted(app, call.database(Intent::Read).await)?;
    let admitted = Arc::new(decisions::Admitted {
        asker: query::Asker::of(call.caller.user.id.as_str(), &member),
        record,
    });
    if keepable {
        app.decisions.keep(&principal, admitted.clone());
    }
    Ok(admitted)
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
            for engine in engine::ENGINES {
                engine.forget(app, id);
            }
        }
        denied.into()
    })
}
