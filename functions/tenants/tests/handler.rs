//! tenants (redirect origins) on the in-memory store.

use serde_json::{json, Value};
use shared::access::jwt::TokenKeys;
use shared::domain::{Audience, Role, User};
use shared::http::proxy_event::ProxyRequest;
use shared::mail::RecordingMailer;
use shared::store::{CommitStore, MemoryStore, TenantStore};
use shared::testing::{self, read};
use std::sync::Arc;

fn app_with_mailer() -> (Arc<MemoryStore>, Arc<RecordingMailer>, tenants::App) {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(RecordingMailer::default());
    let keys =
        TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 900).unwrap();
    let app = tenants::App {
        store: store.clone(),
        keys,
        mailer: mailer.clone(),
        events: Arc::new(shared::events::RecordingPublisher::default()),
        links: shared::runtime::config::LinkConfig {
            platform_origin: shared::domain::tenant::RedirectOrigin::parse(
                "https://console.example.com",
                false,
            )
            .unwrap(),
        },
        local_mode: false,
        recovery_window_secs: 7 * 24 * 3600,
        partner_max_tenants: 3,
        seeds: shared::domain::plan::BuiltinPlans::default(),
        flags: shared::flags::Evaluator::new(),
    };
    (store, mailer, app)
}

fn app() -> (Arc<MemoryStore>, tenants::App) {
    let (store, _, app) = app_with_mailer();
    (store, app)
}

/// A signed-in request to `path` (the route `resource`, with its path parameters).
async fn signed(
    app: &tenants::App,
    who: &User,
    aud: Audience,
    (method, path, resource): (&str, &str, &str),
    params: &[(&str, &str)],
    body: Option<Value>,
) -> ProxyRequest {
    // Through the shared fixture: an operator's token comes from a sign-in that passed its
    // second factor, as operators' tokens must.
    let auth = shared::testing::bearer(&app.keys, who, aud).await;
    let mut req = ProxyRequest::new(method, path).header("authorization", &auth);
    req.resource = resource.into();
    req.path_parameters = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(b) = body {
        req = req.json_body(&b.to_string());
    }
    req
}

/// A signed-in request to the tenant's redirect origins.
async fn request(
    app: &tenants::App,
    method: &str,
    slug: &str,
    who: &User,
    aud: Audience,
    body: Option<Value>,
) -> ProxyRequest {
    let path = format!("/tenants/{slug}/redirect-origins");
    let route = (method, path.as_str(), "/tenants/{slug}/redirect-origins");
    signed(app, who, aud, route, &[("slug", slug)], body).await
}

async fn call(app: &tenants::App, req: ProxyRequest) -> (u16, Value) {
    read(&tenants::handle(app, req.to_lambda_request()).await)
}

#[tokio::test]
async fn owners_admins_and_operators_manage_origins_in_order() {
    let (store, mut app) = app();
    app.local_mode = true; // for the http://localhost origin below
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let admin = testing::user(store.as_ref(), false).await;
    store
        .add_membership(&admin.id, &t, Role::Admin)
        .await
        .unwrap();
    let operator = testing::user(store.as_ref(), true).await;
    let slug = t.slug.as_str();

    let body = json!({"origins": ["https://app.acme.example", "http://localhost:5173"]});
    let (status, put) = call(
        &app,
        request(&app, "PUT", slug, &owner, Audience::Portal, Some(body)).await,
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["data"]["primary"], "https://app.acme.example");
    for (who, aud) in [(&admin, Audience::Portal), (&operator, Audience::Operator)] {
        let (status, got) = call(&app, request(&app, "GET", slug, who, aud, None).await).await;
        assert_eq!(status, 200);
        assert_eq!(
            got["data"]["origins"],
            json!(["https://app.acme.example", "http://localhost:5173"])
        );
    }
    let (status, _) = call(
        &app,
        request(
            &app,
            "PUT",
            slug,
            &operator,
            Audience::Operator,
            Some(json!({"origins": []})),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert!(store
        .tenant_by_id(&t.id)
        .await
        .unwrap()
        .unwrap()
        .redirect_origins
        .is_empty());
}

#[tokio::test]
async fn members_outsiders_and_portal_sessions_of_operators_are_refused() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let member = testing::user(store.as_ref(), false).await;
    store
        .add_membership(&member.id, &t, Role::Member)
        .await
        .unwrap();
    let outsider = testing::user(store.as_ref(), false).await;
    let other = testing::tenant(store.as_ref(), "Other", Some((&outsider, Role::Owner))).await;
    let operator = testing::user(store.as_ref(), true).await;
    let slug = t.slug.as_str();

    assert_eq!(
        call(
            &app,
            request(&app, "GET", slug, &member, Audience::Portal, None).await
        )
        .await
        .0,
        403
    );
    // An owner of another tenant cannot even learn that this one exists.
    let (status, body) = call(
        &app,
        request(&app, "GET", slug, &outsider, Audience::Portal, None).await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("TENANT_NOT_FOUND"))
    );
    let (missing_status, missing) = call(
        &app,
        request(
            &app,
            "GET",
            "no-such-tenant",
            &outsider,
            Audience::Portal,
            None,
        )
        .await,
    )
    .await;
    assert_eq!((missing_status, &missing["error"]), (404, &body["error"]));
    // The operator flag counts only in an operator session.
    assert_eq!(
        call(
            &app,
            request(&app, "GET", slug, &operator, Audience::Portal, None).await
        )
        .await
        .0,
        404
    );
    // The outsider's own tenant is unaffected by all this.
    assert_eq!(
        call(
            &app,
            request(
                &app,
                "GET",
                other.slug.as_str(),
                &outsider,
                Audience::Portal,
                None
            )
            .await
        )
        .await
        .0,
        200
    );
    let mut anonymous = ProxyRequest::new("GET", &format!("/tenants/{slug}/redirect-origins"));
    anonymous.resource = "/tenants/{slug}/redirect-origins".into();
    anonymous.path_parameters = vec![("slug".into(), slug.into())];
    assert_eq!(call(&app, anonymous).await.0, 401);
}

#[tokio::test]
async fn invalid_origin_lists_are_400s_and_change_nothing() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let good = json!({"origins": ["https://app.acme.example"]});
    assert_eq!(
        call(
            &app,
            request(
                &app,
                "PUT",
                t.slug.as_str(),
                &owner,
                Audience::Portal,
                Some(good)
            )
            .await
        )
        .await
        .0,
        200
    );
    let bad_lists = [
        json!({"origins": ["https://app.acme.example/path"]}),
        json!({"origins": ["https://*.acme.example"]}),
        json!({"origins": ["https://user:pw@acme.example"]}),
        json!({"origins": ["http://acme.example"]}),
        json!({"origins": ["https://a.example", "https://A.example"]}),
        json!({"origins": "https://a.example"}),
        json!({}),
    ];
    for body in bad_lists {
        let (status, resp) = call(
            &app,
            request(
                &app,
                "PUT",
                t.slug.as_str(),
                &owner,
                Audience::Portal,
                Some(body.clone()),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{body}: {resp}");
    }
    let stored = store.tenant_by_id(&t.id).await.unwrap().unwrap();
    assert_eq!(stored.redirect_origins.len(), 1);
    assert_eq!(
        stored.redirect_origins[0].as_str(),
        "https://app.acme.example"
    );
}

#[tokio::test]
async fn an_origin_change_is_mailed_to_the_other_owners_and_admins() {
    let (store, mailer, app) = app_with_mailer();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let co_owner = testing::user(store.as_ref(), false).await;
    let admin = testing::user(store.as_ref(), false).await;
    let member = testing::user(store.as_ref(), false).await;
    for (u, role) in [
        (&co_owner, Role::Owner),
        (&admin, Role::Admin),
        (&member, Role::Member),
    ] {
        store.add_membership(&u.id, &t, role).await.unwrap();
    }
    let body = json!({"origins": ["https://new.example.net"]});
    let req = request(
        &app,
        "PUT",
        t.slug.as_str(),
        &owner,
        Audience::Portal,
        Some(body),
    )
    .await;
    assert_eq!(call(&app, req).await.0, 200);
    let sent = mailer.sent();
    // The other owner and the admin are told, naming who changed what; the owner who made it
    // and a plain member are not.
    let mut to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    let mut expected = vec![co_owner.email.as_str(), admin.email.as_str()];
    expected.sort();
    assert_eq!(to, expected, "{sent:?}");
    for m in &sent {
        assert!(m.text.contains(owner.email.as_str()));
        assert!(m.text.contains("https://new.example.net"));
    }
    // And the audit log says who did it, written with the change.
    let audit = store
        .audit_entries(&format!("tenant:{}", t.id), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.clone(), audit[0].action.as_str()),
        (owner.id.clone(), "redirect_origins.replaced")
    );
    assert!(audit[0].details.contains("https://new.example.net"));
}

#[tokio::test]
async fn plain_http_origins_are_refused_outside_local_mode() {
    let (store, _, app) = app_with_mailer();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    for origin in ["http://localhost:5173", "http://app.acme.example"] {
        let body = json!({"origins": [origin]});
        let req = request(
            &app,
            "PUT",
            t.slug.as_str(),
            &owner,
            Audience::Portal,
            Some(body),
        )
        .await;
        let (status, resp) = call(&app, req).await;
        assert_eq!(status, 400, "{resp}");
        assert!(
            !resp.to_string().contains(origin),
            "the input is echoed: {resp}"
        );
    }
    assert!(store
        .tenant_by_id(&t.id)
        .await
        .unwrap()
        .unwrap()
        .redirect_origins
        .is_empty());
}

fn app_publishing(
    publisher: Arc<shared::events::RecordingPublisher>,
) -> (Arc<MemoryStore>, Arc<RecordingMailer>, tenants::App) {
    let (store, mailer, mut app) = app_with_mailer();
    app.events = publisher;
    (store, mailer, app)
}

async fn create_tenant(app: &tenants::App, operator: &User, slug: &str) -> (u16, Value) {
    let auth = shared::testing::bearer(&app.keys, operator, Audience::Operator).await;
    let mut req = ProxyRequest::new("POST", "/tenants")
        .header("authorization", &auth)
        .json_body(
            &json!({"slug": slug, "name": "Outbox Co", "owner_email": format!("{slug}@example.com")})
                .to_string(),
        );
    req.resource = "/tenants".into();
    call(app, req).await
}

#[tokio::test]
async fn a_created_tenant_publishes_its_event_and_leaves_no_outbox_item() {
    let publisher = Arc::new(shared::events::RecordingPublisher::default());
    let (store, mailer, app) = app_publishing(publisher.clone());
    let operator = testing::user(store.as_ref(), true).await;
    let (status, body) = create_tenant(&app, &operator, "outbox-ok").await;
    assert_eq!(status, 201, "{body}");
    // The tenant's creation, then its owner's membership, in that order.
    let published = publisher.published();
    let kinds: Vec<&str> = published.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["TenantCreated", "MemberAdded"]);
    let detail: Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(detail["schema_version"], 1);
    let added: Value = serde_json::from_str(&published[1].detail).unwrap();
    assert_eq!(added["role"], "owner");
    assert!(added["occurred_at"].as_i64() >= detail["occurred_at"].as_i64());
    assert_eq!(detail["slug"], "outbox-ok");
    assert!(store.pending_events(10).await.unwrap().is_empty());
    // The owner is invited by the provisioning run, not by the request; every step waits.
    assert!(mailer.sent().is_empty());
    assert_eq!(detail["created_by"], operator.id.as_str());
    for step in shared::domain::tenant::Step::ALL {
        assert_eq!(
            body["data"]["provisioning"][step.as_str()]["state"],
            "pending",
            "{step:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_publish_keeps_the_tenant_and_leaves_the_event_for_the_reconcile() {
    let publisher = Arc::new(shared::events::RecordingPublisher::default());
    publisher
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (store, _, app) = app_publishing(publisher.clone());
    let operator = testing::user(store.as_ref(), true).await;
    let (status, body) = create_tenant(&app, &operator, "outbox-down").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "provisioning");
    let slug = shared::domain::tenant::TenantSlug::parse("outbox-down").unwrap();
    let tenant = store.tenant_by_slug(&slug).await.unwrap().unwrap();
    let mut pending = store.pending_events(10).await.unwrap();
    pending.retain(|e| e.kind == "TenantCreated");
    assert_eq!(pending.len(), 1);
    assert!(pending[0].detail.contains(tenant.id.as_str()));
    assert!(publisher.published().is_empty());
}

/// A partner, stored as `POST /partners` stores it, with `admin` granted.
async fn partner_of(
    store: &MemoryStore,
    slug: &str,
    admin: &User,
) -> shared::domain::partner::Partner {
    let now = shared::runtime::time::now_unix();
    let p = shared::domain::partner::Partner {
        id: shared::domain::PartnerId::new_random(),
        slug: shared::domain::partner::PartnerSlug::parse(slug).unwrap(),
        name: slug.into(),
        domain: shared::domain::fields::Hostname::parse(&format!("{slug}.example.com")).unwrap(),
        status: shared::domain::partner::PartnerStatus::Active,
        margin_bp: 0,
        contact_info: Default::default(),
        billing_info: Default::default(),
        tenant_counts: Default::default(),
        allowed_plans: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    store
        .commit(vec![
            shared::store::changes::Change::CreatePartner(p.clone()),
            shared::store::changes::Change::GrantPartnerAdmin {
                user: admin.id.clone(),
                partner: p.id.clone(),
            },
        ])
        .await
        .unwrap();
    p
}

async fn list_tenants(app: &tenants::App, who: &User, partner: Option<&str>) -> (u16, Value) {
    let route = ("GET", "/tenants", "/tenants");
    let mut req = signed(app, who, Audience::Portal, route, &[], None).await;
    if let Some(p) = partner {
        req.query = vec![("partner".into(), p.into())];
    }
    call(app, req).await
}

#[tokio::test]
async fn a_partner_admin_lists_any_of_their_partners_however_many_and_no_other() {
    let (store, app) = app();
    let admin = testing::user(store.as_ref(), false).await;
    // More partners than the first read of a user's grants used to look at (10).
    let mut mine = Vec::new();
    for i in 0..12 {
        mine.push(partner_of(store.as_ref(), &format!("reseller-{i:02}"), &admin).await);
    }
    let other_admin = testing::user(store.as_ref(), false).await;
    let other = partner_of(store.as_ref(), "someone-else", &other_admin).await;
    let t = testing::tenant(store.as_ref(), "Last Co", None).await;
    let mut attached = store.tenant_by_id(&t.id).await.unwrap().unwrap();
    attached.partner = Some(mine[11].id.clone());
    store
        .commit(vec![shared::store::changes::Change::UpdateTenant {
            expect_version: attached.version,
            tenant: {
                attached.version += 1;
                attached.clone()
            },
        }])
        .await
        .unwrap();

    let (status, body) = list_tenants(&app, &admin, Some("reseller-11")).await;
    assert_eq!(status, 200, "{body}");
    let slugs: Vec<&str> = body["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, [t.slug.as_str()]);
    // Not theirs, several without a choice, and none at all.
    let (status, body) = list_tenants(&app, &admin, Some(other.slug.as_str())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    let (status, body) = list_tenants(&app, &admin, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("several"));
    let nobody = testing::user(store.as_ref(), false).await;
    let (status, _) = list_tenants(&app, &nobody, Some("reseller-11")).await;
    assert_eq!(status, 403);
    // An admin of one partner needs no choice.
    let (status, body) = list_tenants(&app, &other_admin, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 0);
}

/// `method path` on this app as `who`, with the route's `resource` and path parameters.
async fn as_user(
    app: &tenants::App,
    who: &User,
    aud: Audience,
    route: (&str, &str, &str),
    params: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    call(app, signed(app, who, aud, route, params, body).await).await
}

/// Stores `edit` applied to the tenant's current record.
async fn edit_tenant(
    store: &MemoryStore,
    id: &shared::domain::TenantId,
    edit: impl FnOnce(&mut shared::domain::tenant::Tenant),
) {
    let mut t = store.tenant_by_id(id).await.unwrap().unwrap();
    edit(&mut t);
    let expect_version = t.version;
    t.version += 1;
    store
        .commit(vec![shared::store::changes::Change::UpdateTenant {
            tenant: t,
            expect_version,
        }])
        .await
        .unwrap();
}

#[tokio::test]
async fn only_operators_and_the_tenants_partner_admins_change_its_plan() {
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let admin = testing::user(store.as_ref(), false).await;
    store
        .add_membership(&admin.id, &t, Role::Admin)
        .await
        .unwrap();
    let reseller = testing::user(store.as_ref(), false).await;
    let partner = partner_of(store.as_ref(), "reseller", &reseller).await;
    edit_tenant(store.as_ref(), &t.id, |t| {
        t.partner = Some(partner.id.clone())
    })
    .await;
    let operator = testing::user(store.as_ref(), true).await;
    let path = format!("/tenants/{}", t.slug.as_str());
    let route = ("PATCH", path.as_str(), "/tenants/{slug}");
    let params = [("slug", t.slug.as_str())];
    let plan = |p: &str| Some(json!({ "plan": p }));

    for who in [&owner, &admin] {
        let (status, body) = as_user(
            &app,
            who,
            Audience::Portal,
            route,
            &params,
            plan("enterprise"),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{body}"
        );
    }
    let stored = store.tenant_by_id(&t.id).await.unwrap().unwrap();
    assert_eq!(
        stored.plan.as_str(),
        "free",
        "a refused change changes nothing"
    );
    // Their other fields stay theirs to change.
    let (status, _) = as_user(
        &app,
        &admin,
        Audience::Portal,
        route,
        &params,
        Some(json!({"name": "Acme Renamed", "plan": "free"})),
    )
    .await;
    assert_eq!(status, 200);
    // A change of plan needs If-Match.
    let (status, body) = as_user(
        &app,
        &reseller,
        Audience::Portal,
        route,
        &params,
        plan("pro"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (428, Some("PRECONDITION_REQUIRED")),
        "{body}"
    );
    let matched = |who: &User, aud: Audience, p: &str| {
        let who = who.clone();
        let app = &app;
        let p = p.to_string();
        async move {
            let req = signed(app, &who, aud, route, &params, plan(&p))
                .await
                .header("if-match", "*");
            call(app, req).await
        }
    };
    let (status, body) = matched(&reseller, Audience::Portal, "pro").await;
    assert_eq!(
        (status, body["data"]["plan"].as_str()),
        (200, Some("pro")),
        "{body}"
    );
    assert_eq!(body["data"]["over_quota"], json!([]), "{body}");
    let (status, body) = matched(&operator, Audience::Operator, "enterprise").await;
    assert_eq!(
        (status, body["data"]["plan"].as_str()),
        (200, Some("enterprise")),
        "{body}"
    );
}

#[tokio::test]
async fn admins_read_but_do_not_change_redirect_origins_nor_reinvite_an_owner() {
    let (store, mailer, app) = app_with_mailer();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let admin = testing::user(store.as_ref(), false).await;
    store
        .add_membership(&admin.id, &t, Role::Admin)
        .await
        .unwrap();
    let slug = t.slug.as_str();
    let body = json!({"origins": ["https://evil.example.net"]});
    let (status, answer) = call(
        &app,
        request(
            &app,
            "PUT",
            slug,
            &admin,
            Audience::Portal,
            Some(body.clone()),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert!(store
        .tenant_by_id(&t.id)
        .await
        .unwrap()
        .unwrap()
        .redirect_origins
        .is_empty());
    let (status, _) = call(
        &app,
        request(&app, "GET", slug, &admin, Audience::Portal, None).await,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        request(&app, "PUT", slug, &owner, Audience::Portal, Some(body)).await,
    )
    .await;
    assert_eq!(status, 200);

    // A pending owner (invited, no password yet): an admin may not send them a fresh link.
    let pending =
        testing::user_with_status(store.as_ref(), false, shared::domain::UserStatus::Invited).await;
    store
        .add_membership(&pending.id, &t, Role::Owner)
        .await
        .unwrap();
    let path = format!("/tenants/{slug}/users");
    let route = ("POST", path.as_str(), "/tenants/{slug}/users");
    let invite = Some(json!({"email": pending.email.as_str(), "role": "member"}));
    let sent_before = mailer.sent().len();
    let (status, answer) = as_user(
        &app,
        &admin,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite.clone(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{answer}"
    );
    assert_eq!(mailer.sent().len(), sent_before, "no mail");
    // An owner may; and the link goes to the platform's origin, not the tenant's.
    let (status, answer) = as_user(
        &app,
        &owner,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let sent = mailer.sent();
    let last = sent.last().unwrap();
    assert!(
        last.text
            .contains("https://console.example.com/accept-invitation"),
        "{}",
        last.text
    );
    assert!(!last.text.contains("evil.example.net"));
}

#[tokio::test]
async fn only_operators_see_provisioning_text_and_artifacts_and_partners_not_deleted_tenants() {
    use shared::domain::tenant::{Step, StepState, StepStatus, TenantStatus};
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let reseller = testing::user(store.as_ref(), false).await;
    let partner = partner_of(store.as_ref(), "reseller", &reseller).await;
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tenant-x";
    edit_tenant(store.as_ref(), &t.id, |t| {
        t.partner = Some(partner.id.clone());
        t.owner_email = Some(owner.email.clone());
        t.domains = vec![shared::domain::fields::Hostname::parse("acme.example.com").unwrap()];
        t.billing_info = serde_json::from_value(json!({"vat": "GB123"})).unwrap();
        t.provisioning.insert(
            Step::Secrets,
            StepStatus {
                state: StepState::Error,
                message: Some(format!("AccessDenied on {arn}")),
                at: 1,
                attempts: 3,
                artifact: Some(arn.into()),
            },
        );
    })
    .await;
    let operator = testing::user(store.as_ref(), true).await;
    let path = format!("/tenants/{}", t.slug.as_str());
    let route = ("GET", path.as_str(), "/tenants/{slug}");
    let params = [("slug", t.slug.as_str())];
    for (who, aud) in [(&owner, Audience::Portal), (&reseller, Audience::Portal)] {
        let (status, body) = as_user(&app, who, aud, route, &params, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(!body.to_string().contains("123456789012"), "{body}");
        let step = &body["data"]["provisioning"]["secrets"];
        assert_eq!(
            (step["state"].as_str(), step["reason"].as_str()),
            (Some("error"), Some("failed"))
        );
    }
    let (_, body) = as_user(&app, &operator, Audience::Operator, route, &params, None).await;
    assert_eq!(body["data"]["provisioning"]["secrets"]["artifact"], arn);

    // Deleted: the partner's list says so, and nothing of its billing, owner or provisioning.
    edit_tenant(store.as_ref(), &t.id, |t| t.status = TenantStatus::Deleted).await;
    let (status, body) = list_tenants(&app, &reseller, None).await;
    assert_eq!(status, 200, "{body}");
    let item = &body["data"]["items"][0];
    assert_eq!(item["status"], "deleted");
    assert_eq!(item["owner_email"], Value::Null);
    for hidden in ["billing_info", "provisioning"] {
        assert_eq!(item[hidden], json!({}), "{hidden}: {item}");
    }
    assert_eq!(item["domains"], json!([]));
    for secret in [
        owner.email.as_str(),
        "GB123",
        "acme.example.com",
        "123456789012",
    ] {
        assert!(!body.to_string().contains(secret), "{secret}: {body}");
    }
}

#[tokio::test]
async fn a_partner_admin_creates_within_the_partners_quota_and_pace() {
    let (store, mut app) = app();
    let reseller = testing::user(store.as_ref(), false).await;
    partner_of(store.as_ref(), "reseller", &reseller).await;
    let operator = testing::user(store.as_ref(), true).await;
    let create = |i: usize| {
        Some(json!({
            "slug": format!("quota-{i}"),
            "name": format!("Quota {i}"),
            "owner_email": format!("owner{i}@example.com"),
            "partner": "reseller",
        }))
    };
    let route = ("POST", "/tenants", "/tenants");
    // The test app allows 3 live tenants per partner.
    for i in 0..3 {
        let (status, body) =
            as_user(&app, &reseller, Audience::Portal, route, &[], create(i)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = as_user(&app, &reseller, Audience::Portal, route, &[], create(3)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("PARTNER_TENANT_LIMIT")),
        "{body}"
    );
    assert!(store
        .tenant_by_slug(&shared::domain::tenant::TenantSlug::parse("quota-3").unwrap())
        .await
        .unwrap()
        .is_none());
    // Operators are not held to it.
    let (status, body) = as_user(&app, &operator, Audience::Operator, route, &[], create(3)).await;
    assert_eq!(status, 201, "{body}");

    // The pace: 20 creations per partner per hour, however large the quota.
    app.partner_max_tenants = 1_000;
    let mut created = 4;
    let refused = loop {
        let (status, body) = as_user(
            &app,
            &reseller,
            Audience::Portal,
            route,
            &[],
            create(created),
        )
        .await;
        if status != 201 {
            break (status, body);
        }
        created += 1;
        assert!(created < 100, "never refused");
    };
    assert_eq!(refused.0, 429, "{}", refused.1);
    // The three created before the quota refusal and the refused one count: 20 reservations.
    assert_eq!(created - 4 + 3 + 1, 20);
}

#[tokio::test]
async fn a_tenant_being_restored_after_suspension_admits_no_member() {
    use shared::domain::tenant::{Offboarding, Steps, TenantStatus};
    let (store, app) = app();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    // A second, live tenant: the account itself is not held suspended.
    testing::tenant(store.as_ref(), "Other", Some((&owner, Role::Member))).await;
    // Deleted while suspended, then restored: provisioning again, for as long as that takes.
    edit_tenant(store.as_ref(), &t.id, |t| {
        t.status = TenantStatus::Provisioning;
        t.offboarding = Some(Offboarding {
            deleted_at: 1,
            purge_after: i64::MAX,
            previous_status: TenantStatus::Suspended,
            steps: Steps::new(),
            retired_at: Some(2),
            purged_at: None,
        });
    })
    .await;
    let path = format!("/tenants/{}/users", t.slug.as_str());
    let (status, body) = as_user(
        &app,
        &owner,
        Audience::Portal,
        ("GET", path.as_str(), "/tenants/{slug}/users"),
        &[("slug", t.slug.as_str())],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TENANT_SUSPENDED")),
        "{body}"
    );
}

#[tokio::test]
async fn an_existing_account_is_invited_not_attached_and_the_answer_does_not_tell() {
    use shared::store::UserStore;
    let (store, mailer, app) = app_with_mailer();
    let owner = testing::user(store.as_ref(), false).await;
    let t = testing::tenant(store.as_ref(), "Acme", Some((&owner, Role::Owner))).await;
    let evil =
        shared::domain::tenant::RedirectOrigin::parse("https://evil.example.net", false).unwrap();
    store.set_redirect_origins(&t.id, &[evil]).await.unwrap();
    // The victim: an existing account with no tenant (attached, its links would follow this
    // tenant's origin).
    let victim = testing::user(store.as_ref(), false).await;
    let slug = t.slug.as_str();
    let path = format!("/tenants/{slug}/users");
    let route = ("POST", path.as_str(), "/tenants/{slug}/users");
    let invite = |email: &str| Some(json!({"email": email, "role": "member"}));

    let (new_status, new_body) = as_user(
        &app,
        &owner,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite("fresh@example.com"),
    )
    .await;
    let (old_status, old_body) = as_user(
        &app,
        &owner,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite(victim.email.as_str()),
    )
    .await;
    // The same answer, but for the (random-looking) id.
    assert_eq!(
        (new_status, old_status),
        (201, 201),
        "{new_body} {old_body}"
    );
    let strip = |mut v: Value| {
        v["data"]["user_id"] = Value::Null;
        v
    };
    assert_eq!(strip(new_body), strip(old_body.clone()));
    assert_eq!(old_body["data"]["status"], "invited");
    // The victim holds nothing here, their links and invitations elsewhere are untouched.
    assert!(store.membership(&victim.id, &t.id).await.unwrap().is_none());
    let after = store.user_by_id(&victim.id).await.unwrap().unwrap();
    assert_eq!(
        after.reset_generation, victim.reset_generation,
        "no token minted"
    );
    let links = shared::mail::links::link_target(store.as_ref(), &after, &app.links)
        .await
        .unwrap();
    assert_eq!(
        links.origin.as_str(),
        "https://console.example.com",
        "not steered to the tenant's origin"
    );
    let notice = mailer
        .sent()
        .into_iter()
        .find(|m| m.to == victim.email)
        .unwrap();
    assert!(
        notice.text.contains("Nothing changes until you accept"),
        "{}",
        notice.text
    );
    assert!(!notice.text.contains("#token="));
    // Asked again: 200, as a new email's re-invitation is.
    let (status, _) = as_user(
        &app,
        &owner,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite(victim.email.as_str()),
    )
    .await;
    assert_eq!(status, 200);

    let join = format!("/tenants/{slug}/join");
    let accept = ("POST", join.as_str(), "/tenants/{slug}/join");
    let decline = ("DELETE", join.as_str(), "/tenants/{slug}/join");
    // Someone else cannot take it; the victim can decline it, then it is gone.
    let stranger = testing::user(store.as_ref(), false).await;
    testing::tenant(
        store.as_ref(),
        "Stranger Co",
        Some((&stranger, Role::Member)),
    )
    .await;
    let (status, body) = as_user(
        &app,
        &stranger,
        Audience::Portal,
        accept,
        &[("slug", slug)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("TENANT_NOT_FOUND"))
    );
    let (status, body) = as_user(
        &app,
        &victim,
        Audience::Portal,
        decline,
        &[("slug", slug)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["data"]["joined"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (status, _) = as_user(
        &app,
        &victim,
        Audience::Portal,
        accept,
        &[("slug", slug)],
        None,
    )
    .await;
    assert_eq!(status, 404, "declined: nothing to accept");
    assert!(store.membership(&victim.id, &t.id).await.unwrap().is_none());
    // Invited again, accepted: now a member, once.
    as_user(
        &app,
        &owner,
        Audience::Portal,
        route,
        &[("slug", slug)],
        invite(victim.email.as_str()),
    )
    .await;
    let (status, body) = as_user(
        &app,
        &victim,
        Audience::Portal,
        accept,
        &[("slug", slug)],
        None,
    )
    .await;
    assert_eq!(
        (status, body["data"]["role"].as_str()),
        (200, Some("member")),
        "{body}"
    );
    assert_eq!(
        store
            .membership(&victim.id, &t.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Member
    );
    let (status, _) = as_user(
        &app,
        &victim,
        Audience::Portal,
        accept,
        &[("slug", slug)],
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_existing_account_named_owner_owns_only_once_it_accepts() {
    use shared::store::UserStore;
    let (store, app) = app();
    let operator = testing::user(store.as_ref(), true).await;
    let existing = testing::user(store.as_ref(), false).await;
    let create = |email: &str, slug: &str| {
        Some(json!({"slug": slug, "name": "Owned", "owner_email": email}))
    };
    let route = ("POST", "/tenants", "/tenants");
    let (s1, new_body) = as_user(
        &app,
        &operator,
        Audience::Operator,
        route,
        &[],
        create("brand-new@example.com", "owned-new"),
    )
    .await;
    let (s2, old_body) = as_user(
        &app,
        &operator,
        Audience::Operator,
        route,
        &[],
        create(existing.email.as_str(), "owned-old"),
    )
    .await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(
        new_body["data"]["owner"]["invited"],
        old_body["data"]["owner"]["invited"]
    );
    let slug = shared::domain::tenant::TenantSlug::parse("owned-old").unwrap();
    let t = store.tenant_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(t.owners, 0);
    assert!(store
        .membership(&existing.id, &t.id)
        .await
        .unwrap()
        .is_none());
    assert!(store.invite(&existing.id, &t.id).await.unwrap().is_some());
    let join = "/tenants/owned-old/join";
    let (status, body) = as_user(
        &app,
        &existing,
        Audience::Portal,
        ("POST", join, "/tenants/{slug}/join"),
        &[("slug", "owned-old")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let t = store.tenant_by_slug(&slug).await.unwrap().unwrap();
    assert_eq!(t.owners, 1);
    assert_eq!(
        store
            .membership(&existing.id, &t.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Owner
    );
}
