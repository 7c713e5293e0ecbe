//! AWS SDK configuration, built once per process. `AWS_ENDPOINT_URL` points every client at a
//! local emulator; nothing else differs between the emulator and AWS.

use aws_config::{BehaviorVersion, SdkConfig};

pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
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
