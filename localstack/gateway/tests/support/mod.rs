//! Black-box harness: starts the local gateway (real function binaries from `target/debug`)
//! against the emulator `make test` started, and speaks HTTP to it.

#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use local_gateway::{GatewayConfig, RunningGateway};
use serde_json::Value;
use shared::auth::password::hash_password;
use shared::domain::{Email, User, UserId, UserStatus};
use shared::store::{DynamoStore, UserStore};
use std::path::PathBuf;

pub const PASSWORD: &str = "correct horse battery staple";
/// A password that passes the policy, for resets.
pub const NEW_PASSWORD: &str = "violet tram umbrella 42";

pub struct Platform {
    pub gateway: RunningGateway,
    pub base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pub store: DynamoStore,
    /// Where this platform's function processes write their stdout and stderr.
    pub log_file: PathBuf,
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub json: Value,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Platform {
    pub async fn start() -> Platform {
        Self::start_with(&[]).await
    }

    /// A platform whose functions get these environment variables on top of the template's.
    pub async fn start_with(env: &[(&str, &str)]) -> Platform {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "AWS_ENDPOINT_URL is unset: run through `make test`"
        );
        let functions_dir = std::env::var("FUNCTIONS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join("target/debug"));
        // One log file per platform, beside the suite's, so a test can read its own functions' logs.
        let log_dir = std::env::var("FUNCTION_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| std::env::temp_dir());
        let log_file = log_dir.join(format!("functions-{}.log", uuid::Uuid::new_v4()));
        let gateway = local_gateway::start(GatewayConfig {
            template: workspace().join("infra/template.yaml"),
            functions_dir,
            listen: "127.0.0.1:0".parse().unwrap(),
            // Enough instances that the 50-way race tests really run 50 at once.
            max_instances: 64,
            trust_forwarded_for: true,
            log_file: Some(log_file.clone()),
            quiet: true,
            env_overrides: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await
        .expect("gateway starts");
        let base = format!("http://{}", gateway.addr);
        let sdk = shared::aws::sdk_config().await;
        let store = DynamoStore::new(
            shared::dynamodb::Client::new(&sdk),
            std::env::var("TABLE_NAME").unwrap(),
        );
        Platform {
            gateway,
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
            store,
            log_file,
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
        let resp = self.client.request(req).await.expect("gateway answers");
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

    /// POST a JSON body from a given client address (`X-Forwarded-For`, trusted in tests only).
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
            created_at: shared::time::now_unix(),
        };
        self.store.create_user(&user).await.unwrap();
        user
    }

    /// The deployed signing key (kid, PKCS#8 DER), read from the emulator's Secrets Manager.
    pub async fn signing_key(&self) -> (String, Vec<u8>) {
        let sdk = shared::aws::sdk_config().await;
        let client = shared::secretsmanager::Client::new(&sdk);
        let secret = shared::aws::secret_string(
            &client,
            &std::env::var("JWT_SIGNING_KEY_SECRET_ID").unwrap(),
        )
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

    /// Everything this platform's functions have logged so far.
    pub fn function_logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        let _ = std::fs::remove_file(&self.log_file);
    }
}

/// A distinct client address per test, so per-address limits of parallel tests never collide.
pub fn unique_ip() -> String {
    let b = uuid::Uuid::new_v4().into_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2])
}

impl Platform {
    /// Messages the emulator captured for `to` (moto's SES store), oldest first, as
    /// (subject, body) pairs.
    pub async fn mail_to(&self, to: &str) -> Vec<(String, String)> {
        let url = format!(
            "{}/moto-api/data.json",
            std::env::var("AWS_ENDPOINT_URL").unwrap()
        );
        let req = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = self.client.request(req).await.expect("emulator answers");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let data: Value = serde_json::from_slice(&bytes).expect("moto data is JSON");
        data["ses"]["Message"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["destinations"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == to))
            })
            .map(|m| {
                (
                    m["subject"].as_str().unwrap_or("").to_string(),
                    m["body"].as_str().unwrap_or("").to_string(),
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

    /// Asks for a reset link for `email` (the first request for it) and returns the mail body.
    pub async fn first_reset_mail(&self, email: &str) -> String {
        let forgot = self
            .post(
                "/auth/forgot-password",
                serde_json::json!({ "email": email }),
                &unique_ip(),
            )
            .await;
        assert_eq!(forgot.status, 200);
        self.wait_for_mail(email, 1).await.remove(0).1
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
