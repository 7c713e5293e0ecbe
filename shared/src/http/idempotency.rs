//! `Idempotency-Key` for mutating `POST`s: a retry carrying the same key (and the same body)
//! gets the first success again instead of doing the work twice.
//!
//! - The key is scoped: a record is found by `sha256(route, subject, key)`, where the subject is
//!   whoever the request acts for (the signed-in user, or the reset token's hash), so one
//!   caller's key never answers another caller's request.
//! - The first request claims the key (a conditional write) before doing any work. Meanwhile a
//!   retry gets 409 `IDEMPOTENCY_IN_PROGRESS`; if the first dies without finishing, its claim
//!   lapses after [`LEASE_SECS`] and a retry does the work.
//! - Only successes are kept, for [`RETAIN_SECS`], and replayed with `Idempotent-Replayed: true`.
//!   A failure releases the key: the retry runs again and, for a deterministic error, gets the
//!   same answer; for a transient one (429, 503) it gets a second chance.
//! - The key is bound to the request it came with: the same key with a different body, or on
//!   another method or path (another tenant's members, say), is a client bug: 422
//!   `IDEMPOTENCY_KEY_REUSED`, and nothing is done.
//!
//! Routes whose answers are credentials (sign-in, refresh) do not take a key: the answer would
//! have to be stored.

use crate::access::sha256_hex;
use crate::http::error::ErrorCode;
use crate::store::{IdempotencyClaim, IdempotencyStore};
use crate::{ApiError, ApiResponse};
use lambda_http::Request;
use std::future::Future;

pub const HEADER: &str = "idempotency-key";
/// How long a claim protects work in progress: longer than any function's timeout.
pub const LEASE_SECS: i64 = 120;
/// How long a success is replayed.
pub const RETAIN_SECS: i64 = 24 * 60 * 60;
const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` of a request, if it sent one: 1 to 255 visible ASCII characters.
pub fn key_of(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(v)
            if (1..=MAX_KEY_LEN).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(v.to_string()))
        }
        _ => Err(ApiError::refused(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// The record id of `key` for `route` acting for `subject`. Each part is length-prefixed so no
/// two different triples give the same input to the hash.
pub fn record_id(route: &str, subject: &str, key: &str) -> String {
    sha256_hex(&framed([route, subject, key].map(str::as_bytes)))
}

/// One idempotent execution: which key, and what request it must match.
pub struct Idempotent<'a> {
    pub store: &'a dyn IdempotencyStore,
    pub key: Option<String>,
    pub route: &'static str,
    pub subject: &'a str,
    /// The method and path the key came with (`POST /tenants/acme/users`); a retry must match.
    pub target: String,
    /// The request body as received; a retry must send the same bytes.
    pub body: &'a [u8],
    pub now: i64,
}

/// `parts`, each length-prefixed so that no two different lists hash alike.
fn framed<'p>(parts: impl IntoIterator<Item = &'p [u8]>) -> Vec<u8> {
    let mut input = Vec::new();
    for part in parts {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    input
}

impl<'a> Idempotent<'a> {
    /// The execution of `req` (its key, method, path and body) for `route`, acting for
    /// `subject`.
    pub fn of_request(
        store: &'a dyn IdempotencyStore,
        req: &'a Request,
        route: &'static str,
        subject: &'a str,
        now: i64,
    ) -> Result<Self, ApiError> {
        Ok(Idempotent {
            store,
            key: key_of(req)?,
            route,
            subject,
            target: format!("{} {}", req.method(), req.uri().path()),
            body: req.body().as_ref(),
            now,
        })
    }

    /// What a retry must repeat: the method and path, and the body.
    fn fingerprint(&self) -> String {
        sha256_hex(&framed([self.target.as_bytes(), self.body]))
    }

    /// Runs `work` once per key: the first time for real, afterwards replaying its success.
    pub async fn run<F, Fut>(self, work: F) -> Result<ApiResponse, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<ApiResponse, ApiError>>,
    {
        let Some(key) = self.key.as_deref() else {
            return work().await;
        };
        let id = record_id(self.route, self.subject, key);
        let fingerprint = self.fingerprint();
        let claim = self
            .store
            .claim_idempotency(&id, &fingerprint, self.now, self.now + LEASE_SECS)
            .await?;
        match claim {
            IdempotencyClaim::Claimed => {}
            IdempotencyClaim::InProgress {
                fingerprint: theirs,
            }
            | IdempotencyClaim::Done {
                fingerprint: theirs,
                ..
            } if theirs != fingerprint => return Err(reused()),
            IdempotencyClaim::InProgress { .. } => {
                return Err(ApiError::refused(
                    ErrorCode::IdempotencyInProgress,
                    "a request with this Idempotency-Key is still being processed; \
                              retry shortly",
                ))
            }
            IdempotencyClaim::Done { status, data, .. } => {
                let data =
                    serde_json::from_str::<serde_json::Value>(&data).map_err(ApiError::internal)?;
                return Ok(
                    ApiResponse::with_status(status, data).header("idempotent-replayed", "true")
                );
            }
        }
        let outcome = work().await;
        let settled = match &outcome {
            Ok(answer) => {
                self.store
                    .complete_idempotency(
                        &id,
                        &fingerprint,
                        answer.status,
                        &answer.data.to_string(),
                        self.now + RETAIN_SECS,
                    )
                    .await
            }
            Err(_) => self.store.release_idempotency(&id, &fingerprint).await,
        };
        // The work is done (or failed) either way; a record that could not be settled lapses
        // with its lease, after which a retry runs the work again.
        if let Err(e) = settled {
            tracing::error!(cause = %e, "idempotency record not settled");
        }
        outcome
    }
}

fn reused() -> ApiError {
    ApiError::refused(
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was already used with a different request",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn once<'a>(store: &'a MemoryStore, key: Option<&str>, body: &'a [u8]) -> Idempotent<'a> {
        Idempotent {
            store,
            key: key.map(str::to_string),
            route: "test",
            subject: "user-1",
            target: "POST /things/a".into(),
            body,
            now: 1_000,
        }
    }

    #[tokio::test]
    async fn a_retry_replays_the_first_success_without_redoing_the_work() {
        let store = MemoryStore::new();
        let runs = AtomicUsize::new(0);
        let work = || async {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(ApiResponse::created(json!({"run": n})))
        };
        let first = once(&store, Some("k1"), b"{}").run(work).await.unwrap();
        let again = once(&store, Some("k1"), b"{}").run(work).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!((again.status, &again.data), (201, &json!({"run": 1})));
        assert!(first.headers.is_empty());
        assert!(again
            .headers
            .contains(&("idempotent-replayed", "true".into())));
        // Another key, or no key, is another request.
        once(&store, Some("k2"), b"{}").run(work).await.unwrap();
        once(&store, None, b"{}").run(work).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_same_key_with_another_body_is_refused() {
        let store = MemoryStore::new();
        let work = || async { Ok(ApiResponse::ok(json!({}))) };
        once(&store, Some("k"), b"{\"a\":1}")
            .run(work)
            .await
            .unwrap();
        let err = once(&store, Some("k"), b"{\"a\":2}")
            .run(work)
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.code()), (422, "IDEMPOTENCY_KEY_REUSED"));
    }

    #[tokio::test]
    async fn the_same_key_on_another_path_is_refused_and_does_nothing_there() {
        let store = MemoryStore::new();
        let runs = AtomicUsize::new(0);
        let work = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(ApiResponse::created(json!({"on": "a"})))
        };
        once(&store, Some("k"), b"{}").run(work).await.unwrap();
        for target in ["POST /things/b", "PUT /things/a"] {
            let elsewhere = Idempotent {
                target: target.into(),
                ..once(&store, Some("k"), b"{}")
            };
            let err = elsewhere.run(work).await.unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (422, "IDEMPOTENCY_KEY_REUSED"),
                "{target}"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn keys_are_scoped_to_the_subject() {
        let store = MemoryStore::new();
        let runs = AtomicUsize::new(0);
        let work = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(ApiResponse::ok(json!({})))
        };
        once(&store, Some("k"), b"{}").run(work).await.unwrap();
        let other = Idempotent {
            subject: "user-2",
            ..once(&store, Some("k"), b"{}")
        };
        let answer = other.run(work).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(answer.headers.is_empty());
    }

    #[tokio::test]
    async fn a_failure_releases_the_key_and_a_claim_in_progress_blocks_until_its_lease_ends() {
        let store = MemoryStore::new();
        let err = once(&store, Some("k"), b"{}")
            .run(|| async { Err::<ApiResponse, _>(ApiError::invalid_request("no")) })
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400);
        // Released: the retry runs.
        let ok = once(&store, Some("k"), b"{}")
            .run(|| async { Ok(ApiResponse::ok(json!({"second": true}))) })
            .await
            .unwrap();
        assert_eq!(ok.data, json!({"second": true}));

        // A claim whose holder never settled it (a crash) blocks retries during its lease...
        let id = record_id("test", "user-1", "stuck");
        let fp = once(&store, None, b"{}").fingerprint();
        store
            .claim_idempotency(&id, &fp, 1_000, 1_000 + LEASE_SECS)
            .await
            .unwrap();
        let busy = once(&store, Some("stuck"), b"{}")
            .run(|| async { Ok(ApiResponse::ok(json!({}))) })
            .await
            .unwrap_err();
        assert_eq!(
            (busy.status(), busy.code()),
            (409, "IDEMPOTENCY_IN_PROGRESS")
        );
        // ...and not after it.
        let later = Idempotent {
            now: 1_000 + LEASE_SECS + 1,
            ..once(&store, Some("stuck"), b"{}")
        };
        assert!(later
            .run(|| async { Ok(ApiResponse::ok(json!({}))) })
            .await
            .is_ok());
    }

    #[test]
    fn keys_are_validated_and_record_ids_do_not_collide() {
        use crate::http::proxy_event::ProxyRequest;
        let with = |v: &str| {
            key_of(
                &ProxyRequest::new("POST", "/x")
                    .header(HEADER, v)
                    .to_lambda_request(),
            )
        };
        assert_eq!(with("abc-123").unwrap().as_deref(), Some("abc-123"));
        assert_eq!(
            with(&"k".repeat(256)).unwrap_err().code(),
            "INVALID_IDEMPOTENCY_KEY"
        );
        assert_eq!(with("has space").unwrap_err().status(), 400);
        assert_eq!(
            key_of(&ProxyRequest::new("POST", "/x").to_lambda_request()).unwrap(),
            None
        );
        assert_ne!(record_id("a", "bc", "d"), record_id("a", "b", "cd"));
    }
}
