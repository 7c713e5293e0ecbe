//! The login handler driven through real API Gateway REST proxy events on the in-memory store.

use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::access::jwt::TokenKeys;
use shared::access::password::hash_password;
use shared::domain::{Email, User, UserId, UserStatus};
use shared::http::proxy_event::ProxyRequest;
use shared::store::{MemoryStore, SessionStore, UserStore};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";

fn app(store: Arc<MemoryStore>) -> login::App {
    let keys =
        TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("test"), "test-issuer", 900)
            .unwrap();
    login::App {
        store,
        keys: shared::runtime::deferred::Deferred::ready(keys),
        factor_key: shared::runtime::deferred::Deferred::ready(data_key()),
        mailer: Arc::new(shared::mail::RecordingMailer::default()),
        refresh_ttl_secs: 3600,
        // No grace: a second use is reuse at once (the grace window has tests of its own).
        reuse_grace_secs: 0,
        relying_party: shared::access::passkeys::RelyingParty::from_origin(PASSKEY_ORIGIN),
        impersonation_ttl_secs: 900,
    }
}

fn data_key() -> shared::access::crypto::DataKey {
    shared::access::crypto::DataKey::from_base64("bG9jYWwtZGV2LW9ubHktdGVzdC1kYXRhLWtleS0zMmI=")
        .unwrap()
}

/// Gives `user` a confirmed authenticator app (as enrolment leaves it) and recovery codes;
/// returns the secret and the codes.
async fn enroll(
    store: &MemoryStore,
    user: &User,
) -> (shared::access::totp::TotpSecret, Vec<String>) {
    use shared::store::changes::{Change, UserEdit};
    use shared::store::CommitStore;
    let secret = shared::access::totp::TotpSecret::generate();
    let sealed = shared::access::factors::seal(&data_key(), &user.id, &secret).unwrap();
    let (codes, hashes) = shared::access::totp::RecoveryCodes::generate();
    store
        .commit(vec![Change::PutTotp {
            user: user.id.clone(),
            sealed: sealed.clone(),
            at: 1,
        }])
        .await
        .unwrap();
    store
        .commit(vec![
            Change::ConfirmTotp {
                user: user.id.clone(),
                sealed,
                step: 0,
            },
            Change::PutRecoveryCodes {
                user: user.id.clone(),
                hashes,
            },
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit: UserEdit {
                    factors: Some((
                        user.factors,
                        shared::domain::Factors {
                            totp: true,
                            passkeys: 0,
                        },
                    )),
                    ..UserEdit::default()
                },
            },
        ])
        .await
        .unwrap();
    (secret, codes)
}

async fn user(store: &MemoryStore, admin: bool, status: UserStatus) -> User {
    let user = User {
        id: UserId::new_random(),
        email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap(),
        password_hash: hash_password(PASSWORD.into()).await.unwrap(),
        platform_admin: admin,
        status,
        session_epoch: 0,
        reset_generation: 0,
        email_verified: false,
        last_sign_in_at: None,
        name: None,
        factors: Default::default(),
        created_at: 1,
    };
    store.create_user(&user).await.unwrap();
    user
}

async fn call(app: &login::App, req: ProxyRequest) -> (u16, Value, Response<Body>) {
    let resp = login::handle(app, req.to_lambda_request()).await;
    let body = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("non-text body {other:?}"),
    };
    (resp.status().as_u16(), body, resp)
}

fn get_with_token(path: &str, access: &str) -> ProxyRequest {
    ProxyRequest::new("GET", path).header("authorization", &format!("Bearer {access}"))
}

fn post(path: &str, body: Value) -> ProxyRequest {
    ProxyRequest::new("POST", path).json_body(&body.to_string())
}

async fn sign_in(app: &login::App, email: &str, password: &str) -> (u16, Value) {
    let (status, body, _) = call(
        app,
        post("/auth/login", json!({"email": email, "password": password})),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn login_issues_tokens_that_open_me() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (status, body) = sign_in(&app, &u.email.as_str().to_uppercase(), PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["token_type"], "Bearer");
    assert_eq!(data["expires_in"], 900);
    assert_eq!(data["audience"], "portal");
    let access = data["access_token"].as_str().unwrap();
    let (status, me, _) = call(
        &app,
        ProxyRequest::new("GET", "/auth/me").header("Authorization", &format!("Bearer {access}")),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["data"]["user"]["email"], u.email.as_str());
    assert_eq!(me["data"]["memberships"], json!([]));
    assert_eq!(me["data"]["invitations"], json!([]));
    assert!(me["data"]["user"].get("password_hash").is_none());

    // An invitation waiting for this account is listed beside (not among) its memberships.
    let t = shared::testing::tenant(store.as_ref(), "Inviting Co", None).await;
    let now = shared::runtime::time::now_unix();
    shared::store::CommitStore::commit(
        store.as_ref(),
        vec![shared::store::changes::Change::PutInvite {
            replaces: false,
            user: u.id.clone(),
            invite: shared::store::Invite {
                tenant_id: t.id.clone(),
                tenant_slug: t.slug.as_str().to_string(),
                role: shared::domain::Role::Admin,
                invited_by: u.id.clone(),
                invited_at: now,
                expires_at: now + 3600,
            },
        }],
    )
    .await
    .unwrap();
    let (_, me, _) = call(&app, get_with_token("/auth/me", access)).await;
    assert_eq!(me["data"]["memberships"], json!([]));
    assert_eq!(me["data"]["invitations"][0]["tenant_slug"], t.slug.as_str());
    assert_eq!(me["data"]["invitations"][0]["role"], "admin");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_401() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (s1, b1) = sign_in(&app, u.email.as_str(), "wrong password here").await;
    let (s2, b2) = sign_in(&app, "nobody@example.com", "wrong password here").await;
    let disabled = user(&store, false, UserStatus::Disabled).await;
    let (s3, b3) = sign_in(&app, disabled.email.as_str(), PASSWORD).await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);
    assert_eq!(b1["error"]["code"], "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn operator_audience_requires_the_stored_admin_flag() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let plain = user(&store, false, UserStatus::Active).await;
    let admin = user(&store, true, UserStatus::Active).await;
    let body = |u: &User| json!({"email": u.email, "password": PASSWORD, "audience": "operator"});
    let (status, refused, _) = call(&app, post("/auth/login", body(&plain))).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("OPERATOR_AUDIENCE_DENIED"))
    );
    let (status, ok, _) = call(&app, post("/auth/login", body(&admin))).await;
    assert_eq!(
        (status, ok["data"]["audience"].as_str()),
        (200, Some("operator"))
    );
    let (status, _, _) = call(
        &app,
        post(
            "/auth/login",
            json!({"email": admin.email, "password": PASSWORD, "audience": "root"}),
        ),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (_, first) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let r1 = first["data"]["refresh_token"].as_str().unwrap().to_string();

    let (status, second, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(r1, r2);

    // r1 again: reuse. Refused, and the whole family (r2 included) dies.
    let (status, reused, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (401, Some("INVALID_REFRESH_TOKEN"))
    );
    let (status, _, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r2}))).await;
    assert_eq!(status, 401);

    // Another sign-in is another family, unaffected.
    let (_, other) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let (status, _, _) = call(
        &app,
        post(
            "/auth/refresh",
            json!({"refresh_token": other["data"]["refresh_token"]}),
        ),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_token_reused_inside_the_grace_window_gets_its_own_pair_and_keeps_the_session() {
    let store = Arc::new(MemoryStore::new());
    let mut app = app(store.clone());
    app.reuse_grace_secs = 2;
    let u = user(&store, false, UserStatus::Active).await;
    let (_, first) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let r1 = first["data"]["refresh_token"].as_str().unwrap().to_string();
    // Two tabs: both present r1.
    let (s1, tab1, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    let (s2, tab2, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    assert_eq!((s1, s2), (200, 200), "{tab1} {tab2}");
    let t1 = tab1["data"]["refresh_token"].as_str().unwrap().to_string();
    let t2 = tab2["data"]["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(t1, t2);
    // Each tab can go on refreshing with its own token, and its access token works.
    for t in [&t1, &t2] {
        let (status, next, _) =
            call(&app, post("/auth/refresh", json!({"refresh_token": t}))).await;
        assert_eq!(status, 200, "{next}");
        let access = next["data"]["access_token"].as_str().unwrap();
        let (status, _, _) = call(&app, get_with_token("/auth/me", access)).await;
        assert_eq!(status, 200);
    }
    // Once the window has passed, r1 again is reuse: the whole session ends.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, _, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    assert_eq!(status, 401);
    let session_id = r1.split_once('.').unwrap().0;
    assert!(store.session(session_id).await.unwrap().unwrap().revoked);
}

#[tokio::test]
async fn logout_revokes_the_family_and_is_idempotent() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (_, first) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let r1 = first["data"]["refresh_token"].clone();
    for _ in 0..2 {
        let (status, body, _) =
            call(&app, post("/auth/logout", json!({"refresh_token": r1}))).await;
        assert_eq!(
            (status, body["data"]["signed_out"].as_bool()),
            (200, Some(true))
        );
    }
    let (status, _, _) = call(&app, post("/auth/refresh", json!({"refresh_token": r1}))).await;
    assert_eq!(status, 401);
    let (status, _, _) = call(
        &app,
        post("/auth/logout", json!({"refresh_token": "not-a-token"})),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ten_failures_of_an_account_from_one_network_lock_it_there_not_elsewhere() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    for (i, email) in [u.email.as_str(), "ghost@example.com"]
        .into_iter()
        .enumerate()
    {
        let network = format!("10.{i}.0.1");
        for _ in 0..10 {
            let (status, _, _) = call(
                &app,
                post(
                    "/auth/login",
                    json!({"email": email, "password": "nope nope nope"}),
                )
                .from_ip(&network),
            )
            .await;
            assert_eq!(status, 401);
        }
        // Known and unknown alike: the network that guessed is refused, even the right
        // password...
        let (status, body, resp) = call(
            &app,
            post("/auth/login", json!({"email": email, "password": PASSWORD})).from_ip(&network),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("TOO_MANY_REQUESTS")),
            "{email}"
        );
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
    }
    // ...while the owner, from a network with no failures, signs in.
    let (status, body, _) = call(
        &app,
        post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
        )
        .from_ip("10.7.7.7"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_hundred_failures_from_many_networks_close_the_account_everywhere() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    // Nine failures from each of a dozen networks: none of them is locked on its own.
    let mut failures = 0;
    'spread: for net in 0..12 {
        for host in 0..9 {
            if failures == login::LOGIN_FAILURES_PER_ACCOUNT.limit {
                break 'spread;
            }
            let (status, _, _) = call(
                &app,
                post(
                    "/auth/login",
                    json!({"email": u.email, "password": "a wrong guess"}),
                )
                .from_ip(&format!("10.{net}.{host}.1")),
            )
            .await;
            assert_eq!(status, 401, "failure {failures}");
            failures += 1;
        }
    }
    let (status, _, _) = call(
        &app,
        post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
        )
        .from_ip("10.99.0.1"),
    )
    .await;
    assert_eq!(
        status, 429,
        "the account's ceiling holds from a fresh network"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_right_passwords_do_not_use_up_each_others_allowance() {
    let store = Arc::new(MemoryStore::new());
    let app = Arc::new(app(store.clone()));
    let u = user(&store, false, UserStatus::Active).await;
    // Thirty at once, from one address, all right: more than the account's ten from one
    // network, and each is counted until its password is checked.
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (app, email) = (app.clone(), u.email.to_string());
            tokio::spawn(async move {
                call(
                    &app,
                    post("/auth/login", json!({"email": email, "password": PASSWORD}))
                        .from_ip("10.5.5.5"),
                )
                .await
                .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // And none of them is left counted.
    let now = shared::runtime::time::now_unix();
    let subject = shared::access::ratelimit::account_network_subject(u.email.as_str(), "10.5.5.5");
    let counter = store.rate_counter(&shared::access::ratelimit::key(
        &login::LOGIN_FAILURES_PER_ACCOUNT_NETWORK,
        &subject,
        now,
    ));
    assert_eq!((counter.count, counter.in_flight), (0, 0));
}

#[tokio::test]
async fn ten_failures_from_one_address_then_429() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    for n in 0..10 {
        let (status, _, _) = call(
            &app,
            post(
                "/auth/login",
                json!({"email": format!("probe{n}@example.com"), "password": "x"}),
            )
            .from_ip("192.0.2.7"),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = call(
        &app,
        post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
        )
        .from_ip("192.0.2.7"),
    )
    .await;
    assert_eq!(status, 429);
    let (status, _, _) = call(
        &app,
        post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
        )
        .from_ip("192.0.2.8"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_input_is_a_4xx_envelope() {
    let app = app(Arc::new(MemoryStore::new()));
    let cases: Vec<(ProxyRequest, u16, &str)> = vec![
        (
            ProxyRequest::new("POST", "/auth/login").json_body("{nope"),
            400,
            "INVALID_JSON",
        ),
        (
            ProxyRequest::new("POST", "/auth/login"),
            400,
            "INVALID_JSON",
        ),
        (
            post("/auth/login", json!({"email": "a@example.com"})),
            400,
            "INVALID_REQUEST",
        ),
        (
            post("/auth/login", json!({"email": 7, "password": "x"})),
            400,
            "INVALID_REQUEST",
        ),
        (
            post(
                "/auth/login",
                json!({"email": "not-an-email", "password": "x"}),
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            post(
                "/auth/login",
                json!({"email": "a@example.com", "password": ""}),
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            post(
                "/auth/login",
                json!({"email": "a@example.com", "password": "x".repeat(9000)}),
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            post(
                "/auth/login",
                json!({"email": "a@example.com", "password": "x".repeat(2000)}),
            ),
            400,
            "INVALID_REQUEST",
        ),
        (
            post("/auth/refresh", json!({"refresh_token": ["a"]})),
            400,
            "INVALID_REQUEST",
        ),
        (
            ProxyRequest::new("GET", "/auth/login"),
            405,
            "METHOD_NOT_ALLOWED",
        ),
        (ProxyRequest::new("GET", "/nope"), 404, "ROUTE_NOT_FOUND"),
        (ProxyRequest::new("GET", "/auth/me"), 401, "INVALID_TOKEN"),
        (
            ProxyRequest::new("GET", "/auth/me").header("authorization", "Bearer x.y.z"),
            401,
            "INVALID_TOKEN",
        ),
    ];
    for (req, status, code) in cases {
        let label = format!("{} {}", req.method, req.path);
        let (got, body, resp) = call(&app, req).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{label}: {body}"
        );
        assert_eq!(body["success"], false);
        assert!(resp.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn request_id_is_echoed_when_valid_and_generated_otherwise() {
    let app = app(Arc::new(MemoryStore::new()));
    let (_, _, resp) = call(
        &app,
        ProxyRequest::new("GET", "/health/live").header("X-Request-ID", "abc-123"),
    )
    .await;
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let (_, _, resp) = call(
        &app,
        ProxyRequest::new("GET", "/health/live").header("X-Request-ID", "bad id with spaces"),
    )
    .await;
    assert_ne!(resp.headers()["x-request-id"], "bad id with spaces");
    assert_eq!(resp.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn health_and_jwks_answer() {
    let app = app(Arc::new(MemoryStore::new()));
    let (status, live, _) = call(&app, ProxyRequest::new("GET", "/health/live")).await;
    assert_eq!(
        (status, live["data"]["status"].as_str()),
        (200, Some("live"))
    );
    let (status, ready, _) = call(&app, ProxyRequest::new("GET", "/health/ready")).await;
    assert_eq!(
        (status, ready["data"]["status"].as_str()),
        (200, Some("ready"))
    );
    let (status, jwks, _) = call(&app, ProxyRequest::new("GET", "/.well-known/jwks.json")).await;
    assert_eq!(
        (status, jwks["data"]["keys"][0]["kid"].as_str()),
        (200, Some("test"))
    );
}

#[tokio::test]
async fn sample_events_in_the_repository_parse_and_route() {
    let app = app(Arc::new(MemoryStore::new()));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/login");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let req = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let resp = login::handle(&app, req).await;
        assert_ne!(resp.status(), 404, "{path:?} did not reach a route");
        assert!(resp.status().as_u16() < 500, "{path:?}");
        seen += 1;
    }
    assert!(seen >= 3, "expected sample events in {dir}");
}

#[tokio::test]
async fn a_sign_in_to_only_suspended_tenants_is_refused_once_the_password_is_right_and_not_counted()
{
    use shared::domain::tenant::TenantStatus;
    use shared::domain::Role;
    use shared::store::changes::Change;
    use shared::store::CommitStore;

    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let t = shared::testing::tenant(store.as_ref(), "Acme", Some((&u, Role::Member))).await;
    let mut suspended = t.clone();
    suspended.status = TenantStatus::Suspended;
    suspended.version += 1;
    store
        .commit(vec![Change::UpdateTenant {
            tenant: suspended,
            expect_version: t.version,
        }])
        .await
        .unwrap();

    // A guess learns nothing of the suspension: the membership read runs beside the verify,
    // and its answer is looked at only once the password proved right.
    let (status, body) = sign_in(&app, u.email.as_str(), "a wrong password").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("INVALID_CREDENTIALS"))
    );
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ACCOUNT_SUSPENDED"))
    );
    // The right password was not a guess: only the wrong one stays counted, and settled.
    let key = shared::access::ratelimit::key(
        &login::LOGIN_FAILURES_PER_ACCOUNT,
        u.email.as_str(),
        shared::runtime::time::now_unix(),
    );
    let counter = store.rate_counter(&key);
    assert_eq!((counter.count, counter.in_flight), (1, 0));
}

/// Sign-in starts Argon2 on the email claim's copy of the hash; the user's own hash decides.
/// A copy left behind (a password change that did not carry it) lets neither the old password
/// in nor the new one out, and the next right password puts the copy right.
#[tokio::test]
async fn a_claims_stale_hash_copy_never_decides_and_is_put_right() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let old = hash_password("the old password, long enough".into())
        .await
        .unwrap();
    // The claim carries the hash of another password than the user's.
    assert!(store
        .copy_hash_to_claim(&u.email, &u.id, &old)
        .await
        .unwrap());
    let (status, _) = sign_in(&app, u.email.as_str(), "the old password, long enough").await;
    assert_eq!(status, 401, "the copy's password is not the user's");
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let claim = store.email_claim(&u.email).await.unwrap().unwrap();
    assert_eq!(
        claim.password_hash.as_deref(),
        Some(u.password_hash.as_str()),
        "the right password put the copy right"
    );
    // A claim of another user is never written.
    let other = user(&store, false, UserStatus::Active).await;
    assert!(!store
        .copy_hash_to_claim(&u.email, &other.id, &old)
        .await
        .unwrap());
}

/// The claims of an access token, unverified (the test only reads what login put there).
fn claims(access: &str) -> Value {
    use base64::Engine;
    let payload = access.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn an_account_with_a_second_factor_gets_tokens_only_after_it() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (secret, codes) = enroll(&store, &u).await;
    // The right password: no tokens, a challenge.
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["mfa_required"], true);
    assert!(body["data"].get("access_token").is_none());
    let challenge = body["data"]["mfa_token"].as_str().unwrap().to_string();
    // A wrong password is the same 401 as for an account without a factor.
    let (status, wrong) = sign_in(&app, u.email.as_str(), "wrong password!").await;
    assert_eq!(
        (status, wrong["error"]["code"].clone()),
        (401, json!("INVALID_CREDENTIALS"))
    );
    let mfa = |token: &str, field: &str, code: &str| {
        post("/auth/mfa", json!({"mfa_token": token, field: code}))
    };
    let now = shared::runtime::time::now_unix();
    let right = shared::access::totp::code_at(&secret, now);
    let wrong_code = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let (status, body, _) = call(&app, mfa(&challenge, "code", wrong_code)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    let (status, body, _) = call(&app, mfa(&challenge, "code", &right)).await;
    assert_eq!(status, 200, "{body}");
    let access = body["data"]["access_token"].as_str().unwrap();
    let mfa_at = claims(access)["mfa_at"].as_i64().unwrap();
    assert!((now - 5..=now + 5).contains(&mfa_at));
    // The challenge is spent.
    let (status, body, _) = call(&app, mfa(&challenge, "code", &right)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("INVALID_MFA_TOKEN"))
    );
    // A refresh keeps the factor's time in the new access token.
    let refresh_token = body_refresh(&app, u.email.as_str(), &secret, &codes[0]).await;
    let (status, refreshed, _) = call(
        &app,
        post("/auth/refresh", json!({"refresh_token": refresh_token})),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(claims(refreshed["data"]["access_token"].as_str().unwrap())["mfa_at"].is_i64());
    // The same code in a new sign-in: refused (a code is accepted once).
    let (_, again) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let again = again["data"]["mfa_token"].as_str().unwrap().to_string();
    let (status, body, _) = call(&app, mfa(&again, "code", &right)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    // The recovery code spent above does not work twice; another does.
    let (status, _, _) = call(&app, mfa(&again, "recovery_code", &codes[0])).await;
    assert_eq!(status, 400);
    let (status, body, _) =
        call(&app, mfa(&again, "recovery_code", &codes[1].to_uppercase())).await;
    assert_eq!(status, 200, "{body}");
}

/// Signs in with a recovery code and returns the refresh token.
async fn body_refresh(
    app: &login::App,
    email: &str,
    _secret: &shared::access::totp::TotpSecret,
    recovery: &str,
) -> String {
    let (_, body) = sign_in(app, email, PASSWORD).await;
    let token = body["data"]["mfa_token"].as_str().unwrap();
    let (status, body, _) = call(
        app,
        post(
            "/auth/mfa",
            json!({"mfa_token": token, "recovery_code": recovery}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn five_wrong_codes_close_the_second_step_for_a_while() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let (secret, _) = enroll(&store, &u).await;
    let (_, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let token = body["data"]["mfa_token"].as_str().unwrap().to_string();
    let right = shared::access::totp::code_at(&secret, shared::runtime::time::now_unix());
    let wrong = if right == "000001" {
        "000002"
    } else {
        "000001"
    };
    for i in 0..5 {
        let (status, _, _) = call(
            &app,
            post("/auth/mfa", json!({"mfa_token": token, "code": wrong})),
        )
        .await;
        assert_eq!(status, 400, "try {i}");
    }
    // The sixth, even right, is refused until the window passes.
    let (status, _, _) = call(
        &app,
        post("/auth/mfa", json!({"mfa_token": token, "code": right})),
    )
    .await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn sign_ins_and_failures_are_audited_by_account_never_with_the_password() {
    use shared::store::CommitStore;
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    assert_eq!(
        sign_in(&app, u.email.as_str(), "wrong password!").await.0,
        401
    );
    assert_eq!(
        sign_in(&app, "nobody@example.com", "wrong password!")
            .await
            .0,
        401
    );
    assert_eq!(sign_in(&app, u.email.as_str(), PASSWORD).await.0, 200);
    let entries = store.audit_entries("platform", 10).await.unwrap();
    let actions: Vec<(&str, String)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.actor.to_string()))
        .collect();
    let id = u.id.to_string();
    let system = shared::domain::UserId::system().to_string();
    assert!(
        actions.contains(&("auth.sign_in_failed", id.clone())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("auth.sign_in_failed", system)),
        "{actions:?}"
    );
    assert!(actions.contains(&("auth.signed_in", id)), "{actions:?}");
    for e in &entries {
        assert!(!e.details.contains("wrong password") && !e.details.contains(PASSWORD));
        assert!(e.details.contains("client_ip"), "{}", e.details);
    }
}

const PASSKEY_ORIGIN: &str = "https://console.example.com";

/// Registers a software passkey for `user` through the store (as the users function does).
async fn enroll_passkey(
    store: &MemoryStore,
    user: &User,
) -> shared::testing::authenticator::SoftPasskey {
    use shared::access::passkeys;
    use shared::store::changes::{Change, UserEdit};
    use shared::store::CommitStore;
    let rp = passkeys::RelyingParty::from_origin(PASSKEY_ORIGIN).unwrap();
    let started =
        passkeys::start_registration(&rp, &user.id, user.email.as_str(), None, &[]).unwrap();
    let (soft, response) =
        shared::testing::authenticator::SoftPasskey::register(&started.options, PASSKEY_ORIGIN);
    let new = passkeys::finish_registration(
        &rp,
        &user.id,
        &started.state,
        &serde_json::to_vec(&response).unwrap(),
    )
    .unwrap();
    let now = shared::runtime::time::now_unix();
    store
        .commit(vec![Change::PutPendingPasskey {
            user: user.id.clone(),
            pending: shared::store::PendingPasskey {
                state: started.state.clone(),
                expires_at: now + 60,
            },
        }])
        .await
        .unwrap();
    store
        .commit(vec![
            Change::AddPasskey {
                user: user.id.clone(),
                passkey: shared::store::Passkey {
                    id: new.id,
                    name: "laptop".into(),
                    public_key: new.public_key,
                    state: new.state,
                    transports: new.transports,
                    created_at: now,
                    last_used_at: None,
                },
                pending_state: started.state,
                now,
            },
            Change::UpdateUser {
                user: user.id.clone(),
                before: user.account(),
                edit: UserEdit {
                    factors: Some((
                        user.factors,
                        shared::domain::Factors {
                            passkeys: 1,
                            ..user.factors
                        },
                    )),
                    ..UserEdit::default()
                },
            },
        ])
        .await
        .unwrap();
    soft
}

#[tokio::test]
async fn a_passkey_answers_the_second_step_once_and_only_from_the_console() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let u = user(&store, false, UserStatus::Active).await;
    let mut soft = enroll_passkey(&store, &u).await;
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["methods"], json!(["passkey", "recovery_code"]));
    let token = body["data"]["mfa_token"].as_str().unwrap().to_string();
    // Without asking for options first, a passkey answer has no ceremony to match: refused.
    let (status, body, _) = call(
        &app,
        post(
            "/auth/mfa",
            json!({"mfa_token": token, "passkey": {"id": "x"}}),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    let options = |token: String| post("/auth/mfa/passkey", json!({"mfa_token": token}));
    let (status, body, _) = call(&app, options(token.clone())).await;
    assert_eq!(status, 200, "{body}");
    let opts = body["data"]["options"].clone();
    assert_eq!(opts["rpId"], "console.example.com");
    assert_eq!(opts["allowCredentials"][0]["id"], soft.id());
    // An answer made for another origin (a phishing page) is refused and counted.
    let phished = soft.assert(&opts, "https://console.example.com.evil.test");
    let (status, body, _) = call(
        &app,
        post("/auth/mfa", json!({"mfa_token": token, "passkey": phished})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    // The console's answer signs in, with the factor's time in the token.
    let answer = soft.assert(&opts, PASSKEY_ORIGIN);
    let (status, body, _) = call(
        &app,
        post("/auth/mfa", json!({"mfa_token": token, "passkey": answer})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(claims(body["data"]["access_token"].as_str().unwrap())["mfa_at"].is_i64());
    // The same answer again: the challenge is spent.
    let (status, body, _) = call(
        &app,
        post("/auth/mfa", json!({"mfa_token": token, "passkey": answer})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("INVALID_MFA_TOKEN"))
    );
    // Replayed into a new sign-in (its challenge differs): refused.
    let (_, again) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    let again = again["data"]["mfa_token"].as_str().unwrap().to_string();
    let (status, _, _) = call(&app, options(again.clone())).await;
    assert_eq!(status, 200);
    let (status, body, _) = call(
        &app,
        post("/auth/mfa", json!({"mfa_token": again, "passkey": answer})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    // The stored counter moved with the use that succeeded.
    let stored = store.passkeys(&u.id).await.unwrap();
    assert!(stored[0].last_used_at.is_some());
    // Two fields at once: a 400, nothing checked.
    let (status, _, _) = call(
        &app,
        post(
            "/auth/mfa",
            json!({"mfa_token": again, "passkey": answer, "code": "123456"}),
        ),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn passkey_options_need_a_live_challenge_and_a_passkey() {
    let store = Arc::new(MemoryStore::new());
    let app = app(store.clone());
    let (status, body, _) = call(
        &app,
        post("/auth/mfa/passkey", json!({"mfa_token": "not-a-token"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("INVALID_MFA_TOKEN"))
    );
    // An account with an authenticator app only: no passkey options.
    let u = user(&store, false, UserStatus::Active).await;
    enroll(&store, &u).await;
    let (_, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(body["data"]["methods"], json!(["totp", "recovery_code"]));
    let token = body["data"]["mfa_token"].as_str().unwrap();
    let (status, body, _) =
        call(&app, post("/auth/mfa/passkey", json!({"mfa_token": token}))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("INVALID_STATE"))
    );
}

#[tokio::test]
async fn keys_that_cannot_be_read_answer_503_and_write_no_session_until_they_can() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let store = Arc::new(MemoryStore::new());
    let mut app = app(store.clone());
    // The keys' secret is unreachable until `up` is set (a read at start that failed, say).
    let up = Arc::new(AtomicBool::new(false));
    let secret = TokenKeys::generate_secret_json("late");
    let reachable = up.clone();
    app.keys = shared::runtime::deferred::Deferred::start(move || {
        let (reachable, secret) = (reachable.clone(), secret.clone());
        async move {
            if reachable.load(Ordering::SeqCst) {
                TokenKeys::from_secret_json(&secret, "test-issuer", 900).map_err(|e| e.to_string())
            } else {
                Err("secrets unreachable".to_string())
            }
        }
    });
    let u = user(&store, false, UserStatus::Active).await;
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("SERVICE_UNAVAILABLE")),
        "{body}"
    );
    assert!(
        store.user_sessions(&u.id, 10).await.unwrap().is_empty(),
        "no session without a token"
    );
    // Once the secret can be read, the next request reads it and signs in.
    up.store(true, Ordering::SeqCst);
    let (status, body) = sign_in(&app, u.email.as_str(), PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["access_token"].is_string());
}
