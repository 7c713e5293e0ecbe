//! An impersonation nobody stopped: its token expires (`ImpersonationTtlSeconds`, 30 seconds on
//! the test stack) and every function refuses it, and a reconcile pass (the schedule's, run
//! here at once) records the end in the tenant's audit (`impersonation.ended`, why `expired`)
//! and mails the owners, once.
//!
//! A module of the provisioning tests' binary: its minute of waiting runs beside theirs
//! instead of after them (cargo runs test binaries one after another).

use super::support::{add_member, ok, operator_token, tenant_with_owner, Platform};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn an_expired_impersonation_is_refused_and_its_end_recorded_once() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let member = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    add_member(&platform, &op, &slug, &member, "member").await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    let started = ok(
        platform
            .call(
                "POST",
                "/auth/impersonate",
                Some(&op),
                Some(json!({
                    "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": member.id, "subject_token_type": "urn:saas-control-plane:token-type:user-id",
                    "tenant": slug, "reason": "left running on purpose: it must expire", "scope": "read",
                })),
                &[],
            )
            .await,
        "exchange",
    )
    .await;
    let token = started["access_token"].as_str().unwrap().to_string();
    let id = started["impersonation"]["id"].as_str().unwrap().to_string();
    let ttl = started["expires_in"].as_i64().unwrap();
    assert!(ttl <= 60, "the test stack's tokens are short: {ttl}");
    let usage = format!("/tenants/{slug}/usage");
    assert_eq!(
        platform
            .call("GET", usage.clone(), Some(&token), None, &[])
            .await
            .status,
        200
    );

    // Past its expiry (and the verifiers' 5 seconds of leeway), refused everywhere.
    tokio::time::sleep(Duration::from_secs(ttl as u64 + 6)).await;
    for path in [usage.as_str(), "/auth/me", "/account"] {
        let r = platform.call("GET", path, Some(&token), None, &[]).await;
        assert_eq!(r.status, 401, "{path}: {}", r.json);
    }

    // A reconcile pass records the end once: one is run now (`make reconcile`'s script), rather
    // than waiting up to a minute for the test stack's schedule (which would do the same).
    let root = super::support::workspace();
    let mut pass = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("localstack/reconcile.py"))
        .arg(std::env::var("STACK_FILE").expect("STACK_FILE: run through `make test`"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("reconcile.py runs");
    let deadline = Instant::now() + Duration::from_secs(150);
    let entries = loop {
        let entries = ended(&platform, &owner_token, &slug, &id).await;
        if !entries.is_empty() || Instant::now() > deadline {
            break entries;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    // The pass goes on walking the tenants; its invocation does not need this script.
    let _ = pass.kill();
    let _ = pass.wait();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["details"]["why"], "expired");
    assert_eq!(entries[0]["actor_user_id"], op_user.id.as_str());
    let mail = platform.wait_for_mail(owner.email.as_str(), 2).await;
    assert!(
        mail.iter()
            .any(|(s, b)| s.contains("stopped acting") && b.contains(member.email.as_str())),
        "{mail:?}"
    );
    // A stop after the fact finds it ended.
    let r = platform
        .call("DELETE", "/auth/impersonate", Some(&token), None, &[])
        .await;
    assert_eq!(r.status, 401, "{}", r.json);
    // Another pass later records nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ended(&platform, &owner_token, &slug, &id).await.len(), 1);
}

/// The tenant's `impersonation.ended` entries about impersonation `id`, as its owner reads them.
async fn ended(platform: &Platform, owner_token: &str, slug: &str, id: &str) -> Vec<Value> {
    let v: Value = ok(
        platform
            .call(
                "GET",
                format!("/tenants/{slug}/audit?action=impersonation.ended"),
                Some(owner_token),
                None,
                &[],
            )
            .await,
        "audit",
    )
    .await;
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["impersonation"] == id)
        .cloned()
        .collect()
}
