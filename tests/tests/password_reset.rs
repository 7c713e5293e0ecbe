//! Password recovery over HTTP, black box: the deployed stack on the emulator (API Gateway ->
//! the real binaries as Lambda functions -> DynamoDB, SES).

mod support;

use serde_json::json;
use shared::domain::tenant::RedirectOrigin;
use shared::domain::Role;
use shared::store::TenantStore;
use support::{token_in, unique_ip, Platform, NEW_PASSWORD, PASSWORD};

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn full_recovery_flow_through_the_mail() {
    let p = Platform::start().await;
    let ip = unique_ip();
    let owner = p.user(false).await;
    let tenant = shared::testing::tenant(&p.store, "Acme Labs", Some((&owner, Role::Owner))).await;
    // The one who recovers: an admin of this tenant alone, whose links follow its origins.
    let user = p.user(false).await;
    p.store
        .add_membership(&user.id, &tenant, Role::Admin)
        .await
        .unwrap();

    // The owner sets the tenant's redirect origins over HTTP.
    let login = p
        .post(
            "/auth/login",
            json!({"email": owner.email, "password": PASSWORD}),
            &ip,
        )
        .await;
    assert_eq!(login.status, 200);
    let access = login.json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let user_login = p
        .post(
            "/auth/login",
            json!({"email": user.email, "password": PASSWORD}),
            &ip,
        )
        .await;
    assert_eq!(user_login.status, 200);
    let old_refresh = user_login.json["data"]["refresh_token"].clone();
    let put = p
        .send(
            "PUT",
            &format!("/tenants/{}/redirect-origins", tenant.slug),
            &[
                ("authorization", &format!("Bearer {access}")),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"origins": ["https://app.acme.example", "http://localhost:5173"]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.json);
    let got = p
        .get(
            &format!("/tenants/{}/redirect-origins", tenant.slug),
            Some(&access),
        )
        .await;
    assert_eq!(got.json["data"]["primary"], "https://app.acme.example");

    let forgot = p
        .post("/auth/forgot-password", json!({"email": user.email}), &ip)
        .await;
    assert_eq!(forgot.status, 200);
    // First the notice of the owner's origin change (the user is an admin), then the reset.
    let mail = p.wait_for_mail(user.email.as_str(), 2).await;
    assert!(mail[0].1.contains("redirect origins"), "{}", mail[0].1);
    let (subject, body) = &mail[1];
    assert!(subject.contains("Acme Labs"), "{subject}");
    assert!(
        body.contains("https://app.acme.example/reset-password#token="),
        "{body}"
    );
    assert!(body.contains(r#"<meta name="referrer" content="no-referrer">"#));
    let token = token_in(body);

    // The link lands on the tenant's own page, which calls the API from the browser: its
    // preflight is granted (the function answers it from the tenant's registered origins);
    // another origin's is not, and neither is the route whose link is the platform's alone.
    let tenant_page = "https://app.acme.example";
    async fn preflight(p: &Platform, origin: &str, path: &str) -> support::Reply {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,idempotency-key",
            ),
        ];
        p.send("OPTIONS", path, &headers, None).await
    }
    for path in ["/auth/reset-password", "/auth/accept-invitation"] {
        let granted = preflight(&p, tenant_page, path).await;
        assert!(
            (200..300).contains(&granted.status),
            "{path}: {}",
            granted.status
        );
        assert_eq!(
            granted.headers["access-control-allow-origin"], tenant_page,
            "{path}"
        );
        let allowed = granted.headers["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(allowed.contains("idempotency-key"), "{allowed}");
        let refused = preflight(&p, "https://evil.example", path).await;
        assert!(
            refused.headers.get("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    let other_route = p
        .send(
            "POST",
            "/auth/verify-email",
            &[
                ("origin", tenant_page),
                ("content-type", "application/json"),
            ],
            Some(json!({"token": "x"}).to_string().into_bytes()),
        )
        .await;
    assert!(other_route
        .headers
        .get("access-control-allow-origin")
        .is_none());

    // Sent with an Idempotency-Key, as a client that retries on a lost reply would, from the
    // tenant's page (the answer carries the grant, so the page may read it).
    let reset_body = json!({"token": token, "password": NEW_PASSWORD})
        .to_string()
        .into_bytes();
    let keyed = [
        ("content-type", "application/json"),
        ("idempotency-key", "reset-attempt-1"),
        ("x-forwarded-for", ip.as_str()),
        ("origin", tenant_page),
    ];
    let reset = p
        .send(
            "POST",
            "/auth/reset-password",
            &keyed,
            Some(reset_body.clone()),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.json);
    assert_eq!(reset.headers["access-control-allow-origin"], tenant_page);
    assert!(reset.json["data"].get("access_token").is_none());
    let retry = p
        .send("POST", "/auth/reset-password", &keyed, Some(reset_body))
        .await;
    assert_eq!((retry.status, &retry.json), (200, &reset.json));
    assert_eq!(retry.headers["idempotent-replayed"], "true");

    assert_eq!(
        p.post(
            "/auth/login",
            json!({"email": user.email, "password": PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        401
    );
    assert_eq!(
        p.post(
            "/auth/login",
            json!({"email": user.email, "password": NEW_PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        200
    );
    assert_eq!(
        p.post("/auth/refresh", json!({"refresh_token": old_refresh}), &ip)
            .await
            .status,
        401,
        "sessions from before the reset are over"
    );
    let after = p.wait_for_mail(user.email.as_str(), 3).await;
    assert!(after[2].0.contains("changed"), "{:?}", after[2].0);
    // The link is single use.
    let again = p
        .post(
            "/auth/reset-password",
            json!({"token": token, "password": "yet another passphrase"}),
            &unique_ip(),
        )
        .await;
    assert_eq!(
        (again.status, again.json["error"]["code"].as_str()),
        (400, Some("INVALID_OR_EXPIRED_TOKEN"))
    );
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn fifty_concurrent_resets_with_one_token_succeed_exactly_once() {
    let p = std::sync::Arc::new(Platform::start().await);
    let user = p.user(false).await;
    let token = p.first_reset_token(user.email.as_str()).await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let (p, token) = (p.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = p
                .post(
                    "/auth/reset-password",
                    json!({"token": token, "password": format!("{NEW_PASSWORD} {n}")}),
                    &unique_ip(),
                )
                .await;
            (
                r.status,
                r.json["error"]["code"].as_str().map(str::to_string),
            )
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, _) => ok += 1,
            (400, Some(code)) => assert_eq!(code, "INVALID_OR_EXPIRED_TOKEN"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn a_second_request_invalidates_the_first_link() {
    let p = Platform::start().await;
    let user = p.user(false).await;
    for _ in 0..2 {
        assert_eq!(
            p.post(
                "/auth/forgot-password",
                json!({"email": user.email}),
                &unique_ip()
            )
            .await
            .status,
            200
        );
    }
    let mail = p.wait_for_mail(user.email.as_str(), 2).await;
    let (first, second) = (token_in(&mail[0].1), token_in(&mail[1].1));
    assert_ne!(first, second);
    let stale = p
        .post(
            "/auth/reset-password",
            json!({"token": first, "password": NEW_PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(
        (stale.status, stale.json["error"]["code"].as_str()),
        (400, Some("INVALID_OR_EXPIRED_TOKEN"))
    );
    assert_eq!(
        p.post(
            "/auth/reset-password",
            json!({"token": second, "password": NEW_PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        200
    );
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn known_and_unknown_emails_are_indistinguishable() {
    let p = Platform::start().await;
    let user = p.user(false).await;
    let known = p
        .post(
            "/auth/forgot-password",
            json!({"email": user.email}),
            &unique_ip(),
        )
        .await;
    let unknown = p
        .post(
            "/auth/forgot-password",
            json!({"email": format!("ghost-{}@example.com", uuid::Uuid::new_v4())}),
            &unique_ip(),
        )
        .await;
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(known.json, unknown.json);
    for h in [
        "content-type",
        "cache-control",
        "content-length",
        "x-content-type-options",
    ] {
        assert_eq!(known.headers.get(h), unknown.headers.get(h), "{h}");
    }
    assert!(!known.headers.contains_key("set-cookie"));
    assert_eq!(p.wait_for_mail(user.email.as_str(), 1).await.len(), 1);
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn rejections_over_http() {
    let p = Platform::start().await;
    let user = p.user(false).await;
    let token = p.first_reset_token(user.email.as_str()).await;
    let email_upper = user.email.as_str().to_uppercase();
    for (password, reason) in [
        ("too short", "at least 12"),
        ("password1234", "common"),
        (email_upper.as_str(), "email"),
    ] {
        let r = p
            .post(
                "/auth/reset-password",
                json!({"token": token, "password": password}),
                &unique_ip(),
            )
            .await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (400, Some("WEAK_PASSWORD")),
            "{password}"
        );
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(reason));
    }
    let unknown = shared::access::opaque::mint().plaintext;
    for bad in [unknown.as_str(), "malformed", ""] {
        let r = p
            .post(
                "/auth/reset-password",
                json!({"token": bad, "password": NEW_PASSWORD}),
                &unique_ip(),
            )
            .await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (400, Some("INVALID_OR_EXPIRED_TOKEN")),
            "{bad:?}"
        );
    }
    for body in [
        json!({}),
        json!({"token": token}),
        json!({"token": 1, "password": NEW_PASSWORD}),
    ] {
        assert_eq!(
            p.post("/auth/reset-password", body, &unique_ip())
                .await
                .status,
            400
        );
    }
    // Weak attempts did not spend the token.
    assert_eq!(
        p.post(
            "/auth/reset-password",
            json!({"token": token, "password": NEW_PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        200
    );
    // Ten attempts a minute per address, then 429 with Retry-After.
    let ip = unique_ip();
    for _ in 0..10 {
        assert_eq!(
            p.post(
                "/auth/reset-password",
                json!({"token": "malformed", "password": NEW_PASSWORD}),
                &ip
            )
            .await
            .status,
            400
        );
    }
    let limited = p
        .post(
            "/auth/reset-password",
            json!({"token": "malformed", "password": NEW_PASSWORD}),
            &ip,
        )
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key("retry-after"));
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn redirect_origins_validation_over_http() {
    // Plain http outside local mode is refused by the tenants handler tests: this stack runs in
    // local mode.
    let p = Platform::start().await;
    let owner = p.user(false).await;
    let tenant = shared::testing::tenant(&p.store, "Acme", Some((&owner, Role::Owner))).await;
    p.store
        .set_redirect_origins(
            &tenant.id,
            &[RedirectOrigin::parse("https://keep.example", false).unwrap()],
        )
        .await
        .unwrap();
    let login = p
        .post(
            "/auth/login",
            json!({"email": owner.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    let auth = format!(
        "Bearer {}",
        login.json["data"]["access_token"].as_str().unwrap()
    );
    let path = format!("/tenants/{}/redirect-origins", tenant.slug);
    for origins in [
        json!(["https://a.example/path"]),
        json!(["https://*.a.example"]),
        json!(["https://u:p@a.example"]),
        json!(["https://a.example", "https://a.example"]),
    ] {
        let r = p
            .send(
                "PUT",
                &path,
                &[("authorization", &auth)],
                Some(json!({"origins": origins}).to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (400, Some("INVALID_REDIRECT_ORIGIN")),
            "{origins}"
        );
        assert!(
            !r.json.to_string().contains("a.example"),
            "the answer echoes the input: {}",
            r.json
        );
    }
    let got = p
        .get(
            &path,
            Some(login.json["data"]["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(got.json["data"]["origins"], json!(["https://keep.example"]));
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn a_hostile_tenant_admin_cannot_steer_other_users_reset_links() {
    let p = Platform::start().await;
    let ip = unique_ip();
    // An admin of tenant A may not change its origins at all.
    let admin = p.user(false).await;
    let a = shared::testing::tenant(&p.store, "Tenant A", Some((&admin, Role::Admin))).await;
    let admin_login = p
        .post(
            "/auth/login",
            json!({"email": admin.email, "password": PASSWORD}),
            &ip,
        )
        .await;
    let refused = p
        .send(
            "PUT",
            &format!("/tenants/{}/redirect-origins", a.slug),
            &[
                (
                    "authorization",
                    &format!(
                        "Bearer {}",
                        admin_login.json["data"]["access_token"].as_str().unwrap()
                    ),
                ),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"origins": ["https://attacker.example"]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    // The attacker: a legitimate owner of tenant A, who may.
    let attacker = p.user(false).await;
    p.store
        .add_membership(&attacker.id, &a, Role::Owner)
        .await
        .unwrap();
    // Victims also include a fellow owner of A.
    let co_owner = p.user(false).await;
    p.store
        .add_membership(&co_owner.id, &a, Role::Owner)
        .await
        .unwrap();
    // Victims: a user of A and of B, and an operator who is also a member of A.
    let both = p.user(false).await;
    p.store
        .add_membership(&both.id, &a, Role::Member)
        .await
        .unwrap();
    shared::testing::tenant(&p.store, "Tenant B", Some((&both, Role::Member))).await;
    let operator = p.user(true).await;
    p.store
        .add_membership(&operator.id, &a, Role::Member)
        .await
        .unwrap();
    // And a user of A alone, whose links do follow A's origin.
    let only_a = p.user(false).await;
    p.store
        .add_membership(&only_a.id, &a, Role::Member)
        .await
        .unwrap();

    let login = p
        .post(
            "/auth/login",
            json!({"email": attacker.email, "password": PASSWORD}),
            &ip,
        )
        .await;
    let access = login.json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let put = p
        .send(
            "PUT",
            &format!("/tenants/{}/redirect-origins", a.slug),
            &[
                ("authorization", &format!("Bearer {access}")),
                ("content-type", "application/json"),
            ],
            Some(
                json!({"origins": ["https://attacker.example"]})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.json);

    let platform = std::env::var("PLATFORM_ORIGIN").unwrap();
    for victim in [&both, &operator, &co_owner] {
        let body = &p.first_reset_mail(victim.email.as_str()).await;
        assert!(
            body.contains(&format!("{platform}/reset-password#token=")),
            "{body}"
        );
        assert!(!body.contains("attacker.example"), "{body}");
    }
    let body = p.first_reset_mail(only_a.email.as_str()).await;
    assert!(
        body.contains("https://attacker.example/reset-password#token="),
        "{body}"
    );
    p.shutdown().await;
}
