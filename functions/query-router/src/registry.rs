//! The tenant's database registrations: list, register (tested, then stored with its
//! connection string sealed to the tenant and the id) and remove. What a registration is
//! sealed to is decided here; `pools` opens it with the same binding.

use crate::target::{self, Endpoint, Unusable};
use crate::tls::Mode;
use crate::{App, Call};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::{database_not_found, Granted};
use shared::access::ratelimit::{self, Decision, RatePolicy};
use shared::domain::fields::{self, FieldError};
use shared::domain::{DatabaseId, TenantId};
use shared::http::request::{json_body, path_param};
use shared::store::changes::{Change, Refusal};
use shared::store::DatabaseRecord;
use shared::ErrorCode;
use shared::{ApiError, ApiResponse};

/// A registration as answered: never its connection string.
fn view(d: &DatabaseRecord) -> Value {
    json!({
        "id": d.id, "name": d.name, "engine": d.engine, "host": d.host, "sslmode": d.tls,
        "ca_certificate": d.ca_sealed.is_some(), "created_at": d.created_at,
    })
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
    /// PEM CA certificates for `verify-ca`/`verify-full` against a private CA.
    #[serde(default)]
    ca_certificate: Option<String>,
}

/// What a sealed connection string is bound to.
pub(crate) fn owner_of(tenant: &TenantId, id: &DatabaseId) -> Vec<u8> {
    format!("{tenant}|{id}").into_bytes()
}

/// What a sealed CA certificate is bound to (not interchangeable with the string).
fn ca_owner_of(tenant: &TenantId, id: &DatabaseId) -> Vec<u8> {
    format!("{tenant}|{id}|ca").into_bytes()
}

/// Opens a sealed field of `record`.
fn unseal(
    app: &App,
    record: &DatabaseRecord,
    sealed: &str,
    owner: &[u8],
) -> Result<String, ApiError> {
    let plain = app.data_key.open(sealed, owner).map_err(|e| {
        tracing::error!(db_id = %record.id, cause = %e, "a stored database secret does not open");
        ApiError::internal(e)
    })?;
    String::from_utf8(plain).map_err(ApiError::internal)
}

/// How this instance reaches `record`: its sealed string and CA opened, its host checked again
/// (a name may resolve elsewhere now than at registration), its stored TLS mode applied.
pub(crate) async fn endpoint_of(app: &App, record: &DatabaseRecord) -> Result<Endpoint, ApiError> {
    let raw = unseal(
        app,
        record,
        &record.sealed,
        &owner_of(&record.tenant, &record.id),
    )?;
    let ca = match &record.ca_sealed {
        Some(sealed) => Some(unseal(
            app,
            record,
            sealed,
            &ca_owner_of(&record.tenant, &record.id),
        )?),
        None => None,
    };
    // A mode this code does not know is read as the strictest, never the weakest.
    let mode = Mode::parse(&record.tls).unwrap_or(Mode::VerifyFull);
    target::endpoint(&raw, Some(mode), ca.as_deref(), app.rules)
        .await
        .map_err(unusable)
}

/// Why a connection string cannot be used, as the answer (safe to send: no host, no password).
pub(crate) fn unusable(why: Unusable) -> ApiError {
    match why {
        Unusable::Invalid
        | Unusable::Host
        | Unusable::TlsMode
        | Unusable::TlsFile
        | Unusable::CaCertificate
        | Unusable::CaWithoutVerify
        | Unusable::VerifyCaWithoutCa => {
            ApiError::refused(ErrorCode::InvalidField, why.to_string())
        }
        Unusable::Private => ApiError::refused(ErrorCode::DatabaseHostNotAllowed, why.to_string()),
        Unusable::PlaintextForbidden => {
            ApiError::refused(ErrorCode::DatabaseTlsRequired, why.to_string())
        }
        _ => ApiError::refused(ErrorCode::DatabaseUnreachable, why.to_string()),
    }
}

/// Registration attempts per tenant and per admin in an hour: each one connects to a server of
/// the tenant's choosing and tells why it failed, which must not make the platform a port
/// scanner or a password guesser for other people's databases.
pub(crate) const PROBES_PER_TENANT: RatePolicy = RatePolicy {
    name: "db-probe-tenant",
    limit: 30,
    window_secs: 3600,
};
pub(crate) const PROBES_PER_ACTOR: RatePolicy = RatePolicy {
    name: "db-probe-actor",
    limit: 30,
    window_secs: 3600,
};

/// Tests the connection string (host allowed, database answering), then stores it sealed.
pub(crate) async fn register(call: &Call<'_>, granted: Granted) -> Result<ApiResponse, ApiError> {
    let app = call.app;
    let tenant = granted.into_tenant();
    // Room for a CA bundle (`tls::MAX_CA_PEM`) beside the string.
    let body: RegisterBody = json_body(call.req, 96 * 1024)?;
    let name = fields::name("name", &body.name)?;
    let Some(engine) = crate::engine::named(&body.engine) else {
        return Err(FieldError::new("engine", "must be postgres").into());
    };
    // At the plan's limit already: refused before anything connects.
    let catalogue = shared::plans::Catalogue {
        store: call.store,
        seeds: app.seeds,
    };
    let plan = catalogue.of_tenant(&tenant).await?;
    let slot = shared::plans::take_one(
        call.store,
        &tenant,
        &plan,
        shared::domain::plan::Quota::Databases,
        shared::runtime::time::now_unix(),
    )
    .await?;
    let now = shared::runtime::time::now_unix();
    let (tenant_key, actor_key) = (
        format!("tenant:{}", tenant.id),
        format!("user:{}", call.caller.user.id),
    );
    if let Decision::Limited { retry_after_secs } = ratelimit::reserve(
        call.store,
        &[
            (PROBES_PER_TENANT, tenant_key.as_str()),
            (PROBES_PER_ACTOR, actor_key.as_str()),
        ],
        now,
    )
    .await?
    {
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let tested = engine
        .test(app, &body.connection_string, body.ca_certificate.as_deref())
        .await
        .map_err(|why| {
            tracing::info!(tenant = %tenant.slug, reason = %why, "database registration refused");
            unusable(why)
        })?;
    let id = DatabaseId::new_random();
    let seal = |plain: &str, owner: Vec<u8>| {
        app.data_key
            .seal(plain.as_bytes(), &owner)
            .map_err(ApiError::internal)
    };
    let sealed = seal(&body.connection_string, owner_of(&tenant.id, &id))?;
    let ca_sealed = match &body.ca_certificate {
        Some(pem) => Some(seal(pem, ca_owner_of(&tenant.id, &id))?),
        None => None,
    };
    let record = DatabaseRecord {
        id: id.clone(),
        tenant: tenant.id.clone(),
        name,
        engine: engine.name().into(),
        host: tested.display,
        sealed,
        tls: tested.tls.to_string(),
        ca_sealed,
        created_at: shared::runtime::time::now_unix(),
    };
    let audit = call.audit(
        &tenant,
        "database.registered",
        json!({"after": {"db_id": id, "name": record.name, "host": record.host, "sslmode": record.tls}}),
    );
    // The tenant's count of registrations is held to the limit in the same transaction.
    let mut commit = vec![Change::PutDatabase(record.clone()), audit];
    commit.extend(slot.changes(call.now_ms()));
    call.store.commit(commit).await.map_err(|e| {
        e.answer(|r| match r {
            [Refusal::QuotaReached] => slot.refused(),
            _ => ApiError::concurrent_update(),
        })
    })?;
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
    let mut commit = vec![
        Change::DeleteDatabase {
            id: id.clone(),
            tenant: tenant.id.clone(),
        },
        audit,
    ];
    // Counted down when counted (a registration from before the count was kept is not).
    commit.extend(
        shared::plans::release_one(
            app.store.as_ref(),
            &tenant.id,
            shared::domain::plan::Quota::Databases,
        )
        .await?,
    );
    app.store.commit(commit).await.map_err(|e| {
        e.answer(|r| {
            if r.contains(&Refusal::QuotaReached) {
                ApiError::concurrent_update()
            } else {
                database_not_found()
            }
        })
    })?;
    // This instance closes its connections and forgets its yes now; others let go when the
    // gate finds it gone (a kept yes lasts `decisions::DECISION_TTL`).
    if let Some(engine) = crate::engine::named(&record.engine) {
        engine.forget(app, &id);
    }
    app.decisions.forget(&id);
    tracing::info!(tenant = %tenant.slug, db_id = %id, "database removed; its pooled connections closed");
    Ok(ApiResponse::ok(json!({"id": id, "removed": true})))
}
