//! The query router's routes on the in-memory store, as far as they go without a database:
//! who may reach a registration, what a registration refuses before connecting, and what this
//! instance lets go of when a registration is removed or found gone.

use query_router::Pool;
use serde_json::{json, Value};
use shared::access::crypto::DataKey;
use shared::access::jwt::TokenKeys;
use shared::domain::tenant::Tenant;
use shared::domain::{Audience, DatabaseId, Role, User};
use shared::http::proxy_event::ProxyRequest;
use shared::store::changes::Change;
use shared::store::{CommitStore, DatabaseRecord, MemoryStore, TenantStore};
use shared::testing::{self, read};
use std::sync::Arc;

fn app() -> (Arc<MemoryStore>, query_router::App) {
    let store = Arc::new(MemoryStore::new());
    let keys =
        TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 900).unwrap();
    let data_key = DataKey::from_base64(&("A".repeat(43) + "=")).unwrap();
    let seeds = shared::domain::plan::BuiltinPlans {
        databases: 3,
        ..Default::default()
    };
    let app = query_router::App::new(store.clone(), keys, data_key, &config(), seeds);
    (store, app)
}

/// The settings of a deployment on AWS: public hosts only, TLS required.
fn config() -> shared::runtime::config::QueryConfig {
    shared::runtime::config::QueryConfig {
        data_key_secret_id: "unused".into(),
        allow_private_hosts: false,
        allow_plaintext: false,
        statement_timeout_ms: 5_000,
    }
}

/// A pool that never connects: it stands for what the instance holds for a database.
fn idle_pool() -> Pool {
    query_router::unconnected()
}

async fn held(app: &query_router::App, id: &DatabaseId) -> Pool {
    app.pools
        .pool(id, || async { Ok(idle_pool()) })
        .await
        .unwrap()
}

/// A registration of `tenant`, stored without testing it (nothing here connects).
async fn registered(store: &MemoryStore, tenant: &Tenant) -> DatabaseRecord {
    let record = DatabaseRecord {
        id: DatabaseId::new_random(),
        tenant: tenant.id.clone(),
        name: "orders".into(),
        engine: "postgres".into(),
        host: "db.example.com:5432/orders".into(),
        sealed: "not opened by these tests".into(),
        tls: "verify-full".into(),
        ca_sealed: None,
        created_at: shared::runtime::time::now_unix(),
    };
    store
        .commit(vec![Change::PutDatabase(record.clone())])
        .await
        .unwrap();
    record
}

async fn call(
    app: &query_router::App,
    who: &User,
    method: &str,
    resource: &str,
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let token = app
        .keys
        .issue(
            &who.id,
            Audience::Portal,
            who.session_epoch,
            shared::runtime::time::now_unix(),
        )
        .await
        .unwrap()
        .token;
    let mut path = resource.to_string();
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let mut req =
        ProxyRequest::new(method, &path).header("authorization", &format!("Bearer {token}"));
    req.resource = resource.into();
    req.path_parameters = params
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if let Some(b) = body {
        req = req.json_body(&b.to_string());
    }
    read(&query_router::handle(app, req.to_lambda_request()).await)
}

#[tokio::test]
async fn a_registration_found_gone_is_let_go_of_by_this_instance() {
    let (store, app) = app();
    let member = testing::user(store.as_ref(), false).await;
    let gone = DatabaseId::new_random();
    // Held from before another instance removed it.
    let pool = held(&app, &gone).await;

    let (status, body) = call(
        &app,
        &member,
        "GET",
        "/query/v1/{db_id}/tables",
        &[("db_id", gone.as_str())],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("DATABASE_NOT_FOUND"))
    );
    assert!(pool.is_closed(), "the gone registration's pool is closed");
}

#[tokio::test]
async fn a_refused_caller_leaves_the_pool_in_place() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let record = registered(&store, &tenant).await;
    let pool = held(&app, &record.id).await;
    let stranger = testing::user(store.as_ref(), false).await;

    for (method, resource, params) in [
        (
            "GET",
            "/query/v1/{db_id}/tables",
            vec![("db_id", record.id.as_str())],
        ),
        (
            "POST",
            "/query/v1/{db_id}/tables/{table}",
            vec![("db_id", record.id.as_str()), ("table", "orders")],
        ),
    ] {
        let (status, body) = call(&app, &stranger, method, resource, &params, None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("DATABASE_NOT_FOUND")),
            "{method} {resource}"
        );
    }
    assert!(
        !pool.is_closed(),
        "the registration still exists for its members"
    );
}

#[tokio::test]
async fn removing_a_registration_closes_its_pool() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let record = registered(&store, &tenant).await;
    let pool = held(&app, &record.id).await;
    let databases = "/tenants/{slug}/databases";
    let slug = [("slug", tenant.slug.as_str())];

    let (status, listed) = call(&app, &owner, "GET", databases, &slug, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["items"][0]["id"], record.id.as_str());
    assert!(
        listed["data"]["items"][0].get("sealed").is_none(),
        "the sealed connection string is never answered"
    );

    let one = "/tenants/{slug}/databases/{db_id}";
    let params = [
        ("slug", tenant.slug.as_str()),
        ("db_id", record.id.as_str()),
    ];
    let (status, removed) = call(&app, &owner, "DELETE", one, &params, None).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["data"], json!({"id": record.id, "removed": true}));
    assert!(pool.is_closed());

    let (status, listed) = call(&app, &owner, "GET", databases, &slug, None).await;
    assert_eq!((status, &listed["data"]["items"]), (200, &json!([])));
    let (status, again) = call(&app, &owner, "DELETE", one, &params, None).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (404, Some("DATABASE_NOT_FOUND"))
    );
}

#[tokio::test]
async fn a_registration_is_refused_before_connecting() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let member = testing::user(store.as_ref(), false).await;
    store
        .add_membership(&member.id, &tenant, Role::Member)
        .await
        .unwrap();
    let databases = "/tenants/{slug}/databases";
    let slug = [("slug", tenant.slug.as_str())];
    let body = |engine: &str, connection_string: &str| json!({"name": "orders", "engine": engine, "connection_string": connection_string});

    for (who, sent, status, code) in [
        (
            &member,
            body("postgres", "postgres://u:p@8.8.8.8/db"),
            403,
            "FORBIDDEN",
        ),
        (
            &owner,
            body("mysql", "postgres://u:p@8.8.8.8/db"),
            400,
            "INVALID_FIELD",
        ),
        (
            &owner,
            body("postgres", "not a url ://"),
            400,
            "INVALID_FIELD",
        ),
        (
            &owner,
            body("postgres", "postgres://u:p@127.0.0.1/db"),
            422,
            "DATABASE_HOST_NOT_ALLOWED",
        ),
        // This platform forbids plain text: refused before any connection.
        (
            &owner,
            body("postgres", "postgres://u:p@8.8.8.8/db?sslmode=disable"),
            422,
            "DATABASE_TLS_REQUIRED",
        ),
        (
            &owner,
            body("postgres", "host=8.8.8.8 user=u sslmode=disable"),
            422,
            "DATABASE_TLS_REQUIRED",
        ),
        // A mode that may fall back to plain text, and settings that name local files.
        (
            &owner,
            body("postgres", "postgres://u:p@8.8.8.8/db?sslmode=prefer"),
            400,
            "INVALID_FIELD",
        ),
        (
            &owner,
            body(
                "postgres",
                "postgres://u:p@8.8.8.8/db?sslrootcert=/etc/ssl/ca.pem",
            ),
            400,
            "INVALID_FIELD",
        ),
        (
            &owner,
            json!({"name": "orders", "engine": "postgres",
                   "connection_string": "postgres://u:p@8.8.8.8/db",
                   "ca_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
            400,
            "INVALID_FIELD",
        ),
        (
            &owner,
            json!({"name": "orders", "engine": "postgres",
                   "connection_string": "postgres://u:p@8.8.8.8/db",
                   "ca_certificate": "x".repeat(65 * 1024)}),
            400,
            "INVALID_FIELD",
        ),
    ] {
        let (got, answer) = call(&app, who, "POST", databases, &slug, Some(sent.clone())).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{}",
            answer
        );
        // The refusal never carries what was sent.
        let text = answer.to_string();
        assert!(
            !text.contains("u:p@") && !text.contains("/etc/ssl"),
            "{text}"
        );
    }
    let (_, listed) = call(&app, &owner, "GET", databases, &slug, None).await;
    assert_eq!(listed["data"]["items"], json!([]), "nothing was stored");
}

/// Registers the sample database of the PostgreSQL `make test` starts for `tenant`, its string
/// with `extra` settings appended, through the route (connects for real); the new id.
async fn register_sample(
    app: &query_router::App,
    owner: &User,
    tenant: &Tenant,
    extra: &str,
) -> String {
    let url = std::env::var("SAMPLE_DATABASE_URL").expect("SAMPLE_DATABASE_URL");
    let ca = std::fs::read_to_string(std::env::var("PG_CA_FILE").expect("PG_CA_FILE")).unwrap();
    let body = json!({"name": "sample", "engine": "postgres",
        "connection_string": format!("{url}{extra}"), "ca_certificate": ca});
    let slug = [("slug", tenant.slug.as_str())];
    let (status, answer) = call(
        app,
        owner,
        "POST",
        "/tenants/{slug}/databases",
        &slug,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["data"]["id"].as_str().unwrap().to_string()
}

/// More databases in use than an instance holds pools for, against the PostgreSQL `make test`
/// starts: every query still answers, the least recently used database's pool is closed (and
/// the server sees its connection go), and that database answers again on a new pool.
#[tokio::test]
#[ignore = "needs PostgreSQL: run `make test`"]
async fn past_the_pool_bound_the_oldest_pool_is_closed_and_queries_go_on() {
    let (store, mut app) = app();
    app.rules = query_router::Rules {
        allow_private: true,
        allow_plaintext: false,
        statement_timeout_ms: 5_000,
    };
    app.seeds.databases = 10;
    app.pools = query_router::Pools::new(3, query_router::CATALOG_TTL, query_router::IDLE);
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Bound", Some((&owner, Role::Owner))).await;
    let tag = format!(
        "bound{}",
        DatabaseId::new_random().as_str().replace('-', "")
    );
    let mut dbs = Vec::new();
    for i in 0..4 {
        dbs.push(
            register_sample(
                &app,
                &owner,
                &tenant,
                &format!("?application_name={tag}_{i}"),
            )
            .await,
        );
    }
    let (admin, conn) = tokio_postgres::connect(
        &std::env::var("PG_ADMIN_URL").unwrap(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let connections = |i: usize| {
        let (admin, name) = (&admin, format!("{tag}_{i}"));
        async move {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&name],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let select = |db: String| {
        let app = &app;
        let owner = &owner;
        async move {
            call(
                app,
                owner,
                "POST",
                "/query/v1/{db_id}/tables/{table}",
                &[("db_id", db.as_str()), ("table", "items")],
                Some(json!({"limit": 1})),
            )
            .await
        }
    };
    for db in &dbs[..3] {
        let (status, answer) = select(db.clone()).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(app.pools.held(), 3);
    assert!(
        connections(0).await > 0,
        "the first database's pool holds a connection"
    );
    let (status, answer) = select(dbs[3].clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(app.pools.held(), 3, "still at the bound");
    let mut closed = false;
    for _ in 0..50 {
        if connections(0).await == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "the least recently used pool's connection was closed"
    );
    assert!(connections(3).await > 0);
    let (status, answer) = select(dbs[0].clone()).await;
    assert_eq!(status, 200, "the evicted database answers again: {answer}");
}

/// Rows past the answer's budget are a clear 422, and the connection that carried them is not
/// reused: the next query on the database answers (against the PostgreSQL `make test` starts).
#[tokio::test]
#[ignore = "needs PostgreSQL: run `make test`"]
async fn rows_past_the_budget_are_refused_and_the_database_answers_after() {
    let (store, mut app) = app();
    app.rules.allow_private = true;
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Wide", Some((&owner, Role::Owner))).await;
    let db = register_sample(&app, &owner, &tenant, "").await;
    let select = |limit: u32| {
        let (app, owner, db) = (&app, &owner, db.clone());
        async move {
            call(
                app,
                owner,
                "POST",
                "/query/v1/{db_id}/tables/{table}",
                &[("db_id", db.as_str()), ("table", "wide")],
                Some(json!({"limit": limit})),
            )
            .await
        }
    };
    let (status, answer) = select(1000).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("RESULT_TOO_LARGE")),
        "{answer}"
    );
    let (status, answer) = select(10).await;
    assert_eq!(
        (status, &answer["data"]["row_count"]),
        (200, &json!(10)),
        "{answer}"
    );
}

/// Each registration attempt connects to a server of the tenant's choosing and says why it
/// failed: 30 an hour per tenant, then 429, and the count is the tenant's (another tenant's
/// admin still registers).
#[tokio::test]
async fn registration_attempts_are_limited_per_tenant() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let tenant = testing::tenant(store.as_ref(), "Probe", Some((&owner, Role::Owner))).await;
    let databases = "/tenants/{slug}/databases";
    let slug = [("slug", tenant.slug.as_str())];
    // A loopback host is refused after the attempt is counted, without connecting.
    let body = json!({"name": "probe", "engine": "postgres",
        "connection_string": "postgres://u:p@127.0.0.1:5432/db"});
    for attempt in 0..30 {
        let (status, answer) =
            call(&app, &owner, "POST", databases, &slug, Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("DATABASE_HOST_NOT_ALLOWED")),
            "attempt {attempt}: {answer}"
        );
    }
    let (status, answer) = call(&app, &owner, "POST", databases, &slug, Some(body.clone())).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (429, Some("TOO_MANY_REQUESTS")),
        "{answer}"
    );
    let other_owner = testing::user(store.as_ref(), false).await;
    let other = testing::tenant(store.as_ref(), "Other", Some((&other_owner, Role::Owner))).await;
    let (status, _) = call(
        &app,
        &other_owner,
        "POST",
        databases,
        &[("slug", other.slug.as_str())],
        Some(body),
    )
    .await;
    assert_eq!(status, 422, "another tenant's attempts are its own");
}
