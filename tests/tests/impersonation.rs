//! Impersonation through the deployed stack: the RFC 8693 exchange and its refusals, the token's
//! read-only default and its one tenant, the audit of every request made with it and the mails
//! to the owners, write access through a recent second factor and an owner's approval (spent
//! once, even by concurrent exchanges), and the stop that every function sees.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use support::{
    add_member, futures_join, ok, operator_token, partner, partner_admin, strong_operator,
    tenant_with_owner, Platform, Reply,
};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT: &str = "urn:saas-control-plane:token-type:user-id";

fn code(r: &Reply) -> (u16, Option<&str>) {
    (r.status, r.json["error"]["code"].as_str())
}

fn exchange_body(user: &str, slug: &str, scope: &str, approval: Option<&str>) -> Value {
    let mut b = json!({
        "grant_type": GRANT,
        "subject_token": user,
        "subject_token_type": SUBJECT,
        "tenant": slug,
        "reason": "customer ticket 4411: the invoice page is blank",
        "scope": scope,
    });
    if let Some(a) = approval {
        b["approval_id"] = json!(a);
    }
    b
}

async fn exchange(platform: &Platform, op: &str, body: Value) -> Reply {
    platform
        .call("POST", "/auth/impersonate", Some(op), Some(body), &[])
        .await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The tenant's audit entries of `action`, as its owner reads them.
async fn audit(platform: &Platform, owner: &str, slug: &str, action: &str) -> Vec<Value> {
    let v = ok(
        platform
            .call(
                "GET",
                format!("/tenants/{slug}/audit?action={action}&limit=100"),
                Some(owner),
                None,
                &[],
            )
            .await,
        "audit",
    )
    .await;
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn impersonation_is_read_only_bounded_to_one_tenant_audited_and_stopped_everywhere() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let member = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let other = tenant_with_owner(&platform, &op, &owner, None).await;
    add_member(&platform, &op, &slug, &member, "member").await;
    add_member(&platform, &op, &other, &member, "member").await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    let member_id = member.id.to_string();

    // Refusals, each before anything is written.
    let r = exchange(
        &platform,
        &owner_token,
        exchange_body(&member_id, &slug, "read", None),
    )
    .await;
    assert_eq!(
        r.status, 401,
        "a portal token is not an operator's: {}",
        r.json
    );
    let mut bad = exchange_body(&member_id, &slug, "read", None);
    bad["grant_type"] = json!("password");
    assert_eq!(exchange(&platform, &op, bad).await.status, 400);
    let mut short = exchange_body(&member_id, &slug, "read", None);
    short["reason"] = json!("because");
    let r = exchange(&platform, &op, short).await;
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(
        !r.json.to_string().contains("because"),
        "the value is not echoed"
    );
    let stranger = platform.user(false).await;
    let r = exchange(
        &platform,
        &op,
        exchange_body(&stranger.id.to_string(), &slug, "read", None),
    )
    .await;
    assert_eq!(
        code(&r),
        (404, Some("USER_NOT_FOUND")),
        "not a member: {}",
        r.json
    );
    let other_op = platform.user(true).await;
    add_member(&platform, &op, &slug, &other_op, "member").await;
    let r = exchange(
        &platform,
        &op,
        exchange_body(&other_op.id.to_string(), &slug, "read", None),
    )
    .await;
    assert_eq!(
        code(&r),
        (403, Some("IMPERSONATION_FORBIDDEN")),
        "an operator: {}",
        r.json
    );
    let r = exchange(
        &platform,
        &op,
        exchange_body(&op_user.id.to_string(), &slug, "read", None),
    )
    .await;
    assert_eq!(
        code(&r),
        (403, Some("IMPERSONATION_FORBIDDEN")),
        "oneself: {}",
        r.json
    );
    let reseller = platform.user(false).await;
    let p = partner(&platform, &op).await;
    partner_admin(&platform, &op, &p, &reseller).await;
    add_member(&platform, &op, &slug, &reseller, "member").await;
    let r = exchange(
        &platform,
        &op,
        exchange_body(&reseller.id.to_string(), &slug, "read", None),
    )
    .await;
    assert_eq!(
        code(&r),
        (403, Some("IMPERSONATION_FORBIDDEN")),
        "a partner admin: {}",
        r.json
    );
    let suspended = tenant_with_owner(&platform, &op, &owner, None).await;
    add_member(&platform, &op, &suspended, &member, "member").await;
    ok(
        platform
            .call(
                "POST",
                format!("/tenants/{suspended}/suspend"),
                Some(&op),
                None,
                &[],
            )
            .await,
        "suspend",
    )
    .await;
    let r = exchange(
        &platform,
        &op,
        exchange_body(&member_id, &suspended, "read", None),
    )
    .await;
    assert_eq!(
        code(&r),
        (403, Some("IMPERSONATION_FORBIDDEN")),
        "a suspended tenant: {}",
        r.json
    );
    assert!(
        audit(&platform, &owner_token, &slug, "impersonation.started")
            .await
            .is_empty()
    );

    // The exchange.
    let r = exchange(
        &platform,
        &op,
        exchange_body(&member_id, &slug, "read", None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let data = &r.json["data"];
    assert_eq!(
        data["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(data["token_type"], "Bearer");
    assert_eq!(data["scope"], "read");
    assert!(
        data.get("refresh_token").is_none(),
        "no refresh token: {data}"
    );
    assert!(data["expires_in"].as_i64().unwrap() <= 900);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let token = data["access_token"].as_str().unwrap().to_string();
    let c = claims(&token);
    assert_eq!(
        (c["sub"].as_str(), c["act"]["sub"].as_str()),
        (Some(member_id.as_str()), Some(op_user.id.as_str()))
    );
    assert!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 900);
    let imp_id = data["impersonation"]["id"].as_str().unwrap().to_string();

    // What the user sees, in their one tenant.
    let mut made = 0;
    let me = ok(
        platform
            .call("GET", "/auth/me", Some(&token), None, &[])
            .await,
        "me",
    )
    .await;
    made += 1;
    assert_eq!(me["user"]["id"], member_id.as_str());
    assert_eq!(me["impersonation"]["operator_id"], op_user.id.as_str());
    assert_eq!(me["memberships"].as_array().unwrap().len(), 1, "{me}");
    let r = platform
        .call(
            "GET",
            format!("/tenants/{slug}/usage"),
            Some(&token),
            None,
            &[],
        )
        .await;
    made += 1;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = platform
        .call(
            "GET",
            format!("/tenants/{other}/usage"),
            Some(&token),
            None,
            &[],
        )
        .await;
    made += 1;
    assert_eq!(
        code(&r),
        (404, Some("TENANT_NOT_FOUND")),
        "another tenant of the user: {}",
        r.json
    );
    let r = platform
        .call(
            "GET",
            format!("/tenants/{slug}/users"),
            Some(&token),
            None,
            &[],
        )
        .await;
    made += 1;
    assert_eq!(
        r.status, 403,
        "a member does not list members, acted as or not: {}",
        r.json
    );
    let r = platform
        .call("GET", "/account", Some(&token), None, &[])
        .await;
    made += 1;
    assert_eq!(r.status, 200, "users reads the account: {}", r.json);

    // Read-only: every change is refused, in every function, and the account never changes.
    for (method, path, body) in [
        (
            "PATCH",
            format!("/tenants/{slug}"),
            json!({"name": "Renamed"}),
        ),
        (
            "POST",
            format!("/tenants/{slug}/users"),
            json!({"email": "x@example.com", "role": "member"}),
        ),
        (
            "POST",
            format!("/tenants/{slug}/storage/presign"),
            json!({"uploads": [{"key": "a.txt", "content_type": "text/plain", "size": 1}]}),
        ),
        (
            "POST",
            "/account/password".to_string(),
            json!({"current_password": "x", "new_password": "y"}),
        ),
        ("PATCH", "/account".to_string(), json!({"name": "X"})),
        ("DELETE", format!("/tenants/{other}/join"), json!({})),
    ] {
        let r = platform
            .call(method, path.clone(), Some(&token), Some(body), &[])
            .await;
        made += 1;
        assert_eq!(
            code(&r),
            (403, Some("IMPERSONATION_READ_ONLY")),
            "{method} {path}: {}",
            r.json
        );
    }
    let t = ok(
        platform
            .call("GET", format!("/tenants/{slug}"), Some(&op), None, &[])
            .await,
        "tenant",
    )
    .await;
    assert_ne!(t["name"], "Renamed");

    // The audit: the start, and every request with both identities.
    let started = audit(&platform, &owner_token, &slug, "impersonation.started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["actor_user_id"], op_user.id.as_str());
    assert_eq!(started[0]["details"]["user_id"], member_id.as_str());
    let requests: Vec<Value> = audit(&platform, &owner_token, &slug, "impersonation.request")
        .await
        .into_iter()
        .filter(|e| e["details"]["impersonation"] == imp_id.as_str())
        .collect();
    assert_eq!(requests.len(), made, "one entry per request: {requests:?}");
    assert!(requests
        .iter()
        .all(|e| e["actor_user_id"] == op_user.id.as_str()
            && e["details"]["user_id"] == member_id.as_str()));
    assert_eq!(
        requests
            .iter()
            .filter(|e| e["details"]["refused"] == true)
            .count(),
        6
    );
    let mail = platform.wait_for_mail(owner.email.as_str(), 1).await;
    assert!(
        mail.iter()
            .any(|(s, body)| s.contains("is acting as a user")
                && body.contains(member.email.as_str())),
        "{mail:?}"
    );

    // Stop: at once in the function that ended it, within the lists' 2-second cache elsewhere.
    let r = platform
        .call("DELETE", "/auth/impersonate", Some(&op), None, &[])
        .await;
    assert_eq!(
        r.status, 401,
        "an operator's own token is not the impersonation: {}",
        r.json
    );
    let stopped = platform
        .call("DELETE", "/auth/impersonate", Some(&token), None, &[])
        .await;
    assert_eq!(stopped.status, 200, "{}", stopped.json);
    let stopped_at = std::time::Instant::now();
    for path in [
        format!("/tenants/{slug}/usage"),
        "/account".to_string(),
        "/auth/me".to_string(),
    ] {
        loop {
            let r = platform
                .call("GET", path.clone(), Some(&token), None, &[])
                .await;
            if r.status == 401 {
                break;
            }
            assert_eq!(r.status, 200, "{path}: {}", r.json);
            assert!(
                stopped_at.elapsed().as_millis() < 4000,
                "{path} still answers after the stop"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "every function refused the stopped token within {} ms",
        stopped_at.elapsed().as_millis()
    );
    let r = platform
        .call("DELETE", "/auth/impersonate", Some(&token), None, &[])
        .await;
    assert_eq!(r.status, 401, "ended once: {}", r.json);
    assert_eq!(
        audit(&platform, &owner_token, &slug, "impersonation.ended")
            .await
            .len(),
        1
    );
    let mail = platform.wait_for_mail(owner.email.as_str(), 2).await;
    assert!(
        mail.iter().any(|(s, _)| s.contains("stopped acting")),
        "{mail:?}"
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn write_access_needs_a_recent_factor_and_an_owners_approval_spent_once() {
    let platform = Platform::start().await;
    let (op_user, op) = strong_operator(&platform).await;
    let (_, weak_op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let member = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    add_member(&platform, &op, &slug, &member, "member").await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    let member_token = platform.sign_in(member.email.as_str(), "portal").await;
    let owner_id = owner.id.to_string();

    let r = exchange(
        &platform,
        &weak_op,
        exchange_body(&owner_id, &slug, "write", None),
    )
    .await;
    assert_eq!(code(&r), (403, Some("MFA_REQUIRED")), "{}", r.json);
    let r = exchange(
        &platform,
        &op,
        exchange_body(&owner_id, &slug, "write", None),
    )
    .await;
    assert_eq!(code(&r), (403, Some("APPROVAL_REQUIRED")), "{}", r.json);

    // The request, and who sees and decides it.
    let ask = |who: String| {
        let (platform, slug, owner_id) = (&platform, slug.clone(), owner_id.clone());
        async move {
            platform
                .call(
                    "POST",
                    format!("/tenants/{slug}/impersonation-approvals"),
                    Some(&who),
                    Some(json!({"user_id": owner_id, "reason": "fix the billing address, ticket 4412"})),
                    &[],
                )
                .await
        }
    };
    let r = ask(owner_token.clone()).await;
    assert_eq!(r.status, 403, "only operators ask: {}", r.json);
    let asked = ok(ask(op.clone()).await, "ask").await;
    assert_eq!(asked["status"], "pending");
    let approval = asked["id"].as_str().unwrap().to_string();
    let mail = platform.wait_for_mail(owner.email.as_str(), 1).await;
    assert!(
        mail.iter()
            .any(|(s, _)| s.contains("asks for write access")),
        "{mail:?}"
    );
    let r = platform
        .call(
            "GET",
            format!("/tenants/{slug}/impersonation-approvals"),
            Some(&member_token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 403, "a member does not see them: {}", r.json);
    let listed = ok(
        platform
            .call(
                "GET",
                format!("/tenants/{slug}/impersonation-approvals"),
                Some(&owner_token),
                None,
                &[],
            )
            .await,
        "list",
    )
    .await;
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == approval.as_str()));
    let r = exchange(
        &platform,
        &op,
        exchange_body(&owner_id, &slug, "write", Some(&approval)),
    )
    .await;
    assert_eq!(
        code(&r),
        (403, Some("APPROVAL_REQUIRED")),
        "still pending: {}",
        r.json
    );
    let decide = |who: String, verb: &'static str| {
        let path = format!("/tenants/{slug}/impersonation-approvals/{approval}/{verb}");
        let platform = &platform;
        async move { platform.call("POST", path, Some(&who), None, &[]).await }
    };
    assert_eq!(
        decide(op.clone(), "approve").await.status,
        403,
        "an operator does not approve"
    );
    assert_eq!(
        decide(member_token.clone(), "approve").await.status,
        403,
        "nor does a member"
    );
    let approved = ok(decide(owner_token.clone(), "approve").await, "approve").await;
    assert_eq!(approved["status"], "approved");
    assert_eq!(
        decide(owner_token.clone(), "decline").await.status,
        409,
        "decided once"
    );

    // Another operator cannot use it; two exchanges at once with it: exactly one passes.
    let (_, third) = strong_operator(&platform).await;
    let r = exchange(
        &platform,
        &third,
        exchange_body(&owner_id, &slug, "write", Some(&approval)),
    )
    .await;
    assert_eq!(code(&r), (403, Some("APPROVAL_REQUIRED")), "{}", r.json);
    let replies = futures_join((0..4).map(|_| {
        exchange(
            &platform,
            &op,
            exchange_body(&owner_id, &slug, "write", Some(&approval)),
        )
    }))
    .await;
    let passed: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        passed.len(),
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.json.clone()))
            .collect::<Vec<_>>()
    );
    assert!(replies
        .iter()
        .filter(|r| r.status != 200)
        .all(|r| code(r) == (403, Some("APPROVAL_REQUIRED"))));
    let token = passed[0].json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(passed[0].json["data"]["scope"], "read write");
    assert_eq!(claims(&token)["act"]["sub"], op_user.id.as_str());

    // Write access: the owner's change goes through, audited with both identities; the
    // account's own changes stay refused.
    let current = platform
        .call("GET", format!("/tenants/{slug}"), Some(&token), None, &[])
        .await;
    let tag = current
        .headers
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    let mut headers = Vec::new();
    if let Some(t) = &tag {
        headers.push(("if-match", t.as_str()));
    }
    let r = platform
        .call(
            "PATCH",
            format!("/tenants/{slug}"),
            Some(&token),
            Some(json!({"name": "Fixed by support"})),
            &headers,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let updated = audit(&platform, &owner_token, &slug, "tenant.updated").await;
    assert!(
        updated
            .iter()
            .any(|e| e["actor_user_id"] == owner_id.as_str()
                && e["details"]["impersonated_by"] == op_user.id.as_str()),
        "{updated:?}"
    );
    let r = platform
        .call(
            "POST",
            "/account/password",
            Some(&token),
            Some(json!({"current_password": "x", "new_password": "y"})),
            &[],
        )
        .await;
    assert_eq!(
        code(&r),
        (403, Some("IMPERSONATION_READ_ONLY")),
        "{}",
        r.json
    );
    let started = audit(&platform, &owner_token, &slug, "impersonation.started").await;
    assert!(
        started
            .iter()
            .any(|e| e["details"]["approval_id"] == approval.as_str()
                && e["details"]["write"] == true)
    );
    assert_eq!(
        platform
            .call("DELETE", "/auth/impersonate", Some(&token), None, &[])
            .await
            .status,
        200
    );
}
