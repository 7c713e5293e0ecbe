//! Local tooling around the deployed platform: a Lambda Runtime API that runs a function's
//! real binary in isolation (for `make bench`'s cold-start and memory figures, where a quiet,
//! controlled runtime matters), and the benches' seed data. `make dev` and `make test` run the
//! platform itself on the emulator, deployed from the template (`infra/deploy.py`).

pub mod runtime_api;

/// The `p`th percentile of `v` (nearest rank), for the benches' figures.
pub fn pct(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize).min(v.len() - 1)]
}

/// `--flag value` pairs of a bench's command line, checked against `known`.
pub fn flags(known: &[&str]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        assert!(known.contains(&flag.as_str()), "unknown flag {flag}");
        let value = args.next().expect("every flag takes a value");
        out.insert(flag, value);
    }
    out
}
/// The HTTP benches' command line: `--base URL` (required) and a count flag (`default` when
/// absent).
pub fn base_and_count(count_flag: &str, default: usize) -> (String, usize) {
    let args = flags(&["--base", count_flag]);
    let base = args
        .get("--base")
        .map(|b| b.trim_end_matches('/').to_string())
        .unwrap_or_default();
    assert!(!base.is_empty(), "--base URL is required");
    let n = args
        .get(count_flag)
        .map(|r| {
            r.parse()
                .unwrap_or_else(|_| panic!("{count_flag} takes a number"))
        })
        .unwrap_or(default);
    (base, n)
}

use shared::domain::tenant::{Tenant, TenantSlug, TenantStatus};
use shared::domain::{Email, Role, User, UserId, UserStatus};
use shared::store::{StoreError, TenantStore, UserStore};

/// An active, non-admin user with a unique email (`<prefix>-<uuid>@example.com`) and the given
/// password hash, for benches' seed data.
pub async fn seed_user(
    store: &dyn UserStore,
    prefix: &str,
    password_hash: &str,
) -> Result<User, StoreError> {
    let user = new_user(prefix, password_hash);
    store.create_user(&user).await?;
    Ok(user)
}

/// The user `seed_user` stores, not stored yet.
pub fn new_user(prefix: &str, password_hash: &str) -> User {
    User {
        id: UserId::new_random(),
        email: Email::parse(&format!("{prefix}-{}@example.com", uuid::Uuid::new_v4()))
            .expect("a valid email"),
        password_hash: password_hash.to_string(),
        platform_admin: false,
        status: UserStatus::Active,
        session_epoch: 0,
        reset_generation: 0,
        email_verified: false,
        last_sign_in_at: None,
        name: None,
        factors: Default::default(),
        created_at: shared::runtime::time::now_unix(),
    }
}

/// An active tenant with a unique slug and `owner` as its owner, for benches' seed data.
pub async fn seed_tenant(
    store: &dyn TenantStore,
    name: &str,
    owner: &User,
) -> Result<Tenant, StoreError> {
    seed_tenant_in(store, name, owner, TenantStatus::Active).await
}

/// `seed_tenant` in a status of the caller's choosing (`Provisioning`: a tenant whose
/// provisioning run has yet to happen).
pub async fn seed_tenant_in(
    store: &dyn TenantStore,
    name: &str,
    owner: &User,
    status: TenantStatus,
) -> Result<Tenant, StoreError> {
    let id = shared::domain::TenantId::new_random();
    let mut tenant = Tenant::new(
        TenantSlug::parse(&format!("bench-{}", &id.as_str()[..12])).expect("a valid slug"),
        name.to_string(),
        shared::runtime::time::now_unix(),
    );
    tenant.status = status;
    store.create_tenant(&tenant).await?;
    store
        .add_membership(&owner.id, &tenant, Role::Owner)
        .await?;
    Ok(tenant)
}

/// The benches' HTTP client: one JSON request to the platform, timed.
pub struct Http {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Sends `method path` with a JSON `body`, a bearer token and a client address
    /// (`X-Forwarded-For`); the status, the milliseconds to the whole answer, and its JSON.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        bearer: Option<&str>,
        ip: &str,
    ) -> (u16, f64, serde_json::Value) {
        use http_body_util::BodyExt;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip);
        if let Some(token) = bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .expect("a valid request");
        let started = std::time::Instant::now();
        let resp = self
            .client
            .request(req)
            .await
            .expect("the platform answers");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, ms, json)
    }
}
