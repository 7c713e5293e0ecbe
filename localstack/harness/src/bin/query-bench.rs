//! `make bench`: the query router on a real request, a 100-row select of the sample table
//! (`POST /query/v1/{db}/tables/items {"sort":"id","limit":100}`), end to end over HTTP
//! through the emulator's API Gateway and the deployed `query-router`, against the same
//! statement (built by the router's own `sql::build`, same parameters) issued directly through
//! `tokio-postgres` on a warm TLS connection (verify-full, the run's CA) in the same run, both
//! as a typical client sends it (`query`: prepare, then execute) and in one round trip
//! (`query_typed`); and the gateway's own cost: `GET /health/live`, a function that answers 200
//! at once, through the same gateway. Prints median and p95 of each and the ratio the query
//! plane is held to: (routed - gateway) / direct. Seeds its own owner and tenant (store), signs
//! in and registers the sample database over HTTP (`SAMPLE_DATABASE_URL`, `PG_CA_FILE`).
//!
//! Usage: query-bench --base URL [--requests N]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use query_router::sql::{self, Column, Param};
use query_router::tls::Mode;
use serde_json::{json, Value};
use shared::access::password::hash_password;
use shared::store::DynamoStore;
use std::time::Instant;
use tokio_postgres::types::ToSql;

const PASSWORD: &str = "bench horse battery staple";

use local_harness::pct;

#[tokio::main]
async fn main() {
    let (base, n) = local_harness::base_and_count("--requests", 100);
    let database_url = std::env::var("SAMPLE_DATABASE_URL").expect("SAMPLE_DATABASE_URL");
    let ca = std::fs::read_to_string(std::env::var("PG_CA_FILE").expect("PG_CA_FILE"))
        .expect("the run's CA");
    let sdk = shared::runtime::aws::sdk_config().await;
    let store = DynamoStore::new(
        shared::dynamodb::Client::new(&sdk),
        std::env::var("TABLE_NAME").expect("TABLE_NAME"),
    );
    let hash = hash_password(PASSWORD.into()).await.unwrap();
    let owner = local_harness::seed_user(&store, "query-bench", &hash)
        .await
        .expect("user stored");
    let tenant = local_harness::seed_tenant(&store, "Query bench", &owner)
        .await
        .expect("tenant stored");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let send = |path: String, body: Value, auth: Option<String>| {
        let mut req = hyper::Request::builder()
            .method(if body.is_null() { "GET" } else { "POST" })
            .uri(format!("{base}{path}"))
            .header("content-type", "application/json");
        if let Some(t) = auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let client = client.clone();
        async move {
            let resp = client.request(req).await.expect("the platform answers");
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let (status, login) = send(
        "/auth/login".into(),
        json!({"email": owner.email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["data"]["access_token"].as_str().unwrap().to_string();
    let (status, reg) = send(
        format!("/tenants/{}/databases", tenant.slug),
        json!({"name": "bench", "engine": "postgres", "connection_string": database_url,
               "ca_certificate": ca}),
        Some(token.clone()),
    )
    .await;
    assert_eq!(status, 201, "{reg}");
    let db = reg["data"]["id"].as_str().unwrap().to_string();
    let body = json!({"sort": "id", "limit": 100});
    let path = format!("/query/v1/{db}/tables/items");

    // Direct: the statement the router builds, on one warm connection made the way the router
    // makes its own (TLS, verify-full against the run's CA).
    let rules = query_router::Rules {
        allow_private: true,
        allow_plaintext: false,
        statement_timeout_ms: 5_000,
    };
    let endpoint =
        query_router::target::endpoint(&database_url, Some(Mode::VerifyFull), Some(&ca), rules)
            .await
            .expect("the sample database's string");
    let conn = endpoint
        .connect()
        .await
        .expect("the sample database answers");
    let pg = &conn.client;
    let columns: Vec<Column> = pg
        .query(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'items' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| Column {
            name: r.get(0),
            udt: r.get(1),
        })
        .collect();
    let schema: String = pg
        .query_one("SELECT current_schema()::text", &[])
        .await
        .unwrap()
        .get(0);
    let statement = sql::build(
        &schema,
        "items",
        &columns,
        &serde_json::from_value(body.clone()).unwrap(),
    )
    .unwrap();
    let params: Vec<Box<dyn ToSql + Sync + Send>> =
        statement.params.iter().map(Param::boxed).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let typed: Vec<(&(dyn ToSql + Sync), tokio_postgres::types::Type)> = refs
        .iter()
        .zip(&statement.params)
        .map(|(r, p)| (*r, p.pg_type()))
        .collect();
    let direct = || async {
        let t = Instant::now();
        let rows = pg.query(statement.sql.as_str(), &refs).await.unwrap();
        assert_eq!(rows.len(), 101);
        t.elapsed().as_secs_f64() * 1000.0
    };
    let direct_typed = || async {
        let t = Instant::now();
        let rows = pg
            .query_typed(statement.sql.as_str(), &typed)
            .await
            .unwrap();
        assert_eq!(rows.len(), 101);
        t.elapsed().as_secs_f64() * 1000.0
    };
    let gateway = || async {
        let t = Instant::now();
        let (status, v) = send("/health/live".into(), Value::Null, None).await;
        assert_eq!(status, 200, "{v}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let routed = || async {
        let t = Instant::now();
        let (status, v) = send(path.clone(), body.clone(), Some(token.clone())).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"]["row_count"], 100);
        t.elapsed().as_secs_f64() * 1000.0
    };
    // Warm both: the first routed call builds the pool and reads the catalogue.
    for _ in 0..5 {
        routed().await;
        direct().await;
        direct_typed().await;
        gateway().await;
    }
    let (mut d, mut dt, mut r, mut g) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        r.push(routed().await);
        d.push(direct().await);
        dt.push(direct_typed().await);
        g.push(gateway().await);
    }
    let p = |v: &Vec<f64>| (pct(v.clone(), 50.0), pct(v.clone(), 95.0));
    let ((d50, d95), (t50, t95), (r50, r95), (g50, g95)) = (p(&d), p(&dt), p(&r), p(&g));
    println!("\nquery-router, 100-row select of the sample table, warm, {n} requests each:");
    println!("  direct tokio-postgres, TLS, query (prepare + execute): p50 {d50:6.2} ms  p95 {d95:6.2} ms");
    println!("  direct tokio-postgres, TLS, query_typed (one trip):    p50 {t50:6.2} ms  p95 {t95:6.2} ms");
    println!("  gateway baseline (GET /health/live, 200 at once):      p50 {g50:6.2} ms  p95 {g95:6.2} ms");
    println!("  through API Gateway + query-router:                    p50 {r50:6.2} ms  p95 {r95:6.2} ms");
    println!(
        "  ratio routed/direct (query):                           p50 {:5.1}x    p95 {:5.1}x",
        r50 / d50,
        r95 / d95
    );
    println!(
        "  (routed - gateway) / direct (query), goal <= 2:        p50 {:5.2}x    p95 {:5.2}x",
        (r50 - g50) / d50,
        (r95 - g95) / d95
    );
    println!(
        "  (routed - gateway) / direct (query_typed):             p50 {:5.2}x    p95 {:5.2}x",
        (r50 - g50) / t50,
        (r95 - g95) / t95
    );
}
