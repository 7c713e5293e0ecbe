//! `storage`: the tenant's prefix in the bucket, made real by a marker object.
//!
//! - provision: the marker exists (put if missing: created, or repaired after drift); on a
//!   restore, the retirement tag comes off every object under the prefix.
//! - offboard: every object under the prefix is tagged `offboarded=true`, which the bucket's
//!   lifecycle rule expires after the recovery window. Nothing is deleted.
//! - purge: every object under the prefix is deleted.

use crate::{App, Done, StepError, StepWork};
use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use shared::domain::tenant::{StepState, StepStatus, Tenant};
use shared::provisioning::{marker_key, marker_presence, service_failure, Presence, RETIRED_TAG};

pub(crate) struct Storage;

impl StepWork for Storage {
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
        provision(app, t, prev).await
    }

    async fn offboard(app: &App, t: &Tenant) -> Result<Done, StepError> {
        let n = tag_all(app, t, true).await?;
        Ok(Done {
            message: Some(format!(
                "{n} objects marked to expire after the recovery window"
            )),
            ..Done::ok("retired", Some(t.storage_prefix()))
        })
    }

    async fn purge(app: &App, t: &Tenant) -> Result<Done, StepError> {
        let n = purge(app, t).await?;
        Ok(Done {
            message: Some(format!("{n} objects deleted")),
            ..Done::ok("purged", None)
        })
    }
}

async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
    let key = marker_key(t);
    let restoring = t.offboarding.is_some();
    if restoring {
        tag_all(app, t, false).await?;
    }
    let outcome = match marker_presence(&app.s3, &app.bucket, t).await? {
        Presence::Present if restoring => "restored",
        Presence::Present => "unchanged",
        Presence::Missing | Presence::Retired => {
            let body = serde_json::json!({"tenant_id": t.id, "slug": t.slug}).to_string();
            app.s3
                .put_object()
                .bucket(&app.bucket)
                .key(&key)
                .content_type("application/json")
                .body(body.into_bytes().into())
                .send()
                .await
                .map_err(|e| service_failure("writing the storage marker", e))?;
            if prev.state == StepState::Ok {
                "repaired"
            } else {
                "created"
            }
        }
    };
    Ok(Done::ok(outcome, Some(key)))
}

/// Every object key under the tenant's prefix, a page (at most 1,000) at a time.
async fn keys(app: &App, t: &Tenant) -> Result<Vec<String>, StepError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = app
            .s3
            .list_objects_v2()
            .bucket(&app.bucket)
            .prefix(t.storage_prefix())
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| service_failure("listing the tenant's objects", e))?;
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => return Ok(out),
        }
    }
}

/// Tags (or untags) every object under the prefix; returns how many.
async fn tag_all(app: &App, t: &Tenant, retired: bool) -> Result<usize, StepError> {
    let keys = keys(app, t).await?;
    for key in &keys {
        tag(app, key, retired).await?;
    }
    Ok(keys.len())
}

/// Sets (or clears) the retirement tag on one object.
async fn tag(app: &App, key: &str, retired: bool) -> Result<(), StepError> {
    if retired {
        let tag = Tag::builder()
            .key(RETIRED_TAG.0)
            .value(RETIRED_TAG.1)
            .build()
            .map_err(|e| StepError::Permanent(e.to_string()))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| StepError::Permanent(e.to_string()))?;
        app.s3
            .put_object_tagging()
            .bucket(&app.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| service_failure("tagging an object for expiry", e))?;
    } else {
        app.s3
            .delete_object_tagging()
            .bucket(&app.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| service_failure("untagging a restored object", e))?;
    }
    Ok(())
}

/// Deletes every object under the prefix, 1,000 (S3's limit) per request.
async fn purge(app: &App, t: &Tenant) -> Result<usize, StepError> {
    let keys = keys(app, t).await?;
    for chunk in keys.chunks(1000) {
        let ids: Vec<ObjectIdentifier> = chunk
            .iter()
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| StepError::Permanent(e.to_string()))?;
        let out = app
            .s3
            .delete_objects()
            .bucket(&app.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| service_failure("deleting the tenant's objects", e))?;
        if !out.errors().is_empty() {
            return Err(StepError::Transient(format!(
                "{} objects could not be deleted",
                out.errors().len()
            )));
        }
    }
    Ok(keys.len())
}
