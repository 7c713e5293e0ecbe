//! The access matrix, black box: every tenant and partner route called by each kind of caller
//! (operator, partner admins, a tenant's owner, admin and member, another tenant's member, a
//! user with no membership, anonymous) through the deployed stack, each answer checked.

mod support;

use serde_json::{json, Value};
use shared::domain::User;
use support::{
    add_member, operator_token, partner, partner_admin, tenant_with_owner, unique_email,
    unique_slug, Platform,
};

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
/// Tenant A: operators and A's owners (A's admins and member, and P's admins, see it exists).
const A_OWNERS: Row = [200, 403, 404, 200, 403, 403, 404, 404, 401];
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
    let scratch_user = platform.user(false).await;
    type Body = Box<dyn Fn(usize) -> Option<Value>>;
    type PathFor = Box<dyn Fn(usize) -> String>;
    let fixed = |s: String| -> PathFor { Box::new(move |_| s.clone()) };
    let none = || -> Body { Box::new(|_| None) };
    let extra_ids: Vec<String> = extra.iter().map(|u| u.id.to_string()).collect();
    let mut removals = 0usize;
    let _ = &mut removals;
    let (member_id, member_id2, a2) = (w.member_id.clone(), w.member_id.clone(), a.clone());
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
            // A plan: operators and the reseller; never the tenant's own owners and admins.
            // Each caller asks for a plan other than the one A has when their turn comes
            // (P's admin moves it to pro; the operator, last, to enterprise).
            "PATCH",
            fixed(format!("/tenants/{a}")),
            Box::new(|i| Some(json!({"plan": if i == 1 { "pro" } else { "enterprise" }}))),
            [200, 200, 404, 403, 403, 403, 404, 404, 401],
        ),
        (
            // What the tenant is sold and uses: any member, its partner's admins, operators.
            "GET",
            fixed(format!("/tenants/{a}/usage")),
            none(),
            [200, 200, 404, 200, 200, 200, 404, 404, 401],
        ),
        (
            // The catalogue: operators; a partner admin, the plans their partner sells.
            "GET",
            fixed("/plans".into()),
            none(),
            [200, 200, 200, 403, 403, 403, 403, 403, 401],
        ),
        ("GET", fixed("/plans/free".into()), none(), OPERATOR_ONLY),
        (
            // Every flag's value for the tenant and the caller: as its usage.
            "GET",
            fixed(format!("/tenants/{a}/flags")),
            none(),
            [200, 200, 404, 200, 200, 200, 404, 404, 401],
        ),
        ("GET", fixed("/flags".into()), none(), OPERATOR_ONLY),
        (
            "POST",
            fixed("/flags".into()),
            Box::new(|_| {
                Some(
                    json!({"key": format!("matrix.f{}", &uuid::Uuid::new_v4().simple().to_string()[..10]), "owner": "qa"}),
                )
            }),
            [201, 403, 403, 403, 403, 403, 403, 403, 401],
        ),
        (
            // Write access as a member: asked for by operators alone, seen by owners.
            "POST",
            fixed(format!("/tenants/{a}/impersonation-approvals")),
            Box::new(move |_| {
                Some(json!({"user_id": member_id, "reason": "the access matrix asks"}))
            }),
            [201, 403, 404, 403, 403, 403, 404, 404, 401],
        ),
        (
            "GET",
            fixed(format!("/tenants/{a}/impersonation-approvals")),
            none(),
            [200, 403, 404, 200, 403, 403, 404, 404, 401],
        ),
        (
            // The token exchange: an operator's token alone (a portal token is refused).
            "POST",
            fixed("/auth/impersonate".into()),
            Box::new(move |_| {
                Some(
                    json!({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                    "subject_token": member_id2, "subject_token_type": "urn:saas-control-plane:token-type:user-id",
                    "tenant": a2, "reason": "the access matrix asks", "scope": "read"}),
                )
            }),
            [200, 401, 401, 401, 401, 401, 401, 401, 401],
        ),
        (
            "POST",
            fixed("/plans".into()),
            Box::new(|_| {
                Some(
                    json!({"id": format!("m{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
                    "name": "M", "entitlements": {"seats": 3, "stored_bytes": null, "stored_objects": null,
                    "databases": null, "max_upload_bytes": 1024, "partner_tenants": null}}),
                )
            }),
            [201, 403, 403, 403, 403, 403, 403, 403, 401],
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
            A_OWNERS,
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
        // Platform users: operators alone; one's own account: everyone signed in.
        ("GET", fixed("/users".into()), none(), OPERATOR_ONLY),
        (
            "GET",
            fixed(format!("/users/{}", w.member_id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "POST",
            fixed(format!("/users/{}/disable", scratch_user.id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "POST",
            fixed(format!("/users/{}/enable", scratch_user.id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "DELETE",
            fixed(format!("/users/{}/sessions", scratch_user.id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "DELETE",
            fixed(format!("/users/{}/operator", scratch_user.id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "DELETE",
            fixed(format!("/users/{}", scratch_user.id)),
            none(),
            OPERATOR_ONLY,
        ),
        (
            "GET",
            fixed("/account".into()),
            none(),
            [200, 200, 200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "GET",
            fixed("/account/sessions".into()),
            none(),
            [200, 200, 200, 200, 200, 200, 200, 200, 401],
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
            // A change of a tenant's plan needs If-Match (any version will do here).
            let extra: &[(&str, &str)] = if *method == "PATCH" && path == format!("/tenants/{a}") {
                &[("if-match", "*")]
            } else {
                &[]
            };
            let r = platform
                .call(method, &path, who.token.as_deref(), body(i), extra)
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

/// The gate's table for a suspended and then a deleted tenant (`shared/src/access/gate.rs`),
/// through the deployed stack: the decisions the five copies it replaced disagreed on.
#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_suspended_then_deleted_tenant_admits_what_the_gate_table_says() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let p = partner(&platform, &op).await;
    let users: Vec<User> = futures_users(&platform, 4).await;
    let [pa, owner, admin, member] = <[User; 4]>::try_from(users).unwrap();
    partner_admin(&platform, &op, &p, &pa).await;
    let c = tenant_with_owner(&platform, &op, &owner, Some(&p)).await;
    add_member(&platform, &op, &c, &admin, "admin").await;
    add_member(&platform, &op, &c, &member, "member").await;
    // Each also belongs to an active tenant, so the sign-in does not hold them suspended
    // (ACCOUNT_SUSPENDED) and what answers is the gate's decision for tenant C.
    let d_owner = platform.user(false).await;
    let d = tenant_with_owner(&platform, &op, &d_owner, None).await;
    for u in [&owner, &admin, &member] {
        add_member(&platform, &op, &d, u, "member").await;
    }
    let mut tokens = vec![("operator", op.clone())];
    for (name, u) in [
        ("partner admin", &pa),
        ("owner", &owner),
        ("admin", &admin),
        ("member", &member),
    ] {
        tokens.push((name, platform.sign_in(u.email.as_str(), "portal").await));
    }
    // Each caller's answer (status, and the error code when refused) to one request.
    let answers = |method: &'static str, path: String, body: Option<Value>| {
        let (platform, tokens) = (&platform, &tokens);
        async move {
            let mut out = Vec::new();
            for (name, token) in tokens {
                let r = platform
                    .call(method, path.clone(), Some(token), body.clone(), &[])
                    .await;
                let code = r.json["error"]["code"].as_str().unwrap_or("").to_string();
                out.push(
                    format!("{name}: {} {code}", r.status)
                        .trim_end()
                        .to_string(),
                );
            }
            out
        }
    };
    let r = platform
        .call(
            "POST",
            format!("/tenants/{c}/suspend"),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // Suspended: the record is for operators and the partner's admins; members, origins and
    // the audit for operators only (a partner admin is not a manager).
    assert_eq!(
        answers("GET", format!("/tenants/{c}"), None).await,
        [
            "operator: 200",
            "partner admin: 200",
            "owner: 403 TENANT_SUSPENDED",
            "admin: 403 TENANT_SUSPENDED",
            "member: 403 TENANT_SUSPENDED"
        ]
    );
    assert_eq!(
        answers("GET", format!("/tenants/{c}/users"), None).await,
        [
            "operator: 200",
            "partner admin: 403 TENANT_SUSPENDED",
            "owner: 403 TENANT_SUSPENDED",
            "admin: 403 TENANT_SUSPENDED",
            "member: 403 TENANT_SUSPENDED"
        ]
    );
    let r = platform
        .call("DELETE", format!("/tenants/{c}"), Some(&op), None, &[])
        .await;
    assert!(r.status < 300, "{}", r.json);
    // Deleted: operators read it and may not change it (restore first); nobody else learns it
    // exists, whatever the route (a member asking for a reconcile gets 404, not 403).
    assert_eq!(
        answers("GET", format!("/tenants/{c}"), None).await,
        [
            "operator: 200",
            "partner admin: 404 TENANT_NOT_FOUND",
            "owner: 404 TENANT_NOT_FOUND",
            "admin: 404 TENANT_NOT_FOUND",
            "member: 404 TENANT_NOT_FOUND"
        ]
    );
    assert_eq!(
        answers(
            "PATCH",
            format!("/tenants/{c}"),
            Some(json!({"name": "Renamed"}))
        )
        .await,
        [
            "operator: 409 INVALID_STATE",
            "partner admin: 404 TENANT_NOT_FOUND",
            "owner: 404 TENANT_NOT_FOUND",
            "admin: 404 TENANT_NOT_FOUND",
            "member: 404 TENANT_NOT_FOUND"
        ]
    );
    assert_eq!(
        answers("POST", format!("/tenants/{c}/reconcile"), None).await,
        [
            "operator: 200",
            "partner admin: 404 TENANT_NOT_FOUND",
            "owner: 404 TENANT_NOT_FOUND",
            "admin: 404 TENANT_NOT_FOUND",
            "member: 404 TENANT_NOT_FOUND"
        ]
    );
    let r = platform
        .call("GET", format!("/tenants/{c}"), Some(&op), None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_ne!(
        r.json["data"]["name"], "Renamed",
        "the refused PATCH changed nothing"
    );
}
