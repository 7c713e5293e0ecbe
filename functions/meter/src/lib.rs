//! meter: counts what each tenant stores, from what really happened. The storage bucket sends
//! every object-created and object-removed notification under `tenants/` to a queue, and the
//! queue hands them here in batches of up to 10 (a few batches at a time, so a burst of uploads
//! waits in the queue instead of starting hundreds of functions). A message that could not be
//! counted is reported as a batch item failure and delivered again (after 5 tries, it goes to
//! the dead-letter queue, and the reconcile's recount puts the counter right). S3 may deliver
//! an event twice or out of order. For each
//! object the store keeps a mark (`Change::RecordObject`): its size, whether it exists, and the
//! event's `sequencer`, which orders the events of one key. An event older than the mark, or the
//! same one again, changes nothing; a newer one moves the mark and the tenant's `stored_bytes`
//! and `stored_objects` by the difference in one transaction, conditioned on the mark it read.
//! So each notification counts once, an overwrite counts its new size only, and a removal
//! delivered before its creation leaves nothing counted. What the notifications miss (objects
//! written while the notification was off) is put right by the reconcile's recount.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::TenantId;
use shared::store::changes::{Change, CommitError, Refusal, STORED_BYTES, STORED_OBJECTS};
use shared::store::{ObjectMark, Store, StoreError};
use std::sync::Arc;

pub struct App {
    pub store: Arc<dyn Store>,
    /// `BUCKET_NAME`: the tenants' bucket; a notification about any other is not counted.
    pub bucket: String,
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    #[serde(default)]
    bucket: Option<Bucket>,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// What one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Counted,
    /// The same event again, or one older than what the mark holds.
    Seen,
    /// Not a tenant's object, not a create or remove, or without a sequencer.
    Ignored,
}

/// The object key as S3 names it: notifications carry it URL-encoded, spaces as `+`.
pub fn object_key(raw: &str) -> String {
    let plus = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// The tenant whose prefix (`tenants/<tenant id>/`) holds `key`.
pub fn tenant_of(key: &str) -> Option<TenantId> {
    let rest = key.strip_prefix("tenants/")?;
    let (id, name) = rest.split_once('/')?;
    if name.is_empty() {
        return None;
    }
    TenantId::parse(id)
}

/// Whether sequencer `a` is later than `b` (S3's rule: right-pad the shorter with zeros, then
/// compare as strings; both are hexadecimal).
pub fn later(a: &str, b: &str) -> bool {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<width$}", s.to_ascii_uppercase());
    pad(a) > pad(b)
}

/// The mark's key: the SHA-256 of the object key (keys may be longer than a sort key).
pub fn key_hash(key: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(key.as_bytes()))
}

/// One invocation: a batch of queue messages (each an S3 notification; the answer names the
/// messages to deliver again), or a notification itself (a direct invoke, the samples).
pub async fn handle(app: &App, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let from_queue = payload["Records"]
        .get(0)
        .is_some_and(|r| r["eventSource"] == "aws:sqs");
    if from_queue {
        return Ok(handle_batch(app, payload).await);
    }
    handle_notification(app, payload).await
}

#[derive(Debug, Deserialize)]
struct Batch {
    #[serde(rename = "Records", default)]
    records: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    body: String,
}

/// A batch from the queue: each message counted on its own; those whose counting failed are
/// answered as `batchItemFailures`, so only they are delivered again.
async fn handle_batch(app: &App, payload: Value) -> Value {
    let batch: Batch = match serde_json::from_value(payload) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(cause = %e, "not a queue batch; ignored");
            return json!({"batchItemFailures": []});
        }
    };
    let mut failures = Vec::new();
    for m in &batch.records {
        let body: Value = match serde_json::from_str(&m.body) {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(message_id = %m.message_id, "a queue message that is not JSON; dropped");
                continue;
            }
        };
        if handle_notification(app, body).await.is_err() {
            failures.push(json!({"itemIdentifier": m.message_id}));
        }
    }
    json!({"batchItemFailures": failures})
}

/// Counts one notification. A store failure is an error: the message (or the invocation) is
/// delivered again, which counts it once.
async fn handle_notification(app: &App, payload: Value) -> Result<Value, lambda_runtime::Error> {
    let note: Notification = match serde_json::from_value(payload) {
        Ok(n) => n,
        Err(e) => {
            // Not a notification (a test event, a stray invoke): nothing to count, no retry.
            tracing::warn!(cause = %e, "not an S3 notification; ignored");
            return Ok(json!({"counted": 0, "seen": 0, "ignored": 0}));
        }
    };
    let (mut counted, mut seen, mut ignored) = (0, 0, 0);
    for record in &note.records {
        let ours = record
            .s3
            .bucket
            .as_ref()
            .is_some_and(|b| b.name == app.bucket);
        if !ours {
            tracing::warn!("a notification about another bucket; ignored");
            ignored += 1;
            continue;
        }
        match count(
            app.store.as_ref(),
            record,
            shared::runtime::time::now_unix(),
        )
        .await
        {
            Ok(Outcome::Counted) => counted += 1,
            Ok(Outcome::Seen) => seen += 1,
            Ok(Outcome::Ignored) => ignored += 1,
            Err(e) => {
                tracing::error!(cause = %shared::runtime::logging::chain(&e), "storage notification not counted; the delivery is retried");
                return Err(Box::new(e));
            }
        }
    }
    tracing::info!(counted, seen, ignored, "storage notifications");
    Ok(json!({"counted": counted, "seen": seen, "ignored": ignored}))
}

async fn count(store: &dyn Store, record: &Record, now: i64) -> Result<Outcome, StoreError> {
    let present = if record.event_name.starts_with("ObjectCreated") {
        true
    } else if record.event_name.starts_with("ObjectRemoved") {
        false
    } else {
        return Ok(Outcome::Ignored);
    };
    let key = object_key(&record.s3.object.key);
    let Some(tenant) = tenant_of(&key).filter(|_| !shared::provisioning::is_marker(&key)) else {
        return Ok(Outcome::Ignored);
    };
    let Some(sequencer) = record.s3.object.sequencer.clone().filter(|s| !s.is_empty()) else {
        tracing::warn!(tenant = %tenant, "storage notification without a sequencer; ignored");
        return Ok(Outcome::Ignored);
    };
    let hash = key_hash(&key);
    let after = ObjectMark {
        size: if present {
            record.s3.object.size.unwrap_or(0).max(0)
        } else {
            0
        },
        sequencer,
        present,
        at: now,
    };
    // A concurrent delivery about the same key moved the mark: read it again and decide again.
    for _ in 0..5 {
        let before = store.object_mark(&tenant, &hash).await?;
        if before
            .as_ref()
            .is_some_and(|b| !later(&after.sequencer, &b.sequencer))
        {
            return Ok(Outcome::Seen);
        }
        match store
            .commit(vec![Change::RecordObject {
                tenant: tenant.clone(),
                key: hash.clone(),
                before,
                after: after.clone(),
            }])
            .await
        {
            Ok(()) => {
                let totals = store
                    .quotas(&shared::store::changes::tenant_scope(&tenant))
                    .await?;
                let get = |name: &str| totals.get(name).copied().unwrap_or(0);
                shared::runtime::metrics::tenant_storage(
                    tenant.as_str(),
                    get(STORED_BYTES),
                    get(STORED_OBJECTS),
                );
                return Ok(Outcome::Counted);
            }
            Err(CommitError::Refused { reasons }) if reasons.contains(&Refusal::ObjectMoved) => {
                continue
            }
            Err(CommitError::Store(e)) => return Err(e),
            Err(e) => return Err(StoreError::Unavailable(Box::new(e))),
        }
    }
    Err(StoreError::Conflict("the object's mark kept moving"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::store::{MemoryStore, UsageStore};

    fn event(name: &str, key: &str, size: i64, sequencer: &str) -> Value {
        json!({"Records": [{
            "eventName": name,
            "s3": {"bucket": {"name": "tenants-bucket"}, "object": {"key": key, "size": size, "sequencer": sequencer}},
        }]})
    }

    async fn totals(store: &MemoryStore, tenant: &TenantId) -> (i64, i64) {
        let q = store
            .quotas(&shared::store::changes::tenant_scope(tenant))
            .await
            .unwrap();
        (
            q.get(STORED_BYTES).copied().unwrap_or(0),
            q.get(STORED_OBJECTS).copied().unwrap_or(0),
        )
    }

    #[test]
    fn keys_are_decoded_and_belong_to_the_tenant_whose_prefix_holds_them() {
        let t = TenantId::new_random();
        let key = object_key(&format!("tenants/{t}/a+b%2Fc%C3%A9.txt"));
        assert_eq!(key, format!("tenants/{t}/a b/cé.txt"));
        assert_eq!(tenant_of(&key), Some(t.clone()));
        assert_eq!(tenant_of(&format!("tenants/{t}/")), None);
        assert_eq!(tenant_of("tenants/not-an-id/x"), None);
        assert_eq!(tenant_of(&format!("other/{t}/x")), None);
    }

    #[test]
    fn sequencers_compare_right_padded() {
        assert!(later("0055AED6DCD90281E6", "0055AED6DCD90281E5"));
        assert!(later("0055AED6DCD90281E6", "0055AED6DCD9"));
        assert!(!later("0055AED6DCD9", "0055AED6DCD90281E6"));
        assert!(!later("00A1", "00a1"));
    }

    #[tokio::test]
    async fn each_event_counts_once_in_sequencer_order_and_an_overwrite_counts_its_new_size() {
        let store = Arc::new(MemoryStore::new());
        let app = App {
            store: store.clone(),
            bucket: "tenants-bucket".into(),
        };
        let t = TenantId::new_random();
        let a = format!("tenants/{t}/a.txt");
        let b = format!("tenants/{t}/b.txt");
        handle(&app, event("ObjectCreated:Put", &a, 100, "0A"))
            .await
            .unwrap();
        // The same delivery twice: counted once.
        handle(&app, event("ObjectCreated:Put", &a, 100, "0A"))
            .await
            .unwrap();
        handle(&app, event("ObjectCreated:Put", &b, 50, "0B"))
            .await
            .unwrap();
        assert_eq!(totals(&store, &t).await, (150, 2));
        // An overwrite: its new size, no new object.
        handle(&app, event("ObjectCreated:Put", &a, 30, "0C"))
            .await
            .unwrap();
        assert_eq!(totals(&store, &t).await, (80, 2));
        // An older event delivered late changes nothing.
        handle(&app, event("ObjectCreated:Put", &a, 999, "0B"))
            .await
            .unwrap();
        assert_eq!(totals(&store, &t).await, (80, 2));
        // A removal, then its duplicate.
        handle(&app, event("ObjectRemoved:Delete", &b, 0, "0D"))
            .await
            .unwrap();
        handle(&app, event("ObjectRemoved:Delete", &b, 0, "0D"))
            .await
            .unwrap();
        assert_eq!(totals(&store, &t).await, (30, 1));
        // A removal delivered before its creation: the creation arrives late and counts nothing.
        let c = format!("tenants/{t}/c.txt");
        handle(&app, event("ObjectRemoved:Delete", &c, 0, "0F"))
            .await
            .unwrap();
        handle(&app, event("ObjectCreated:Put", &c, 70, "0E"))
            .await
            .unwrap();
        assert_eq!(totals(&store, &t).await, (30, 1));
        // Another tenant's objects and other kinds of events are not this tenant's.
        let other = TenantId::new_random();
        let out = handle(
            &app,
            event("ObjectCreated:Put", &format!("tenants/{other}/x"), 5, "01"),
        )
        .await
        .unwrap();
        assert_eq!(out["counted"], 1);
        assert_eq!(totals(&store, &t).await, (30, 1));
        // Another bucket's objects are not the tenants'.
        let mut elsewhere = event("ObjectCreated:Put", &a, 5, "12");
        elsewhere["Records"][0]["s3"]["bucket"]["name"] = json!("another-bucket");
        assert_eq!(handle(&app, elsewhere).await.unwrap()["ignored"], 1);
        // The provisioning marker is the platform's.
        let marker = format!("tenants/{t}/.tenant");
        let out = handle(&app, event("ObjectCreated:Put", &marker, 0, "11"))
            .await
            .unwrap();
        assert_eq!(out["ignored"], 1);
        let out = handle(&app, event("ObjectRestore:Completed", &a, 5, "10"))
            .await
            .unwrap();
        assert_eq!(out["ignored"], 1);
        let out = handle(&app, json!({"not": "a notification"}))
            .await
            .unwrap();
        assert_eq!(out["counted"], 0);
    }

    /// The sample events (`events/meter/`) are what the function counts.
    #[tokio::test]
    async fn the_sample_events_count_an_object_then_take_it_away() {
        let store = Arc::new(MemoryStore::new());
        let app = App {
            store: store.clone(),
            bucket: "saas-storage".into(),
        };
        let sample = |name: &str| -> Value {
            let path = format!("{}/../../events/meter/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let t = TenantId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let out = handle(&app, sample("object-created.json")).await.unwrap();
        assert_eq!(out["counted"], 1);
        assert_eq!(totals(&store, &t).await, (52431, 1));
        let out = handle(&app, sample("object-removed.json")).await.unwrap();
        assert_eq!(out["counted"], 1);
        assert_eq!(totals(&store, &t).await, (0, 0));
    }

    /// From the queue: each message's notification counted, none reported failed.
    #[tokio::test]
    async fn a_queue_batch_counts_each_messages_notification() {
        let store = Arc::new(MemoryStore::new());
        let app = App {
            store: store.clone(),
            bucket: "tenants-bucket".into(),
        };
        let t = TenantId::new_random();
        let message = |id: &str, e: Value| json!({"messageId": id, "body": e.to_string(), "eventSource": "aws:sqs"});
        let batch = json!({"Records": [
            message("m1", event("ObjectCreated:Put", &format!("tenants/{t}/a"), 10, "01")),
            message("m2", event("ObjectCreated:Put", &format!("tenants/{t}/b"), 20, "02")),
            // S3's test event when the notification is set up, and a body that is not JSON.
            message("m3", json!({"Service": "Amazon S3", "Event": "s3:TestEvent"})),
            {"messageId": "m4", "body": "not json", "eventSource": "aws:sqs"},
        ]});
        let out = handle(&app, batch).await.unwrap();
        assert_eq!(out, json!({"batchItemFailures": []}));
        assert_eq!(totals(&store, &t).await, (30, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_deliveries_of_one_event_count_it_once() {
        let store = Arc::new(MemoryStore::new());
        let app = Arc::new(App {
            store: store.clone(),
            bucket: "tenants-bucket".into(),
        });
        let t = TenantId::new_random();
        let key = format!("tenants/{t}/same.bin");
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let app = app.clone();
            let e = event("ObjectCreated:Put", &key, 10, "0ABC");
            tasks.push(tokio::spawn(async move { handle(&app, e).await.unwrap() }));
        }
        let mut counted = 0;
        for task in tasks {
            counted += task.await.unwrap()["counted"].as_i64().unwrap();
        }
        assert_eq!(counted, 1);
        assert_eq!(totals(&store, &t).await, (10, 1));
    }
}
