//! The database registry and the query router through the deployed stack, against the real
//! PostgreSQL server `make test` starts (its statement log shows what reached it as SQL).

mod support;

use serde_json::{json, Value};
use support::{unique_slug, Platform, Reply};

/// The one PostgreSQL server these tests share. The test that restarts it holds it alone; the
/// others share it (a restart in the middle of another test's registration was a flaky refusal).
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name}: run through `make test`"))
}

struct Tenant {
    slug: String,
    owner: String,
    member: String,
    /// The member's user id (what the database sees as `app.user_id`).
    member_id: String,
}

async fn tenant(platform: &Platform, operator: &str) -> Tenant {
    let owner = platform.user(false).await;
    let member = platform.user(false).await;
    let slug = unique_slug("db");
    let r = platform
        .call(
            "POST",
            "/tenants",
            Some(operator),
            Some(json!({"slug": slug, "name": "Data", "owner_email": owner.email})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    let r = platform
        .call(
            "POST",
            format!("/tenants/{slug}/users"),
            Some(operator),
            Some(json!({"email": member.email, "role": "member"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    // Both are existing accounts: invited, they accept before they hold anything.
    let member_id = member.id.clone();
    let owner = platform.sign_in(owner.email.as_str(), "portal").await;
    let member = platform.sign_in(member.email.as_str(), "portal").await;
    platform.join(&slug, &owner).await;
    platform.join(&slug, &member).await;
    Tenant {
        slug,
        owner,
        member,
        member_id: member_id.to_string(),
    }
}

async fn operator(platform: &Platform) -> String {
    let op = platform.user(true).await;
    platform.sign_in(op.email.as_str(), "operator").await
}

/// The CA of the run's PostgreSQL (`localstack/postgres.sh`): its certificate names
/// `localhost` and is signed by a CA made for the run, as a private CA would.
fn local_ca() -> String {
    std::fs::read_to_string(env("PG_CA_FILE")).expect("PG_CA_FILE")
}

/// Registers `url` for `t`, with the run's CA certificate when `ca`.
async fn register_as(platform: &Platform, t: &Tenant, url: &str, ca: bool) -> Reply {
    let mut body = json!({"name": "sample", "engine": "postgres", "connection_string": url});
    if ca {
        body["ca_certificate"] = json!(local_ca());
    }
    platform
        .call(
            "POST",
            format!("/tenants/{}/databases", t.slug),
            Some(&t.owner),
            Some(body),
            &[],
        )
        .await
}

async fn register(platform: &Platform, t: &Tenant, url: &str) -> Reply {
    register_as(platform, t, url, true).await
}

async fn registered(platform: &Platform, t: &Tenant) -> String {
    let r = register(platform, t, &env("SAMPLE_DATABASE_URL")).await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["data"]["id"].as_str().unwrap().to_string()
}

async fn query(platform: &Platform, token: &str, db: &str, table: &str, body: Value) -> Reply {
    platform
        .call(
            "POST",
            format!("/query/v1/{db}/tables/{table}"),
            Some(token),
            Some(body),
            &[],
        )
        .await
}

fn ids(r: &Reply) -> Vec<i64> {
    r.json["data"]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.json))
        .iter()
        .map(|row| row["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn registration_tests_the_connection_and_never_shows_the_secret() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let since_ms = shared::runtime::time::now_ms() - 1000;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let port = env("PG_PORT");
    // Each way a registration fails says why: TLS first (the default is verify-full, and the
    // run's server refuses plain text like an RDS instance with rds.force_ssl).
    for (url, ca, code, why) in [
        (
            format!("postgres://reader:wrong-password@localhost:{port}/sample"),
            true,
            "DATABASE_UNREACHABLE",
            "authentication failed",
        ),
        (
            format!("postgres://reader:local-dev-only-reader@localhost:{port}/nope"),
            true,
            "DATABASE_UNREACHABLE",
            "does not exist",
        ),
        (
            "postgres://reader:x@127.0.0.1:1/sample?sslmode=require".to_string(),
            false,
            "DATABASE_UNREACHABLE",
            "refused",
        ),
        (
            format!("postgres://reader:local-dev-only-reader@127.0.0.1:{port}/sample"),
            true,
            "DATABASE_UNREACHABLE",
            "does not name the registered host",
        ),
        (
            format!("postgres://reader:local-dev-only-reader@localhost:{port}/sample"),
            false,
            "DATABASE_UNREACHABLE",
            "not signed by a trusted authority",
        ),
        (
            format!(
                "postgres://reader:local-dev-only-reader@localhost:{port}/sample?sslmode=disable"
            ),
            false,
            "DATABASE_UNREACHABLE",
            "requires TLS",
        ),
        (
            format!(
                "postgres://reader:local-dev-only-reader@localhost:{port}/sample?sslmode=prefer"
            ),
            false,
            "INVALID_FIELD",
            "sslmode",
        ),
        (
            "not a connection string".to_string(),
            false,
            "INVALID_FIELD",
            "connection_string",
        ),
    ] {
        let r = register_as(&platform, &t, &url, ca).await;
        assert_eq!(r.json["error"]["code"], code, "{url}: {}", r.json);
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{url}: {msg}");
        assert!(
            !msg.contains("wrong-password")
                && !msg.contains("127.0.0.1")
                && !msg.contains("localhost"),
            "{msg}"
        );
    }
    let list = platform
        .call(
            "GET",
            format!("/tenants/{}/databases", t.slug),
            Some(&t.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(
        list.json["data"]["items"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
    let db = registered(&platform, &t).await;
    let list = platform
        .call(
            "GET",
            format!("/tenants/{}/databases", t.slug),
            Some(&t.owner),
            None,
            &[],
        )
        .await;
    let text = list.json.to_string();
    assert!(
        text.contains(&db) && text.contains(&format!("localhost:{port}/sample")),
        "{text}"
    );
    let item = &list.json["data"]["items"][0];
    assert_eq!(
        (&item["sslmode"], &item["ca_certificate"]),
        (&json!("verify-full"), &json!(true)),
        "the default mode, and that a CA is held (never the CA itself)"
    );
    assert!(!text.contains("BEGIN CERTIFICATE"), "{text}");
    assert!(
        !text.contains("local-dev-only-reader") && !text.contains("reader:"),
        "{text}"
    );
    // Members may query but not manage; another tenant's owner cannot see it.
    let r = register(
        &platform,
        &Tenant {
            slug: t.slug.clone(),
            owner: t.member.clone(),
            member: String::new(),
            member_id: String::new(),
        },
        &env("SAMPLE_DATABASE_URL"),
    )
    .await;
    assert_eq!(r.status, 403);
    let other = tenant(&platform, &op).await;
    let r = platform
        .call(
            "GET",
            format!("/tenants/{}/databases", t.slug),
            Some(&other.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    // The stored record holds no readable connection string.
    let id = shared::domain::DatabaseId::parse(&db).unwrap();
    use shared::store::DatabaseStore;
    let record = platform.store.database(&id).await.unwrap().unwrap();
    assert!(!record.sealed.contains("reader") && !record.sealed.contains("postgres://"));
    let ca = record.ca_sealed.as_deref().expect("the CA is stored");
    assert!(!ca.contains("CERTIFICATE"), "stored sealed");
    // Removed: gone from the list and from the router.
    let r = platform
        .call(
            "DELETE",
            format!("/tenants/{}/databases/{db}", t.slug),
            Some(&t.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let r = query(&platform, &t.member, &db, "items", json!({})).await;
    assert_eq!(r.status, 404);
    // No log line of any function carries a connection string or a password.
    let logs = platform.function_logs(since_ms);
    assert!(!logs.is_empty(), "the functions' logs are readable");
    for line in logs {
        for secret in ["local-dev-only-reader", "wrong-password", "postgres://"] {
            assert!(!line.contains(secret), "logged {secret}: {line}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn every_operator_sort_and_type_maps_faithfully() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let db = registered(&platform, &t).await;
    let tables = platform
        .get(&format!("/query/v1/{db}/tables"), Some(&t.member))
        .await;
    assert_eq!(tables.status, 200, "{}", tables.json);
    let names: Vec<&str> = tables.json["data"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"items") && !names.contains(&"secrets"),
        "{names:?}"
    );
    let one = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"filter": {"id": 5}}),
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.json);
    let row = &one.json["data"]["rows"][0];
    assert_eq!(row["name"], "item 5");
    assert_eq!(row["price"], "6.25", "numeric as a string");
    assert_eq!(row["created_at"], "2026-01-01T05:00:00+00:00");
    assert_eq!(row["seen"], "2026-01-01T00:05:00+00:00");
    assert_eq!(row["day"], "2026-01-06");
    assert_eq!(row["data"], json!({"n": 5, "tags": ["a", "b"]}));
    assert_eq!(row["blob"], "AAU=", "bytea as base64");
    assert_eq!(row["active"], false);
    assert_eq!(row["big"], 50_000_000_000i64);
    assert_eq!(one.json["data"]["engine"], "postgres");
    let nulls = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"filter": {"price": {"is_null": true}}, "sort": "id"}),
    )
    .await;
    assert_eq!(ids(&nulls), vec![50, 100, 150, 200, 250]);
    assert_eq!(nulls.json["data"]["rows"][0]["price"], Value::Null);
    let cases: Vec<(Value, Vec<i64>)> = vec![
        (json!({"filter": {"id": {"eq": 7}}}), vec![7]),
        (
            json!({"filter": {"id": {"lt": 4}}, "sort": "id"}),
            vec![1, 2, 3],
        ),
        (
            json!({"filter": {"id": {"lte": 3}}, "sort": "id:desc"}),
            vec![3, 2, 1],
        ),
        (
            json!({"filter": {"id": {"gt": 247}}, "sort": "id"}),
            vec![248, 249, 250],
        ),
        (
            json!({"filter": {"id": {"gte": 249}}, "sort": "id"}),
            vec![249, 250],
        ),
        (
            json!({"filter": {"id": {"neq": 1, "lte": 3}}, "sort": "id"}),
            vec![2, 3],
        ),
        (
            json!({"filter": {"id": {"in": [9, 3, 300]}}, "sort": "id"}),
            vec![3, 9],
        ),
        (
            json!({"filter": {"name": {"like": "item 24_"}}, "sort": "id"}),
            vec![240, 241, 242, 243, 244, 245, 246, 247, 248, 249],
        ),
        (
            json!({"filter": {"name": {"ilike": "ITEM 1_"}}, "sort": "id"}),
            (10..20).collect(),
        ),
        (
            json!({"filter": {"price": {"is_null": false}, "id": {"lte": 50}}, "sort": "price:desc", "limit": 2}),
            vec![49, 48],
        ),
        (
            json!({"filter": {"active": true, "id": {"lte": 6}}, "sort": ["active", "id:desc"]}),
            vec![6, 4, 2],
        ),
        (
            json!({"filter": {"created_at": {"gte": "2026-01-01T03:00:00Z", "lt": "2026-01-01T05:00:00Z"}}, "sort": "id"}),
            vec![3, 4],
        ),
    ];
    for (body, want) in cases {
        let r = query(&platform, &t.member, &db, "items", body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.json);
        assert_eq!(ids(&r), want, "{body}");
    }
    // Paging: limit defaults to 100, next_offset points on.
    let page = query(&platform, &t.member, &db, "items", json!({"sort": "id"})).await;
    assert_eq!(page.json["data"]["row_count"], 100);
    assert_eq!(page.json["data"]["next_offset"], 100);
    let last = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"sort": "id", "offset": 200, "limit": 1000, "columns": ["id"]}),
    )
    .await;
    assert_eq!(last.json["data"]["row_count"], 50);
    assert_eq!(last.json["data"]["next_offset"], Value::Null);
    assert_eq!(last.json["data"]["rows"][0].as_object().unwrap().len(), 1);
    // Unknown identifiers are named; bad values are 400s.
    let r = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"filter": {"nope": 1}}),
    )
    .await;
    assert_eq!(
        (r.status, r.json["error"]["message"].as_str()),
        (400, Some("filter: unknown column nope"))
    );
    let r = query(&platform, &t.member, &db, "nope", json!({})).await;
    assert_eq!(r.json["error"]["message"], "table: unknown table nope");
    let r = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"filter": {"id": "not a number"}}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn injection_never_reaches_the_database_as_sql_and_writes_are_impossible() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let db = registered(&platform, &t).await;
    let marker = format!("inj{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let payloads = [
        format!("1; DROP TABLE items; -- {marker}"),
        format!("' OR '1'='1 {marker}"),
        format!("\\\"; SELECT pg_sleep(5); -- {marker}"),
        format!("$$ {marker} $$"),
        format!("nextval('{marker}')"),
        format!("(SELECT bump()) {marker}"),
    ];
    for p in &payloads {
        for body in [
            json!({"filter": {"name": p}}),
            json!({"filter": {"name": {"like": p}}}),
            json!({"filter": {"name": {"in": [p, "x"]}}}),
            json!({"filter": {"id": p}}),
            json!({"filter": {p.as_str(): 1}}),
            json!({"sort": p}),
            json!({"sort": format!("id:{p}")}),
            json!({"columns": [p]}),
            json!({"limit": p}),
            json!({"offset": p}),
        ] {
            let r = query(&platform, &t.member, &db, "items", body.clone()).await;
            assert!(r.status == 200 || r.status == 400, "{body}: {}", r.json);
            if r.status == 200 {
                assert_eq!(r.json["data"]["row_count"], 0, "{body}");
            }
        }
        let table = percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC);
        let r = query(&platform, &t.member, &db, &table.to_string(), json!({})).await;
        assert!(
            r.status == 400 || r.status == 404,
            "table {p}: {}",
            r.status
        );
    }
    // The server's statement log: the marker appears only as a bound parameter, never in SQL.
    let log = std::fs::read_to_string(env("PG_LOG")).unwrap();
    let in_sql: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&marker))
        .filter(|l| l.contains("LOG:  statement:") || l.contains("LOG:  execute"))
        .collect();
    assert!(in_sql.is_empty(), "reached the database as SQL: {in_sql:?}");
    // Where the server complained about a payload, it was about a value of the wrong type.
    for l in log
        .lines()
        .filter(|l| l.contains(&marker) && l.contains("ERROR:"))
    {
        assert!(l.contains("invalid input syntax"), "{l}");
    }
    assert!(
        log.contains(&marker),
        "the payloads were sent as parameters"
    );
    // The table is still there, whole.
    let r = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({"columns": ["id"], "limit": 1000}),
    )
    .await;
    assert_eq!(r.json["data"]["row_count"], 250);
    // A view whose function writes: the read-only transaction refuses it.
    let r = query(&platform, &t.member, &db, "bumping", json!({})).await;
    assert_eq!(r.status, 422, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "READ_ONLY");
    let (admin, conn) = tokio_postgres::connect(&env("PG_ADMIN_URL"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n: i64 = admin
        .query_one("SELECT count(*) FROM counter", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing was written");
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn isolation_timeout_sealing_and_a_restart_are_handled() {
    let _server = SERVER.write().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let a = tenant(&platform, &op).await;
    let b = tenant(&platform, &op).await;
    let db_a = registered(&platform, &a).await;
    let db_b = registered(&platform, &b).await;
    // A db_id of another tenant is refused, and so is the operator (not a member).
    assert_eq!(
        query(&platform, &b.member, &db_a, "items", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        platform
            .get(&format!("/query/v1/{db_a}/tables"), Some(&b.owner))
            .await
            .status,
        404
    );
    assert_eq!(
        query(&platform, &op, &db_a, "items", json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        query(&platform, &a.member, &db_a, "items", json!({"limit": 1}))
            .await
            .status,
        200
    );
    // The statement timeout (2 s in `make test`) is honoured.
    let started = std::time::Instant::now();
    let r = query(&platform, &a.member, &db_a, "slow", json!({})).await;
    assert_eq!(r.json["error"]["code"], "QUERY_TIMEOUT", "{}", r.json);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A ciphertext moved onto another tenant's record does not open.
    use shared::store::{changes::Change, CommitStore, DatabaseStore};
    let ra = platform
        .store
        .database(&shared::domain::DatabaseId::parse(&db_a).unwrap())
        .await
        .unwrap()
        .unwrap();
    let rb = platform
        .store
        .database(&shared::domain::DatabaseId::parse(&db_b).unwrap())
        .await
        .unwrap()
        .unwrap();
    let forged = shared::store::DatabaseRecord {
        id: shared::domain::DatabaseId::new_random(),
        tenant: rb.tenant.clone(),
        sealed: ra.sealed.clone(),
        ..rb.clone()
    };
    platform
        .store
        .commit(vec![Change::PutDatabase(forged.clone())])
        .await
        .unwrap();
    let r = query(&platform, &b.member, forged.id.as_str(), "items", json!({})).await;
    assert_eq!(r.status, 500, "{}", r.json);
    assert!(r.json["data"].is_null());
    // The server restarts; the pool replaces its broken connections.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(". localstack/emulator.sh; . localstack/postgres.sh; restart_postgres")
        .current_dir(support::workspace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = query(&platform, &a.member, &db_a, "items", json!({"limit": 3})).await;
    assert_eq!(r.status, 200, "after a restart: {}", r.json);
    assert_eq!(r.json["data"]["row_count"], 3);
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn a_search_path_naming_no_schema_is_a_clear_refusal_not_a_crash() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    // current_schema() is NULL on such a connection.
    let url = format!(
        "{}?options=-csearch_path%3Dnone",
        env("SAMPLE_DATABASE_URL")
    );
    let r = register(&platform, &t, &url).await;
    assert_eq!(r.status, 201, "{}", r.json);
    let db = r.json["data"]["id"].as_str().unwrap().to_string();
    let r = query(&platform, &t.member, &db, "items", json!({})).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (422, Some("DATABASE_ERROR")),
        "{}",
        r.json
    );
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("search path"));
}

/// The owner's connection to the sample database, through the server's Unix socket.
async fn admin() -> tokio_postgres::Client {
    let (admin, conn) = tokio_postgres::connect(&env("PG_ADMIN_URL"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn a_tenant_registers_at_most_its_limit_of_databases() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    // The stack's MaxDatabasesPerTenant is the default, 10.
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(registered(&platform, &t).await);
    }
    let r = register(&platform, &t, &env("SAMPLE_DATABASE_URL")).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (409, Some("DATABASE_LIMIT")),
        "{}",
        r.json
    );
    // Another tenant's count is its own.
    let other = tenant(&platform, &op).await;
    registered(&platform, &other).await;
    // A removal makes room for one.
    let r = platform
        .call(
            "DELETE",
            format!("/tenants/{}/databases/{}", t.slug, ids[0]),
            Some(&t.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    registered(&platform, &t).await;
    let r = register(&platform, &t, &env("SAMPLE_DATABASE_URL")).await;
    assert_eq!(r.status, 409, "{}", r.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn the_database_knows_who_is_asking() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let db = registered(&platform, &t).await;
    let r = query(&platform, &t.member, &db, "whoami", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let tenant_id = platform
        .get(&format!("/tenants/{}", t.slug), Some(&t.owner))
        .await
        .json["data"]["id"]
        .clone();
    assert_eq!(
        r.json["data"]["rows"][0],
        json!({"user_id": t.member_id, "tenant_id": tenant_id, "role": "member"})
    );
    let r = query(&platform, &t.owner, &db, "whoami", json!({})).await;
    assert_eq!(r.json["data"]["rows"][0]["role"], "owner", "{}", r.json);

    // A row-level security policy on app.user_id: each sees only their own notes.
    let admin = admin().await;
    let base = rand_id();
    admin
        .execute(
            "INSERT INTO notes VALUES ($1, $2, 'mine'), ($3, 'someone-else', 'theirs')",
            &[&base, &t.member_id, &(base + 1)],
        )
        .await
        .unwrap();
    let r = query(
        &platform,
        &t.member,
        &db,
        "notes",
        json!({"filter": {"id": {"in": [base, base + 1]}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(ids(&r), vec![i64::from(base)], "only the member's note");
    let r = query(
        &platform,
        &t.owner,
        &db,
        "notes",
        json!({"filter": {"id": {"in": [base, base + 1]}}}),
    )
    .await;
    assert_eq!(ids(&r), Vec::<i64>::new(), "the owner owns neither");
    // The settings last one transaction: a query without them sees nothing of them.
    let leaked: Option<String> = admin
        .query_one("SELECT current_setting('app.user_id', true)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(leaked.unwrap_or_default().is_empty());
}

/// A fresh id for rows a test adds to a shared table.
fn rand_id() -> i32 {
    1_000 + (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as i32
}

/// Every value a row carries, sent back as an `eq` filter on its column, finds that row; a
/// `json` column (no equality in PostgreSQL) is a clear 400 instead.
#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn values_read_from_rows_find_their_rows_again() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let db = registered(&platform, &t).await;
    let mut checked = 0;
    for (table, rows) in [("items", json!([1, 2, 49, 50])), ("kinds", json!([1, 2]))] {
        let r = query(
            &platform,
            &t.member,
            &db,
            table,
            json!({"filter": {"id": {"in": rows}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.json);
        for row in r.json["data"]["rows"].as_array().unwrap() {
            let id = row["id"].as_i64().unwrap();
            for (column, value) in row.as_object().unwrap() {
                if value.is_null() {
                    continue;
                }
                let r = query(
                    &platform,
                    &t.member,
                    &db,
                    table,
                    if column == "id" {
                        json!({"filter": {"id": {"eq": value}}, "columns": ["id"]})
                    } else {
                        // With its id too: the value may be shared by more rows than a page.
                        json!({"filter": {column: {"eq": value}, "id": id}, "columns": ["id"]})
                    },
                )
                .await;
                if column == "doc" {
                    assert_eq!(
                        (r.status, r.json["error"]["code"].as_str()),
                        (400, Some("INVALID_QUERY")),
                        "{table}.{column}: {}",
                        r.json
                    );
                    continue;
                }
                assert_eq!(r.status, 200, "{table}.{column} = {value}: {}", r.json);
                assert!(
                    ids(&r).contains(&id),
                    "{table}.{column} = {value} did not find row {id}: {}",
                    r.json
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 50, "{checked} values checked");
}

#[tokio::test]
#[ignore = "needs the deployed stack and PostgreSQL: run `make test`"]
async fn or_groups_and_an_exact_count() {
    let _server = SERVER.read().await;
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let t = tenant(&platform, &op).await;
    let db = registered(&platform, &t).await;
    // (id < 3 OR (id > 247 AND active)) with a count: ids 1, 2, 248, 250.
    let r = query(
        &platform,
        &t.member,
        &db,
        "items",
        json!({
            "filter": {"or": [{"id": {"lt": 3}}, {"and": [{"id": {"gt": 247}}, {"active": true}]}]},
            "sort": "id",
            "limit": 3,
            "count": "exact",
            "columns": ["id"],
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(ids(&r), vec![1, 2, 248]);
    assert_eq!(r.json["data"]["total"], 4, "{}", r.json);
    assert_eq!(r.json["data"]["next_offset"], 3);
    // No count unless asked.
    let r = query(&platform, &t.member, &db, "items", json!({"limit": 1})).await;
    assert!(r.json["data"].get("total").is_none(), "{}", r.json);
    // Too deep a nesting is refused, naming the rule.
    let deep = json!({"or": [{"and": [{"or": [{"and": [{"id": 1}]}]}]}]});
    let r = query(&platform, &t.member, &db, "items", json!({"filter": deep})).await;
    assert_eq!(r.status, 400, "{}", r.json);
}
