//! End-to-end latency of real requests over HTTP, against a running platform (whatever serves
//! it): a sign-in with the right password, a reset request for a known email, and a
//! redirect-origins read. Seeds its own users and tenant through the store (`TABLE_NAME`,
//! `AWS_ENDPOINT_URL`) and prints p50/p95 of each, after one warm-up call.
//!
//! Usage: http-bench --base URL [--requests N]

use serde_json::{json, Value};
use shared::access::password::hash_password;
use shared::store::DynamoStore;

const PASSWORD: &str = "bench horse battery staple";

use local_harness::pct;

#[tokio::main]
async fn main() {
    let (base, n) = local_harness::base_and_count("--requests", 50);
    let sdk = shared::runtime::aws::sdk_config().await;
    let store = DynamoStore::new(
        shared::dynamodb::Client::new(&sdk),
        std::env::var("TABLE_NAME").expect("TABLE_NAME"),
    );
    let hash = hash_password(PASSWORD.into()).await.unwrap();
    let mut users = Vec::new();
    for _ in 0..=n + 1 {
        let u = local_harness::seed_user(&store, "http-bench", &hash)
            .await
            .expect("user stored");
        users.push(u);
    }
    let owner = &users[0];
    let tenant = local_harness::seed_tenant(&store, "HTTP bench", owner)
        .await
        .expect("tenant stored");
    let http = local_harness::Http::new(&base);
    let send =
        |method: &'static str, path: &str, body: Option<Value>, auth: Option<&str>, ip: String| {
            let (http, path, auth) = (&http, path.to_string(), auth.map(str::to_string));
            async move {
                let (status, ms, json) = http.send(method, &path, body, auth.as_deref(), &ip).await;
                assert_eq!(status, 200, "{json}");
                (ms, json)
            }
        };
    let ip = |i: usize| format!("10.{}.{}.{}", 200 + i / 62500, (i / 250) % 250, i % 250 + 1);
    let login = json!({"email": owner.email, "password": PASSWORD});
    let (_, first) = send("POST", "/auth/login", Some(login.clone()), None, ip(0)).await;
    let access = first["data"]["access_token"].as_str().unwrap().to_string();
    let mut sign_in = Vec::new();
    for i in 0..n {
        sign_in.push(
            send("POST", "/auth/login", Some(login.clone()), None, ip(i))
                .await
                .0,
        );
    }
    let mut forgot = Vec::new();
    send(
        "POST",
        "/auth/forgot-password",
        Some(json!({"email": users[1].email})),
        None,
        ip(1),
    )
    .await;
    for i in 0..n {
        let body = json!({"email": users[i + 2].email});
        forgot.push(
            send(
                "POST",
                "/auth/forgot-password",
                Some(body),
                None,
                ip(1000 + i),
            )
            .await
            .0,
        );
    }
    let path = format!("/tenants/{}/redirect-origins", tenant.slug);
    let mut origins = Vec::new();
    for i in 0..=n {
        let ms = send("GET", &path, None, Some(&access), ip(i)).await.0;
        if i > 0 {
            origins.push(ms);
        }
    }
    println!("over HTTP at {base}, {n} requests each, after one warm-up");
    for (name, v) in [
        ("sign-in", sign_in),
        ("forgot-password (known email)", forgot),
        ("GET redirect-origins", origins),
    ] {
        println!(
            "  {:<32} p50 {:>8.2} ms   p95 {:>8.2} ms",
            name,
            pct(v.clone(), 50.0),
            pct(v, 95.0)
        );
    }
}
