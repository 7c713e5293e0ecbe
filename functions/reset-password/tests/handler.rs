//! reset-password on the in-memory store with a recording mailer.

use serde_json::json;
use shared::access::opaque;
use shared::access::password::verify_password;
use shared::domain::{User, UserStatus};
use shared::http::proxy_event::ProxyRequest;
use shared::mail::RecordingMailer;
use shared::store::{CommitStore, MemoryStore, ResetStore, TenantStore, UserStore};
use shared::testing::{self, read};
use std::sync::Arc;

const NEW_PASSWORD: &str = "violet tram umbrella 42";

fn app() -> (Arc<MemoryStore>, Arc<RecordingMailer>, reset_password::App) {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(RecordingMailer::default());
    (
        store.clone(),
        mailer.clone(),
        reset_password::App {
            store,
            mailer,
            links: shared::runtime::config::LinkConfig {
                platform_origin: shared::domain::tenant::RedirectOrigin::parse(
                    "https://console.example.com",
                    false,
                )
                .unwrap(),
            },
        },
    )
}

/// Issues a token the way forgot-password does and returns its plaintext.
async fn token_for(store: &MemoryStore, user: &User, expires_at: i64) -> String {
    let fresh = store.user_by_id(&user.id).await.unwrap().unwrap();
    let minted = opaque::mint();
    store
        .create_reset_token(
            &fresh,
            &minted.hash,
            expires_at,
            shared::store::TokenPurpose::Reset,
        )
        .await
        .unwrap();
    minted.plaintext
}

async fn reset(
    app: &reset_password::App,
    token: &str,
    password: &str,
    ip: &str,
) -> (u16, serde_json::Value) {
    let req = ProxyRequest::new("POST", "/auth/reset-password")
        .json_body(&json!({"token": token, "password": password}).to_string())
        .from_ip(ip);
    read(&reset_password::handle(app, req.to_lambda_request()).await)
}

fn later() -> i64 {
    shared::runtime::time::now_unix() + 1800
}

#[tokio::test]
async fn reset_changes_the_password_ends_sessions_and_sends_a_notice() {
    let (store, mailer, app) = app();
    let user = testing::user(store.as_ref(), false).await;
    let token = token_for(&store, &user, later()).await;
    let (status, body) = reset(&app, &token, NEW_PASSWORD, "10.0.0.1").await;
    assert_eq!(
        (status, body["data"]["password_reset"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let after = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert!(
        verify_password(NEW_PASSWORD.into(), Some(after.password_hash.clone()))
            .await
            .unwrap()
    );
    assert!(
        !verify_password(testing::PASSWORD.into(), Some(after.password_hash))
            .await
            .unwrap()
    );
    assert_eq!(
        after.session_epoch,
        user.session_epoch + 1,
        "every refresh token is dead"
    );
    assert!(
        body["data"].get("access_token").is_none(),
        "no automatic sign-in"
    );
    let sent = mailer.sent();
    assert_eq!((sent.len(), &sent[0].to), (1, &user.email));
    assert!(sent[0].subject.contains("changed"));
    // Single use.
    assert_eq!(
        reset(&app, &token, "another fine passphrase", "10.0.0.1")
            .await
            .1["error"]["code"],
        "INVALID_OR_EXPIRED_TOKEN"
    );
}

#[tokio::test]
async fn every_bad_token_gets_the_same_400() {
    let (store, _, app) = app();
    let user = testing::user(store.as_ref(), false).await;
    let expired = token_for(&store, &user, shared::runtime::time::now_unix() - 1).await;
    let superseded = token_for(&store, &user, later()).await;
    let _current = token_for(&store, &user, later()).await;
    let disabled_user =
        testing::user_with_status(store.as_ref(), false, UserStatus::Disabled).await;
    let disabled_token = token_for(&store, &disabled_user, later()).await;
    let unknown = opaque::mint().plaintext;
    let mut answers = Vec::new();
    let tokens = [
        expired.as_str(),
        superseded.as_str(),
        disabled_token.as_str(),
        unknown.as_str(),
        "malformed",
        "",
    ];
    for (i, t) in tokens.iter().enumerate() {
        answers.push(reset(&app, t, NEW_PASSWORD, &format!("10.0.1.{i}")).await);
    }
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert_eq!(
        (answers[0].0, answers[0].1["error"]["code"].as_str()),
        (400, Some("INVALID_OR_EXPIRED_TOKEN"))
    );
}

#[tokio::test]
async fn weak_passwords_are_refused_without_spending_the_token() {
    let (store, _, app) = app();
    let user = testing::user(store.as_ref(), false).await;
    let token = token_for(&store, &user, later()).await;
    let upper_email = user.email.as_str().to_uppercase();
    let long = "x".repeat(129);
    for (password, reason) in [
        ("short", "at least 12"),
        (long.as_str(), "at most 128"),
        ("Password1234", "common"),
        (upper_email.as_str(), "email"),
    ] {
        let (status, body) = reset(&app, &token, password, "10.0.2.1").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("WEAK_PASSWORD")),
            "{password}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{body}"
        );
    }
    assert_eq!(reset(&app, &token, NEW_PASSWORD, "10.0.2.1").await.0, 200);
}

#[tokio::test]
async fn ten_attempts_per_minute_per_address_then_429() {
    let (_, _, app) = app();
    for _ in 0..10 {
        assert_eq!(
            reset(&app, "malformed", NEW_PASSWORD, "10.9.9.9").await.0,
            400
        );
    }
    let req = ProxyRequest::new("POST", "/auth/reset-password")
        .json_body(r#"{"token":"x","password":"y"}"#)
        .from_ip("10.9.9.9");
    let resp = reset_password::handle(&app, req.to_lambda_request()).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        reset(&app, "malformed", NEW_PASSWORD, "10.9.9.10").await.0,
        400
    );
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_gets_the_first_success() {
    let (store, mailer, app) = app();
    let user = testing::user(store.as_ref(), false).await;
    let token = token_for(&store, &user, later()).await;
    let send = |key: Option<&str>, password: &str| {
        let mut req = ProxyRequest::new("POST", "/auth/reset-password")
            .json_body(&json!({"token": token, "password": password}).to_string())
            .from_ip("10.0.9.1");
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.to_lambda_request()
    };
    let first = reset_password::handle(&app, send(Some("retry-1"), NEW_PASSWORD)).await;
    assert_eq!(read(&first).0, 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let replay = reset_password::handle(&app, send(Some("retry-1"), NEW_PASSWORD)).await;
    assert_eq!(read(&replay), read(&first));
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
    // The work was done once: one notice, one session-epoch bump.
    assert_eq!(mailer.sent().len(), 1);
    let after = store.user_by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(after.session_epoch, user.session_epoch + 1);
    // Without the key, or with another one, the token is spent.
    let (status, body) = read(&reset_password::handle(&app, send(None, NEW_PASSWORD)).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_OR_EXPIRED_TOKEN"))
    );
    let (status, _) =
        read(&reset_password::handle(&app, send(Some("retry-2"), NEW_PASSWORD)).await);
    assert_eq!(status, 400);
    // The same key with another body is refused, and changes nothing.
    let (status, body) =
        read(&reset_password::handle(&app, send(Some("retry-1"), "another long password 7")).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("IDEMPOTENCY_KEY_REUSED"))
    );
    let (status, body) = read(&reset_password::handle(&app, send(Some(" "), NEW_PASSWORD)).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_IDEMPOTENCY_KEY"))
    );
}

/// `method /auth/reset-password` from `origin`, the raw response.
async fn from_origin(
    app: &reset_password::App,
    method: &str,
    resource: &str,
    origin: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let mut req = ProxyRequest::new(method, resource).header("origin", origin);
    if method == "OPTIONS" {
        req = req.header("access-control-request-method", "POST");
    } else {
        req = req.json_body(&json!({"token": "x", "password": NEW_PASSWORD}).to_string());
    }
    reset_password::handle(app, req.to_lambda_request()).await
}

fn granted(resp: &lambda_http::Response<lambda_http::Body>) -> Option<String> {
    resp.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_live_tenants_registered_origin_may_call_the_mailed_link_routes_from_the_browser() {
    let (store, _, app) = app();
    let tenant = testing::tenant(store.as_ref(), "Acme", None).await;
    let mine = "https://app.acme.example";
    let other = "https://evil.example";
    store
        .set_redirect_origins(
            &tenant.id,
            &[shared::domain::tenant::RedirectOrigin::parse(mine, false).unwrap()],
        )
        .await
        .unwrap();
    for resource in ["/auth/reset-password", "/auth/accept-invitation"] {
        // The preflight: granted for the registered origin, with what the browser asked for.
        let pre = from_origin(&app, "OPTIONS", resource, mine).await;
        assert_eq!(pre.status(), 204);
        assert_eq!(granted(&pre).as_deref(), Some(mine));
        let methods = pre.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap();
        assert!(methods.contains("POST"), "{methods}");
        assert!(pre.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type"));
        // And the answer itself (here a refused token) carries the grant, so the page reads it.
        let answer = from_origin(&app, "POST", resource, mine).await;
        assert_eq!(answer.status(), 400);
        assert_eq!(granted(&answer).as_deref(), Some(mine));
        // Any other origin: no grant on either (the browser refuses).
        let pre = from_origin(&app, "OPTIONS", resource, other).await;
        assert_eq!(pre.status(), 204);
        assert_eq!(granted(&pre), None);
        assert_eq!(
            granted(&from_origin(&app, "POST", resource, other).await),
            None
        );
        // The platform's own origin keeps its grant.
        let pre = from_origin(&app, "OPTIONS", resource, "https://console.example.com").await;
        assert_eq!(
            granted(&pre),
            None,
            "not configured in this process's CORS list"
        );
    }
    // Not on the third route: its link is the platform's alone.
    let answer = from_origin(&app, "POST", "/auth/verify-email", mine).await;
    assert_eq!(granted(&answer), None);
    // A suspended tenant's origin is no longer granted.
    let mut suspended = store.tenant_by_id(&tenant.id).await.unwrap().unwrap();
    suspended.status = shared::domain::tenant::TenantStatus::Suspended;
    store
        .commit(vec![shared::store::changes::Change::UpdateTenant {
            expect_version: suspended.version,
            tenant: suspended,
        }])
        .await
        .unwrap();
    let pre = from_origin(&app, "OPTIONS", "/auth/reset-password", mine).await;
    assert_eq!(granted(&pre), None);
    // An origin removed from the list is no longer granted either.
    let live = testing::tenant(store.as_ref(), "Beta", None).await;
    let beta = "https://beta.example";
    let beta_origin = shared::domain::tenant::RedirectOrigin::parse(beta, false).unwrap();
    store
        .set_redirect_origins(&live.id, &[beta_origin])
        .await
        .unwrap();
    assert_eq!(
        granted(&from_origin(&app, "OPTIONS", "/auth/reset-password", beta).await).as_deref(),
        Some(beta)
    );
    store.set_redirect_origins(&live.id, &[]).await.unwrap();
    assert_eq!(
        granted(&from_origin(&app, "OPTIONS", "/auth/reset-password", beta).await),
        None
    );
}
