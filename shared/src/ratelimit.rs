//! Sliding-window rate limits over the store. A request names every (policy, subject) it is
//! limited by, e.g. the account and the client address; it is refused while any of them has
//! `limit` hits inside the last `window_secs`. Subjects are hashed before they become keys, so
//! emails and addresses are not stored in the clear.

use crate::auth::sha256_hex;
use crate::store::{RateLimitStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// Stable name, part of the store key (e.g. `login-fail-email`).
    pub name: &'static str,
    pub limit: usize,
    pub window_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused; the earliest moment a new attempt could pass is this many seconds away.
    Limited {
        retry_after_secs: u64,
    },
}

fn key(policy: &RatePolicy, subject: &str) -> String {
    format!("{}#{}", policy.name, sha256_hex(subject.as_bytes()))
}

/// Whether one more attempt is allowed under every given limit.
pub async fn check(
    store: &dyn RateLimitStore,
    limits: &[(RatePolicy, &str)],
    now: i64,
) -> Result<Decision, StoreError> {
    let keys: Vec<String> = limits.iter().map(|(p, s)| key(p, s)).collect();
    let all_hits = store.rate_hits(&keys).await?;
    let mut wait: Option<i64> = None;
    for ((policy, _), mut hits) in limits.iter().zip(all_hits) {
        hits.retain(|&t| t > now - policy.window_secs && t <= now);
        hits.sort_unstable();
        if hits.len() >= policy.limit {
            // The attempt passes once enough old hits leave the window to get below the limit.
            let freeing = hits[hits.len() - policy.limit];
            let secs = (freeing + policy.window_secs - now).max(1);
            wait = Some(wait.map_or(secs, |w| w.max(secs)));
        }
    }
    Ok(match wait {
        Some(secs) => Decision::Limited {
            retry_after_secs: secs as u64,
        },
        None => Decision::Allowed,
    })
}

/// Counts one attempt against every given limit.
pub async fn record(
    store: &dyn RateLimitStore,
    limits: &[(RatePolicy, &str)],
    now: i64,
) -> Result<(), StoreError> {
    for (policy, subject) in limits {
        store
            .record_rate_hit(&key(policy, subject), now, policy.window_secs, policy.limit)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const P: RatePolicy = RatePolicy {
        name: "t",
        limit: 3,
        window_secs: 60,
    };

    #[tokio::test]
    async fn refuses_at_the_limit_and_frees_as_hits_age_out() {
        let store = MemoryStore::new();
        for t in [100, 110, 120] {
            assert_eq!(
                check(&store, &[(P, "a")], t).await.unwrap(),
                Decision::Allowed
            );
            record(&store, &[(P, "a")], t).await.unwrap();
        }
        assert_eq!(
            check(&store, &[(P, "a")], 130).await.unwrap(),
            Decision::Limited {
                retry_after_secs: 30
            }
        );
        // Another subject is unaffected.
        assert_eq!(
            check(&store, &[(P, "b")], 130).await.unwrap(),
            Decision::Allowed
        );
        // At 160 the hit from 100 has left the window.
        assert_eq!(
            check(&store, &[(P, "a")], 160).await.unwrap(),
            Decision::Allowed
        );
    }

    #[tokio::test]
    async fn any_exceeded_limit_refuses_and_waits_for_the_longest() {
        let store = MemoryStore::new();
        let long = RatePolicy {
            name: "long",
            limit: 1,
            window_secs: 1000,
        };
        record(&store, &[(P, "x"), (long, "y")], 0).await.unwrap();
        let d = check(&store, &[(P, "x"), (long, "y")], 10).await.unwrap();
        assert_eq!(
            d,
            Decision::Limited {
                retry_after_secs: 990
            }
        );
    }
}
