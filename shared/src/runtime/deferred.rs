//! A value read once, started at init and awaited where it is first needed: a secret a
//! function uses late in its requests (login's signing keys and factor key, needed only after
//! the password's verify) is read while the first request is already under way, so a cold
//! start does not wait for it. Concurrent waiters share the one read; a failed read is tried
//! again by the next caller (and answers that request with a 503).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type Load<T> = dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, String>> + Send>> + Send + Sync;

/// A value loaded once (see the module).
pub struct Deferred<T> {
    cell: Arc<tokio::sync::OnceCell<T>>,
    load: Option<Arc<Load<T>>>,
}

/// The read failed; the next caller tries again.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} unavailable: {cause}")]
pub struct Unavailable {
    pub what: &'static str,
    pub cause: String,
}

impl<T: Send + Sync + 'static> Deferred<T> {
    /// A value in hand (tests, tools).
    pub fn ready(value: T) -> Self {
        Deferred {
            cell: Arc::new(tokio::sync::OnceCell::new_with(Some(value))),
            load: None,
        }
    }

    /// Starts `load` now, in the background; [`Deferred::get`] waits for it.
    pub fn start<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, String>> + Send + 'static,
    {
        let load: Arc<Load<T>> = Arc::new(move || Box::pin(load()));
        let deferred = Deferred {
            cell: Arc::new(tokio::sync::OnceCell::new()),
            load: Some(load.clone()),
        };
        let cell = deferred.cell.clone();
        tokio::spawn(async move {
            if let Err(e) = cell.get_or_try_init(|| load()).await {
                tracing::warn!(cause = %e, "a value read at start failed; the first use reads it again");
            }
        });
        deferred
    }

    /// The value, once read (waiting for the read in flight, or trying again after a failed
    /// one).
    pub async fn get(&self, what: &'static str) -> Result<&T, Unavailable> {
        let Some(load) = &self.load else {
            return self.cell.get().ok_or_else(|| Unavailable {
                what,
                cause: "no value and no way to read one".into(),
            });
        };
        self.cell
            .get_or_try_init(|| load())
            .await
            .map_err(|cause| Unavailable { what, cause })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn one_read_serves_every_waiter_and_a_failure_is_tried_again() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let d = Deferred::start(move || {
            let counted = counted.clone();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                counted.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(7u32)
            }
        });
        let (a, b) = tokio::join!(d.get("seven"), d.get("seven"));
        assert_eq!((*a.unwrap(), *b.unwrap()), (7, 7));
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "the start's read served both"
        );

        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        let flaky = Deferred::start(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err("down".to_string())
                } else {
                    Ok(n)
                }
            }
        });
        tokio::task::yield_now().await;
        // The start's read failed (or is failing): a caller tries again and gets the value.
        let got = flaky.get("flaky").await;
        let got = match got {
            Ok(v) => *v,
            Err(_) => *flaky.get("flaky").await.unwrap(),
        };
        assert!(got >= 1);
        assert!(Deferred::ready(3u8).get("three").await.is_ok());
    }
}
