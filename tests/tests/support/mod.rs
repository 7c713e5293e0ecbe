//! Black-box harness: speaks HTTP to the stack `make test` deployed onto the local emulator
//! (API Gateway -> the real function binaries as Lambda functions -> DynamoDB, SES, Secrets
//! Manager), and reads the emulator's mail and logs. Each test makes its own users and tenants.

#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use shared::access::password::hash_password;
use shared::domain::{Email, User, UserId, UserStatus};
use shared::store::{DynamoStore, UserStore};
use std::path::PathBuf;
use std::process::Command;

pub const PASSWORD: &str = "correct horse battery staple";
/// A password that passes the policy, for resets.
pub const NEW_PASSWORD: &str = "violet tram umbrella 42";

pub struct Platform {
    pub base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub store: DynamoStore,
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub json: Value,
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run through `make test`, which deploys the stack")
    })
}

/// Runs one of the repository's Python tools (`script` relative to the workspace, e.g.
/// `localstack/mail.py`) and returns its stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let root = workspace();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{script} runs: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

impl Platform {
    pub async fn start() -> Platform {
        Self::at(required("API_URL")).await
    }

    /// The platform at another stack's API (`make test` deploys a second one through `make
    /// deploy`'s path: `SAM_API_URL`); its store handle is still the main stack's table.
    pub async fn at(base: String) -> Platform {
        let sdk = shared::runtime::aws::sdk_config().await;
        let store = DynamoStore::new(shared::dynamodb::Client::new(&sdk), required("TABLE_NAME"));
        Platform {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
            store,
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let resp = self
            .client
            .request(req)
            .await
            .expect("the platform answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            json,
        }
    }

    /// POST a JSON body from a given client address (`X-Forwarded-For`, which the emulator's
    /// API Gateway reports as the source address).
    pub async fn post(&self, path: &str, body: Value, ip: &str) -> Reply {
        self.send(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("x-forwarded-for", ip),
            ],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.send("GET", path, &headers, None).await
    }

    pub async fn user(&self, platform_admin: bool) -> User {
        let user = User {
            id: UserId::new_random(),
            email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap(),
            password_hash: hash_password(PASSWORD.into()).await.unwrap(),
            platform_admin,
            status: UserStatus::Active,
            session_epoch: 0,
            reset_generation: 0,
            email_verified: false,
            last_sign_in_at: None,
            name: None,
            factors: Default::default(),
            created_at: shared::runtime::time::now_unix(),
        };
        self.store.create_user(&user).await.unwrap();
        user
    }

    /// The user as stored now.
    pub async fn store_user(&self, id: &UserId) -> User {
        self.store
            .user_by_id(id)
            .await
            .unwrap()
            .expect("the user exists")
    }

    /// The deployed signing key (kid, PKCS#8 DER), read from the emulator's Secrets Manager.
    pub async fn signing_key(&self) -> (String, Vec<u8>) {
        let sdk = shared::runtime::aws::sdk_config().await;
        let client = shared::secretsmanager::Client::new(&sdk);
        let secret =
            shared::runtime::aws::secret_string(&client, &required("JWT_SIGNING_KEY_SECRET_ID"))
                .await
                .unwrap();
        let v: Value = serde_json::from_str(&secret).unwrap();
        let key = &v["keys"][0];
        (
            key["kid"].as_str().unwrap().to_string(),
            STANDARD
                .decode(key["private_key_pkcs8"].as_str().unwrap())
                .unwrap(),
        )
    }

    /// Every line the deployed functions have logged since `since_ms` (Unix milliseconds), from
    /// the emulator's CloudWatch Logs, where Lambda writes them.
    pub fn function_logs(&self, since_ms: i64) -> Vec<String> {
        let out = python(
            "localstack/logs.py",
            &[
                &required("STACK_FILE"),
                "--json",
                "--since-ms",
                &since_ms.to_string(),
            ],
        );
        let lines: Vec<Value> = serde_json::from_str(&out).expect("logs.py prints JSON");
        lines
            .iter()
            .map(|l| l["message"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Nothing to stop: the stack belongs to the whole run.
    pub async fn shutdown(self) {}
}

/// A distinct client address per test, so per-address limits of parallel tests never collide.
pub fn unique_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

impl Platform {
    /// Messages the emulator captured for `to`, oldest first, as (subject, body) pairs; the
    /// body is the HTML part after the text part.
    pub async fn mail_to(&self, to: &str) -> Vec<(String, String)> {
        let out = python("localstack/mail.py", &["--json", "--to", to]);
        let messages: Vec<Value> = serde_json::from_str(&out).expect("mail.py prints JSON");
        messages
            .iter()
            .map(|m| {
                (
                    m["subject"].as_str().unwrap_or("").to_string(),
                    format!(
                        "{}\n{}",
                        m["text"].as_str().unwrap_or(""),
                        m["html"].as_str().unwrap_or("")
                    ),
                )
            })
            .collect()
    }

    /// Waits briefly for the `n`th message to `to` (sending is synchronous, but be tolerant).
    pub async fn wait_for_mail(&self, to: &str, n: usize) -> Vec<(String, String)> {
        for _ in 0..50 {
            let mail = self.mail_to(to).await;
            if mail.len() >= n {
                return mail;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages to {to}");
    }
}

impl Platform {
    /// Asks for a reset link for `email` (the first request for it) and returns its token.
    pub async fn first_reset_token(&self, email: &str) -> String {
        token_in(&self.first_reset_mail(email).await)
    }

    /// The body of the reset mail a fresh forgot-password for `email` sends (whatever mail
    /// the address had before).
    pub async fn first_reset_mail(&self, email: &str) -> String {
        let before = self.mail_to(email).await.len();
        let forgot = self
            .post(
                "/auth/forgot-password",
                serde_json::json!({ "email": email }),
                &unique_ip(),
            )
            .await;
        assert_eq!(forgot.status, 200);
        self.wait_for_mail(email, before + 1).await.remove(before).1
    }
}

/// The reset token in a mail body's link (`...#token=<token>`).
pub fn token_in(body: &str) -> String {
    let start = body.find("#token=").expect("the mail has a reset link") + "#token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

impl Platform {
    /// Accepts, as the holder of `token`, their invitation to tenant `slug` (an existing
    /// account invited or named owner holds nothing until it does).
    pub async fn join(&self, slug: &str, token: &str) {
        let r = self
            .call(
                "POST",
                format!("/tenants/{slug}/join"),
                Some(token),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "join {slug}: {}", r.json);
    }

    /// Signs `email` in with `PASSWORD` for `audience` and returns the access token.
    pub async fn sign_in(&self, email: &str, audience: &str) -> String {
        self.sign_in_with(email, PASSWORD, audience).await
    }

    pub async fn sign_in_with(&self, email: &str, password: &str, audience: &str) -> String {
        let r = self
            .post(
                "/auth/login",
                serde_json::json!({"email": email, "password": password, "audience": audience}),
                &unique_ip(),
            )
            .await;
        assert_eq!(r.status, 200, "sign-in of {email}: {}", r.json);
        r.json["data"]["access_token"].as_str().unwrap().to_string()
    }

    /// A JSON request with an optional bearer token and extra headers.
    pub async fn call(
        &self,
        method: &str,
        path: impl Into<String>,
        bearer: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        headers.extend_from_slice(extra);
        let path: String = path.into();
        self.send(
            method,
            &path,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }
}

/// A fresh slug (`<prefix>-<12 hex>`).
impl Platform {
    /// Polls `GET /tenants/{slug}` until the tenant has `status` (30 s at most); the tenant.
    pub async fn wait_for_status(&self, slug: &str, bearer: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = self
                .call("GET", format!("/tenants/{slug}"), Some(bearer), None, &[])
                .await;
            assert_eq!(r.status, 200, "{}", r.json);
            if r.json["data"]["status"] == status {
                return r.json["data"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{slug} never became {status}: {}",
                r.json["data"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub fn unique_slug(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A fresh email address.
pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple())
}

impl Platform {
    /// A request to an absolute URL (a presigned storage link).
    pub async fn send_url(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("storage answers");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }
}

/// A `multipart/form-data` body: the fields in order, then the file. Returns the content type
/// (with its boundary) and the body.
pub fn multipart(
    fields: &[(String, String)],
    file: &[u8],
    content_type: &str,
) -> (String, Vec<u8>) {
    let boundary = format!("----harness{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\nContent-Type: {content_type}\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

// Records made through the API by an operator: the tenants, partners, invitation and access
// matrix tests build their worlds from these.

pub async fn operator_token(platform: &Platform) -> (User, String) {
    let op = platform.user(true).await;
    let token = platform.sign_in(op.email.as_str(), "operator").await;
    (op, token)
}

pub async fn ok(r: Reply, what: &str) -> Value {
    assert!(
        (200..300).contains(&r.status),
        "{what}: {} {}",
        r.status,
        r.json
    );
    r.json["data"].clone()
}

/// A tenant created by the operator with `owner` (an existing user) as owner.
pub async fn tenant_with_owner(
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
    // An existing account named owner accepts before it holds anything.
    let token = platform.sign_in(owner.email.as_str(), "portal").await;
    platform.join(&slug, &token).await;
    slug
}

pub async fn add_member(platform: &Platform, op: &str, slug: &str, user: &User, role: &str) {
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
    // An existing account accepts before it holds anything.
    let token = platform.sign_in(user.email.as_str(), "portal").await;
    platform.join(slug, &token).await;
}

pub async fn partner(platform: &Platform, op: &str) -> String {
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

pub async fn partner_admin(platform: &Platform, op: &str, partner: &str, user: &User) {
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

pub async fn futures_join<F: std::future::Future<Output = Reply>>(
    futures: impl Iterator<Item = F>,
) -> Vec<Reply> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Polled together: the requests are in flight at the same time.
    let joined = futures_util::future::join_all(handles).await;
    out.extend(joined);
    out
}

// Second factors: enrolling an authenticator app and signing in with it (the MFA, impersonation
// and access tests need an operator whose sign-in passed a factor just now).

use shared::access::totp::{self, TotpSecret};

/// Enrolls an authenticator app for the holder of `access` (whose password is `password`):
/// the secret, and the ten recovery codes. The confirming code is of the current step.
pub async fn enroll_with(
    platform: &Platform,
    access: &str,
    password: &str,
) -> (TotpSecret, Vec<String>) {
    let started = platform
        .call(
            "POST",
            "/account/mfa/totp",
            Some(access),
            Some(json!({ "password": password })),
            &[],
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.json);
    let secret = TotpSecret::from_base32(started.json["data"]["secret"].as_str().unwrap()).unwrap();
    assert!(started.json["data"]["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let code = totp::code_at(&secret, shared::runtime::time::now_unix());
    let confirmed = platform
        .call(
            "POST",
            "/account/mfa/totp/confirm",
            Some(access),
            Some(json!({ "code": code })),
            &[],
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.json);
    let codes: Vec<String> = confirmed.json["data"]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

pub async fn enroll(platform: &Platform, access: &str) -> (TotpSecret, Vec<String>) {
    enroll_with(platform, access, PASSWORD).await
}

/// An operator who signed in with a second factor just now: the user and the access token.
pub async fn strong_operator(platform: &Platform) -> (shared::domain::User, String) {
    let (user, weak) = operator_token(platform).await;
    let (secret, _) = enroll(platform, &weak).await;
    let step = first_step(platform, user.email.as_str(), PASSWORD, "operator").await;
    let (status, body) = second_step(
        platform,
        step["mfa_token"].as_str().unwrap(),
        "code",
        &next_code(&secret),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        user,
        body["data"]["access_token"].as_str().unwrap().to_string(),
    )
}

/// The first step of a sign-in: its answer's `data`.
pub async fn first_step(platform: &Platform, email: &str, password: &str, audience: &str) -> Value {
    let r = platform
        .post(
            "/auth/login",
            json!({"email": email, "password": password, "audience": audience}),
            &unique_ip(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["data"].clone()
}

pub async fn second_step(
    platform: &Platform,
    mfa_token: &str,
    field: &str,
    code: &str,
) -> (u16, Value) {
    let r = platform
        .post(
            "/auth/mfa",
            json!({"mfa_token": mfa_token, field: code}),
            &unique_ip(),
        )
        .await;
    (r.status, r.json)
}

/// A code of the next time step: the confirming code used the current one, and a code is
/// accepted once.
pub fn next_code(secret: &TotpSecret) -> String {
    totp::code_at(
        secret,
        shared::runtime::time::now_unix() + totp::PERIOD_SECS,
    )
}
