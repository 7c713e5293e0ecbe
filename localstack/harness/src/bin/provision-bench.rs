//! Time from `POST /tenants` to `active`, over HTTP against a running platform: the request,
//! the event on EventBridge, the state machine and its five provision-step invocations (claim,
//! three steps in parallel, finish). Seeds its own operator through the store (`TABLE_NAME`,
//! `AWS_ENDPOINT_URL`), creates tenants one after another (after one warm-up), and polls each
//! every 10 ms. The baseline, from the same run, is the `POST /tenants` request alone.
//!
//! Usage: provision-bench --base URL [--tenants N]

use local_harness::pct;
use serde_json::{json, Value};
use shared::access::password::hash_password;
use shared::store::{DynamoStore, UserStore};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench horse battery staple";

#[tokio::main]
async fn main() {
    let (base, n) = local_harness::base_and_count("--tenants", 20);
    let sdk = shared::runtime::aws::sdk_config().await;
    let store = DynamoStore::new(
        shared::dynamodb::Client::new(&sdk),
        std::env::var("TABLE_NAME").expect("TABLE_NAME"),
    );
    let hash = hash_password(PASSWORD.into()).await.unwrap();
    let op = shared::domain::User {
        platform_admin: true,
        ..local_harness::new_user("provision-bench", &hash)
    };
    store.create_user(&op).await.expect("operator stored");
    let http = local_harness::Http::new(&base);
    let send = |method: &'static str, path: String, body: Option<Value>, auth: Option<String>| {
        let http = &http;
        async move {
            let (status, _, json) = http
                .send(method, &path, body, auth.as_deref(), "10.250.0.1")
                .await;
            assert!((200..300).contains(&status), "{status}: {json}");
            json
        }
    };
    let login = json!({"email": op.email, "password": PASSWORD, "audience": "operator"});
    let token = send("POST", "/auth/login".into(), Some(login), None).await["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (mut posts, mut to_active) = (Vec::new(), Vec::new());
    for i in 0..=n {
        let slug = format!("pb{}-{i}", &run[..8]);
        let body =
            json!({"slug": slug, "name": "Bench", "owner_email": format!("{slug}@example.com")});
        let started = Instant::now();
        send("POST", "/tenants".into(), Some(body), Some(token.clone())).await;
        let posted = started.elapsed();
        loop {
            let t = send("GET", format!("/tenants/{slug}"), None, Some(token.clone())).await;
            if t["data"]["status"] == "active" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{slug} never became active: {t}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let active = started.elapsed();
        if i > 0 {
            posts.push(posted.as_secs_f64() * 1000.0);
            to_active.push(active.as_secs_f64() * 1000.0);
        }
    }
    let (post50, active50, active95) = (
        pct(posts.clone(), 50.0),
        pct(to_active.clone(), 50.0),
        pct(to_active, 95.0),
    );
    println!("provisioning at {base}, {n} tenants one after another, after one warm-up");
    println!(
        "  {:<32} p50 {:>8.2} ms   p95 {:>8.2} ms",
        "POST /tenants (baseline)",
        post50,
        pct(posts, 95.0)
    );
    println!(
        "  {:<32} p50 {:>8.2} ms   p95 {:>8.2} ms   ({:.1}x the POST at p50)",
        "POST /tenants -> active",
        active50,
        active95,
        active50 / post50
    );
}
