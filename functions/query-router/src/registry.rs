//! The tenant's database registrations: list, register (tested, then stored with its
//! connection string sealed to the tenant and the id) and remove. What a registration is
//! sealed to is decided here; `pools` opens it with the same binding.

use crate::target::{self, Unusable};
use crate::Call;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::{database_not_found, Granted};
use shared::domain::fields::{self, FieldError};
use shared::domain::{DatabaseId, TenantId};
use shared::http::request::{json_body, path_param};
use shared::store::changes::Change;
use shared::store::DatabaseRecord;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};

/// A registration as answered: never its connection string.
fn view(d: &DatabaseRecord) -> Value {
    json!({"id": d.id, "name": d.name, "engine": d.engine, "host": d.host, "created_at": d.created_at})
}

/// One page of the tenant's registrations.
pub(crate) async fn list(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let (limit, cursor) = call.page()?;
    let page = call
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
pub(crate) fn owner_of(tenant: &TenantId, id: &DatabaseId) -> Vec<u8> {
    format!("{tenant}|{id}").into_bytes()
}

/// Why a connection string cannot be used, as the answer (safe to send: no host, no password).
pub(crate) fn unusable(why: Unusable) -> ApiError {
    match why {
        Unusable::Invalid | Unusable::Host => {
            ApiError::refused(ErrorCode::InvalidField, why.to_string())
        }
        Unusable::Private => ApiError::refused(ErrorCode::DatabaseHostNotAllowed, why.to_string()),
        _ => ApiError::refused(ErrorCode::DatabaseUnreachable, why.to_string()),
    }
}

/// Tests the connection string (host allowed, database answering), then stores it sealed.
pub(crate) async fn register(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let app = call.app;
    let tenant = granted.into_tenant();
    let body: RegisterBody = json_body(call.req, 8 * 1024)?;
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
        created_at: shared::runtime::time::now_unix(),
    };
    let audit = call.audit(
        &tenant,
        "database.registered",
        json!({"after": {"db_id": id, "name": record.name, "host": record.host}}),
    );
    call.store
        .commit(vec![Change::PutDatabase(record.clone()), audit])
        .await
        .map_err(|e| e.answer(|_| ApiError::concurrent_update()))?;
    tracing::info!(tenant = %tenant.slug, db_id = %id, "database registered");
    Ok(ApiResponse::created(view(&record)))
}

/// Removes the tenant's registration in the path; another tenant's id is 404 like a missing one.
pub(crate) async fn remove(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let app = call.app;
    let tenant = granted.into_tenant();
    let id = path_param(call.req, "db_id")
        .as_deref()
        .and_then(DatabaseId::parse)
        .ok_or_else(database_not_found)?;
    let record = app
        .store
        .database(&id)
        .await?
        .filter(|d| d.tenant == tenant.id)
        .ok_or_else(database_not_found)?;
    let audit = call.audit(
        &tenant,
        "database.removed",
        json!({"before": {"db_id": id, "name": record.name, "host": record.host}}),
    );
    app.store
        .commit(vec![
            Change::DeleteDatabase {
                id: id.clone(),
                tenant: tenant.id.clone(),
            },
            audit,
        ])
        .await
        .map_err(|e| e.answer(|_| database_not_found()))?;
    // This instance closes its connections now; others let go when the gate finds it gone.
    app.pools.forget(&id);
    tracing::info!(tenant = %tenant.slug, db_id = %id, "database removed; its pooled connections closed");
    Ok(ApiResponse::ok(json!({"id": id, "removed": true})))
}
