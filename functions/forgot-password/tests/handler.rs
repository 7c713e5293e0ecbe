//! forgot-password on the in-memory store with a recording mailer.

use serde_json::json;
use shared::access::sha256_hex;
use shared::domain::Role;
use shared::http::proxy_event::ProxyRequest;
use shared::mail::RecordingMailer;
use shared::runtime::config::{LinkConfig, ResetConfig};
use shared::store::{MemoryStore, ResetStore, TenantStore, UserStore};

use shared::domain::tenant::RedirectOrigin;
use shared::testing::{self, read};
use std::sync::Arc;

struct Fixture {
    store: Arc<MemoryStore>,
    mailer: Arc<RecordingMailer>,
    app: forgot_password::App,
}

const PLATFORM: &str = "https://console.example.com";

fn fixture(platform_origin: Option<&str>) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(RecordingMailer::default());
    let config = ResetConfig {
        token_ttl_secs: 1800,
        min_response_ms: 1,
    };
    let links = LinkConfig {
        platform_origin: RedirectOrigin::parse(platform_origin.unwrap_or(PLATFORM), false).unwrap(),
    };
    let app = forgot_password::App {
        store: store.clone(),
        mailer: mailer.clone(),
        config,
        links,
    };
    Fixture { store, mailer, app }
}

async fn forgot(f: &Fixture, email: &str, ip: &str) -> (u16, serde_json::Value) {
    let req = ProxyRequest::new("POST", "/auth/forgot-password")
        .json_body(&json!({"email": email}).to_string())
        .from_ip(ip);
    read(&forgot_password::handle(&f.app, req.to_lambda_request()).await)
}

fn token_in(link_text: &str) -> String {
    let start = link_text.find("#token=").expect("link has a token") + 7;
    link_text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn known_unknown_and_disabled_get_the_same_answer_only_known_get_mail() {
    let f = fixture(None);
    let user = testing::user(f.store.as_ref(), false).await;
    let disabled = testing::user_with_status(
        f.store.as_ref(),
        false,
        shared::domain::UserStatus::Disabled,
    )
    .await;
    let known = forgot(&f, user.email.as_str(), "10.0.0.1").await;
    let unknown = forgot(&f, "nobody@example.com", "10.0.0.2").await;
    let inactive = forgot(&f, disabled.email.as_str(), "10.0.0.3").await;
    assert_eq!(known, unknown);
    assert_eq!(known, inactive);
    assert_eq!(known.0, 200);
    // One real mail; the unknown and the inactive account cost the same work, mailed to
    // SES's simulator, and stored nothing.
    let sent = f.mailer.sent();
    let to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(
        to,
        [
            user.email.as_str(),
            forgot_password::DECOY_RECIPIENT,
            forgot_password::DECOY_RECIPIENT
        ]
    );
    assert_eq!(sent[1].subject, sent[0].subject);
    assert!(f
        .store
        .user_by_email(&shared::domain::Email::parse(forgot_password::DECOY_RECIPIENT).unwrap())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn link_uses_the_tenant_primary_origin_and_only_the_hash_is_stored() {
    let f = fixture(Some("https://fallback.example.com"));
    let user = testing::user(f.store.as_ref(), false).await;
    let tenant = testing::tenant(f.store.as_ref(), "Acme Labs", Some((&user, Role::Member))).await;
    let origins = RedirectOrigin::parse_list(
        &[
            "https://app.acme.example".into(),
            "https://other.acme.example".into(),
        ],
        false,
    )
    .unwrap();
    f.store
        .set_redirect_origins(&tenant.id, &origins)
        .await
        .unwrap();
    // A client-supplied redirect and Host are ignored.
    let req = ProxyRequest::new("POST", "/auth/forgot-password")
        .json_body(
            &json!({"email": user.email, "redirect_url": "https://evil.example"}).to_string(),
        )
        .header("host", "evil.example");
    assert_eq!(
        read(&forgot_password::handle(&f.app, req.to_lambda_request()).await).0,
        200
    );
    let mail = &f.mailer.sent()[0];
    assert!(
        mail.text
            .contains("https://app.acme.example/reset-password#token="),
        "{}",
        mail.text
    );
    assert!(mail.subject.contains("Acme Labs") && mail.text.contains("Acme Labs"));
    assert!(!mail.text.contains("evil"));
    let token = token_in(&mail.text);
    assert_eq!(token.len(), 43);
    let stored = f
        .store
        .reset_token(&sha256_hex(token.as_bytes()))
        .await
        .unwrap()
        .expect("stored by hash");
    assert_eq!(stored.user_id, user.id);
    assert!(
        f.store.reset_token(&token).await.unwrap().is_none(),
        "the plaintext is never a key"
    );
}

#[tokio::test]
async fn users_without_a_single_tenant_get_the_platform_origin() {
    let f = fixture(Some("https://portal.example.com"));
    let user = testing::user(f.store.as_ref(), false).await;
    forgot(&f, user.email.as_str(), "10.0.0.3").await;
    assert!(f.mailer.sent()[0]
        .text
        .contains("https://portal.example.com/reset-password#token="));
}

#[tokio::test]
async fn a_tenant_admin_cannot_steer_links_of_users_it_does_not_own_alone() {
    let f = fixture(None);
    let evil = RedirectOrigin::parse_list(&["https://evil.example.net".into()], false).unwrap();
    // A user of two tenants, and an operator with one membership.
    let two = testing::user(f.store.as_ref(), false).await;
    let a = testing::tenant(f.store.as_ref(), "A", Some((&two, Role::Member))).await;
    let b = testing::tenant(f.store.as_ref(), "B", Some((&two, Role::Member))).await;
    let operator = testing::user(f.store.as_ref(), true).await;
    f.store
        .add_membership(&operator.id, &a, Role::Member)
        .await
        .unwrap();
    // The hostile admin of each tenant points its origin at a host they control.
    f.store.set_redirect_origins(&a.id, &evil).await.unwrap();
    f.store.set_redirect_origins(&b.id, &evil).await.unwrap();
    forgot(&f, two.email.as_str(), "10.0.0.5").await;
    forgot(&f, operator.email.as_str(), "10.0.0.6").await;
    let sent = f.mailer.sent();
    assert_eq!(sent.len(), 2);
    for mail in &sent {
        assert!(
            mail.text
                .contains(&format!("{PLATFORM}/reset-password#token=")),
            "{}",
            mail.text
        );
        assert!(!mail.text.contains("evil"));
    }
}

#[tokio::test]
async fn a_refused_request_does_not_count_and_a_slow_trickle_never_blocks_recovery() {
    let f = fixture(None);
    let user = testing::user(f.store.as_ref(), false).await;
    // Three an hour per email: the fourth and later are refused without being counted.
    for i in 0..6 {
        forgot(&f, user.email.as_str(), &format!("10.9.0.{i}")).await;
    }
    assert_eq!(f.mailer.sent().len(), 3);
    let counted = f.store.rate_counter(&shared::access::ratelimit::key(
        &forgot_password::REQUESTS_PER_EMAIL,
        user.email.as_str(),
        shared::runtime::time::now_unix(),
    ));
    assert_eq!(counted.count, 3, "refused requests were counted");
}

#[tokio::test]
async fn a_new_request_invalidates_the_earlier_token() {
    let f = fixture(None);
    let user = testing::user(f.store.as_ref(), false).await;
    forgot(&f, user.email.as_str(), "10.0.1.1").await;
    forgot(&f, user.email.as_str(), "10.0.1.2").await;
    let sent = f.mailer.sent();
    let first = f
        .store
        .reset_token(&sha256_hex(token_in(&sent[0].text).as_bytes()))
        .await
        .unwrap()
        .unwrap();
    let second = f
        .store
        .reset_token(&sha256_hex(token_in(&sent[1].text).as_bytes()))
        .await
        .unwrap()
        .unwrap();
    let current = f
        .store
        .user_by_id(&user.id)
        .await
        .unwrap()
        .unwrap()
        .reset_generation;
    assert_eq!(second.generation, current);
    assert_ne!(
        first.generation, current,
        "the earlier token belongs to a dead generation"
    );
}

#[tokio::test]
async fn rate_limits_silence_mail_but_not_the_answer() {
    let f = fixture(None);
    let user = testing::user(f.store.as_ref(), false).await;
    // 3 per email per hour, from different addresses.
    for n in 0..5 {
        assert_eq!(
            forgot(&f, user.email.as_str(), &format!("10.1.0.{n}"))
                .await
                .0,
            200
        );
    }
    assert_eq!(f.mailer.sent().len(), 3);
    // 5 per address per hour, for different emails.
    let others: Vec<_> = futures_users(&f, 6).await;
    for u in &others {
        assert_eq!(forgot(&f, u.email.as_str(), "10.2.0.1").await.0, 200);
    }
    assert_eq!(f.mailer.sent().len(), 3 + 5);
}

async fn futures_users(f: &Fixture, n: usize) -> Vec<shared::domain::User> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(testing::user(f.store.as_ref(), false).await);
    }
    out
}

#[tokio::test]
async fn malformed_requests_are_400s() {
    let f = fixture(None);
    for body in ["{", "{}", r#"{"email": 3}"#, r#"{"email": "not-an-email"}"#] {
        let req = ProxyRequest::new("POST", "/auth/forgot-password").json_body(body);
        let (status, json) = read(&forgot_password::handle(&f.app, req.to_lambda_request()).await);
        assert_eq!(status, 400, "{body}: {json}");
    }
    assert!(f.mailer.sent().is_empty());
}
