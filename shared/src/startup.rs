//! Process start for every function: logging, configuration, the AWS clients it declares it
//! needs and its keys, each built once per process; then the runtime loop. A `main.rs` is a
//! few lines naming what its function uses.

use crate::auth::jwt::{RefreshPolicy, SecretKeySource, TokenKeys, UNKNOWN_KID_REFRESH_INTERVAL};
use crate::config::{Config, ConfigError, LinkConfig, MailConfig};
use crate::email::SesMailer;
use crate::store::DynamoStore;
use aws_config::SdkConfig;
use lambda_http::{Body, Request, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub type StartError = Box<dyn std::error::Error + Send + Sync>;

/// What a starting function has in hand: its configuration and the AWS SDK settings.
pub struct Startup {
    pub config: Config,
    pub sdk: SdkConfig,
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
        crate::logging::init();
        let config = logged("invalid configuration", Config::from_env())?;
        let sdk = crate::aws::sdk_config().await;
        Ok(Startup { config, sdk })
    }

    pub fn store(&self) -> Arc<DynamoStore> {
        Arc::new(DynamoStore::new(
            crate::aws_client!(aws_sdk_dynamodb, &self.sdk),
            &self.config.table_name,
        ))
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
            crate::config::EventConfig::from_env(),
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

    /// The signing keys (`login` only: the private-key secret).
    pub async fn signing_keys(&self) -> Result<TokenKeys, StartError> {
        self.keys(true).await
    }

    /// Verify-only keys (every other function: the public-key secret).
    pub async fn verifying_keys(&self) -> Result<TokenKeys, StartError> {
        self.keys(false).await
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
        logged(
            "access-token keys unavailable",
            TokenKeys::from_source(
                Box::new(source),
                policy,
                &self.config.jwt_issuer,
                self.config.access_token_ttl_secs,
            )
            .await,
        )
    }
}

/// Hands `handle` to the Lambda runtime; `app` lives for the whole process.
pub async fn serve<A, F, Fut>(app: A, handle: F) -> Result<(), lambda_http::Error>
where
    A: Send + Sync + 'static,
    F: Fn(&'static A, Request) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    let app: &'static A = Box::leak(Box::new(app));
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, std::convert::Infallible>(handle(app, req).await)
    }))
    .await
}
