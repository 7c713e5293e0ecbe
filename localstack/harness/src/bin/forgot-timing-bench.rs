//! `make bench`, part two: does forgot-password take the same time for a known and an unknown
//! email? Runs the release binary through the local Runtime API against the emulator, sends at
//! least 200 requests of each kind, interleaved (known, unknown, known, ...) from distinct
//! client addresses and distinct emails so no rate limit changes the work done, and reports
//! the medians and their ratio. A second pass with the response floor disabled shows what the
//! floor hides.
//!
//! Usage: forgot-timing-bench [--requests 200] [--functions-dir target/release]

use bytes::Bytes;
use local_harness::runtime_api::{Instance, LaunchSpec, Outcome};
use shared::access::password::hash_password;
use shared::http::proxy_event::ProxyRequest;
use shared::store::DynamoStore;
use std::path::PathBuf;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p95(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64) * 0.95) as usize - 1]
}

async fn pass(
    label: &str,
    floor_ms: &str,
    requests: usize,
    functions_dir: &std::path::Path,
    store: &DynamoStore,
    phc: &str,
) {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "RUST_BACKTRACE" && k != "FORGOT_PASSWORD_MIN_RESPONSE_MS")
        .collect();
    env.push(("FORGOT_PASSWORD_MIN_RESPONSE_MS".into(), floor_ms.into()));
    let instance = Instance::launch(&LaunchSpec {
        function_name: "forgot-password".into(),
        binary: functions_dir.join("forgot-password"),
        env,
        memory_mb: 256,
        timeout: std::time::Duration::from_secs(30),
        log_file: Some(std::env::temp_dir().join("forgot-timing-functions.log")),
    })
    .await
    .expect("forgot-password starts");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut known_emails = Vec::with_capacity(requests);
    for i in 0..requests {
        let user = local_harness::seed_user(store, &format!("b{}-{i}", &run[..12]), phc)
            .await
            .expect("seed user");
        known_emails.push(user.email.to_string());
    }
    let instance = &instance;
    let send = |email: String, ip: String| async move {
        let event = ProxyRequest::new("POST", "/auth/forgot-password")
            .json_body(&format!(r#"{{"email":"{email}"}}"#))
            .from_ip(&ip)
            .to_event()
            .to_string();
        let started = Instant::now();
        let outcome = instance.invoke(Bytes::from(event)).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Outcome::Response(body) => {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON response");
                assert_eq!(v["statusCode"], 200, "{v}");
            }
            other => panic!("no response: {other:?}"),
        }
        ms
    };
    // Warm the instance so neither side pays the cold start.
    send(format!("warm-{run}@example.com"), "10.255.255.254".into()).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for (i, email) in known_emails.into_iter().enumerate() {
        known.push(send(email, format!("10.{}.{}.1", i / 250, i % 250)).await);
        unknown.push(
            send(
                format!("nobody-{run}-{i}@example.com"),
                format!("10.{}.{}.2", i / 250, i % 250),
            )
            .await,
        );
    }
    let (km, um) = (median(&mut known), median(&mut unknown));
    println!(
        "{label:<28} known median {km:>7.2} ms (p95 {:>7.2})   unknown median {um:>7.2} ms (p95 {:>7.2})   known/unknown {:.3}",
        p95(&mut known),
        p95(&mut unknown),
        km / um
    );
    instance.stop().await;
}

#[tokio::main]
async fn main() {
    let mut requests = 200;
    let mut functions_dir = PathBuf::from("target/release");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("every flag takes a value");
        match arg.as_str() {
            "--requests" => requests = value.parse().expect("--requests takes a number"),
            "--functions-dir" => functions_dir = value.into(),
            other => panic!("unknown flag {other}"),
        }
    }
    let sdk = shared::runtime::aws::sdk_config().await;
    let store = DynamoStore::new(
        shared::dynamodb::Client::new(&sdk),
        std::env::var("TABLE_NAME").expect("TABLE_NAME"),
    );
    let phc = hash_password("bench password not used".into())
        .await
        .expect("hash");
    println!("forgot-password latency, {requests} known and {requests} unknown emails, interleaved, one warm instance");
    let floor = std::env::var("FORGOT_PASSWORD_MIN_RESPONSE_MS").unwrap_or_else(|_| "400".into());
    pass(
        &format!("with {floor} ms floor"),
        &floor,
        requests,
        &functions_dir,
        &store,
        &phc,
    )
    .await;
    pass(
        "floor disabled (1 ms)",
        "1",
        requests,
        &functions_dir,
        &store,
        &phc,
    )
    .await;
}
