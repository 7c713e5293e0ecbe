//! Tenants and partners through the deployed stack (API Gateway -> the real `tenants`,
//! `partners`, `login` and `reset-password` binaries -> DynamoDB, SES, EventBridge): who may
//! call what, lifecycle, invitations, races, counts and audit.

mod support;

use serde_json::{json, Value};
use shared::domain::User;
use support::{unique_email, unique_slug, Platform, Reply, NEW_PASSWORD};

/// One caller of the access matrix.
struct Who {
    name: &'static str,
    token: Option<String>,
}

/// The world of the access matrix: partners P and Q, tenant A (attached to P) with an owner,
/// an admin and a member, tenant B with a member, a user with no membership, and the operator.
struct World {
    p: String,
    a: String,
    b: String,
    member_id: String,
    callers: Vec<Who>,
    operator: String,
}

async fn operator_token(platform: &Platform) -> (User, String) {
    let op = platform.user(true).await;
    let token = platform.sign_in(op.email.as_str(), "operator").await;
    (op, token)
}

async fn ok(r: Reply, what: &str) -> Value {
    assert!(
        (200..300).contains(&r.status),
        "{what}: {} {}",
        r.status,
        r.json
    );
    r.json["data"].clone()
}

/// A tenant created by the operator with `owner` (an existing user) as owner.
async fn tenant_with_owner(
    platform: &Platform,
    op: &str,
    owner: &User,
    partner: Option<&str>,
) -> String {
    let slug = unique_slug("t");
    let mut body = json!({"slug": slug, "name": "Tenant", "owner_email": owner.email});
    if let Some(p) = partner {
        body["partner"] = json!(p);
    }
    ok(
        platform
            .call("POST", "/tenants", Some(op), Some(body), &[])
            .await,
        "create tenant",
    )
    .await;
    // Provisioning writes the record a few times after creation (and `suspend` wants an
    // active tenant): the tests start from the settled tenant.
    platform.wait_for_status(&slug, op, "active").await;
    slug
}

async fn add_member(platform: &Platform, op: &str, slug: &str, user: &User, role: &str) {
    ok(
        platform
            .call(
                "POST",
                format!("/tenants/{slug}/users"),
                Some(op),
                Some(json!({"email": user.email, "role": role})),
                &[],
            )
            .await,
        "add member",
    )
    .await;
}

async fn partner(platform: &Platform, op: &str) -> String {
    let slug = unique_slug("p");
    ok(
        platform
            .call(
                "POST",
                "/partners",
                Some(op),
                Some(json!({"slug": slug, "name": "Partner", "domain": "partner.example.com", "margin_pct": 12.5})),
                &[],
            )
            .await,
        "create partner",
    )
    .await;
    slug
}

async fn partner_admin(platform: &Platform, op: &str, partner: &str, user: &User) {
    ok(
        platform
            .call(
                "POST",
                format!("/partners/{partner}/admins"),
                Some(op),
                Some(json!({"email": user.email})),
                &[],
            )
            .await,
        "add partner admin",
    )
    .await;
}

async fn world(platform: &Platform) -> World {
    let (_, op) = operator_token(platform).await;
    let p = partner(platform, &op).await;
    let q = partner(platform, &op).await;
    let users: Vec<User> = futures_users(platform, 7).await;
    let [pa, qa, owner, admin, member, bmember, nobody] = <[User; 7]>::try_from(users).unwrap();
    partner_admin(platform, &op, &p, &pa).await;
    partner_admin(platform, &op, &q, &qa).await;
    let a = tenant_with_owner(platform, &op, &owner, Some(&p)).await;
    add_member(platform, &op, &a, &admin, "admin").await;
    add_member(platform, &op, &a, &member, "member").await;
    let b_owner = platform.user(false).await;
    let b = tenant_with_owner(platform, &op, &b_owner, None).await;
    add_member(platform, &op, &b, &bmember, "member").await;
    let mut callers = vec![Who {
        name: "operator",
        token: Some(op.clone()),
    }];
    for (name, u) in [
        ("admin of P", &pa),
        ("admin of Q", &qa),
        ("owner of A", &owner),
        ("admin of A", &admin),
        ("member of A", &member),
        ("member of B", &bmember),
        ("no membership", &nobody),
    ] {
        callers.push(Who {
            name,
            token: Some(platform.sign_in(u.email.as_str(), "portal").await),
        });
    }
    callers.push(Who {
        name: "anonymous",
        token: None,
    });
    World {
        p,
        a,
        b,
        member_id: member.id.to_string(),
        callers,
        operator: op,
    }
}

async fn futures_users(platform: &Platform, n: usize) -> Vec<User> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(platform.user(false).await);
    }
    out
}

/// Expected status per caller, in the order of `World::callers`: operator, admin of P, admin of
/// Q, owner of A, admin of A, member of A, member of B, no membership, anonymous.
type Row = [u16; 9];

const OPERATOR_ONLY: Row = [200, 403, 403, 403, 403, 403, 403, 403, 401];
/// Tenant A: operators, P's admins, A's owners and admins; A's member may see it exists.
const A_PARTNER_MANAGERS: Row = [200, 200, 404, 200, 200, 403, 404, 404, 401];
/// Tenant A: operators, A's owners and admins (P's admins and A's member see it exists).
const A_MANAGERS: Row = [200, 403, 404, 200, 200, 403, 404, 404, 401];
const A_OPERATOR: Row = [200, 403, 404, 403, 403, 403, 404, 404, 401];
/// Partner P: operators; P's admin may know it; nobody else.
const P_READ: Row = [200, 200, 404, 404, 404, 404, 404, 404, 401];
const P_OPERATOR: Row = [200, 403, 404, 404, 404, 404, 404, 404, 401];

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn every_route_admits_exactly_its_callers() {
    let platform = Platform::start().await;
    let w = world(&platform).await;
    let (a, p, b) = (w.a.clone(), w.p.clone(), w.b.clone());
    // Scratch records for the calls that change or remove something.
    let extra: Vec<User> = futures_users(&platform, 3).await;
    for u in &extra {
        add_member(&platform, &w.operator, &a, u, "member").await;
    }
    let scratch_admin = platform.user(false).await;
    partner_admin(&platform, &w.operator, &p, &scratch_admin).await;
    let scratch_partner = partner(&platform, &w.operator).await;
    type Body = Box<dyn Fn(usize) -> Option<Value>>;
    type PathFor = Box<dyn Fn(usize) -> String>;
    let fixed = |s: String| -> PathFor { Box::new(move |_| s.clone()) };
    let none = || -> Body { Box::new(|_| None) };
    let extra_ids: Vec<String> = extra.iter().map(|u| u.id.to_string()).collect();
    let mut removals = 0usize;
    let _ = &mut removals;
    let rows: Vec<(&str, PathFor, Body, Row)> = vec![
        (
            "POST",
            fixed("/tenants".into()),
            Box::new(|_| {
                Some(
                    json!({"slug": unique_slug("m"), "name": "M", "owner_email": unique_email("o")}),
                )
            }),
            [201, 201, 201, 403, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            fixed("/tenants".into()),
            none(),
            [200, 200, 200, 403, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            fixed(format!("/tenants/{a}")),
            none(),
            A_PARTNER_MANAGERS,
        ),
        (
            "PATCH",
            fixed(format!("/tenants/{a}")),
            Box::new(|_| Some(json!({"name": "Renamed"}))),
            A_PARTNER_MANAGERS,
        ),
        (
            "GET",
            fixed(format!("/tenants/{a}/users")),
            none(),
            A_MANAGERS,
        ),
        (
            "POST",
            fixed(format!("/tenants/{a}/users")),
            Box::new(|_| Some(json!({"email": unique_email("inv"), "role": "member"}))),
            [201, 403, 404, 201, 201, 403, 404, 404, 401],
        ),
        (
            "PATCH",
            fixed(format!("/tenants/{a}/users/{}", w.member_id)),
            Box::new(|_| Some(json!({"role": "member"}))),
            A_MANAGERS,
        ),
        (
            "DELETE",
            // Each caller allowed to remove gets a member of their own to remove.
            Box::new(move |i| {
                let target = match i {
                    0 => &extra_ids[0],
                    3 => &extra_ids[1],
                    _ => &extra_ids[2],
                };
                format!("/tenants/{a}/users/{target}", a = w.a)
            }),
            none(),
            A_MANAGERS,
        ),
        (
            "GET",
            fixed(format!("/tenants/{a}/redirect-origins")),
            none(),
            A_MANAGERS,
        ),
        (
            "PUT",
            fixed(format!("/tenants/{a}/redirect-origins")),
            Box::new(|_| Some(json!({"origins": ["https://app.example.com"]}))),
            A_MANAGERS,
        ),
        (
            "GET",
            fixed(format!("/tenants/{a}/audit")),
            none(),
            A_MANAGERS,
        ),
        ("GET", fixed("/audit".into()), none(), OPERATOR_ONLY),
        (
            "POST",
            fixed(format!("/tenants/{a}/suspend")),
            none(),
            A_OPERATOR,
        ),
        (
            "POST",
            fixed(format!("/tenants/{a}/resume")),
            none(),
            A_OPERATOR,
        ),
        (
            "POST",
            fixed("/partners".into()),
            Box::new(|_| {
                Some(json!({"slug": unique_slug("mp"), "name": "MP", "domain": "mp.example.com"}))
            }),
            [201, 403, 403, 403, 403, 403, 403, 403, 401],
        ),
        ("GET", fixed("/partners".into()), none(), OPERATOR_ONLY),
        ("GET", fixed(format!("/partners/{p}")), none(), P_READ),
        (
            "PATCH",
            fixed(format!("/partners/{p}")),
            Box::new(|_| Some(json!({"margin_pct": 15}))),
            P_OPERATOR,
        ),
        (
            "GET",
            fixed(format!("/partners/{p}/tenants")),
            none(),
            P_READ,
        ),
        (
            "PUT",
            fixed(format!("/partners/{p}/tenants/{b}")),
            none(),
            P_OPERATOR,
        ),
        (
            "DELETE",
            fixed(format!("/partners/{p}/tenants/{b}")),
            none(),
            P_OPERATOR,
        ),
        (
            "GET",
            fixed(format!("/partners/{p}/admins")),
            none(),
            P_OPERATOR,
        ),
        (
            "POST",
            fixed(format!("/partners/{p}/admins")),
            Box::new(|_| Some(json!({"email": unique_email("pa")}))),
            [201, 403, 404, 404, 404, 404, 404, 404, 401],
        ),
        (
            "DELETE",
            fixed(format!("/partners/{p}/admins/{}", scratch_admin.id)),
            none(),
            P_OPERATOR,
        ),
        (
            "DELETE",
            fixed(format!("/partners/{scratch_partner}")),
            none(),
            [200, 404, 404, 404, 404, 404, 404, 404, 401],
        ),
        // Last: it deletes A.
        ("DELETE", fixed(format!("/tenants/{a}")), none(), A_OPERATOR),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expected) in &rows {
        // The operator goes last, so a refused caller meets the resource as it was.
        let order: Vec<usize> = (1..w.callers.len()).chain([0]).collect();
        for i in order {
            let who = &w.callers[i];
            let path = path(i);
            let r = platform
                .call(method, &path, who.token.as_deref(), body(i), &[])
                .await;
            if r.status != expected[i] {
                failures.push(format!(
                    "{method} {path} as {}: {} (expected {}) {}",
                    who.name, r.status, expected[i], r.json
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

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

async fn futures_join<F: std::future::Future<Output = Reply>>(
    futures: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Polled together: the requests are in flight at the same time.
    let joined = futures_util::future::join_all(handles).await;
    out.extend(joined);
    out
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
async fn partner_counts_stay_exact_under_concurrent_attach_detach_and_moves() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let p = partner(&platform, &op).await;
    let q = partner(&platform, &op).await;
    let owner = platform.user(false).await;
    let mut tenants = Vec::new();
    for _ in 0..8 {
        tenants.push(tenant_with_owner(&platform, &op, &owner, None).await);
    }
    let attach = |partner: &str, t: &str| {
        platform.call(
            "PUT",
            format!("/partners/{partner}/tenants/{t}"),
            Some(&op),
            None,
            &[],
        )
    };
    // All eight to P at once, and four of them to Q at the same time.
    let mut calls = Vec::new();
    for t in &tenants {
        calls.push(attach(&p, t));
    }
    for t in &tenants[..4] {
        calls.push(attach(&q, t));
    }
    let first = futures_join(calls.into_iter()).await;
    assert!(
        first.iter().all(|r| r.status == 200 || r.status == 409),
        "{:?}",
        first
            .iter()
            .map(|r| (r.status, r.json.clone()))
            .collect::<Vec<_>>()
    );
    // Then detach half of P's and move the rest around, concurrently.
    let mut calls = Vec::new();
    for t in &tenants[4..6] {
        calls.push(platform.call(
            "DELETE",
            format!("/partners/{p}/tenants/{t}"),
            Some(&op),
            None,
            &[],
        ));
    }
    for t in &tenants[..2] {
        calls.push(attach(&p, t));
        calls.push(attach(&q, t));
    }
    futures_join(calls.into_iter()).await;
    // Counts must equal what is actually attached.
    for partner in [&p, &q] {
        let listed = platform
            .call(
                "GET",
                format!("/partners/{partner}/tenants?limit=100"),
                Some(&op),
                None,
                &[],
            )
            .await;
        let attached = listed.json["data"]["items"].as_array().unwrap().len() as i64;
        let record = platform
            .call("GET", format!("/partners/{partner}"), Some(&op), None, &[])
            .await;
        assert_eq!(
            record.json["data"]["tenant_count"].as_i64().unwrap(),
            attached,
            "{partner}: {}",
            record.json
        );
    }
    let total = |r: Reply| r.json["data"]["tenant_count"].as_i64().unwrap();
    let in_p = total(
        platform
            .call("GET", format!("/partners/{p}"), Some(&op), None, &[])
            .await,
    );
    let in_q = total(
        platform
            .call("GET", format!("/partners/{q}"), Some(&op), None, &[])
            .await,
    );
    assert_eq!(in_p + in_q, 6, "two were detached");
    // A deleted tenant leaves the count; a terminated partner takes no new tenants.
    let victim = &tenants[6];
    let owner_of = platform
        .call("GET", format!("/tenants/{victim}"), Some(&op), None, &[])
        .await;
    let was_in_p = owner_of.json["data"]["partner_id"].is_string();
    assert_eq!(
        platform
            .call("DELETE", format!("/tenants/{victim}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    if was_in_p {
        let after = total(
            platform
                .call("GET", format!("/partners/{p}"), Some(&op), None, &[])
                .await,
        ) + total(
            platform
                .call("GET", format!("/partners/{q}"), Some(&op), None, &[])
                .await,
        );
        assert_eq!(after, 5);
    }
    assert_eq!(
        platform
            .call("DELETE", format!("/partners/{q}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    let refused = attach(&q, &tenants[7]).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json["error"]["code"], "PARTNER_TERMINATED");
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
        "member.added",
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
