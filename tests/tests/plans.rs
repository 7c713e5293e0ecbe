//! Plans, quotas and usage through the deployed stack: the catalogue and who keeps it, plan
//! changes and who may make them, every limit and its race, the usage endpoint, and the storage
//! counter fed by the emulator's real S3 notifications (the meter function), with the
//! reconcile's recount of a counter that drifted.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use support::{ok, operator_token, tenant_with_owner, unique_email, Platform, Reply};

fn plan_id() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn entitlements(seats: Value, bytes: Value, objects: Value, databases: Value) -> Value {
    json!({
        "seats": seats, "stored_bytes": bytes, "stored_objects": objects,
        "databases": databases, "max_upload_bytes": 900, "partner_tenants": null,
    })
}

fn etag(r: &Reply) -> String {
    r.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_string()
}

async fn create_plan(platform: &Platform, op: &str, id: &str, e: Value) -> Reply {
    platform
        .call(
            "POST",
            "/plans",
            Some(op),
            Some(json!({"id": id, "name": format!("Plan {id}"), "entitlements": e, "features": ["sso", "audit.export"]})),
            &[],
        )
        .await
}

/// Puts the tenant on `plan` as `who` (with the tenant's current ETag).
async fn put_on_plan(platform: &Platform, who: &str, slug: &str, plan: &str) -> Reply {
    let current = platform
        .call("GET", format!("/tenants/{slug}"), Some(who), None, &[])
        .await;
    assert_eq!(current.status, 200, "{}", current.json);
    let tag = etag(&current);
    platform
        .call(
            "PATCH",
            format!("/tenants/{slug}"),
            Some(who),
            Some(json!({"plan": plan})),
            &[("if-match", tag.as_str())],
        )
        .await
}

async fn usage(platform: &Platform, who: &str, slug: &str) -> Value {
    ok(
        platform
            .call(
                "GET",
                format!("/tenants/{slug}/usage"),
                Some(who),
                None,
                &[],
            )
            .await,
        "usage",
    )
    .await
}

fn code(r: &Reply) -> (u16, Option<&str>) {
    (r.status, r.json["error"]["code"].as_str())
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn the_catalogue_is_kept_by_operators_with_if_match_and_a_used_plan_is_not_deleted() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    // The built-in plans are there before anyone stored them, with the deployment's limits
    // (make test's free plan: 4096-byte uploads).
    let list = ok(
        platform.call("GET", "/plans", Some(&op), None, &[]).await,
        "list",
    )
    .await;
    let free = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "free")
        .cloned()
        .expect("the free plan");
    assert_eq!(free["builtin"], true);
    assert_eq!(free["entitlements"]["max_upload_bytes"], 4096);
    assert_eq!(free["entitlements"]["seats"], Value::Null);

    let id = plan_id();
    let e = entitlements(json!(5), json!(1_000_000), json!(100), json!(2));
    let created = create_plan(&platform, &op, &id, e.clone()).await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(
        created.json["data"]["features"],
        json!(["audit.export", "sso"])
    );
    let tag = etag(&created);
    assert_eq!(
        code(&create_plan(&platform, &op, &id, e.clone()).await),
        (409, Some("PLAN_EXISTS"))
    );
    assert_eq!(
        code(&create_plan(&platform, &op, "free", e.clone()).await),
        (409, Some("PLAN_EXISTS"))
    );
    // Bad input: named, not echoed, nothing stored.
    let bad = create_plan(
        &platform,
        &op,
        &plan_id(),
        entitlements(json!(-1), json!(null), json!(null), json!(null)),
    )
    .await;
    assert_eq!(code(&bad), (400, Some("INVALID_FIELD")), "{}", bad.json);
    assert!(bad.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("entitlements.seats"));

    // Not an operator: refused.
    let someone = platform.user(false).await;
    let token = platform.sign_in(someone.email.as_str(), "portal").await;
    assert_eq!(
        code(&create_plan(&platform, &token, &plan_id(), e.clone()).await),
        (403, Some("FORBIDDEN"))
    );
    assert_eq!(
        code(
            &platform
                .call("GET", format!("/plans/{id}"), Some(&token), None, &[])
                .await
        ),
        (403, Some("FORBIDDEN"))
    );

    // Changes need If-Match; a stale one is 412.
    let path = format!("/plans/{id}");
    let patch = |body: Value, tag: Option<String>| {
        let platform = &platform;
        let op = op.clone();
        let path = path.clone();
        async move {
            let headers: Vec<(&str, String)> =
                tag.iter().map(|t| ("if-match", t.clone())).collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            platform
                .call("PATCH", path, Some(&op), Some(body), &headers)
                .await
        }
    };
    assert_eq!(
        code(&patch(json!({"name": "Team"}), None).await),
        (428, Some("PRECONDITION_REQUIRED"))
    );
    let renamed = patch(json!({"name": "Team"}), Some(tag.clone())).await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(
        code(&patch(json!({"name": "Again"}), Some(tag)).await),
        (412, Some("PRECONDITION_FAILED"))
    );

    // A tenant on it: the plan counts it and cannot be deleted.
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let moved = put_on_plan(&platform, &op, &slug, &id).await;
    assert_eq!(moved.status, 200, "{}", moved.json);
    assert_eq!(moved.json["data"]["plan"], id.as_str());
    let got = platform
        .call("GET", path.clone(), Some(&op), None, &[])
        .await;
    assert_eq!(got.json["data"]["tenants"], 1, "{}", got.json);
    assert_eq!(
        code(
            &platform
                .call("DELETE", path.clone(), Some(&op), None, &[])
                .await
        ),
        (409, Some("PLAN_IN_USE"))
    );
    assert_eq!(
        code(
            &platform
                .call("DELETE", "/plans/free", Some(&op), None, &[])
                .await
        ),
        (409, Some("PLAN_BUILTIN"))
    );

    // Retired: the tenants on it stay, no new tenant may take it.
    let retired = patch(json!({"status": "retired"}), Some(etag(&got))).await;
    assert_eq!(retired.status, 200, "{}", retired.json);
    let r = platform
        .call(
            "POST",
            "/tenants",
            Some(&op),
            Some(json!({"slug": support::unique_slug("rp"), "name": "Late", "owner_email": unique_email("late"), "plan": id})),
            &[],
        )
        .await;
    assert_eq!(code(&r), (409, Some("PLAN_RETIRED")), "{}", r.json);
    // Once no tenant is on it, it can be deleted.
    assert_eq!(put_on_plan(&platform, &op, &slug, "pro").await.status, 200);
    let deleted = platform
        .call("DELETE", path.clone(), Some(&op), None, &[])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.json);
    assert_eq!(
        code(&platform.call("GET", path, Some(&op), None, &[]).await),
        (404, Some("PLAN_NOT_FOUND"))
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_plan_change_is_for_operators_and_the_plans_a_partner_sells_and_a_downgrade_says_what_is_over(
) {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let partner = support::partner(&platform, &op).await;
    let reseller = platform.user(false).await;
    support::partner_admin(&platform, &op, &partner, &reseller).await;
    let reseller_token = platform.sign_in(reseller.email.as_str(), "portal").await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, Some(&partner)).await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    let small = plan_id();
    assert_eq!(
        create_plan(
            &platform,
            &op,
            &small,
            entitlements(json!(1), json!(null), json!(null), json!(0))
        )
        .await
        .status,
        201
    );

    // The owner may not raise (or lower) their own plan.
    assert_eq!(
        code(&put_on_plan(&platform, &owner_token, &slug, "pro").await),
        (403, Some("FORBIDDEN"))
    );
    // The reseller sells the built-in plans unless told otherwise, not the new one.
    assert_eq!(
        put_on_plan(&platform, &reseller_token, &slug, "pro")
            .await
            .status,
        200
    );
    assert_eq!(
        code(&put_on_plan(&platform, &reseller_token, &slug, &small).await),
        (403, Some("FORBIDDEN"))
    );
    let listed = ok(
        platform
            .call("GET", "/plans", Some(&reseller_token), None, &[])
            .await,
        "plans",
    )
    .await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["free", "pro", "enterprise"]);
    // Once the operator allows it, they may.
    let p = platform
        .call("GET", format!("/partners/{partner}"), Some(&op), None, &[])
        .await;
    let tag = etag(&p);
    let allowed = platform
        .call(
            "PATCH",
            format!("/partners/{partner}"),
            Some(&op),
            Some(json!({"allowed_plans": ["free", small]})),
            &[("if-match", tag.as_str())],
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.json);
    assert_eq!(
        allowed.json["data"]["allowed_plans"],
        json!(["free", small])
    );
    // A downgrade below usage is allowed: nothing is deleted, and the answer says what is over.
    // The tenant has its owner and one more member: two seats on a one-seat plan.
    let member = platform.user(false).await;
    support::add_member(&platform, &op, &slug, &member, "member").await;
    let down = put_on_plan(&platform, &reseller_token, &slug, &small).await;
    assert_eq!(down.status, 200, "{}", down.json);
    assert_eq!(down.json["data"]["over_quota"], json!(["seats"]));
    let u = usage(&platform, &owner_token, &slug).await;
    assert_eq!(u["usage"]["seats"], json!({"used": 2, "limit": 1}));
    assert_eq!(u["over_quota"], json!(["seats"]));
    // New use is refused until it is back under.
    let r = platform
        .call(
            "POST",
            format!("/tenants/{slug}/users"),
            Some(&owner_token),
            Some(json!({"email": unique_email("over"), "role": "member"})),
            &[],
        )
        .await;
    assert_eq!(code(&r), (409, Some("SEAT_LIMIT")), "{}", r.json);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 seats"));
    // Pro is no longer theirs to sell; the operator may put it back.
    assert_eq!(
        code(&put_on_plan(&platform, &reseller_token, &slug, "pro").await),
        (403, Some("FORBIDDEN"))
    );
    let back = put_on_plan(&platform, &op, &slug, "pro").await;
    assert_eq!(back.status, 200, "{}", back.json);
    assert_eq!(back.json["data"]["over_quota"], json!([]));
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn twenty_concurrent_invitations_against_three_free_seats_give_exactly_three() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let id = plan_id();
    assert_eq!(
        create_plan(
            &platform,
            &op,
            &id,
            entitlements(json!(4), json!(null), json!(null), json!(null))
        )
        .await
        .status,
        201
    );
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    assert_eq!(put_on_plan(&platform, &op, &slug, &id).await.status, 200);
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    assert_eq!(
        usage(&platform, &owner_token, &slug).await["usage"]["seats"],
        json!({"used": 1, "limit": 4})
    );

    let path = format!("/tenants/{slug}/users");
    let replies = support::futures_join((0..20).map(|i| {
        platform.call(
            "POST",
            path.clone(),
            Some(&op),
            Some(json!({"email": unique_email(&format!("seat{i}")), "role": "member"})),
            &[],
        )
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let full = replies
        .iter()
        .filter(|r| code(r) == (409, Some("SEAT_LIMIT")))
        .count();
    let others: Vec<String> = replies
        .iter()
        .filter(|r| r.status != 201 && code(r) != (409, Some("SEAT_LIMIT")))
        .map(|r| format!("{} {}", r.status, r.json))
        .collect();
    assert_eq!((created, full), (3, 17), "other answers: {others:?}");
    let u = usage(&platform, &owner_token, &slug).await;
    assert_eq!(u["usage"]["seats"], json!({"used": 4, "limit": 4}));
    assert_eq!(u["full"], json!(["seats"]));
    assert_eq!(u["over_quota"], json!([]));
    // A removal gives the seat back.
    let members = ok(
        platform
            .call("GET", path.clone(), Some(&op), None, &[])
            .await,
        "members",
    )
    .await;
    let invited = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "member")
        .expect("an invited member")["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    let removed = platform
        .call("DELETE", format!("{path}/{invited}"), Some(&op), None, &[])
        .await;
    assert_eq!(removed.status, 200, "{}", removed.json);
    let again = platform
        .call(
            "POST",
            path,
            Some(&op),
            Some(json!({"email": unique_email("seat-again"), "role": "member"})),
            &[],
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn the_database_limit_is_the_plans() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let id = plan_id();
    assert_eq!(
        create_plan(
            &platform,
            &op,
            &id,
            entitlements(json!(null), json!(null), json!(null), json!(0))
        )
        .await
        .status,
        201
    );
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    assert_eq!(put_on_plan(&platform, &op, &slug, &id).await.status, 200);
    // Refused before anything connects: the address needs no server behind it.
    let r = platform
        .call(
            "POST",
            format!("/tenants/{slug}/databases"),
            Some(&op),
            Some(json!({"name": "main", "engine": "postgres", "connection_string": "postgres://u:p@db.example.com:5432/app"})),
            &[],
        )
        .await;
    assert_eq!(code(&r), (409, Some("DATABASE_LIMIT")), "{}", r.json);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allows 0"));
}

struct Storage {
    s3: aws_sdk_s3::Client,
    dynamo: aws_sdk_dynamodb::Client,
    bucket: String,
    table: String,
}

impl Storage {
    async fn new() -> Storage {
        let sdk = shared::runtime::aws::sdk_config().await;
        let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n}: run `make test`"));
        Storage {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(true)
                    .build(),
            ),
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            bucket: var("BUCKET_NAME"),
            table: var("TABLE_NAME"),
        }
    }
}

/// Polls the tenant's usage until `check` holds (20 s at most): the meter counts
/// asynchronously, as S3 delivers its notifications.
async fn usage_until(
    platform: &Platform,
    who: &str,
    slug: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let u = usage(platform, who, slug).await;
        if check(&u["usage"]) {
            return u;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage never got there: {u}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `POST /tenants/{slug}/reconcile` as an operator: the report.
async fn reconcile(platform: &Platform, op: &str, slug: &str) -> Value {
    ok(
        platform
            .call(
                "POST",
                format!("/tenants/{slug}/reconcile"),
                Some(op),
                None,
                &[],
            )
            .await,
        "reconcile",
    )
    .await
}

fn stored(u: &Value) -> (i64, i64) {
    (
        u["stored_bytes"]["used"].as_i64().unwrap(),
        u["stored_objects"]["used"].as_i64().unwrap(),
    )
}

async fn presign(platform: &Platform, who: &str, slug: &str, body: Value) -> Reply {
    platform
        .call(
            "POST",
            format!("/tenants/{slug}/storage/presign"),
            Some(who),
            Some(body),
            &[],
        )
        .await
}

async fn upload(platform: &Platform, who: &str, slug: &str, key: &str, size: usize) {
    let r = presign(
        platform,
        who,
        slug,
        json!({"operation": "upload", "key": key, "content_type": "text/plain", "size": size}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let url = r.json["data"]["url"].as_str().unwrap();
    // The body's length is the signed content-length (hyper sends it).
    let (status, body) = platform
        .send_url(
            "PUT",
            url,
            &[("content-type", "text/plain")],
            vec![b'x'; size],
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn storage_is_counted_from_the_buckets_notifications_held_to_the_plan_and_recounted_when_it_drifts(
) {
    let platform = Platform::start().await;
    let aws = Storage::new().await;
    let (_, op) = operator_token(&platform).await;
    let id = plan_id();
    assert_eq!(
        create_plan(
            &platform,
            &op,
            &id,
            entitlements(json!(null), json!(1000), json!(2), json!(null))
        )
        .await
        .status,
        201
    );
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    assert_eq!(put_on_plan(&platform, &op, &slug, &id).await.status, 200);
    let member = platform.sign_in(owner.email.as_str(), "portal").await;
    let tenant_id = ok(
        platform
            .call("GET", format!("/tenants/{slug}"), Some(&op), None, &[])
            .await,
        "tenant",
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // An upload through a presigned PUT: counted when S3's notification reaches the meter.
    upload(&platform, &member, &slug, "docs/a.txt", 400).await;
    let u = usage_until(&platform, &member, &slug, |u| stored(u) == (400, 1)).await;
    assert_eq!(u["usage"]["stored_bytes"]["limit"], 1000);
    // The form's size range never exceeds what is left (600 of 1000; the largest upload is 900).
    let form = presign(
        &platform,
        &member,
        &slug,
        json!({"operation": "upload", "key": "docs/b.txt"}),
    )
    .await;
    assert_eq!(form.json["data"]["max_bytes"], 600, "{}", form.json);
    // A declared size past what is left: its own code.
    let over = presign(
        &platform,
        &member,
        &slug,
        json!({"operation": "upload", "key": "docs/b.txt", "size": 700}),
    )
    .await;
    assert_eq!(code(&over), (409, Some("STORAGE_LIMIT")), "{}", over.json);
    // The same object written again counts its new size, not a second object.
    upload(&platform, &member, &slug, "docs/a.txt", 300).await;
    usage_until(&platform, &member, &slug, |u| stored(u) == (300, 1)).await;
    upload(&platform, &member, &slug, "docs/b.txt", 500).await;
    usage_until(&platform, &member, &slug, |u| stored(u) == (800, 2)).await;
    // Two objects of two: no more uploads, downloads still.
    let full = presign(
        &platform,
        &member,
        &slug,
        json!({"operation": "upload", "key": "docs/c.txt", "size": 10}),
    )
    .await;
    assert_eq!(code(&full), (409, Some("OBJECT_LIMIT")), "{}", full.json);
    let down = presign(
        &platform,
        &member,
        &slug,
        json!({"operation": "download", "key": "docs/a.txt"}),
    )
    .await;
    assert_eq!(down.status, 200, "{}", down.json);
    // A removal is counted too (here behind the platform's back, straight on the bucket).
    aws.s3
        .delete_object()
        .bucket(&aws.bucket)
        .key(format!("tenants/{tenant_id}/docs/b.txt"))
        .send()
        .await
        .unwrap();
    usage_until(&platform, &member, &slug, |u| stored(u) == (300, 1)).await;

    // Drift: the counters lose what happened (as if notifications were lost). The reconcile
    // recounts them from a listing of the tenant's prefix, once no notification was counted
    // for the tenant for a quiet spell (the stack's ProvisioningStaleSeconds, 5 s): one still
    // in the meter's queue would count again what the listing holds.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    aws.dynamo
        .update_item()
        .table_name(&aws.table)
        .key("PK", AttributeValue::S(format!("QUOTA#tenant:{tenant_id}")))
        .key("SK", AttributeValue::S("QUOTA".into()))
        .update_expression("SET stored_bytes = :z, stored_objects = :z")
        .expression_attribute_values(":z", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored(&usage(&platform, &member, &slug).await["usage"]),
        (0, 0)
    );
    let report = reconcile(&platform, &op, &slug).await;
    let mine = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["slug"] == slug.as_str())
        .cloned()
        .expect("the tenant's report");
    assert_eq!(
        mine["usage_recounted"]["stored_bytes"],
        json!({"from": 0, "to": 300}),
        "{report}"
    );
    assert_eq!(
        mine["usage_recounted"]["stored_objects"],
        json!({"from": 0, "to": 1}),
        "{report}"
    );
    assert_eq!(
        stored(&usage(&platform, &member, &slug).await["usage"]),
        (300, 1)
    );
    // A second reconcile finds nothing to recount.
    let again = reconcile(&platform, &op, &slug).await;
    assert_eq!(
        again["tenants"][0]["usage_recounted"],
        Value::Null,
        "{again}"
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn usage_is_read_by_the_tenants_members_its_partner_and_operators_only() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let owner = platform.user(false).await;
    let slug = tenant_with_owner(&platform, &op, &owner, None).await;
    let member = platform.user(false).await;
    support::add_member(&platform, &op, &slug, &member, "member").await;
    let member_token = platform.sign_in(member.email.as_str(), "portal").await;
    let u = usage(&platform, &member_token, &slug).await;
    assert_eq!(u["plan"]["id"], "free");
    assert_eq!(u["usage"]["seats"]["used"], 2);
    assert_eq!(u["usage"]["databases"]["limit"], 10);
    assert!(u["period"]["start"].as_i64().unwrap() <= u["as_of"].as_i64().unwrap());
    assert!(u["period"]["end"].as_i64().unwrap() > u["as_of"].as_i64().unwrap());
    assert_eq!(usage(&platform, &op, &slug).await["tenant"], slug.as_str());
    // Someone else's member: the 404 of a tenant that does not exist.
    let stranger = platform.user(false).await;
    let other = tenant_with_owner(&platform, &op, &stranger, None).await;
    let stranger_token = platform.sign_in(stranger.email.as_str(), "portal").await;
    let r = platform
        .call(
            "GET",
            format!("/tenants/{slug}/usage"),
            Some(&stranger_token),
            None,
            &[],
        )
        .await;
    assert_eq!(code(&r), (404, Some("TENANT_NOT_FOUND")));
    assert_eq!(
        usage(&platform, &stranger_token, &other).await["tenant"],
        other.as_str()
    );
}
