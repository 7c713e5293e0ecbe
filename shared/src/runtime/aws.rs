//! AWS SDK configuration, built once per process. `AWS_ENDPOINT_URL` points every client at a
//! local emulator; nothing else differs between the emulator and AWS.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The SDK settings. Lambda gives a function its region and its role's credentials in the
/// environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), for the life of the execution environment; taken from there directly,
/// start-up skips building the SDK's chains of other sources (profile files, web identity,
/// containers, instance metadata), which cost 5-10 ms of every cold start (`make bench`, the
/// `sdk` part). Where the environment does not give them (a developer's profile), the SDK's
/// default chains apply, as before.
pub async fn sdk_config() -> SdkConfig {
    // One HTTP client for every service client built from this config: the SDK's default
    // stack (hyper 1, rustls on aws-lc, the system's trust store), built once per process. Left
    // to the SDK, each service client builds its own, and each loads the trust store from disk
    // on its first request.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    // The system's root certificates are read once per process, the first time a connector
    // is built: about 2 ms here (Debian: the bundle and each of /etc/ssl/certs' files, PEM
    // parsed), the largest part of every function's start. Read now on a thread of its own,
    // while the start goes on; the first connector waits for it only if it is not done.
    let warm = https.clone();
    std::thread::spawn(move || {
        // A connector built and dropped, as the SDK's own client check does (which
        // `OneConnector` below leaves out): what it is for is the certificates it loads.
        let _ = warm.validate_base_client_config(
            &RuntimeComponentsBuilder::new("trust store warm-up"),
            &ConfigBag::base(),
        );
    });
    let http = SharedHttpClient::new(OneConnector(https));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(url) = env_value("AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = env_value("AWS_REGION") {
        loader = loader.region(Region::new(region));
    }
    if let (Some(id), Some(secret)) = (
        env_value("AWS_ACCESS_KEY_ID"),
        env_value("AWS_SECRET_ACCESS_KEY"),
    ) {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret,
            env_value("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        ));
    }
    loader.load().await
}

/// The process's HTTP client as every service client sees it. The SDK's client, checked by each
/// service client's construction, builds a whole connector there (its root store parsed from
/// the certificates) only to drop it: about 0.1 ms per client, and 2 ms for the first, which
/// read the certificates. Here that check is left out: connectors are built only for requests,
/// once per timeout setting (the SDK caches them), and shared by every service client.
#[derive(Debug)]
struct OneConnector(SharedHttpClient);

impl HttpClient for OneConnector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// An SDK error with its whole context (service code, message, HTTP status) as one cause:
/// the SDK's own `Display` says only "service error".
pub fn sdk_cause<E: std::error::Error>(err: E) -> Box<dyn std::error::Error + Send + Sync> {
    aws_sdk_dynamodb::error::DisplayErrorContext(err)
        .to_string()
        .into()
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id} could not be read")]
    Unavailable {
        id: String,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {id} has no string value")]
    Empty { id: String },
}

/// Reads a secret's string value. The value itself is never logged.
pub async fn secret_string(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<String, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| SecretError::Unavailable {
            id: id.to_string(),
            cause: sdk_cause(e),
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| SecretError::Empty { id: id.to_string() })
}
