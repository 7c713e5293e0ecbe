//! Sliding-window rate limits over the store, decided atomically. A request names every
//! (policy, subject) it is limited by, e.g. the account and the client address. It reserves one
//! attempt under all of them with a single conditional write (each window's version must be the
//! one just read); only a request whose reservation was written may go on. A burst of parallel
//! requests therefore cannot all pass a check before any of them is counted, and a refused
//! request writes nothing, so refusals never extend a block.
//!
//! Subjects are hashed before they become keys, so emails and addresses are not stored in the
//! clear. A reservation can be refunded (a sign-in that succeeded is not a failure).

use crate::access::sha256_hex;
use crate::store::{RateLimitStore, RateWindow, StoreError};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    /// Stable name, part of the store key (e.g. `login-fail-email`).
    pub name: &'static str,
    pub limit: usize,
    pub window_secs: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The attempt was counted under every limit; refund it if it should not count after all.
    Reserved(Reservation),
    /// Refused and not counted; the earliest moment a new attempt could pass is this many
    /// seconds away.
    Limited { retry_after_secs: u64 },
}

/// One counted attempt (`store::RateHit`): what a refund gives back. The store owns the type,
/// so a session's write can carry the refund without the store knowing this module.
pub use crate::store::RateHit as Reservation;

/// How many times a reservation is tried while other requests keep changing the same windows.
/// Each failed try means another request's reservation was written, so the contended case
/// converges: once the windows are full every reader is refused without writing. Beyond this,
/// the request is refused (fail closed) rather than let through uncounted.
const RESERVE_ATTEMPTS: u32 = 12;

pub fn key(policy: &RatePolicy, subject: &str) -> String {
    format!("{}#{}", policy.name, sha256_hex(subject.as_bytes()))
}

/// The subject a client address is limited as. IPv6 clients get a whole /64 each (one
/// customer's allocation, which an attacker can rotate through freely), IPv4-mapped addresses
/// count as their IPv4 address, and anything unparsable is limited as itself.
pub fn address_subject(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => ip.to_string(),
    }
}

/// The hits of `window` still inside `policy`'s window at `now`, oldest first. Hits stamped
/// after `now` (by a request whose clock read a later second) count too: the window is
/// rewritten from this list, and dropping them would lose other requests' attempts.
fn live_hits(window: &RateWindow, policy: &RatePolicy, now: i64) -> Vec<(String, i64)> {
    let mut hits: Vec<(String, i64)> = window
        .hits
        .iter()
        .filter(|(_, &t)| t > now - policy.window_secs)
        .map(|(id, &t)| (id.clone(), t))
        .collect();
    hits.sort_by_key(|(_, t)| *t);
    hits
}

/// Reserves one attempt under every given limit, or says how long to wait.
pub async fn reserve(
    store: &dyn RateLimitStore,
    limits: &[(RatePolicy, &str)],
    now: i64,
) -> Result<Decision, StoreError> {
    let keys: Vec<String> = limits.iter().map(|(p, s)| key(p, s)).collect();
    let hit_id = crate::access::opaque::random_id();
    for attempt in 1..=RESERVE_ATTEMPTS {
        let windows = store.rate_windows(&keys).await?;
        let mut wait: Option<i64> = None;
        let mut writes = Vec::with_capacity(keys.len());
        for ((policy, _), (k, window)) in limits.iter().zip(keys.iter().zip(windows)) {
            let live = live_hits(&window, policy, now);
            if live.len() >= policy.limit {
                // Passes once enough old hits leave the window to get below the limit.
                let freeing = live[live.len() - policy.limit].1;
                let secs = (freeing + policy.window_secs - now).max(1);
                wait = Some(wait.map_or(secs, |w| w.max(secs)));
                continue;
            }
            let mut hits: std::collections::BTreeMap<String, i64> = live.into_iter().collect();
            hits.insert(hit_id.clone(), now);
            writes.push((
                k.clone(),
                RateWindow {
                    hits,
                    version: window.version + 1,
                },
                window.version,
                now + policy.window_secs,
            ));
        }
        if let Some(secs) = wait {
            return Ok(Decision::Limited {
                retry_after_secs: secs as u64,
            });
        }
        if store.put_rate_windows(&writes).await? {
            return Ok(Decision::Reserved(Reservation {
                keys,
                hit_id: hit_id.clone(),
            }));
        }
        let pause_ms = rand::Rng::gen_range(&mut rand::thread_rng(), 1..=(4u64 << attempt.min(5)));
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
    }
    tracing::warn!("rate-limit reservation contended beyond its attempts: refused");
    Ok(Decision::Limited {
        retry_after_secs: 1,
    })
}

/// Takes a reservation back, e.g. after a successful sign-in.
pub async fn refund(store: &dyn RateLimitStore, r: &Reservation) -> Result<(), StoreError> {
    store.refund_rate_hit(&r.keys, &r.hit_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, RateLimitStore};
    use std::sync::Arc;

    const P: RatePolicy = RatePolicy {
        name: "t",
        limit: 3,
        window_secs: 60,
    };

    fn reserved(d: &Decision) -> bool {
        matches!(d, Decision::Reserved(_))
    }

    #[tokio::test]
    async fn refuses_at_the_limit_and_frees_as_hits_age_out() {
        let store = MemoryStore::new();
        for t in [100, 110, 120] {
            assert!(reserved(&reserve(&store, &[(P, "a")], t).await.unwrap()));
        }
        assert_eq!(
            reserve(&store, &[(P, "a")], 130).await.unwrap(),
            Decision::Limited {
                retry_after_secs: 30
            }
        );
        // Another subject is unaffected.
        assert!(reserved(&reserve(&store, &[(P, "b")], 130).await.unwrap()));
        // At 160 the hit from 100 has left the window.
        assert!(reserved(&reserve(&store, &[(P, "a")], 160).await.unwrap()));
    }

    #[tokio::test]
    async fn refused_attempts_are_not_counted() {
        // A request every 20 minutes must never keep a 3-an-hour limit closed for good.
        let store = MemoryStore::new();
        let hourly = RatePolicy {
            name: "h",
            limit: 3,
            window_secs: 3600,
        };
        let mut passed = 0;
        for i in 0..12 {
            if reserved(
                &reserve(&store, &[(hourly, "v")], 1_000 + i * 1200)
                    .await
                    .unwrap(),
            ) {
                passed += 1;
            }
        }
        assert_eq!(
            passed, 12,
            "one request per 20 minutes stays under 3 an hour"
        );
        // And a burst that is refused does not push the window forward.
        let store = MemoryStore::new();
        for t in 0..3 {
            assert!(reserved(
                &reserve(&store, &[(hourly, "w")], t).await.unwrap()
            ));
        }
        for t in 3..50 {
            assert!(!reserved(
                &reserve(&store, &[(hourly, "w")], t).await.unwrap()
            ));
        }
        assert!(reserved(
            &reserve(&store, &[(hourly, "w")], 3601).await.unwrap()
        ));
    }

    #[tokio::test]
    async fn any_exceeded_limit_refuses_without_counting_the_others() {
        let store = MemoryStore::new();
        let long = RatePolicy {
            name: "long",
            limit: 1,
            window_secs: 1000,
        };
        assert!(reserved(&reserve(&store, &[(long, "y")], 0).await.unwrap()));
        let d = reserve(&store, &[(P, "x"), (long, "y")], 10).await.unwrap();
        assert_eq!(
            d,
            Decision::Limited {
                retry_after_secs: 990
            }
        );
        // "x" was not charged for the refused request: three more pass.
        for t in 11..14 {
            assert!(reserved(&reserve(&store, &[(P, "x")], t).await.unwrap()));
        }
    }

    #[tokio::test]
    async fn a_refund_gives_the_attempt_back() {
        let store = MemoryStore::new();
        for t in 0..10 {
            match reserve(&store, &[(P, "r")], t).await.unwrap() {
                Decision::Reserved(r) => refund(&store, &r).await.unwrap(),
                other => panic!("attempt {t} refused: {other:?}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_never_exceed_the_limit() {
        let store = Arc::new(MemoryStore::new());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { reserve(store.as_ref(), &[(P, "c")], 500).await })
            })
            .collect();
        let mut passed = 0;
        for t in tasks {
            if reserved(&t.await.unwrap().unwrap()) {
                passed += 1;
            }
        }
        assert_eq!(passed, P.limit);
    }

    #[tokio::test]
    async fn hits_from_a_later_second_are_kept_and_counted() {
        // Requests that read the clock at 101 write before one that read it at 100.
        let store = MemoryStore::new();
        for _ in 0..2 {
            assert!(reserved(&reserve(&store, &[(P, "s")], 101).await.unwrap()));
        }
        assert!(reserved(&reserve(&store, &[(P, "s")], 100).await.unwrap()));
        assert!(!reserved(&reserve(&store, &[(P, "s")], 100).await.unwrap()));
        let w = store.rate_windows(&[key(&P, "s")]).await.unwrap();
        assert_eq!(w[0].hits.len(), 3);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            address_subject("2001:db8:1:2:aaaa::1"),
            address_subject("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_ne!(
            address_subject("2001:db8:1:2::1"),
            address_subject("2001:db8:1:3::1")
        );
        assert_eq!(address_subject("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("unknown"), "unknown");
    }
}
