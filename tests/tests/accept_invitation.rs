//! Invitations, black box: an invited owner or member accepts through
//! `POST /auth/accept-invitation` (the `reset-password` function), once, with the password
//! policy applied; a re-invitation kills the earlier link.

mod support;

use serde_json::json;
use support::{
    ok, operator_token, tenant_with_owner, unique_email, unique_slug, Platform, NEW_PASSWORD,
};

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_new_owner_is_invited_accepts_and_signs_in() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let slug = unique_slug("inv");
    let email = unique_email("owner");
    let created = ok(
        platform
            .call(
                "POST",
                "/tenants",
                Some(&op),
                Some(json!({"slug": slug, "name": "Invited Co", "owner_email": email, "plan": "pro", "domains": ["a.example.com", "A.example.com"]})),
                &[],
            )
            .await,
        "create",
    )
    .await;
    assert_eq!(created["status"], "provisioning");
    assert_eq!(created["plan"], "pro");
    assert_eq!(created["domains"], json!(["a.example.com"]));
    assert_eq!(created["owner"]["invited"], true);
    // The invitation is a provisioning step now: pending in the answer, sent by the run.
    assert_eq!(created["provisioning"]["invitation"]["state"], "pending");
    // TenantCreated went out on the stack's EventBridge bus: its outbox item is gone.
    use shared::store::CommitStore;
    let pending = platform.store.pending_events(100).await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(
        !pending.iter().any(|e| e.detail.contains(id)),
        "the event was not published: {pending:?}"
    );
    // Invited, so no sign-in yet.
    let early = platform
        .post(
            "/auth/login",
            json!({"email": email, "password": NEW_PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(early.status, 401);
    let mail = platform.wait_for_mail(&email, 1).await.remove(0);
    assert!(mail.0.contains("Invited Co"), "{}", mail.0);
    assert!(mail.1.contains("/accept-invitation#token="), "{}", mail.1);
    let token = support::token_in(&mail.1);
    // An invitation token is no reset token.
    let wrong = platform
        .post(
            "/auth/reset-password",
            json!({"token": token, "password": NEW_PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(wrong.status, 400);
    // The password policy applies, and a refusal keeps the token usable.
    let weak = platform
        .post(
            "/auth/accept-invitation",
            json!({"token": token, "password": "short"}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(weak.json["error"]["code"], "WEAK_PASSWORD");
    let accepted = platform
        .post(
            "/auth/accept-invitation",
            json!({"token": token, "password": NEW_PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.json);
    let again = platform
        .post(
            "/auth/accept-invitation",
            json!({"token": token, "password": NEW_PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(again.status, 400, "single use");
    let access = platform.sign_in_with(&email, NEW_PASSWORD, "portal").await;
    let me = platform.get("/auth/me", Some(&access)).await;
    assert_eq!(me.json["data"]["user"]["email_verified"], true);
    assert_eq!(me.json["data"]["memberships"][0]["role"], "owner");
    // The owner manages their tenant now.
    let got = platform
        .call("GET", format!("/tenants/{slug}"), Some(&access), None, &[])
        .await;
    assert_eq!(got.status, 200);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn reinviting_kills_the_earlier_invitation() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let email = unique_email("re");
    let invite = || {
        platform.call(
            "POST",
            format!("/tenants/{slug}/users"),
            Some(&op),
            Some(json!({"email": email, "role": "admin"})),
            &[],
        )
    };
    assert_eq!(invite().await.status, 201);
    let first = support::token_in(&platform.wait_for_mail(&email, 1).await[0].1);
    assert_eq!(invite().await.status, 200, "a re-invitation");
    let second = support::token_in(&platform.wait_for_mail(&email, 2).await[1].1);
    let ip = support::unique_ip();
    let accept = |t: String| {
        platform.post(
            "/auth/accept-invitation",
            json!({"token": t, "password": NEW_PASSWORD}),
            &ip,
        )
    };
    assert_eq!(
        accept(first).await.status,
        400,
        "the earlier invitation is dead"
    );
    assert_eq!(accept(second).await.status, 200);
    // Now a member: inviting again is a conflict.
    assert_eq!(invite().await.status, 409);
}
