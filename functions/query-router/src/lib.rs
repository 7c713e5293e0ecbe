//! The tenant database registry and a safe query router. Routes:
//!
//! | route | who |
//! |---|---|
//! | `GET`/`POST /tenants/{slug}/databases`, `DELETE /tenants/{slug}/databases/{db_id}` | the tenant's owners and admins; operators |
//! | `GET /query/v1/{db_id}/tables` | members of the tenant that owns `db_id` |
//! | `POST /query/v1/{db_id}/tables/{table}` | members of the tenant that owns `db_id` |
//!
//! A registration is tested before it is stored, and its connection string is stored only
//! sealed (AES-256-GCM, bound to the tenant and the database id). Queries are built by `sql.rs`
//! (identifiers from the catalogue, values as parameters) and run in a read-only transaction
//! with a statement timeout, on a small pool per database that lives across warm invocations.

mod pools;
pub mod sql;
pub mod target;

pub use pools::{Pools, CATALOG_TTL, POOL_SIZE};

use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::auth::access::{signed_in, Caller};
use shared::auth::gate::{self, database_not_found, DatabaseDenied, Granted, Intent, Need};
use shared::auth::jwt::TokenKeys;
use shared::crypto::DataKey;
use shared::domain::DatabaseId;
use shared::fields::{self, FieldError};
use shared::request::{json_body, matched, path_param, query_param, RequestContext};
use shared::store::changes::{AuditEntry, AuditTarget, Change};
use shared::store::{DatabaseRecord, Store};
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use sql::{Column, Param};
use std::sync::Arc;
use target::Unusable;
use tokio_postgres::types::ToSql;

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub data_key: DataKey,
    /// `ALLOW_PRIVATE_DATABASE_HOSTS`: loopback and private hosts may be registered (local use).
    pub allow_private: bool,
    /// `QUERY_TIMEOUT_MS`: each statement's timeout.
    pub statement_timeout_ms: u64,
    /// This instance's connection pools and catalogues, per database.
    pools: Pools,
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

/// The tables (of the connection's current schema) and their columns that it can read.
#[derive(Debug, Default, serde::Serialize)]
pub struct Catalog {
    pub schema: String,
    pub tables: std::collections::BTreeMap<String, Vec<Column>>,
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
            list(app, &req, managed(app, &req, &caller, Intent::Read).await?).await
        }
        Route::RegisterDatabase => {
            let granted = managed(app, &req, &caller, Intent::Write).await?;
            register(app, &ctx, &req, &caller, granted).await
        }
        Route::DeleteDatabase => {
            let granted = managed(app, &req, &caller, Intent::Write).await?;
            remove(app, &ctx, &req, &caller, granted).await
        }
        Route::Tables => {
            let (_, record) = admitted(app, member_database(app, &req, &caller).await)?;
            tables(app, record).await
        }
        Route::Query => {
            let (_, record) = admitted(app, member_database(app, &req, &caller).await)?;
            query(app, &req, record).await
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

fn view(d: &DatabaseRecord) -> Value {
    json!({"id": d.id, "name": d.name, "engine": d.engine, "host": d.host, "created_at": d.created_at})
}

async fn list(app: &App, req: &Request, granted: Granted) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let limit = shared::page::limit(query_param(req, "limit").as_deref())
        .map_err(|e| FieldError::new("limit", e))?;
    let cursor = query_param(req, "cursor");
    let page = app
        .store
        .tenant_databases(&tenant.id, limit, cursor.as_deref())
        .await?;
    Ok(ApiResponse::ok(json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    name: String,
    engine: String,
    connection_string: String,
}

/// What a sealed connection string is bound to.
pub(crate) fn owner_of(tenant: &shared::domain::TenantId, id: &DatabaseId) -> Vec<u8> {
    format!("{tenant}|{id}").into_bytes()
}

pub(crate) fn unusable(why: Unusable) -> ApiError {
    match why {
        Unusable::Invalid | Unusable::Host => {
            ApiError::refused(ErrorCode::InvalidField, why.to_string())
        }
        Unusable::Private => ApiError::refused(ErrorCode::DatabaseHostNotAllowed, why.to_string()),
        _ => ApiError::refused(ErrorCode::DatabaseUnreachable, why.to_string()),
    }
}

async fn register(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
    caller: &Caller,
    granted: Granted,
) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let body: RegisterBody = json_body(req, 8 * 1024)?;
    let name = fields::name("name", &body.name)?;
    if body.engine != "postgres" {
        return Err(FieldError::new("engine", "must be postgres").into());
    }
    let target = target::resolve(&body.connection_string, app.allow_private)
        .await
        .map_err(unusable)?;
    target::probe(&target.config).await.map_err(|why| {
        tracing::info!(tenant = %tenant.slug, reason = %why, "database registration refused");
        unusable(why)
    })?;
    let id = DatabaseId::new_random();
    let sealed = app
        .data_key
        .seal(
            body.connection_string.as_bytes(),
            &owner_of(&tenant.id, &id),
        )
        .map_err(ApiError::internal)?;
    let record = DatabaseRecord {
        id: id.clone(),
        tenant: tenant.id.clone(),
        name,
        engine: "postgres".into(),
        host: target.display,
        sealed,
        created_at: shared::time::now_unix(),
    };
    let audit = AuditEntry::new(
        AuditTarget::Tenant(tenant.id.clone()),
        caller.user.id.clone(),
        "database.registered",
        json!({"after": {"db_id": id, "name": record.name, "host": record.host}}),
        shared::time::now_ms(),
        &ctx.request_id,
    )
    .with_partner(tenant.partner.clone());
    app.store
        .commit(vec![
            Change::PutDatabase(record.clone()),
            Change::Audit(audit),
        ])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(tenant = %tenant.slug, db_id = %id, "database registered");
    Ok(ApiResponse::created(view(&record)))
}

async fn remove(
    app: &App,
    ctx: &RequestContext,
    req: &Request,
    caller: &Caller,
    granted: Granted,
) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let id = path_param(req, "db_id")
        .as_deref()
        .and_then(DatabaseId::parse)
        .ok_or_else(database_not_found)?;
    let record = app
        .store
        .database(&id)
        .await?
        .filter(|d| d.tenant == tenant.id)
        .ok_or_else(database_not_found)?;
    let audit = AuditEntry::new(
        AuditTarget::Tenant(tenant.id.clone()),
        caller.user.id.clone(),
        "database.removed",
        json!({"before": {"db_id": id, "name": record.name, "host": record.host}}),
        shared::time::now_ms(),
        &ctx.request_id,
    )
    .with_partner(tenant.partner.clone());
    app.store
        .commit(vec![
            Change::DeleteDatabase {
                id: id.clone(),
                tenant: tenant.id.clone(),
            },
            Change::Audit(audit),
        ])
        .await
        .map_err(|e| e.answer(|_| database_not_found()))?;
    app.pools.forget(&id);
    tracing::info!(tenant = %tenant.slug, db_id = %id, "database removed; its pooled connections closed");
    Ok(ApiResponse::ok(json!({"id": id, "removed": true})))
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

fn unavailable_db(cause: impl std::fmt::Display) -> ApiError {
    // The cause can name the host: it goes to the log only.
    tracing::warn!(cause = %cause, "tenant database unavailable");
    ApiError::unavailable("tenant database", "the tenant database is unavailable")
}

async fn client(app: &App, record: &DatabaseRecord) -> Result<deadpool_postgres::Object, ApiError> {
    app.pools
        .pool(&record.id, || {
            pools::open(&app.data_key, app.allow_private, record)
        })
        .await?
        .get()
        .await
        .map_err(unavailable_db)
}

const CATALOG_SQL: &str = "SELECT c.table_name::text, c.column_name::text, c.udt_name::text \
     FROM information_schema.columns c \
     WHERE c.table_schema = current_schema() \
       AND has_table_privilege(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name), 'SELECT') \
     ORDER BY c.table_name, c.ordinal_position";

async fn catalog(app: &App, record: &DatabaseRecord) -> Result<Arc<Catalog>, ApiError> {
    app.pools
        .catalog(&record.id, || read_catalog(app, record))
        .await
}

/// The tables and columns the database's user can read now.
async fn read_catalog(app: &App, record: &DatabaseRecord) -> Result<Catalog, ApiError> {
    let client = client(app, record).await?;
    let schema: String = client
        .query_one("SELECT current_schema()::text", &[])
        .await
        .map_err(db_error)?
        .get(0);
    let rows = client.query(CATALOG_SQL, &[]).await.map_err(db_error)?;
    let mut cat = Catalog {
        schema,
        ..Catalog::default()
    };
    for row in rows {
        let table: String = row.get(0);
        cat.tables.entry(table).or_default().push(Column {
            name: row.get(1),
            udt: row.get(2),
        });
    }
    Ok(cat)
}

/// A database error as an answer: the client's mistakes are 4xx, the database's trouble 503;
/// never the server's own message (it can carry names and values).
fn db_error(e: tokio_postgres::Error) -> ApiError {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else {
        return unavailable_db(e);
    };
    let code = db.code().clone();
    tracing::info!(
        sqlstate = code.code(),
        "tenant database refused a statement"
    );
    let refused = ApiError::refused;
    if code == SqlState::QUERY_CANCELED {
        refused(
            ErrorCode::QueryTimeout,
            "the query ran longer than the statement timeout",
        )
    } else if code == SqlState::READ_ONLY_SQL_TRANSACTION {
        refused(ErrorCode::ReadOnly, "writes are not allowed")
    } else if code == SqlState::INSUFFICIENT_PRIVILEGE {
        refused(
            ErrorCode::PermissionDenied,
            "the database user may not read this",
        )
    } else if code.code().starts_with("22") {
        ApiError::refused(
            ErrorCode::InvalidValue,
            "a filter value does not fit its column's type",
        )
    } else if code.code().starts_with("42") {
        ApiError::refused(ErrorCode::InvalidQuery, "the database refused the query")
    } else if code.code().starts_with("08")
        || code.code().starts_with("57")
        || code.code().starts_with("53")
    {
        unavailable_db(e)
    } else {
        refused(ErrorCode::DatabaseError, "the database refused the query")
    }
}

async fn tables(app: &App, record: DatabaseRecord) -> Result<ApiResponse, ApiError> {
    let cat = catalog(app, &record).await?;
    let tables: Vec<Value> = cat
        .tables
        .iter()
        .map(|(name, cols)| json!({"name": name, "columns": cols}))
        .collect();
    Ok(ApiResponse::ok(
        json!({"engine": "postgres", "schema": cat.schema, "tables": tables}),
    ))
}

async fn query(app: &App, req: &Request, record: DatabaseRecord) -> Result<ApiResponse, ApiError> {
    let table = path_param(req, "table").unwrap_or_default();
    if !sql::is_identifier(&table) {
        return Err(ApiError::refused(
            ErrorCode::InvalidField,
            "table: not a valid identifier",
        ));
    }
    // No body at all is the default query; anything else must be the JSON document.
    let body: sql::QueryBody = if req.body().is_empty() {
        sql::QueryBody::default()
    } else {
        json_body(req, 64 * 1024)?
    };
    let cat = catalog(app, &record).await?;
    let Some(columns) = cat.tables.get(&table) else {
        return Err(ApiError::refused(
            ErrorCode::UnknownTable,
            format!("table: unknown table {table}"),
        ));
    };
    let statement = sql::build(&cat.schema, &table, columns, &body)
        .map_err(|r| ApiError::refused(ErrorCode::InvalidQuery, r.0))?;
    let rows = run(app, &record, &statement).await?;
    let more = rows.len() as i64 > statement.limit;
    let rows: Vec<Value> = rows
        .into_iter()
        .take(statement.limit as usize)
        .map(|values| {
            let Value::Array(values) = values else {
                return Value::Null;
            };
            Value::Object(statement.columns.iter().cloned().zip(values).collect())
        })
        .collect();
    Ok(ApiResponse::ok(json!({
        "engine": "postgres",
        "row_count": rows.len(),
        "rows": rows,
        "next_offset": more.then_some(statement.offset + statement.limit),
    })))
}

/// Runs the statement in a read-only transaction with a statement timeout; once more on a
/// fresh connection if the first one turns out broken.
async fn run(
    app: &App,
    record: &DatabaseRecord,
    st: &sql::Statement,
) -> Result<Vec<Value>, ApiError> {
    let params: Vec<Box<dyn ToSql + Sync + Send>> = st
        .params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::TextArray(v) => Box::new(v.clone()),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    for attempt in 0..2 {
        let mut client = client(app, record).await?;
        let result = async {
            let tx = client.build_transaction().read_only(true).start().await?;
            tx.batch_execute(&format!(
                "SET LOCAL statement_timeout = {}; SET LOCAL TimeZone = 'UTC'",
                app.statement_timeout_ms
            ))
            .await?;
            let rows = tx.query(st.sql.as_str(), &refs).await?;
            tx.rollback().await?;
            Ok::<_, tokio_postgres::Error>(rows)
        }
        .await;
        match result {
            Ok(rows) => {
                return rows
                    .iter()
                    .map(|r| r.try_get::<_, Value>(0).map_err(ApiError::internal))
                    .collect()
            }
            Err(e) if e.is_closed() && attempt == 0 => {
                tracing::warn!(db_id = %record.id, "a pooled connection was broken; retrying on a fresh one");
                continue;
            }
            Err(e) => return Err(db_error(e)),
        }
    }
    Err(unavailable_db("no working connection"))
}
