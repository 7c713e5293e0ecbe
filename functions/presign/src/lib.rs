//! `POST /tenants/{slug}/storage/presign`: presigned URLs for the tenant's own storage.
//!
//! Body: one `{operation: "upload"|"download", key, content_type?, expires_in?}`, or
//! `{items: [...]}` with up to 50 of them. Keys are relative to the tenant's prefix
//! (`keys.rs`). An upload gets a presigned `POST` form whose policy fixes the key, the content
//! type and the largest size the tenant's plan allows (its largest upload, within what its
//! stored-bytes limit leaves); one that declares its `size` (within that) also gets a presigned
//! `PUT` whose signature covers its content type and that exact length. S3 refuses anything
//! else. An upload that would pass the plan's stored bytes or objects is refused
//! (`STORAGE_LIMIT`, `OBJECT_LIMIT`); downloads are never held back by a full plan. What is
//! stored is counted from the bucket's notifications, not from what was presigned
//! (`shared::plans`), so links issued at once may together pass the limit by what they carry:
//! the next upload is then refused. A download is served as an attachment of opaque bytes
//! and lives at most 5 minutes. Only members of the tenant get URLs, and
//! a suspended or deleted tenant gets none.

pub mod keys;
pub mod post_policy;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::presigning::PresigningConfig;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use shared::access::gate::{Granted, Intent, Need};
use shared::access::jwt::TokenKeys;
use shared::domain::fields::FieldError;
use shared::domain::plan::BuiltinPlans;
use shared::domain::tenant::Tenant;
use shared::http::call::Call;
use shared::http::request::{json_body, matched, RequestContext};
use shared::store::Store;
use shared::{ApiError, ApiResponse};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The most a client may ask for an upload URL's life.
pub const MAX_EXPIRES_SECS: u64 = 3600;
/// The most a download URL lives, asked for or not: a link outlives the access it was issued
/// under (a removed member, a suspended tenant) by at most this.
pub const MAX_DOWNLOAD_EXPIRES_SECS: u64 = 300;
pub const MAX_ITEMS: usize = 50;
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub struct App {
    pub store: Arc<dyn Store>,
    pub keys: TokenKeys,
    pub s3: aws_sdk_s3::Client,
    pub credentials: SharedCredentialsProvider,
    pub bucket: String,
    pub region: String,
    /// The bucket's URL for form posts (path style on an emulator endpoint).
    pub bucket_url: String,
    pub default_expires_secs: u64,
    /// The built-in plans' limits until they are stored (the tenant's plan says how large an
    /// upload may be and how much it may store).
    pub seeds: BuiltinPlans,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Presign,
}

const ROUTES: &[(&str, &str, Route)] =
    &[("POST", "/tenants/{slug}/storage/presign", Route::Presign)];

/// This function's routes (see `shared::http::request::route_list`).
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    shared::http::request::route_list(ROUTES)
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::http::request::handle(req, |ctx, req| route(app, ctx, req)).await
}

async fn route(app: &App, ctx: RequestContext, req: Request) -> Result<ApiResponse, ApiError> {
    let route = matched(&req, ROUTES)?;
    let call = Call::<App>::signed_in(app, &app.keys, app.store.as_ref(), &ctx, &req).await?;
    match route {
        // The tenant's members only (the gate's `Member`: operators and partner admins are
        // not members unless added).
        Route::Presign => {
            // Links made through an impersonation end with it.
            let until = call.caller.impersonation.as_ref().map(|imp| imp.expires_at);
            presign(
                app,
                &req,
                call.tenant(Need::Member, Intent::Write).await?,
                until,
            )
            .await
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    operation: String,
    key: String,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    content_type: Option<String>,
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    expires_in: Option<u64>,
    /// An upload's exact size in bytes: with it the answer holds a `PUT` signed for that
    /// length (within the plan's largest upload); without it, only the `POST` form.
    #[serde(default, deserialize_with = "shared::domain::fields::not_null")]
    size: Option<u64>,
}

/// A bulk request. Its own struct, so that an unknown field next to `items` is refused too: an
/// untagged enum's inline struct variant would ignore it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Many {
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PresignBody {
    Many(Many),
    One(Item),
}

/// A checked request item: what to sign.
struct Wanted {
    upload: bool,
    key: String,
    content_type: String,
    expires: Duration,
    /// An upload's declared size, signed into its `PUT`.
    size: Option<u64>,
}

fn check_item(app: &App, item: &Item, field: &str, max_bytes: u64) -> Result<Wanted, FieldError> {
    let upload = match item.operation.as_str() {
        "upload" => true,
        "download" => false,
        _ => {
            return Err(FieldError::new(
                format!("{field}operation"),
                "must be upload or download",
            ))
        }
    };
    let key = keys::check(&item.key)
        .map_err(|why| FieldError::new(format!("{field}key"), why))?
        .to_string();
    let content_type = match &item.content_type {
        None => DEFAULT_CONTENT_TYPE.to_string(),
        Some(ct) => {
            let ok = (3..=255).contains(&ct.len())
                && ct.contains('/')
                && ct.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                && !ct.contains(['"', '\\']);
            if !ok {
                return Err(FieldError::new(
                    format!("{field}content_type"),
                    "must be a media type such as text/plain",
                ));
            }
            ct.clone()
        }
    };
    let most = if upload {
        MAX_EXPIRES_SECS
    } else {
        MAX_DOWNLOAD_EXPIRES_SECS
    };
    let expires = match item.expires_in {
        None => app.default_expires_secs.min(most),
        Some(s) if (1..=most).contains(&s) => s,
        Some(_) => {
            return Err(FieldError::new(
                format!("{field}expires_in"),
                format!(
                    "must be 1 to {most} seconds for {}",
                    if upload { "an upload" } else { "a download" }
                ),
            ))
        }
    };
    let size = match (upload, item.size) {
        (_, None) => None,
        (true, Some(n)) if (1..=max_bytes).contains(&n) => Some(n),
        (true, Some(_)) => {
            return Err(FieldError::new(
                format!("{field}size"),
                format!("must be 1 to {max_bytes} bytes, the largest upload of this tenant's plan"),
            ))
        }
        (false, Some(_)) => {
            return Err(FieldError::new(
                format!("{field}size"),
                "is only for uploads",
            ))
        }
    };
    Ok(Wanted {
        upload,
        key,
        content_type,
        expires: Duration::from_secs(expires),
        size,
    })
}

async fn presign(
    app: &App,
    req: &Request,
    granted: Granted,
    until: Option<i64>,
) -> Result<ApiResponse, ApiError> {
    let tenant = granted.into_tenant();
    let body: PresignBody = json_body(req, 64 * 1024)?;
    let (items, many) = match &body {
        PresignBody::Many(Many { items }) => (items.iter().collect::<Vec<_>>(), true),
        PresignBody::One(item) => (vec![item], false),
    };
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(FieldError::new("items", format!("must hold 1 to {MAX_ITEMS} items")).into());
    }
    let catalogue = shared::plans::Catalogue {
        store: app.store.as_ref(),
        seeds: app.seeds,
    };
    let (plan, usage) = tokio::try_join!(
        catalogue.of_tenant(&tenant),
        shared::plans::Usage::read(app.store.as_ref(), &tenant.id),
    )?;
    let largest = u64::try_from(plan.entitlements.max_upload_bytes).unwrap_or(1);
    let wanted = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = if many {
                format!("items[{i}].")
            } else {
                String::new()
            };
            check_item(app, item, &field, largest)
        })
        .collect::<Result<Vec<Wanted>, _>>()?;
    let wanted: Vec<Wanted> = match until {
        None => wanted,
        Some(until) => {
            let left = until
                .saturating_sub(shared::runtime::time::now_unix())
                .max(1) as u64;
            wanted
                .into_iter()
                .map(|w| Wanted {
                    expires: w.expires.min(Duration::from_secs(left)),
                    ..w
                })
                .collect()
        }
    };
    // Uploads only: what the plan's stored bytes and objects leave.
    let uploads = wanted.iter().filter(|w| w.upload).count() as i64;
    let max_bytes = if uploads == 0 {
        largest
    } else {
        let declared: i64 = wanted
            .iter()
            .filter_map(|w| w.size)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            .fold(0i64, i64::saturating_add);
        let share = shared::plans::upload_room(&plan, &usage, uploads, declared)?;
        u64::try_from(share).unwrap_or(1)
    };
    let credentials = {
        use aws_credential_types::provider::ProvideCredentials;
        app.credentials
            .provide_credentials()
            .await
            .map_err(|e| ApiError::unavailable("credentials", e))?
    };
    let now = SystemTime::now();
    let mut out = Vec::with_capacity(wanted.len());
    for w in &wanted {
        out.push(sign(app, &tenant, w, &credentials, now, max_bytes).await?);
    }
    tracing::info!(tenant = %tenant.slug, count = out.len(), "storage links issued");
    Ok(ApiResponse::ok(if many {
        json!({"items": out})
    } else {
        out.into_iter().next().unwrap_or(Value::Null)
    }))
}

async fn sign(
    app: &App,
    tenant: &Tenant,
    w: &Wanted,
    credentials: &aws_credential_types::Credentials,
    now: SystemTime,
    max_bytes: u64,
) -> Result<Value, ApiError> {
    let object = keys::object_key(&tenant.id, &w.key);
    let config = PresigningConfig::builder()
        .start_time(now)
        .expires_in(w.expires)
        .build()
        .map_err(ApiError::internal)?;
    let expires_at = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() + w.expires.as_secs())
        .unwrap_or(0);
    if !w.upload {
        let get = app
            .s3
            .get_object()
            .bucket(&app.bucket)
            .key(&object)
            // Served as a download of opaque bytes, whatever was uploaded: an HTML or SVG
            // upload never renders on the bucket's origin, which every tenant shares.
            .response_content_disposition("attachment")
            .response_content_type(DEFAULT_CONTENT_TYPE)
            .presigned(config)
            .await
            .map_err(|e| ApiError::unavailable("storage", shared::runtime::aws::sdk_cause(e)))?;
        return Ok(json!({
            "operation": "download",
            "key": w.key,
            "method": "GET",
            "url": get.uri(),
            "expires_at": expires_at,
        }));
    }
    let post = post_policy::PostPolicy {
        bucket: &app.bucket,
        region: &app.region,
        url: app.bucket_url.clone(),
        key: &object,
        content_type: &w.content_type,
        max_bytes,
        expires_in: w.expires,
    }
    .sign(credentials, now)
    .map_err(ApiError::internal)?;
    let Some(size) = w.size else {
        // No declared size: only the form, whose policy caps the size.
        return Ok(json!({
            "operation": "upload",
            "key": w.key,
            "method": "POST",
            "url": post.url.clone(),
            "post": post,
            "max_bytes": max_bytes,
            "expires_at": expires_at,
        }));
    };
    // The length is a signed header: S3 refuses a body of any other size.
    let put = app
        .s3
        .put_object()
        .bucket(&app.bucket)
        .key(&object)
        .content_type(&w.content_type)
        .content_length(i64::try_from(size).map_err(ApiError::internal)?)
        .presigned(config)
        .await
        .map_err(|e| ApiError::unavailable("storage", shared::runtime::aws::sdk_cause(e)))?;
    Ok(json!({
        "operation": "upload",
        "key": w.key,
        "method": "PUT",
        "url": put.uri(),
        // The signature covers these: send them as they are.
        "headers": {"content-type": w.content_type, "content-length": size.to_string()},
        "post": post,
        "max_bytes": max_bytes,
        "size": size,
        "expires_at": expires_at,
    }))
}
