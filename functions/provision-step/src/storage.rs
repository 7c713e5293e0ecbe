//! `storage`: the tenant's prefix in the bucket, made real by a marker object.
//!
//! Nothing here touches the tenant's objects one at a time, so a tenant with millions of them
//! is offboarded, restored and purged like one with none:
//! - provision: the marker exists (put if missing: created, or repaired after drift); on a
//!   restore, the marker's retirement tag comes off.
//! - offboard: the marker is tagged `offboarded=true`. The objects stay where they are,
//!   unreachable (a deleted tenant gets no storage links), until the purge or a restore.
//! - purge: the objects under the prefix are deleted a listing page (1,000) at a time, one
//!   request per page, for at most [`PURGE_BUDGET`] per attempt; what remains is a transient
//!   failure the state machine retries, and each attempt starts from what is left (a deleted
//!   object is not listed again). Past the state machine's attempts, the reconcile starts a
//!   new purge run.

use crate::{App, Done, StepError, StepWork};
use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use shared::domain::tenant::{StepState, StepStatus, Tenant};
use shared::provisioning::{marker_key, marker_presence, service_failure, Presence, RETIRED_TAG};
use std::time::{Duration, Instant};

/// How long one purge attempt deletes before it hands over to the next (the task has 30 s).
pub(crate) const PURGE_BUDGET: Duration = Duration::from_secs(20);

pub(crate) struct Storage;

impl StepWork for Storage {
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
        provision(app, t, prev).await
    }

    async fn offboard(app: &App, t: &Tenant) -> Result<Done, StepError> {
        tag(app, &marker_key(t), true).await?;
        Ok(Done {
            message: Some("storage retired: the objects stay, unreachable, until the purge".into()),
            ..Done::ok("retired", Some(t.storage_prefix()))
        })
    }

    async fn purge(app: &App, t: &Tenant) -> Result<Done, StepError> {
        let n = purge(app, t, PURGE_BUDGET).await?;
        Ok(Done {
            message: Some(format!("{n} objects deleted")),
            ..Done::ok("purged", None)
        })
    }
}

async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
    let key = marker_key(t);
    let restoring = t.offboarding.is_some();
    let presence = marker_presence(&app.s3, &app.bucket, t).await?;
    if restoring && presence == Presence::Present {
        // Only the marker was retired; a missing one is put back below, untagged.
        tag(app, &key, false).await?;
    }
    let outcome = match presence {
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

/// Deletes the objects under the prefix, a listing page (1,000, S3's limit for one delete
/// request) at a time, until none is left (the count) or `budget` has passed (a transient
/// failure saying how many went: the next attempt goes on with what is left).
pub(crate) async fn purge(app: &App, t: &Tenant, budget: Duration) -> Result<usize, StepError> {
    let started = Instant::now();
    let mut deleted = 0;
    loop {
        let page = app
            .s3
            .list_objects_v2()
            .bucket(&app.bucket)
            .prefix(t.storage_prefix())
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| service_failure("listing the tenant's objects", e))?;
        let ids: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if ids.is_empty() {
            return Ok(deleted);
        }
        let n = ids.len();
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
        deleted += n;
        if started.elapsed() >= budget {
            return Err(StepError::Transient(format!(
                "{deleted} objects deleted in this attempt; more remain"
            )));
        }
    }
}
