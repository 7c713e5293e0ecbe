//! Process start for every function: logging, configuration, the AWS clients it declares it
//! needs and its keys, each built once per process; then the runtime loop. A `main.rs` is a
//! few lines naming what its function uses.
//!
//! Each part of the start is timed, and the process logs one `initialised` line with every
//! part in microseconds when it starts serving, so a cold start's cost is read per part
//! (`make bench` prints them).

use crate::access::jwt::{RefreshPolicy, SecretKeySource, TokenKeys, UNKNOWN_KID_REFRESH_INTERVAL};
use crate::mail::SesMailer;
use crate::runtime::config::{Config, ConfigError, LinkConfig, MailConfig};
use crate::store::{DynamoStore, Health};
use aws_config::SdkConfig;
use base64::Engine;
use lambda_http::{Body, Request, Response};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// What a starting function has in hand: its configuration and the AWS SDK settings.
pub struct Startup {
    pub config: Config,
    pub sdk: SdkConfig,
    clock: InitClock,
    store: Arc<DynamoStore>,
    /// Whether the store's connection has been opened yet (see `prime_store`).
    primed: std::sync::atomic::AtomicBool,
    /// When `begin` ended.
    begun: Instant,
}

/// The parts of a start and how long each took.
struct InitClock {
    started: Instant,
    parts: Mutex<Vec<(&'static str, Duration)>>,
}

impl InitClock {
    fn record(&self, part: &'static str, took: Duration) {
        self.parts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((part, took));
    }

    /// One line: `initialised` with `total_us` and `parts` (`name=us` pairs, in the order each
    /// part finished; parts that ran concurrently overlap).
    fn log(&self) {
        let parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        let listed: Vec<String> = parts
            .iter()
            .map(|(name, took)| format!("{name}={}", took.as_micros()))
            .collect();
        tracing::info!(
            total_us = self.started.elapsed().as_micros() as u64,
            parts = %listed.join(" "),
            "initialised"
        );
    }
}

/// One read of the store's fixed item; a failure is logged, not returned.
async fn ping(store: &DynamoStore) {
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %crate::runtime::logging::chain(&e), "store not reachable at start-up");
    }
}

/// Logs a start-up failure (the runtime then reports it as an init error) and passes it on.
fn logged<T, E: Into<StartError>>(what: &'static str, r: Result<T, E>) -> Result<T, StartError> {
    r.map_err(|e| {
        let e = e.into();
        tracing::error!(error = %e, "{what}");
        e
    })
}

impl Startup {
    pub async fn begin() -> Result<Startup, StartError> {
        let started = Instant::now();
        crate::runtime::logging::init();
        let config = logged("invalid configuration", Config::from_env())?;
        crate::access::caller::set_operator_factor_required(config.operator_mfa_required);
        let clock = InitClock {
            started,
            parts: Mutex::new(vec![("config", started.elapsed())]),
        };
        let at = Instant::now();
        let sdk = crate::runtime::aws::sdk_config().await;
        clock.record("sdk", at.elapsed());
        let at = Instant::now();
        let store = Arc::new(DynamoStore::new(
            crate::aws_client!(aws_sdk_dynamodb, &sdk),
            &config.table_name,
        ));
        clock.record("store-client", at.elapsed());
        Ok(Startup {
            config,
            sdk,
            clock,
            store,
            primed: std::sync::atomic::AtomicBool::new(false),
            begun: Instant::now(),
        })
    }

    /// Opens the store's connection with one read of a fixed item (what `/health/ready` reads),
    /// so the first request does not pay for the connection (on AWS, a TLS handshake), the
    /// credentials and the SDK's first-call set-up. Run beside the key read of a function that
    /// has one (the start waits for that read anyway); see `started` for the others. A failure
    /// is logged and left to the requests, which answer 503 on their own.
    async fn prime_store(&self) {
        if self.primed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let at = Instant::now();
        ping(&self.store).await;
        self.clock.record("store", at.elapsed());
    }

    /// Runs one part of the start, timed under `part`.
    pub async fn timed<T>(&self, part: &'static str, work: impl Future<Output = T>) -> T {
        let at = Instant::now();
        let out = work.await;
        self.clock.record(part, at.elapsed());
        out
    }

    /// Starts opening the store's connection if nothing did yet, and logs the `initialised` line;
    /// `serve` calls it, and so must a function that runs the Lambda runtime itself.
    pub async fn started(&self) {
        // What the function did between `begin` and here (its clients, its reads): `app`.
        self.clock.record("app", self.begun.elapsed());
        // A function that read no key at its start (login reads its own in the background) has
        // not opened the store's connection: that read goes in the background too. Awaited, it
        // was a whole round trip before the first request (login's start: 5-11 ms of its 6-12,
        // `make bench`), and the first request opens connections of its own anyway (a
        // sign-in's first step sends four calls at once).
        if !self.primed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let store = self.store.clone();
            tokio::spawn(async move { ping(&store).await });
        }
        self.clock.log();
    }

    /// Hands `handle` to the Lambda runtime; `app` lives for the whole process.
    pub async fn serve<A, F, Fut>(self, app: A, handle: F) -> Result<(), lambda_http::Error>
    where
        A: Send + Sync + 'static,
        F: Fn(&'static A, Request) -> Fut + Send + Sync + Copy + 'static,
        Fut: Future<Output = Response<Body>> + Send,
    {
        self.started().await;
        let app: &'static A = Box::leak(Box::new(app));
        lambda_http::run(lambda_http::service_fn(move |req| async move {
            Ok::<_, std::convert::Infallible>(handle(app, req).await)
        }))
        .await
    }

    /// The store (one client per process, opened during start-up).
    pub fn store(&self) -> Arc<DynamoStore> {
        self.store.clone()
    }

    pub fn mailer(&self) -> Result<Arc<SesMailer>, StartError> {
        let mail = logged("invalid configuration", MailConfig::from_env())?;
        Ok(Arc::new(SesMailer::new(
            crate::aws_client!(aws_sdk_sesv2, &self.sdk),
            &mail.sender_email,
        )))
    }

    /// The event publisher (EventBridge, bus `EVENT_BUS_NAME`).
    pub fn events(&self) -> Result<Arc<crate::events::EventBridgePublisher>, StartError> {
        let events = logged(
            "invalid configuration",
            crate::runtime::config::EventConfig::from_env(),
        )?;
        Ok(Arc::new(crate::events::EventBridgePublisher::new(
            crate::aws_client!(aws_sdk_eventbridge, &self.sdk),
            events.bus_name,
        )))
    }

    /// S3: on an emulator endpoint buckets are addressed by path; on AWS by virtual host.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let emulated = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|u| !u.is_empty());
        crate::aws_client!(aws_sdk_s3, &self.sdk, |b: aws_sdk_s3::config::Builder| b
            .force_path_style(emulated))
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        crate::aws_client!(aws_sdk_secretsmanager, &self.sdk)
    }

    pub fn links(&self) -> Result<LinkConfig, StartError> {
        logged(
            "invalid configuration",
            LinkConfig::from_env(self.config.local_mode),
        )
    }

    pub fn read<T>(&self, r: Result<T, ConfigError>) -> Result<T, StartError> {
        logged("invalid configuration", r)
    }

    /// The key that seals second-factor secrets (`FACTOR_KEY_SECRET_ID`: 32 random bytes,
    /// base64): a secret of its own, apart from the tenants' data key.
    pub async fn factor_key(&self) -> Result<crate::access::crypto::DataKey, StartError> {
        let id = logged(
            "invalid configuration",
            std::env::var("FACTOR_KEY_SECRET_ID")
                .map_err(|_| "environment variable FACTOR_KEY_SECRET_ID is required"),
        )?;
        let raw = self
            .timed(
                "factor-key",
                crate::runtime::aws::secret_string(&self.secrets(), &id),
            )
            .await;
        let raw = logged("factor key unavailable", raw)?;
        logged(
            "factor key unreadable",
            crate::access::crypto::DataKey::from_base64(&raw),
        )
    }

    /// The signing keys (`login` only: the private-key secret).
    pub async fn signing_keys(&self) -> Result<TokenKeys, StartError> {
        self.keys(true).await
    }

    /// The signing keys, read from now on in the background (`login`, which needs them only
    /// once a password verified): the start does not wait for the read.
    pub fn signing_keys_deferred(
        &self,
    ) -> Result<crate::runtime::deferred::Deferred<TokenKeys>, StartError> {
        let secret_id = logged("invalid configuration", self.config.key_secret_id(true))?;
        let client = crate::aws_client!(aws_sdk_secretsmanager, &self.sdk);
        let every = Duration::from_secs(self.config.keys_refresh_secs);
        let policy = RefreshPolicy {
            every,
            unknown_kid_interval: UNKNOWN_KID_REFRESH_INTERVAL.min(every),
        };
        let (issuer, ttl) = (
            self.config.jwt_issuer.clone(),
            self.config.access_token_ttl_secs,
        );
        Ok(crate::runtime::deferred::Deferred::start(move || {
            let source = SecretKeySource {
                client: client.clone(),
                secret_id: secret_id.clone(),
            };
            let issuer = issuer.clone();
            async move {
                let at = Instant::now();
                let keys = TokenKeys::from_source(Box::new(source), policy, &issuer, ttl)
                    .await
                    .map_err(|e| e.to_string());
                tracing::info!(
                    micros = at.elapsed().as_micros() as u64,
                    ok = keys.is_ok(),
                    "access-token keys read"
                );
                keys
            }
        }))
    }

    /// The factor key, read from now on in the background (see `signing_keys_deferred`).
    pub fn factor_key_deferred(
        &self,
    ) -> Result<crate::runtime::deferred::Deferred<crate::access::crypto::DataKey>, StartError>
    {
        let id = logged(
            "invalid configuration",
            std::env::var("FACTOR_KEY_SECRET_ID")
                .map_err(|_| "environment variable FACTOR_KEY_SECRET_ID is required"),
        )?;
        let client = self.secrets();
        Ok(crate::runtime::deferred::Deferred::start(move || {
            let (client, id) = (client.clone(), id.clone());
            async move {
                let raw = crate::runtime::aws::secret_string(&client, &id)
                    .await
                    .map_err(|e| e.to_string())?;
                crate::access::crypto::DataKey::from_base64(&raw).map_err(|e| e.to_string())
            }
        }))
    }

    /// Verify-only keys (every other function: the public-key secret).
    pub async fn verifying_keys(&self) -> Result<TokenKeys, StartError> {
        self.keys(false).await
    }

    /// Verify-only keys and the deployment's list-cursor key (`CURSOR_KEY_SECRET_ID`: 32 random
    /// bytes, base64), read at once, for the functions that hand cursors to callers
    /// (`store::page`).
    pub async fn verifying_keys_with_cursor_key(&self) -> Result<TokenKeys, StartError> {
        let id = logged(
            "invalid configuration",
            std::env::var("CURSOR_KEY_SECRET_ID")
                .map_err(|_| "environment variable CURSOR_KEY_SECRET_ID is required"),
        )?;
        let client = self.secrets();
        let (keys, raw) = tokio::join!(
            self.verifying_keys(),
            self.timed(
                "cursor-key",
                crate::runtime::aws::secret_string(&client, &id)
            )
        );
        let raw = logged("cursor key unavailable", raw)?;
        let bytes = logged(
            "cursor key unreadable",
            base64::engine::general_purpose::STANDARD
                .decode(raw.trim())
                .ok()
                .filter(|b| b.len() >= 32)
                .ok_or("the cursor key is not 32 or more bytes of base64"),
        )?;
        crate::store::page::set_key(&bytes);
        keys
    }

    async fn keys(&self, signing: bool) -> Result<TokenKeys, StartError> {
        let secret_id = logged("invalid configuration", self.config.key_secret_id(signing))?;
        let source = SecretKeySource {
            client: crate::aws_client!(aws_sdk_secretsmanager, &self.sdk),
            secret_id,
        };
        let every = Duration::from_secs(self.config.keys_refresh_secs);
        let policy = RefreshPolicy {
            every,
            unknown_kid_interval: UNKNOWN_KID_REFRESH_INTERVAL.min(every),
        };
        // Two independent round trips at once: the key read, and the store's first connection.
        let (keys, ()) = tokio::join!(
            self.timed(
                "keys",
                TokenKeys::from_source(
                    Box::new(source),
                    policy,
                    &self.config.jwt_issuer,
                    self.config.access_token_ttl_secs,
                ),
            ),
            self.prime_store()
        );
        logged("access-token keys unavailable", keys)
    }
}
