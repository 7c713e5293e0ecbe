//! Builds presign's clients, credentials and verify-only keys once per process and hands the
//! handler to the runtime.

use shared::runtime::startup::Startup;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let s = Startup::begin().await?;
    let storage = s.read(shared::runtime::config::StorageConfig::from_env())?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let region = s
        .sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let bucket_url = match &endpoint {
        Some(e) => format!("{}/{}", e.trim_end_matches('/'), storage.bucket),
        None => format!("https://{}.s3.{region}.amazonaws.com", storage.bucket),
    };
    let credentials = s
        .sdk
        .credentials_provider()
        .ok_or("no AWS credentials provider")?;
    let app = presign::App {
        store: s.store(),
        keys: s.verifying_keys().await?,
        s3: s.s3(),
        credentials,
        bucket: storage.bucket,
        region,
        bucket_url,
        default_expires_secs: storage.expires_secs,
        seeds: s.read(shared::runtime::config::builtin_plans_from_env())?,
    };
    s.serve(app, presign::handle).await
}
