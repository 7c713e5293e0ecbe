//! The recount of a tenant's usage: its seats from its members and pending invitations, its
//! stored bytes and objects from a listing of its prefix. A counter that drifted from what is
//! there (objects written while notifications were off, an invitation that expired unanswered,
//! a user removed for good) is set to what was counted, conditioned on the counters being
//! what they were before the count began: a change that lands meanwhile wins, and the next
//! reconcile counts again.
//!
//! Storage is recounted only after a quiet spell (no notification counted for the tenant in
//! the last `stale_after_secs`): a notification still waiting in the meter's queue would
//! otherwise count again what the listing already holds. A prefix of more than
//! `MAX_LIST_PAGES` pages (1,000 objects each) is not recounted in a pass: its listing would
//! hold the reconcile past its time.

use crate::App;
use serde_json::{json, Map, Value};
use shared::domain::tenant::Tenant;
use shared::store::changes::{
    tenant_scope, Change, CommitError, SEATS_COUNT, STORAGE_AT, STORAGE_MOVES, STORED_BYTES,
    STORED_OBJECTS,
};

/// The most listing pages (1,000 objects each) one tenant's storage recount reads.
pub const MAX_LIST_PAGES: usize = 20;

/// What the recount found and set: per counter, `{from, to}`; `None` when nothing drifted.
pub async fn recount(app: &App, t: &Tenant) -> Result<Option<Value>, String> {
    let store = app.store.as_ref();
    let scope = tenant_scope(&t.id);
    let read = store.quotas(&scope).await.map_err(|e| e.to_string())?;
    let now = shared::runtime::time::now_unix();
    let seats = store
        .count_seats(&t.id, now)
        .await
        .map_err(|e| e.to_string())?;
    let quiet = read
        .get(STORAGE_AT)
        .is_none_or(|at| now - at >= app.stale_after_secs);
    let storage = if quiet {
        list_prefix(app, t).await?
    } else {
        None
    };
    let mut counts = vec![(SEATS_COUNT, seats)];
    if let Some((bytes, objects)) = storage {
        counts.push((STORED_BYTES, bytes));
        counts.push((STORED_OBJECTS, objects));
    }
    let mut values = Vec::new();
    let mut fixed = Map::new();
    for (name, counted) in counts {
        // A counter never kept reads as 0: only a count that differs is drift.
        let was = read.get(name).copied();
        if was.unwrap_or(0) != counted {
            fixed.insert(name.into(), json!({"from": was, "to": counted}));
        }
        values.push((name.to_string(), was, counted));
    }
    if fixed.is_empty() {
        return Ok(None);
    }
    // The storage counters' moves are the condition too: a notification counted during the
    // listing makes this recount stand down.
    let moves = read.get(STORAGE_MOVES).copied();
    values.push((STORAGE_MOVES.to_string(), moves, moves.unwrap_or(0)));
    match store
        .commit(vec![Change::SetQuotas { scope, values }])
        .await
    {
        Ok(()) => {
            let fixed = Value::Object(fixed);
            tracing::warn!(tenant = %t.slug, fixed = %fixed, "usage counters recounted");
            Ok(Some(fixed))
        }
        Err(CommitError::Refused { .. }) => {
            Err("usage changed during the recount; counted again next time".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The bytes and objects under the tenant's prefix, from a listing; `None` past
/// `MAX_LIST_PAGES`.
async fn list_prefix(app: &App, t: &Tenant) -> Result<Option<(i64, i64)>, String> {
    let prefix = format!("tenants/{}/", t.id);
    let (mut bytes, mut objects) = (0i64, 0i64);
    let mut token: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let out = app
            .s3
            .list_objects_v2()
            .bucket(&app.bucket)
            .prefix(&prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "storage could not be listed: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        for o in out.contents() {
            // The provisioning step's marker is the platform's, not the tenant's.
            if o.key().is_some_and(shared::provisioning::is_marker) {
                continue;
            }
            bytes += o.size().unwrap_or(0);
            objects += 1;
        }
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
            _ => return Ok(Some((bytes, objects))),
        }
    }
    tracing::warn!(tenant = %t.slug, pages = MAX_LIST_PAGES, "storage too large to recount in one pass");
    Ok(None)
}
