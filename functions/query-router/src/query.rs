//! The query API over a registered database: its catalogue (the tables and columns its user
//! can read, cached by `pools`) and the select built by `sql` from the catalogue, run read-only
//! with a statement timeout. Database errors become answers here, never the server's message.

use crate::pools;
use crate::sql::{self, Column, Param};
use crate::App;
use lambda_http::Request;
use serde_json::{json, Value};
use shared::access::gate::Granted;
use shared::http::request::{json_body, path_param};
use shared::store::DatabaseRecord;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;
use tokio_postgres::types::ToSql;

/// The tables (of the connection's current schema) and their columns that it can read.
#[derive(Debug, Default, serde::Serialize)]
pub struct Catalog {
    pub schema: String,
    pub tables: std::collections::BTreeMap<String, Vec<Column>>,
}

/// The tables and columns the caller may query.
pub(crate) async fn tables(
    app: &App,
    _member: Granted,
    record: DatabaseRecord,
) -> Result<ApiResponse, ApiError> {
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

/// One page of rows of the path's table, as the request's filter, sort and paging ask.
pub(crate) async fn select(
    app: &App,
    req: &Request,
    _member: Granted,
    record: DatabaseRecord,
) -> Result<ApiResponse, ApiError> {
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

/// The catalogue of `record`, from this instance's cache while it is fresh.
async fn catalog(app: &App, record: &DatabaseRecord) -> Result<Arc<Catalog>, ApiError> {
    app.pools
        .catalog(&record.id, || read_catalog(app, record))
        .await
}

/// The tables and columns the database's user can read now.
/// Bounded by the statement timeout like any query: a slow or stuck catalogue is 422
/// `QUERY_TIMEOUT`, never a function timeout.
async fn read_catalog(app: &App, record: &DatabaseRecord) -> Result<Catalog, ApiError> {
    let client = client(app, record).await?;
    let limit = std::time::Duration::from_millis(app.statement_timeout_ms);
    let timed_out = || {
        ApiError::refused(
            ErrorCode::QueryTimeout,
            "reading the database's tables ran longer than the statement timeout",
        )
    };
    let row = tokio::time::timeout(
        limit,
        client.query_one("SELECT current_schema()::text", &[]),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(db_error)?;
    // NULL when the search path names no schema that exists (`search_path=none`).
    let schema: String = row
        .try_get::<_, Option<String>>(0)
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::refused(
                ErrorCode::DatabaseError,
                "the connection's search path names no schema: set one in the connection string",
            )
        })?;
    let rows = tokio::time::timeout(limit, client.query(CATALOG_SQL, &[]))
        .await
        .map_err(|_| timed_out())?
        .map_err(db_error)?;
    let mut cat = Catalog {
        schema,
        ..Catalog::default()
    };
    for row in rows {
        // Catalogue columns are never NULL; a row that says otherwise is skipped, not a panic.
        let (Ok(table), Ok(name), Ok(udt)) = (
            row.try_get::<_, String>(0),
            row.try_get::<_, String>(1),
            row.try_get::<_, String>(2),
        ) else {
            continue;
        };
        cat.tables
            .entry(table)
            .or_default()
            .push(Column { name, udt });
    }
    Ok(cat)
}

const CATALOG_SQL: &str = "SELECT c.table_name::text, c.column_name::text, c.udt_name::text \
     FROM information_schema.columns c \
     WHERE c.table_schema = current_schema() \
       AND has_table_privilege(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name), 'SELECT') \
     ORDER BY c.table_name, c.ordinal_position";

/// A connection from this instance's pool for `record`, the pool made on first use.
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

/// The database cannot be reached or is overloaded: 503, the cause to the log only.
fn unavailable_db(cause: impl std::fmt::Display) -> ApiError {
    // The cause can name the host.
    tracing::warn!(cause = %cause, "tenant database unavailable");
    ApiError::unavailable("tenant database", "the tenant database is unavailable")
}
