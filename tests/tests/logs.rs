//! What the functions write to their logs, black box: every secret a request carries or a
//! function makes (passwords, access and refresh tokens, reset tokens, password hashes) is
//! absent, so is the email address (lines name users by id), and every line is JSON, naming
//! its request when written while serving one.

mod support;

use serde_json::{json, Value};
use shared::access::sha256_hex;
use shared::store::UserStore;
use support::{unique_ip, Platform, NEW_PASSWORD, PASSWORD};

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn secrets_never_reach_the_logs() {
    let p = Platform::start().await;
    let since_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 1000;
    let ip = unique_ip();
    let user = p.user(false).await;
    let email = user.email.as_str().to_string();

    // Sign in, use and rotate the session.
    let login = p
        .post(
            "/auth/login",
            json!({"email": email, "password": PASSWORD}),
            &ip,
        )
        .await;
    assert_eq!(login.status, 200);
    let access = login.json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = login.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(p.get("/auth/me", Some(&access)).await.status, 200);
    let rotated = p
        .post("/auth/refresh", json!({"refresh_token": refresh}), &ip)
        .await;
    assert_eq!(rotated.status, 200);
    let refresh2 = rotated.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // Reuse (a theft signal, logged as such) once the grace window is over, and failures
    // that carry secrets.
    let grace: u64 = std::env::var("REFRESH_REUSE_GRACE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    tokio::time::sleep(std::time::Duration::from_millis(grace * 1000 + 1100)).await;
    assert_eq!(
        p.post("/auth/refresh", json!({"refresh_token": refresh}), &ip)
            .await
            .status,
        401
    );
    let wrong = "wrong-password-in-a-failed-attempt";
    p.post(
        "/auth/login",
        json!({"email": email, "password": wrong}),
        &ip,
    )
    .await;
    let malformed = "secret-inside-malformed-json";
    p.send(
        "POST",
        "/auth/login",
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", &ip),
        ],
        Some(format!(r#"{{"email":"{email}","password":"{malformed}""#).into_bytes()),
    )
    .await;
    assert_eq!(
        p.get("/auth/me", Some("eyJhbGciOiJub25lIn0.e30.forged-signature"))
            .await
            .status,
        401
    );

    // Recover the password, including a weak attempt and a replayed one.
    let reset_token = p.first_reset_token(&email).await;
    let weak = "password1234";
    let refused = p
        .post(
            "/auth/reset-password",
            json!({"token": reset_token, "password": weak}),
            &ip,
        )
        .await;
    assert_eq!(refused.status, 400);
    let reset = p
        .post(
            "/auth/reset-password",
            json!({"token": reset_token, "password": NEW_PASSWORD}),
            &ip,
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.json);
    let stored = p.store.user_by_id(&user.id).await.unwrap().unwrap();

    // The deployed functions' lines since this test began, from the emulator's CloudWatch Logs
    // (other tests' lines among them: none of those may carry a secret either). Lambda's own
    // START/END/REPORT lines are the platform's, not ours.
    let all = p.function_logs(since_ms);
    let lines: Vec<&str> = all
        .iter()
        .map(|l| l.trim())
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("START RequestId")
                && !l.starts_with("END RequestId")
                && !l.starts_with("REPORT RequestId")
        })
        .collect();
    let logs = lines.join("\n");
    assert!(
        lines.len() >= 10,
        "the functions' logs were not captured: {logs}"
    );
    let mut in_requests = 0;
    for line in &lines {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
        // Lines written while serving a request carry its span, and the span its id.
        if let Some(span) = entry.get("span") {
            assert!(span["request_id"].is_string(), "no request id: {line}");
            in_requests += 1;
        }
    }
    assert!(in_requests >= 10, "too few request log lines: {logs}");
    let secrets = [
        ("the password", PASSWORD.to_string()),
        ("the new password", NEW_PASSWORD.to_string()),
        ("a wrong password", wrong.to_string()),
        ("a weak password", weak.to_string()),
        ("a secret in malformed JSON", malformed.to_string()),
        ("the access token's signature", signature(&access)),
        ("a refresh token", refresh.clone()),
        ("a rotated refresh token", refresh2.clone()),
        ("the reset token", reset_token.clone()),
        ("the reset token's hash", sha256_hex(reset_token.as_bytes())),
        ("the refresh token's hash", sha256_hex(refresh.as_bytes())),
        ("a password hash", stored.password_hash.clone()),
        ("any Argon2 hash", "$argon2id$".to_string()),
        ("a forged token", "forged-signature".to_string()),
        // Not a secret, but personal data: log lines name users by id.
        ("the email address", email.clone()),
    ];
    for (what, secret) in secrets {
        assert!(!secret.is_empty());
        assert!(!logs.contains(&secret), "{what} appears in the logs");
    }
    p.shutdown().await;
}

fn signature(jwt: &str) -> String {
    jwt.rsplit('.').next().unwrap().to_string()
}

/// The EMF documents among the functions' log lines since `since_ms`.
fn metric_documents(p: &Platform, since_ms: i64) -> Vec<Value> {
    p.function_logs(since_ms)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn requests_and_provisioning_steps_emit_embedded_metrics() {
    let p = Platform::start().await;
    let since_ms = shared::runtime::time::now_ms() - 1000;
    let op = p.user(true).await;
    let token = p.sign_in(op.email.as_str(), "operator").await;
    let wrong = p
        .post(
            "/auth/login",
            json!({"email": op.email, "password": "not the password at all"}),
            &unique_ip(),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let request_id = wrong.headers["x-request-id"].to_str().unwrap().to_string();
    let slug = support::unique_slug("emf");
    let created = p
        .call(
            "POST",
            "/tenants",
            Some(&token),
            Some(json!({"slug": slug, "name": "Metrics", "owner_email": support::unique_email("emf")})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    p.wait_for_status(&slug, &token, "active").await;
    // The emulator collects a function's last lines when that instance next runs: until every
    // document is in, call the functions again (a health check, one more tenant).
    let mut docs = Vec::new();
    for round in 0..20 {
        docs = metric_documents(&p, since_ms);
        let have_request = docs.iter().any(|d| d["request_id"] == request_id.as_str());
        let have_steps = ["storage", "secrets", "invitation"].iter().all(|s| {
            docs.iter()
                .any(|d| d["Step"] == *s && d["Outcome"] == "created")
        });
        if have_request && have_steps {
            break;
        }
        p.get("/health/live", None).await;
        if round % 5 == 4 {
            let flush = support::unique_slug("emf-flush");
            p.call(
                "POST",
                "/tenants",
                Some(&token),
                Some(json!({"slug": flush, "name": "Flush", "owner_email": support::unique_email("emf")})),
                &[],
            )
            .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // The refused sign-in: counted under its error code, with its latency and request id.
    let refused = docs
        .iter()
        .find(|d| d["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no metrics for request {request_id}: {docs:?}"));
    assert_eq!(refused["Code"], "INVALID_CREDENTIALS", "{refused}");
    assert_eq!(refused["Requests"], 1.0);
    assert!(refused["Latency"].as_f64().unwrap() > 0.0);
    assert_eq!(refused["status"], 401);
    let spec = &refused["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(spec["Namespace"], "SaasControlPlane");
    assert_eq!(
        spec["Dimensions"],
        json!([["Function"], ["Function", "Code"]])
    );
    assert!(
        refused["Function"].as_str().unwrap().contains("Login"),
        "{refused}"
    );
    // Each provisioning step of the new tenant: its outcome.
    for step in ["storage", "secrets", "invitation"] {
        assert!(
            docs.iter()
                .any(|d| d["Step"] == step && d["Outcome"] == "created" && d["StepRuns"] == 1.0),
            "no metrics for the {step} step: {docs:?}"
        );
    }
    // Cold starts are counted once per process (on requests and steps).
    assert!(docs
        .iter()
        .filter(|d| d.get("Requests").is_some() || d.get("StepRuns").is_some())
        .all(|d| d["ColdStart"] == 0.0 || d["ColdStart"] == 1.0));
    // Each request the gate admitted to a tenant counts for that tenant (its cost).
    let tenant_id = p
        .call("GET", format!("/tenants/{slug}"), Some(&token), None, &[])
        .await
        .json["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mine: Vec<&Value> = docs
        .iter()
        .filter(|d| d["TenantId"] == tenant_id.as_str() && d["TenantRequests"] == 1.0)
        .collect();
    assert!(
        !mine.is_empty(),
        "no TenantRequests for {tenant_id}: {docs:?}"
    );
    assert_eq!(
        mine[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["TenantId"]])
    );
}
