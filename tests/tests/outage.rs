//! An outage of every dependency in the middle of a run: the functions' AWS endpoint is a
//! pass-through (`localstack/outage_proxy.py`, started by `make test`) that this test cuts for
//! 3 seconds while clients create tenants, sign in and list tenants, then restores.
//!
//! During it every answer is a success, an expected client error, or 503 `SERVICE_UNAVAILABLE`
//! with `Retry-After`: never another 5xx, never a valid token or password refused. Afterwards
//! nothing is half-written: every tenant either does not exist or exists with its owner's
//! membership, and every session handed out can be refreshed.
//!
//! It cuts the dependencies of every function, so `make test` runs it alone, last.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{unique_ip, unique_slug, Platform, PASSWORD};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
struct Answer {
    what: &'static str,
    status: u16,
    code: String,
    retry_after: bool,
    slug: Option<String>,
    refresh: Option<String>,
}

fn outage(signal: &str) {
    let pid = std::env::var("OUTAGE_PROXY_PID").expect("OUTAGE_PROXY_PID: run `make test`");
    let ok = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "signalling the outage proxy ({signal})");
}

fn answer(what: &'static str, status: u16, json: &Value, retry_after: bool) -> Answer {
    Answer {
        what,
        status,
        code: json["error"]["code"].as_str().unwrap_or("").to_string(),
        retry_after,
        slug: None,
        refresh: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "cuts every dependency: make test runs it alone, last"]
async fn during_an_outage_only_503_and_nothing_is_half_written() {
    let p = Arc::new(Platform::start().await);
    let operator = p.user(true).await;
    let member = p.user(false).await;
    let op = Arc::new(p.sign_in(operator.email.as_str(), "operator").await);
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));

    let mut tasks = Vec::new();
    // Two clients creating tenants owned by `member`.
    for _ in 0..2 {
        let (p, op, stop, answers) = (p.clone(), op.clone(), stop.clone(), answers.clone());
        let owner = member.email.as_str().to_string();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let slug = unique_slug("outage");
                let body = json!({"slug": slug, "name": "Outage", "owner_email": owner});
                let r = p.call("POST", "/tenants", Some(&op), Some(body), &[]).await;
                let mut a = answer(
                    "create tenant",
                    r.status,
                    &r.json,
                    r.headers.contains_key("retry-after"),
                );
                a.slug = Some(slug);
                answers.lock().await.push(a);
            }
        }));
    }
    // One client signing in (each success is a new session).
    {
        let (p, stop, answers) = (p.clone(), stop.clone(), answers.clone());
        let email = member.email.as_str().to_string();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"email": email, "password": PASSWORD, "audience": "portal"});
                let r = p.post("/auth/login", body, &unique_ip()).await;
                let mut a = answer(
                    "sign in",
                    r.status,
                    &r.json,
                    r.headers.contains_key("retry-after"),
                );
                a.refresh = r.json["data"]["refresh_token"].as_str().map(str::to_string);
                answers.lock().await.push(a);
            }
        }));
    }
    // One client reading with a token issued before the outage.
    {
        let (p, op, stop, answers) = (p.clone(), op.clone(), stop.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = p.get("/tenants?limit=5", Some(&op)).await;
                let a = answer(
                    "list tenants",
                    r.status,
                    &r.json,
                    r.headers.contains_key("retry-after"),
                );
                answers.lock().await.push(a);
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(1500)).await;
    outage("-USR1");
    tokio::time::sleep(Duration::from_secs(3)).await;
    outage("-USR2");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    let answers = answers.lock().await.clone();

    // Only successes, the expected refusals, or a 503 with its code and Retry-After.
    let mut unavailable = 0;
    for a in &answers {
        let expected_ok = match a.what {
            "create tenant" => a.status == 201,
            "sign in" | "list tenants" => a.status == 200,
            _ => unreachable!(),
        };
        if expected_ok {
            continue;
        }
        assert_eq!(a.status, 503, "{} answered {} {}", a.what, a.status, a.code);
        assert_eq!(a.code, "SERVICE_UNAVAILABLE", "{a:?}");
        assert!(a.retry_after, "a 503 without Retry-After: {a:?}");
        unavailable += 1;
    }
    let ok = answers.len() - unavailable;
    println!(
        "outage: {} answers, {ok} ok, {unavailable} 503 ({} tenant creations, {} sign-ins)",
        answers.len(),
        answers.iter().filter(|a| a.what == "create tenant").count(),
        answers.iter().filter(|a| a.what == "sign in").count(),
    );
    assert!(
        unavailable > 0,
        "the outage was never seen: the test proved nothing"
    );
    assert!(
        answers.iter().rev().take(4).any(|a| a.status < 300),
        "nothing succeeded after the dependencies came back"
    );

    // Nothing half-written: a tenant exists whole (record and the owner's membership) or not at
    // all, and one answered 201 exists.
    let (mut whole, mut absent) = (0, 0);
    for a in answers.iter().filter(|a| a.what == "create tenant") {
        let slug = a.slug.as_deref().unwrap();
        let r = p.get(&format!("/tenants/{slug}"), Some(&op)).await;
        match r.status {
            404 => {
                assert_ne!(a.status, 201, "{slug} was created (201) but is gone");
                absent += 1;
            }
            200 => {
                // The owner is an existing account: what the creating transaction wrote for
                // them is an invitation to accept.
                let id = shared::domain::TenantId::parse(r.json["data"]["id"].as_str().unwrap())
                    .unwrap();
                let invited = shared::store::UserStore::invite(&p.store, &member.id, &id)
                    .await
                    .unwrap();
                assert!(
                    invited.is_some_and(|i| i.role == shared::domain::Role::Owner),
                    "{slug} exists without its owner's invitation"
                );
                whole += 1;
            }
            other => panic!("GET /tenants/{slug} after the outage: {other} {}", r.json),
        }
    }
    // Every session handed out is whole: its refresh token works.
    let mut refreshed = 0;
    for refresh in answers.iter().filter_map(|a| a.refresh.as_deref()) {
        let r = p
            .post(
                "/auth/refresh",
                json!({"refresh_token": refresh}),
                &unique_ip(),
            )
            .await;
        assert_eq!(r.status, 200, "a session from during the run: {}", r.json);
        refreshed += 1;
    }
    println!(
        "outage: afterwards {whole} tenants whole, {absent} absent, {refreshed} sessions refreshed"
    );
}
