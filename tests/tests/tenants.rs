//! Tenants through the deployed stack (API Gateway -> the real `tenants`, `login` and
//! `reset-password` binaries -> DynamoDB, SES, EventBridge): lifecycle, races, validation,
//! suspension, soft delete, audit, lists and counts. Who may call what is `access_matrix.rs`;
//! invitations are `accept_invitation.rs`; partners are `partners.rs`.

mod support;

use serde_json::{json, Value};
use support::{
    add_member, futures_join, operator_token, partner, partner_admin, tenant_with_owner,
    unique_email, unique_slug, Platform, Reply,
};

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn concurrent_creates_of_one_slug_have_one_winner_and_idempotent_retries_replay() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    // Every tenant ever made (live and deleted): provisioning, suspensions and deletions by
    // the tests running beside this one move tenants between statuses, never out of the sum.
    let counts = |r: Reply| {
        let c = &r.json["data"]["counts"];
        c["all"].as_i64().unwrap() + c["deleted"].as_i64().unwrap()
    };
    let before = counts(
        platform
            .call("GET", "/tenants?limit=1", Some(&op), None, &[])
            .await,
    );
    let slug = unique_slug("race");
    let tries = (0..8).map(|i| {
        platform.call(
            "POST",
            "/tenants",
            Some(&op),
            Some(json!({"slug": slug, "name": format!("Racer {i}"), "owner_email": unique_email("race")})),
            &[],
        )
    });
    let results = futures_join(tries).await;
    let won = results.iter().filter(|r| r.status == 201).count();
    let taken = results
        .iter()
        .filter(|r| r.status == 409 && r.json["error"]["code"] == "SLUG_TAKEN")
        .count();
    assert_eq!(
        (won, taken),
        (1, 7),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // The same Idempotency-Key and body: the first answer again, one tenant.
    let body =
        json!({"slug": unique_slug("idem"), "name": "Idem", "owner_email": unique_email("idem")});
    let key = uuid::Uuid::new_v4().to_string();
    let first = platform
        .call(
            "POST",
            "/tenants",
            Some(&op),
            Some(body.clone()),
            &[("idempotency-key", &key)],
        )
        .await;
    let replay = platform
        .call(
            "POST",
            "/tenants",
            Some(&op),
            Some(body),
            &[("idempotency-key", &key)],
        )
        .await;
    assert_eq!((first.status, replay.status), (201, 201));
    assert_eq!(first.json["data"]["id"], replay.json["data"]["id"]);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let after = counts(
        platform
            .call("GET", "/tenants?limit=1", Some(&op), None, &[])
            .await,
    );
    // Other tests create tenants meanwhile: at least our two, and the race counted once.
    assert!(after - before >= 2, "{before} -> {after}");
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn if_match_guards_patch_and_nothing_changes_on_412() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let path = format!("/tenants/{slug}");
    let read = platform.call("GET", &path, Some(&op), None, &[]).await;
    let etag = read.headers["etag"].to_str().unwrap().to_string();
    let first = platform
        .call(
            "PATCH",
            &path,
            Some(&op),
            Some(json!({"plan": "enterprise"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_ne!(first.headers["etag"].to_str().unwrap(), etag);
    let stale = platform
        .call(
            "PATCH",
            &path,
            Some(&op),
            Some(json!({"plan": "free"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(stale.status, 412);
    let now = platform.call("GET", &path, Some(&op), None, &[]).await;
    assert_eq!(now.json["data"]["plan"], "enterprise");
    // The slug never changes, and bad fields are named without echoing them.
    for (body, field) in [
        (
            json!({"slug": "other-slug"}),
            "field this route does not accept",
        ),
        (json!({"name": ""}), "name"),
        (json!({"plan": "gold-plan-xyz"}), "plan"),
        (json!({"domains": ["not a host name xyz"]}), "domains[0]"),
        (json!({"billing_info": "not-an-object-xyz"}), "billing_info"),
    ] {
        let r = platform
            .call("PATCH", &path, Some(&op), Some(body.clone()), &[])
            .await;
        assert_eq!(r.status, 400, "{body}");
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{body}: {msg}");
        assert!(
            !msg.contains("xyz") && !msg.contains("other-slug"),
            "echoed: {msg}"
        );
    }
    assert_eq!(
        platform.call("GET", &path, Some(&op), None, &[]).await.json["data"]["plan"],
        "enterprise"
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn create_validates_every_field_and_writes_nothing_when_refused() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let good = || json!({"slug": unique_slug("v"), "name": "V", "owner_email": unique_email("v")});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("slug", json!("ab"), "slug"),
        ("slug", json!("Bad_Slug"), "slug"),
        ("slug", json!("-edge"), "slug"),
        ("slug", json!("admin"), "reserved"),
        ("slug", json!("x".repeat(41)), "slug"),
        ("name", json!("   "), "name"),
        ("owner_email", json!("not-an-email"), "owner_email"),
        ("plan", json!("platinum"), "plan"),
        (
            "domains",
            json!(["ok.example.com", "bad host"]),
            "domains[1]",
        ),
        ("billing_info", json!([1, 2]), "billing_info"),
        (
            "billing_info",
            json!({"blob": "x".repeat(5000)}),
            "billing_info",
        ),
        ("partner", json!("no-such-partner"), "partner"),
    ];
    for (field, value, needle) in cases {
        let mut body = good();
        let slug = body["slug"].clone();
        body[field] = value;
        let r = platform
            .call("POST", "/tenants", Some(&op), Some(body), &[])
            .await;
        assert_eq!(r.status, 400, "{field}: {}", r.json);
        let msg = r.json["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{field}: {msg}");
        if field != "slug" {
            let got = platform
                .call(
                    "GET",
                    format!("/tenants/{}", slug.as_str().unwrap()),
                    Some(&op),
                    None,
                    &[],
                )
                .await;
            assert_eq!(got.status, 404, "{field}: nothing is created");
        }
    }
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn the_last_owner_stays_even_when_two_demotions_race() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let first = platform.user(false).await;
    let second = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &first, None).await;
    add_member(&platform, &op, &slug, &second, "owner").await;
    for round in 0..3 {
        // Each owner demotes the other, at the same time: one must lose.
        let t1 = platform.sign_in(first.email.as_str(), "portal").await;
        let t2 = platform.sign_in(second.email.as_str(), "portal").await;
        let (r1, r2) = tokio::join!(
            platform.call(
                "PATCH",
                format!("/tenants/{slug}/users/{}", second.id),
                Some(&t1),
                Some(json!({"role": "admin"})),
                &[]
            ),
            platform.call(
                "PATCH",
                format!("/tenants/{slug}/users/{}", first.id),
                Some(&t2),
                Some(json!({"role": "admin"})),
                &[]
            ),
        );
        let statuses = [r1.status, r2.status];
        assert!(
            statuses.contains(&200) && (statuses.contains(&409) || statuses.contains(&403)),
            "round {round}: {statuses:?} {} {}",
            r1.json,
            r2.json
        );
        let members = platform
            .call(
                "GET",
                format!("/tenants/{slug}/users"),
                Some(&op),
                None,
                &[],
            )
            .await;
        let owners = members.json["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "round {round}");
        // Make both owners again for the next round.
        let demoted = if r1.status == 200 { &second } else { &first };
        let back = platform
            .call(
                "PATCH",
                format!("/tenants/{slug}/users/{}", demoted.id),
                Some(&op),
                Some(json!({"role": "owner"})),
                &[],
            )
            .await;
        assert_eq!(back.status, 200);
    }
    // Removing owners concurrently: one stays.
    let (r1, r2) = tokio::join!(
        platform.call(
            "DELETE",
            format!("/tenants/{slug}/users/{}", first.id),
            Some(&op),
            None,
            &[]
        ),
        platform.call(
            "DELETE",
            format!("/tenants/{slug}/users/{}", second.id),
            Some(&op),
            None,
            &[]
        ),
    );
    let mut statuses = [r1.status, r2.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", r1.json, r2.json);
    let last = if r1.status == 409 { &first } else { &second };
    let r = platform
        .call(
            "DELETE",
            format!("/tenants/{slug}/users/{}", last.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.json["error"]["code"], "LAST_OWNER");
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn suspension_locks_members_out_of_routes_sign_in_and_refresh_but_never_operators() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    // The operator also belongs to the tenant: never locked out.
    add_member(&platform, &op, &slug, &op_user, "member").await;
    let login = platform
        .post(
            "/auth/login",
            json!({"email": owner.email, "password": support::PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    let access = login.json["data"]["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let refresh = login.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        platform
            .call(
                "POST",
                format!("/tenants/{slug}/suspend"),
                Some(&op),
                None,
                &[]
            )
            .await
            .status,
        200
    );
    let route = platform
        .call(
            "GET",
            format!("/tenants/{slug}/users"),
            Some(&access),
            None,
            &[],
        )
        .await;
    assert_eq!(route.status, 403);
    assert_eq!(route.json["error"]["code"], "ACCOUNT_SUSPENDED");
    let me = platform.get("/auth/me", Some(&access)).await;
    assert_eq!(me.json["error"]["code"], "ACCOUNT_SUSPENDED");
    let again = platform
        .post(
            "/auth/login",
            json!({"email": owner.email, "password": support::PASSWORD}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(
        (again.status, again.json["error"]["code"].as_str()),
        (403, Some("ACCOUNT_SUSPENDED"))
    );
    let refreshed = platform
        .post(
            "/auth/refresh",
            json!({"refresh_token": refresh}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(refreshed.status, 403);
    // The operator still works, in any audience.
    platform.sign_in(op_user.email.as_str(), "portal").await;
    assert_eq!(
        platform
            .call("GET", format!("/tenants/{slug}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    // A user with another, active tenant keeps signing in, but not into the suspended one.
    let other_owner = platform.user(false).await;
    let other = tenant_with_owner(&platform, &op, &other_owner, None).await;
    add_member(&platform, &op, &slug, &other_owner, "admin").await;
    let t = platform.sign_in(other_owner.email.as_str(), "portal").await;
    let blocked = platform
        .call("GET", format!("/tenants/{slug}"), Some(&t), None, &[])
        .await;
    assert_eq!(blocked.json["error"]["code"], "TENANT_SUSPENDED");
    assert_eq!(
        platform
            .call("GET", format!("/tenants/{other}"), Some(&t), None, &[])
            .await
            .status,
        200
    );
    // Resumed: everything works again, the old refresh token too.
    assert_eq!(
        platform
            .call(
                "POST",
                format!("/tenants/{slug}/resume"),
                Some(&op),
                None,
                &[]
            )
            .await
            .status,
        200
    );
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 200);
    let refreshed = platform
        .post(
            "/auth/refresh",
            json!({"refresh_token": refresh}),
            &support::unique_ip(),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn soft_delete_keeps_record_and_slug_and_every_mutation_is_audited() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    let rid = format!("audit-{}", uuid::Uuid::new_v4().simple());
    let patched = platform
        .call(
            "PATCH",
            format!("/tenants/{slug}"),
            Some(&owner_token),
            Some(json!({"name": "Audited"})),
            &[("x-request-id", &rid)],
        )
        .await;
    assert_eq!(patched.status, 200);
    let member = platform.user(false).await;
    add_member(&platform, &op, &slug, &member, "member").await;
    assert_eq!(
        platform
            .call(
                "PATCH",
                format!("/tenants/{slug}/users/{}", member.id),
                Some(&owner_token),
                Some(json!({"role": "admin"})),
                &[]
            )
            .await
            .status,
        200
    );
    assert_eq!(
        platform
            .call(
                "PUT",
                format!("/tenants/{slug}/redirect-origins"),
                Some(&owner_token),
                Some(json!({"origins": ["https://audited.example.com"]})),
                &[]
            )
            .await
            .status,
        200
    );
    assert_eq!(
        platform
            .call(
                "DELETE",
                format!("/tenants/{slug}/users/{}", member.id),
                Some(&owner_token),
                None,
                &[]
            )
            .await
            .status,
        200
    );
    let trail = platform
        .call(
            "GET",
            format!("/tenants/{slug}/audit"),
            Some(&owner_token),
            None,
            &[],
        )
        .await;
    let items = trail.json["data"]["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "member.removed",
        "redirect_origins.replaced",
        "member.role_changed",
        // An existing account is invited, then joins.
        "member.invited",
        "member.joined",
        "tenant.updated",
        "tenant.created",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions[0], "member.removed", "newest first: {actions:?}");
    let update = items
        .iter()
        .find(|e| e["action"] == "tenant.updated")
        .unwrap();
    assert_eq!(update["request_id"], rid.as_str());
    assert_eq!(update["actor_user_id"], owner.id.as_str());
    assert_eq!(update["details"]["before"]["name"], "Tenant");
    assert_eq!(update["details"]["after"]["name"], "Audited");
    // Operators filter the whole trail.
    let filtered = platform
        .call(
            "GET",
            format!("/audit?tenant={slug}&action=tenant.updated"),
            Some(&op),
            None,
            &[],
        )
        .await;
    let filtered = filtered.json["data"]["items"].as_array().unwrap();
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    let by_actor = platform
        .call(
            "GET",
            format!("/audit?actor={}&limit=100", op_user.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert!(by_actor.json["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_user_id"] == op_user.id.as_str()));
    // A range that ends before it starts is refused, naming the field (the fuzz found a 500).
    let backwards = platform
        .call(
            "GET",
            format!("/tenants/{slug}/audit?from=1805&to=148"),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(backwards.status, 400, "{}", backwards.json);
    assert_eq!(backwards.json["error"]["code"], "INVALID_FIELD");
    // No route changes or deletes an entry.
    for method in ["DELETE", "PUT", "PATCH"] {
        let r = platform
            .call(
                method,
                &format!("/tenants/{slug}/audit"),
                Some(&op),
                Some(json!({})),
                &[],
            )
            .await;
        assert!(
            r.status == 403 || r.status == 404 || r.status == 405,
            "{method}: {}",
            r.status
        );
    }
    // Soft delete: gone for the owner, kept for operators, the slug stays taken.
    assert_eq!(
        platform
            .call("DELETE", format!("/tenants/{slug}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        platform
            .call(
                "GET",
                format!("/tenants/{slug}"),
                Some(&owner_token),
                None,
                &[]
            )
            .await
            .status,
        404
    );
    let kept = platform
        .call("GET", format!("/tenants/{slug}"), Some(&op), None, &[])
        .await;
    assert_eq!(kept.json["data"]["status"], "deleted");
    assert_eq!(kept.json["data"]["name"], "Audited");
    let reuse = platform
        .call(
            "POST",
            "/tenants",
            Some(&op),
            Some(json!({"slug": slug, "name": "Again", "owner_email": unique_email("x")})),
            &[],
        )
        .await;
    assert_eq!(reuse.json["error"]["code"], "SLUG_TAKEN");
    let deleted = platform
        .call(
            "GET",
            format!("/audit?tenant={slug}&action=tenant.deleted"),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(deleted.json["data"]["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn lists_filter_page_and_count_by_status() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let p = partner(&platform, &op).await;
    let pa = platform.user(false).await;
    partner_admin(&platform, &op, &p, &pa).await;
    let pa_token = platform.sign_in(pa.email.as_str(), "portal").await;
    // A partner admin creates tenants for their own partner only.
    let prefix = format!("lst{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
    for i in 0..5 {
        let r = platform
            .call(
                "POST",
                "/tenants",
                Some(&pa_token),
                Some(json!({"slug": format!("{prefix}-{i}"), "name": format!("List {i}"), "owner_email": unique_email("l"), "plan": if i % 2 == 0 { "pro" } else { "free" }})),
                &[],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.json);
        assert!(r.json["data"]["partner_id"].is_string());
    }
    platform
        .call(
            "POST",
            format!("/tenants/{prefix}-0/suspend"),
            Some(&op),
            None,
            &[],
        )
        .await;
    for i in 1..5 {
        platform
            .wait_for_status(&format!("{prefix}-{i}"), &op, "active")
            .await;
    }
    let mine = platform
        .call("GET", "/tenants?limit=100", Some(&pa_token), None, &[])
        .await;
    assert_eq!(mine.json["data"]["items"].as_array().unwrap().len(), 5);
    assert_eq!(mine.json["data"]["counts"]["all"], 5);
    assert_eq!(mine.json["data"]["counts"]["suspended"], 1);
    assert_eq!(mine.json["data"]["counts"]["active"], 4);
    // Pages of two, by slug, every tenant once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/tenants?q={prefix}&limit=2&cursor={c}"),
            None => format!("/tenants?q={prefix}&limit=2"),
        };
        let page = platform.call("GET", &path, Some(&op), None, &[]).await;
        assert_eq!(page.status, 200, "{}", page.json);
        for t in page.json["data"]["items"].as_array().unwrap() {
            seen.push(t["slug"].as_str().unwrap().to_string());
        }
        match page.json["data"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(seen.len() <= 5, "paging does not end");
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>()
    );
    let pro = platform
        .call(
            "GET",
            format!("/tenants?q={prefix}&plan=pro&status=active"),
            Some(&op),
            None,
            &[],
        )
        .await;
    let pro: Vec<&str> = pro.json["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(pro, vec![format!("{prefix}-2"), format!("{prefix}-4")]);
    let by_name = platform
        .call("GET", "/tenants?q=list%203", Some(&pa_token), None, &[])
        .await;
    assert_eq!(by_name.json["data"]["items"].as_array().unwrap().len(), 1);
    // A cursor from another filter is refused.
    let c = cursor_of(&platform, &op, &format!("/tenants?q={prefix}&limit=1")).await;
    let other = platform
        .call(
            "GET",
            format!("/tenants?q={prefix}&plan=pro&cursor={c}"),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(other.json["error"]["code"], "INVALID_CURSOR");
    // A partner admin cannot list another partner's tenants, nor suspend their own.
    let q = partner(&platform, &op).await;
    let foreign = platform
        .call(
            "GET",
            format!("/tenants?partner={q}"),
            Some(&pa_token),
            None,
            &[],
        )
        .await;
    assert_eq!(foreign.status, 400);
    let suspend = platform
        .call(
            "POST",
            format!("/tenants/{prefix}-1/suspend"),
            Some(&pa_token),
            None,
            &[],
        )
        .await;
    assert_eq!(suspend.status, 403);
}

async fn cursor_of(platform: &Platform, token: &str, path: &str) -> String {
    let r = platform.call("GET", path, Some(token), None, &[]).await;
    r.json["data"]["next_cursor"].as_str().unwrap().to_string()
}
