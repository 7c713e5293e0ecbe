//! partners on the in-memory store: records with ETags, attach and detach with counts, admins,
//! and who may reach which route.

use serde_json::{json, Value};
use shared::access::jwt::TokenKeys;
use shared::domain::{Audience, Role, User, UserStatus};
use shared::http::proxy_event::ProxyRequest;
use shared::mail::RecordingMailer;
use shared::store::{CommitStore, MemoryStore, PartnerStore, TenantStore, UserStore};
use shared::testing::{self, read};
use std::sync::Arc;

struct World {
    store: Arc<MemoryStore>,
    mailer: Arc<RecordingMailer>,
    app: partners::App,
    operator: User,
}

async fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let mailer = Arc::new(RecordingMailer::default());
    let keys =
        TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 900).unwrap();
    let app = partners::App {
        store: store.clone(),
        keys,
        mailer: mailer.clone(),
        links: shared::runtime::config::LinkConfig {
            platform_origin: shared::domain::tenant::RedirectOrigin::parse(
                "https://console.example.com",
                false,
            )
            .unwrap(),
        },
        events: Arc::new(shared::events::RecordingPublisher::default()),
    };
    let operator = testing::user(store.as_ref(), true).await;
    World {
        store,
        mailer,
        app,
        operator,
    }
}

/// One request to `resource` (its `{name}`s filled from `params`) as `who`.
struct Req<'a> {
    method: &'a str,
    resource: &'a str,
    params: Vec<(&'a str, String)>,
    body: Option<Value>,
    if_match: Option<String>,
}

fn req<'a>(method: &'a str, resource: &'a str, params: &[(&'a str, &str)]) -> Req<'a> {
    Req {
        method,
        resource,
        params: params.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: None,
        if_match: None,
    }
}

impl Req<'_> {
    fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    fn if_match(mut self, etag: &str) -> Self {
        self.if_match = Some(etag.into());
        self
    }
}

impl World {
    async fn as_(&self, who: &User, aud: Audience, r: Req<'_>) -> (u16, Value) {
        let mut path = r.resource.to_string();
        for (name, value) in &r.params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let mut p = ProxyRequest::new(r.method, &path).header(
            "authorization",
            &testing::bearer(&self.app.keys, who, aud).await,
        );
        p.resource = r.resource.into();
        p.path_parameters = r
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        if let Some(etag) = &r.if_match {
            p = p.header("if-match", etag);
        }
        if let Some(b) = &r.body {
            p = p.json_body(&b.to_string());
        }
        read(&partners::handle(&self.app, p.to_lambda_request()).await)
    }

    async fn op(&self, r: Req<'_>) -> (u16, Value) {
        self.as_(&self.operator, Audience::Operator, r).await
    }

    async fn portal(&self, who: &User, r: Req<'_>) -> (u16, Value) {
        self.as_(who, Audience::Portal, r).await
    }

    /// A partner created through the API by the operator; its `data`.
    async fn partner(&self, slug: &str) -> Value {
        let (status, body) = self
            .op(req("POST", "/partners", &[]).body(
                json!({"slug": slug, "name": format!("{slug} Ltd"), "domain": format!("{slug}.example.com"), "margin_pct": 12.5}),
            ))
            .await;
        assert_eq!(status, 201, "{body}");
        body["data"].clone()
    }

    /// The partner's (non-deleted, active) tenant counts, as the API shows them.
    async fn counts(&self, partner: &str) -> (i64, i64) {
        let (_, p) = self
            .op(req("GET", "/partners/{partner}", &[("partner", partner)]))
            .await;
        (
            p["data"]["tenant_count"].as_i64().unwrap(),
            p["data"]["tenant_counts"]["active"].as_i64().unwrap_or(0),
        )
    }

    /// A partner admin of `slug`, granted directly in the store.
    async fn admin_of(&self, slug: &str) -> User {
        let partner = self
            .store
            .partner_by_slug(&shared::domain::partner::PartnerSlug::parse(slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        let admin = testing::user(self.store.as_ref(), false).await;
        self.store
            .grant_partner_admin(&admin.id, &partner.id)
            .await
            .unwrap();
        admin
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn operators_create_list_read_and_patch_partners() {
    let w = world().await;
    let created = w.partner("acme").await;
    assert_eq!(
        (
            &created["status"],
            &created["margin_pct"],
            &created["tenant_count"]
        ),
        (&json!("active"), &json!(12.5), &json!(0))
    );
    let (status, dup) = w
        .op(req("POST", "/partners", &[])
            .body(json!({"slug": "acme", "name": "Other", "domain": "other.example.com"})))
        .await;
    assert_eq!((status, code(&dup)), (409, "SLUG_TAKEN"));
    let (status, bad) = w
        .op(req("POST", "/partners", &[])
            .body(json!({"slug": "bad-margin", "name": "B", "domain": "b.example.com", "margin_pct": 100.5})))
        .await;
    assert_eq!(status, 400, "{bad}");
    w.partner("beta").await;

    let (status, list) = w.op(req("GET", "/partners", &[])).await;
    assert_eq!(status, 200);
    let mut slugs: Vec<&str> = list["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    slugs.sort();
    assert_eq!(slugs, ["acme", "beta"]);

    let (status, got) = w
        .op(req("GET", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["data"], created);
    let etag = created["etag"].as_str().unwrap().to_string();

    let (status, patched) = w
        .op(req("PATCH", "/partners/{partner}", &[("partner", "acme")])
            .if_match(&etag)
            .body(json!({"name": "Acme Resellers", "contact_info": {"phone": "+1 555"}})))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["data"]["name"], "Acme Resellers");
    assert_ne!(patched["data"]["etag"], json!(etag));

    // The first ETag is stale now: 412, and nothing changes.
    let (status, stale) = w
        .op(req("PATCH", "/partners/{partner}", &[("partner", "acme")])
            .if_match(&etag)
            .body(json!({"name": "Lost Update"})))
        .await;
    assert_eq!((status, code(&stale)), (412, "PRECONDITION_FAILED"));
    let (_, now) = w
        .op(req("GET", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(now["data"]["name"], "Acme Resellers");

    // The audit says who changed what, naming only the keys of the contact details.
    let id = created["id"].as_str().unwrap();
    let audit = w
        .store
        .audit_entries(&format!("partner:{id}"), 10)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"partner.created"), "{actions:?}");
    let updated = audit
        .iter()
        .find(|e| e.action == "partner.updated")
        .expect("an update entry");
    assert_eq!(updated.actor, w.operator.id);
    assert!(updated.details.contains("contact_info_keys"));
    assert!(!updated.details.contains("+1 555"));
}

#[tokio::test]
async fn a_terminated_partner_is_kept_and_takes_no_new_tenants() {
    let w = world().await;
    w.partner("acme").await;
    let tenant = testing::tenant(w.store.as_ref(), "Shop", None).await;
    let (status, gone) = w
        .op(req("DELETE", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone["data"]["status"], "terminated");
    // Terminating again changes nothing.
    let (status, again) = w
        .op(req("DELETE", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(
        (status, &again["data"]["etag"]),
        (200, &gone["data"]["etag"])
    );
    let (status, kept) = w
        .op(req("GET", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(
        (status, &kept["data"]["status"]),
        (200, &json!("terminated"))
    );

    let (status, refused) = w
        .op(req(
            "PUT",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", "acme"), ("slug", tenant.slug.as_str())],
        ))
        .await;
    assert_eq!((status, code(&refused)), (409, "PARTNER_TERMINATED"));
    let stored = w.store.tenant_by_id(&tenant.id).await.unwrap().unwrap();
    assert_eq!(stored.partner, None);
}

#[tokio::test]
async fn attach_move_and_detach_keep_both_partners_counts() {
    let w = world().await;
    let a = w.partner("acme").await;
    let b = w.partner("beta").await;
    let tenant = testing::tenant(w.store.as_ref(), "Shop", None).await;
    let slug = tenant.slug.as_str();
    let on = |partner: &'static str| {
        req(
            "PUT",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", partner), ("slug", slug)],
        )
    };
    let off = |partner: &'static str| {
        req(
            "DELETE",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", partner), ("slug", slug)],
        )
    };
    let (status, attached) = w.op(on("acme")).await;
    assert_eq!(status, 200, "{attached}");
    assert_eq!(
        (
            &attached["data"]["attached"],
            &attached["data"]["partner_id"]
        ),
        (&json!(true), &a["id"])
    );
    assert_eq!(w.counts("acme").await, (1, 1));
    // Attaching again is a no-op; the count stays.
    assert_eq!(w.op(on("acme")).await.0, 200);
    assert_eq!(w.counts("acme").await, (1, 1));

    let (status, listed) = w
        .op(req(
            "GET",
            "/partners/{partner}/tenants",
            &[("partner", "acme")],
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["items"][0]["slug"], slug);
    assert_eq!(listed["data"]["counts"], json!({"active": 1}));

    // Moving it to another partner moves the count in the same change.
    let (status, moved) = w.op(on("beta")).await;
    assert_eq!((status, &moved["data"]["partner_id"]), (200, &b["id"]));
    assert_eq!(w.counts("acme").await, (0, 0));
    assert_eq!(w.counts("beta").await, (1, 1));

    let (status, not_here) = w.op(off("acme")).await;
    assert_eq!((status, code(&not_here)), (404, "NOT_ATTACHED"));
    let (status, detached) = w.op(off("beta")).await;
    assert_eq!(status, 200, "{detached}");
    assert_eq!(detached["data"]["attached"], false);
    assert_eq!(w.counts("beta").await, (0, 0));
    let stored = w.store.tenant_by_id(&tenant.id).await.unwrap().unwrap();
    assert_eq!(stored.partner, None);

    let (status, missing) = w
        .op(req(
            "PUT",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", "acme"), ("slug", "no-such-tenant")],
        ))
        .await;
    assert_eq!((status, code(&missing)), (404, "TENANT_NOT_FOUND"));
}

#[tokio::test]
async fn partner_admins_read_their_own_partner_and_nothing_else() {
    let w = world().await;
    w.partner("acme").await;
    w.partner("beta").await;
    let admin = w.admin_of("acme").await;
    let tenant = testing::tenant(w.store.as_ref(), "Shop", None).await;
    let slug = tenant.slug.as_str();
    assert_eq!(
        w.op(req(
            "PUT",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", "acme"), ("slug", slug)]
        ))
        .await
        .0,
        200
    );

    // Reads of their own partner: allowed.
    let (status, own) = w
        .portal(
            &admin,
            req("GET", "/partners/{partner}", &[("partner", "acme")]),
        )
        .await;
    assert_eq!((status, &own["data"]["slug"]), (200, &json!("acme")));
    let (status, tenants) = w
        .portal(
            &admin,
            req("GET", "/partners/{partner}/tenants", &[("partner", "acme")]),
        )
        .await;
    assert_eq!(
        (status, &tenants["data"]["items"][0]["slug"]),
        (200, &json!(slug))
    );

    // The operator's routes on their own partner: 403.
    for r in [
        req("PATCH", "/partners/{partner}", &[("partner", "acme")]).body(json!({"name": "Mine"})),
        req("DELETE", "/partners/{partner}", &[("partner", "acme")]),
        req("GET", "/partners/{partner}/admins", &[("partner", "acme")]),
        req("POST", "/partners/{partner}/admins", &[("partner", "acme")])
            .body(json!({"email": "friend@example.com"})),
        req(
            "DELETE",
            "/partners/{partner}/admins/{user_id}",
            &[("partner", "acme"), ("user_id", admin.id.as_str())],
        ),
        req(
            "DELETE",
            "/partners/{partner}/tenants/{slug}",
            &[("partner", "acme"), ("slug", slug)],
        ),
        req("GET", "/partners", &[]),
        req("POST", "/partners", &[])
            .body(json!({"slug": "mine", "name": "Mine", "domain": "mine.example.com"})),
    ] {
        let what = format!("{} {}", r.method, r.resource);
        let (status, body) = w.portal(&admin, r).await;
        assert_eq!((status, code(&body)), (403, "FORBIDDEN"), "{what}");
    }
    let (_, still) = w
        .op(req("GET", "/partners/{partner}", &[("partner", "acme")]))
        .await;
    assert_eq!(
        (&still["data"]["name"], &still["data"]["status"]),
        (&json!("acme Ltd"), &json!("active"))
    );

    // Another partner looks exactly like one that does not exist.
    let (status, other) = w
        .portal(
            &admin,
            req("GET", "/partners/{partner}", &[("partner", "beta")]),
        )
        .await;
    assert_eq!((status, code(&other)), (404, "PARTNER_NOT_FOUND"));
    let (_, missing) = w
        .portal(
            &admin,
            req(
                "GET",
                "/partners/{partner}",
                &[("partner", "no-such-partner")],
            ),
        )
        .await;
    assert_eq!(other["error"], missing["error"]);
    let (status, _) = w
        .portal(
            &admin,
            req("PATCH", "/partners/{partner}", &[("partner", "beta")]).body(json!({"name": "X"})),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn others_are_told_a_partner_does_not_exist() {
    let w = world().await;
    w.partner("acme").await;
    let owner = testing::user(w.store.as_ref(), false).await;
    testing::tenant(w.store.as_ref(), "Shop", Some((&owner, Role::Owner))).await;
    let platform_admin = testing::user(w.store.as_ref(), true).await;
    for (who, what) in [
        (&owner, "a tenant owner"),
        (&platform_admin, "an operator's portal session"),
    ] {
        for r in [
            req("GET", "/partners/{partner}", &[("partner", "acme")]),
            req("GET", "/partners/{partner}/tenants", &[("partner", "acme")]),
            req("DELETE", "/partners/{partner}", &[("partner", "acme")]),
        ] {
            let (status, body) = w.portal(who, r).await;
            assert_eq!((status, code(&body)), (404, "PARTNER_NOT_FOUND"), "{what}");
        }
        let (status, list) = w.portal(who, req("GET", "/partners", &[])).await;
        assert_eq!((status, code(&list)), (403, "FORBIDDEN"), "{what}");
    }
    // The same platform admin with an operator token passes.
    assert_eq!(
        w.as_(
            &platform_admin,
            Audience::Operator,
            req("GET", "/partners/{partner}", &[("partner", "acme")])
        )
        .await
        .0,
        200
    );
    let mut anonymous = ProxyRequest::new("GET", "/partners/acme");
    anonymous.resource = "/partners/{partner}".into();
    anonymous.path_parameters = vec![("partner".into(), "acme".into())];
    assert_eq!(
        read(&partners::handle(&w.app, anonymous.to_lambda_request()).await).0,
        401
    );
}

#[tokio::test]
async fn operators_invite_list_and_remove_partner_admins() {
    let w = world().await;
    w.partner("acme").await;
    let admins = req("GET", "/partners/{partner}/admins", &[("partner", "acme")]);
    let invite = |email: &str| {
        req("POST", "/partners/{partner}/admins", &[("partner", "acme")])
            .body(json!({"email": email}))
    };

    // A new address: an invited user, and an invitation mailed.
    let (status, invited) = w.op(invite("new.admin@example.com")).await;
    assert_eq!(status, 201, "{invited}");
    assert_eq!(
        (
            &invited["data"]["status"],
            &invited["data"]["invitation_sent"]
        ),
        (&json!("invited"), &json!(true))
    );
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.as_str(), "new.admin@example.com");
    assert!(sent[0].text.contains("/accept-invitation#token="));

    // An existing user: granted, told by mail, no invitation.
    let existing = testing::user(w.store.as_ref(), false).await;
    let (status, added) = w.op(invite(existing.email.as_str())).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (&added["data"]["user_id"], &added["data"]["invitation_sent"]),
        (&json!(existing.id), &json!(false))
    );
    assert_eq!(w.mailer.sent().len(), 2);
    assert_eq!(w.mailer.sent()[1].to, existing.email);
    let (status, again) = w.op(invite(existing.email.as_str())).await;
    assert_eq!((status, code(&again)), (409, "ALREADY_ADMIN"));

    let (status, list) = w.op(admins).await;
    assert_eq!(status, 200);
    let mut emails: Vec<&str> = list["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    emails.sort();
    let mut expected = vec!["new.admin@example.com", existing.email.as_str()];
    expected.sort();
    assert_eq!(emails, expected);

    // The granted user now reads the partner; removed, they are an outsider again.
    let own = || req("GET", "/partners/{partner}", &[("partner", "acme")]);
    assert_eq!(w.portal(&existing, own()).await.0, 200);
    let remove = |id: &str| {
        req(
            "DELETE",
            "/partners/{partner}/admins/{user_id}",
            &[("partner", "acme"), ("user_id", id)],
        )
    };
    let (status, removed) = w.op(remove(existing.id.as_str())).await;
    assert_eq!((status, &removed["data"]["removed"]), (200, &json!(true)));
    assert_eq!(w.portal(&existing, own()).await.0, 404);
    let (status, twice) = w.op(remove(existing.id.as_str())).await;
    assert_eq!((status, code(&twice)), (404, "ADMIN_NOT_FOUND"));
    let (status, bad) = w.op(remove("not-a-user-id")).await;
    assert_eq!((status, code(&bad)), (404, "ADMIN_NOT_FOUND"));
    let stored = w
        .store
        .user_by_email(&existing.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.status,
        UserStatus::Active,
        "removing the grant keeps the account"
    );
}

#[tokio::test]
async fn an_admin_who_never_set_a_password_is_invited_afresh() {
    let w = world().await;
    let acme = w.partner("acme").await;
    let invite = || {
        req("POST", "/partners/{partner}/admins", &[("partner", "acme")])
            .body(json!({"email": "slow.reader@example.com"}))
    };
    let (status, first) = w.op(invite()).await;
    assert_eq!(status, 201, "{first}");
    // Before: 409 ALREADY_ADMIN, and the lost invitation could never be replaced. Now as for a
    // tenant's member: 200, a fresh invitation (a new token), the grant unchanged.
    let (status, again) = w.op(invite()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (
            &again["data"]["user_id"],
            &again["data"]["status"],
            &again["data"]["invitation_sent"]
        ),
        (&first["data"]["user_id"], &json!("invited"), &json!(true))
    );
    let sent = w.mailer.sent();
    assert_eq!(sent.len(), 2);
    assert!(sent[1].text.contains("/accept-invitation#token="));
    assert_ne!(sent[0].text, sent[1].text);
    let (_, list) = w
        .op(req(
            "GET",
            "/partners/{partner}/admins",
            &[("partner", "acme")],
        ))
        .await;
    assert_eq!(list["data"]["items"].as_array().unwrap().len(), 1);
    let audit = w
        .store
        .audit_entries(&format!("partner:{}", acme["id"].as_str().unwrap()), 10)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.action == "partner.admin_reinvited"),
        "{audit:?}"
    );
}
