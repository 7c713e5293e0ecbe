//! The query API over a registered database: its catalogue (the tables and columns its user
//! can read, cached by `pools`) and the select built by `sql` from the catalogue, run read-only
//! with a statement timeout. Database errors become answers here, never the server's message.

use crate::sql::{self, Column, Param};
use crate::target::Conn;
use crate::{pools, registry, App};
use lambda_http::Request;
use serde_json::{json, Value};
use shared::access::gate::Granted;
use shared::http::request::{json_body, path_param};
use shared::store::DatabaseRecord;
use shared::ApiError;
use shared::ErrorCode;
use std::sync::Arc;
use tokio_postgres::types::{ToSql, Type};

/// The tables (of the connection's current schema) and their columns that it can read.
#[derive(Debug, Default, serde::Serialize)]
pub struct Catalog {
    pub schema: String,
    pub tables: std::collections::BTreeMap<String, Vec<Column>>,
}

/// Who is asking, as the tenant's database sees it: transaction-local settings `app.user_id`,
/// `app.tenant_id` and `app.role` (`owner`, `admin`, `member`, `operator` or `partner_admin`),
/// for the tenant's own row-level security policies (`current_setting('app.user_id', true)`).
#[derive(Debug, Clone)]
pub(crate) struct Asker {
    pub user_id: String,
    pub tenant_id: String,
    pub role: &'static str,
}

impl Asker {
    pub(crate) fn of(user_id: &str, member: &Granted) -> Asker {
        let access = member.access();
        Asker {
            user_id: user_id.to_string(),
            tenant_id: member.tenant().id.to_string(),
            role: match access.role {
                Some(role) => role.as_str(),
                None if access.operator => "operator",
                None => "partner_admin",
            },
        }
    }

    /// The settings as SQL literals. Ids are the platform's own (letters, digits, `-`, `_`);
    /// anything else is refused rather than quoted.
    fn literals(&self) -> Result<[(&'static str, &str); 3], ApiError> {
        let plain = |v: &str| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !(plain(&self.user_id) && plain(&self.tenant_id)) {
            return Err(ApiError::internal("an id outside the platform's alphabet"));
        }
        Ok([
            ("app.user_id", self.user_id.as_str()),
            ("app.tenant_id", self.tenant_id.as_str()),
            ("app.role", self.role),
        ])
    }
}

/// The tables and columns the caller may query.
pub(crate) async fn tables(app: &App, record: &DatabaseRecord) -> Result<Value, ApiError> {
    let cat = catalog(app, record).await?;
    let tables: Vec<Value> = cat
        .tables
        .iter()
        .map(|(name, cols)| json!({"name": name, "columns": cols}))
        .collect();
    Ok(json!({"engine": "postgres", "schema": cat.schema, "tables": tables}))
}

/// The path's table and the request's query body, as every engine reads them: the table an
/// identifier, no body the default query, anything else the JSON document.
pub(crate) fn request(req: &Request) -> Result<(String, sql::QueryBody), ApiError> {
    let table = path_param(req, "table").unwrap_or_default();
    if !sql::is_identifier(&table) {
        return Err(ApiError::refused(
            ErrorCode::InvalidField,
            "table: not a valid identifier",
        ));
    }
    let body: sql::QueryBody = if req.body().is_empty() {
        sql::QueryBody::default()
    } else {
        json_body(req, 64 * 1024)?
    };
    Ok((table, body))
}

/// One page of rows of the path's table, as the request's filter, sort and paging ask.
pub(crate) async fn select(
    app: &App,
    record: &DatabaseRecord,
    asker: &Asker,
    table: &str,
    body: &sql::QueryBody,
) -> Result<Value, ApiError> {
    let cat = catalog(app, record).await?;
    let Some(columns) = cat.tables.get(table) else {
        return Err(ApiError::refused(
            ErrorCode::UnknownTable,
            format!("table: unknown table {table}"),
        ));
    };
    let statement = sql::build(&cat.schema, table, columns, body)
        .map_err(|r| ApiError::refused(ErrorCode::InvalidQuery, r.0))?;
    let (rows, total) = run(app, record, asker, &statement).await?;
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
    let mut answer = json!({
        "engine": "postgres",
        "row_count": rows.len(),
        "rows": rows,
        "next_offset": more.then_some(statement.offset + statement.limit),
    });
    if let Some(total) = total {
        answer["total"] = json!(total);
    }
    Ok(answer)
}

/// What the server may send for one query's answer (a Lambda answer is at most 6 MB, and the
/// answer repeats each column's name per row): beyond it, 422 `RESULT_TOO_LARGE`.
pub const RESULT_BUDGET: i64 = 4 * 1024 * 1024;
/// What the server may send for one catalogue read.
pub const CATALOG_BUDGET: i64 = 16 * 1024 * 1024;

fn result_too_large() -> ApiError {
    ApiError::refused(
        ErrorCode::ResultTooLarge,
        "the rows are more than one answer may carry (4 MiB from the database): ask for fewer rows or columns",
    )
}

/// Whether `e` came of the connection's read budget: the watch fails the read, and the
/// client then sees its connection closed (the budget says why).
fn too_large(conn: &Conn, e: &tokio_postgres::Error) -> bool {
    conn.budget.overdrawn() || crate::tls::refusal_of(e) == Some(crate::tls::WatchRefusal::TooLarge)
}

/// Runs the statement (and its count, if asked) in one read-only, repeatable-read transaction
/// that carries the statement timeout and the asker's settings, in one round trip: the
/// transaction's opening, the statements and the rollback are sent together (tokio-postgres
/// pipelines requests made at once on one connection), and the statements are sent with their
/// parameter types (`query_typed`), so nothing is prepared first. Once more on a fresh
/// connection if the first one turns out broken.
async fn run(
    app: &App,
    record: &DatabaseRecord,
    asker: &Asker,
    st: &sql::Statement,
) -> Result<(Vec<Value>, Option<i64>), ApiError> {
    let params: Vec<Box<dyn ToSql + Sync + Send>> = st.params.iter().map(Param::boxed).collect();
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
        .iter()
        .zip(&st.params)
        .map(|(p, param)| (p.as_ref() as &(dyn ToSql + Sync), param.pg_type()))
        .collect();
    let settings = asker
        .literals()?
        .iter()
        .map(|(k, v)| format!("set_config('{k}', '{v}', true)"))
        .collect::<Vec<_>>()
        .join(", ");
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         SET LOCAL statement_timeout = {}; SET LOCAL TimeZone = 'UTC'; \
         SET LOCAL extra_float_digits = 1; SELECT {settings}",
        app.statement_timeout_ms
    );
    // The server's timeout ends a slow statement; this one ends a server that stopped answering.
    let limit = std::time::Duration::from_millis(
        app.statement_timeout_ms * if st.count.is_some() { 2 } else { 1 } + 2_000,
    );
    for attempt in 0..2 {
        let conn = client(app, record).await?;
        conn.budget.allow(RESULT_BUDGET);
        let c = &conn.client;
        let count = async {
            match &st.count {
                Some(count) => c
                    .query_typed(&count.sql, &typed[..count.params])
                    .await
                    .map(|rows| rows.first().and_then(|r| r.try_get::<_, i64>(0).ok())),
                None => Ok(None),
            }
        };
        let work = async {
            // In this order on the wire: polled in order, each sends its request when first
            // polled.
            let (opened, rows, total, closed) = tokio::join!(
                biased;
                c.batch_execute(&begin),
                c.query_typed(&st.sql, &typed),
                count,
                c.batch_execute("ROLLBACK"),
            );
            opened?;
            let (rows, total) = (rows?, total?);
            closed?;
            Ok::<_, tokio_postgres::Error>((rows, total))
        };
        let result = match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => {
                // The connection is in an unknown state: it is not handed out again.
                let _ = deadpool::managed::Object::take(conn);
                return Err(unavailable_db("the database stopped answering"));
            }
        };
        match result {
            Ok((rows, total)) => {
                let rows = rows
                    .iter()
                    .map(|r| r.try_get::<_, Value>(0).map_err(ApiError::internal))
                    .collect::<Result<_, _>>()?;
                return Ok((rows, total));
            }
            Err(e) if too_large(&conn, &e) => {
                let _ = deadpool::managed::Object::take(conn);
                return Err(result_too_large());
            }
            Err(e) if e.is_closed() && attempt == 0 => {
                tracing::warn!(db_id = %record.id, "a pooled connection was broken; retrying on a fresh one");
                let _ = deadpool::managed::Object::take(conn);
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
    let conn = client(app, record).await?;
    conn.budget.allow(CATALOG_BUDGET);
    let client = &conn.client;
    let limit = std::time::Duration::from_millis(app.statement_timeout_ms);
    let timed_out = || {
        ApiError::refused(
            ErrorCode::QueryTimeout,
            "reading the database's tables ran longer than the statement timeout",
        )
    };
    // Both statements at once (one round trip), neither prepared first.
    let read = tokio::time::timeout(limit, async {
        tokio::join!(
            client.query_typed("SELECT current_schema()::text", &[]),
            client.query_typed(CATALOG_SQL, &[]),
        )
    })
    .await;
    let (schema_rows, rows) = match read {
        Ok((Ok(schema), Ok(rows))) => (schema, rows),
        // Still running, or broken: this connection is not handed out again.
        Err(_) => {
            let _ = deadpool::managed::Object::take(conn);
            return Err(timed_out());
        }
        Ok((Err(e), _)) | Ok((_, Err(e))) => {
            let too_large = too_large(&conn, &e);
            let _ = deadpool::managed::Object::take(conn);
            return Err(if too_large {
                ApiError::refused(
                    ErrorCode::ResultTooLarge,
                    "the database's catalogue is larger than the router reads (16 MiB)",
                )
            } else {
                db_error(e)
            });
        }
    };
    // NULL when the search path names no schema that exists (`search_path=none`).
    let schema: String = schema_rows
        .first()
        .and_then(|row| row.try_get::<_, Option<String>>(0).ok().flatten())
        .ok_or_else(|| {
            ApiError::refused(
                ErrorCode::DatabaseError,
                "the connection's search path names no schema: set one in the connection string",
            )
        })?;
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

/// A connection from this instance's pool for `record`, the pool made on first use. A pool
/// closed under the request (let go of to make room for another database) is made anew once.
async fn client(
    app: &App,
    record: &DatabaseRecord,
) -> Result<deadpool::managed::Object<pools::Manager>, ApiError> {
    use deadpool::managed::PoolError;
    for _ in 0..2 {
        let pool = app
            .pools
            .pool(&record.id, || async {
                pools::pool(registry::endpoint_of(app, record).await?)
            })
            .await?;
        match pool.get().await {
            Ok(conn) => return Ok(conn),
            Err(PoolError::Closed) => continue,
            // Why a new connection failed (a certificate that changed, a password): 422 with it.
            Err(PoolError::Backend(why)) => return Err(registry::unusable(why)),
            Err(other) => return Err(unavailable_db(other)),
        }
    }
    Err(unavailable_db(
        "the pool was closed twice under the request",
    ))
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
