//! Rate limits as fixed-window counters in the store, decided atomically. A request names every
//! (policy, subject) it is limited by, e.g. the account and the client address; one attempt is
//! added to the current window's counter of each, each add conditioned on the counter being
//! below its limit (`RateLimitStore::take_attempt`). Only a request whose attempt was counted
//! may go on, so a burst of parallel requests cannot all pass a check before any of them is
//! counted; a refused request writes nothing, so refusals never extend a block. A window is a
//! fixed span (`now / window_secs`): at a window's edge a client may get up to twice the
//! limit within one window's length, the price of a single conditional write per counter.
//!
//! Sign-in attempts are counted *in flight* until the password is checked ([`reserve_attempt`]):
//! a correct password gives the attempt back in the session's own transaction, a wrong one
//! settles it as a failure. A sign-in that meets a counter full only because of attempts still
//! in flight waits for them to settle instead of being refused, so simultaneous correct
//! sign-ins (one person's devices, a script) never use up each other's allowance.
//!
//! Subjects are hashed before they become keys, so emails and addresses are not stored in the
//! clear.

use crate::access::sha256_hex;
use crate::store::{RateCounter, RateLimitStore, StoreError, Take};
use std::net::IpAddr;
use std::time::Duration;

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

/// How long a sign-in waits, in all, for attempts in flight to settle before it is refused:
/// a few Argon2 verifies' worth.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// The counter key of `subject` under `policy` in the window holding `now`.
pub fn key(policy: &RatePolicy, subject: &str, now: i64) -> String {
    format!(
        "{}#{}#{}",
        policy.name,
        sha256_hex(subject.as_bytes()),
        window(policy, now)
    )
}

fn window(policy: &RatePolicy, now: i64) -> i64 {
    now.div_euclid(policy.window_secs.max(1))
}

/// When the window holding `now` ends.
fn window_end(policy: &RatePolicy, now: i64) -> i64 {
    (window(policy, now) + 1) * policy.window_secs.max(1)
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

/// The subject an account is limited as from one client network: the account and the
/// address's subject (an IPv4 address, an IPv6 /64).
pub fn account_network_subject(account: &str, ip: &str) -> String {
    format!("{account}|{}", address_subject(ip))
}

fn counters(limits: &[(RatePolicy, &str)], now: i64) -> Vec<RateCounter> {
    limits
        .iter()
        .map(|(p, subject)| RateCounter {
            key: key(p, subject, now),
            limit: p.limit as u64,
            expires_at: window_end(p, now),
        })
        .collect()
}

fn limited(limits: &[(RatePolicy, &str)], full: &[usize], now: i64) -> Decision {
    let wait = full
        .iter()
        .map(|&i| window_end(&limits[i].0, now) - now)
        .max()
        .unwrap_or(1)
        .max(1);
    Decision::Limited {
        retry_after_secs: wait as u64,
    }
}

/// Counts one attempt under every given limit, or says how long to wait.
pub async fn reserve(
    store: &dyn RateLimitStore,
    limits: &[(RatePolicy, &str)],
    now: i64,
) -> Result<Decision, StoreError> {
    let counters = counters(limits, now);
    Ok(match store.take_attempt(&counters, false).await? {
        Take::Taken => Decision::Reserved(Reservation {
            keys: counters.into_iter().map(|c| c.key).collect(),
            in_flight: false,
        }),
        Take::Full(full) => {
            let at: Vec<usize> = full.iter().map(|(i, _)| *i).collect();
            limited(limits, &at, now)
        }
    })
}

/// Counts one sign-in attempt in flight under every given limit. Where a counter is full only
/// because attempts are still in flight (their passwords being checked), waits for them to
/// settle, up to [`IN_FLIGHT_WAIT`] in all; refused when settled failures fill a counter.
/// Settle the reservation with [`settle_failed`] or give it back with [`refund`].
pub async fn reserve_attempt(
    store: &dyn RateLimitStore,
    limits: &[(RatePolicy, &str)],
    now: i64,
) -> Result<Decision, StoreError> {
    let counters = counters(limits, now);
    let started = tokio::time::Instant::now();
    let mut pause_ms = 25u64;
    loop {
        let mut full = match store.take_attempt(&counters, true).await? {
            Take::Taken => {
                return Ok(Decision::Reserved(Reservation {
                    keys: counters.into_iter().map(|c| c.key).collect(),
                    in_flight: true,
                }))
            }
            Take::Full(full) => full,
        };
        // Wait, reading only, until every full counter has room again; refused as soon as
        // settled failures fill one, or when the wait is used up.
        loop {
            let failures_fill_one = full.iter().any(|(i, state)| {
                state.count.saturating_sub(state.in_flight) >= counters[*i].limit
            });
            if failures_fill_one || started.elapsed() >= IN_FLIGHT_WAIT {
                if !failures_fill_one {
                    tracing::warn!("sign-in attempts in flight did not settle in time: refused");
                }
                let at: Vec<usize> = full.iter().map(|(i, _)| *i).collect();
                return Ok(limited(limits, &at, now));
            }
            let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=pause_ms / 2);
            tokio::time::sleep(Duration::from_millis(pause_ms + jitter)).await;
            pause_ms = (pause_ms * 2).min(200);
            let keys: Vec<String> = full.iter().map(|(i, _)| counters[*i].key.clone()).collect();
            let states = store.counter_states(&keys).await?;
            full = full
                .iter()
                .zip(states)
                .filter(|((i, _), state)| state.count >= counters[*i].limit)
                .map(|((i, _), state)| (*i, state))
                .collect();
            if full.is_empty() {
                break;
            }
        }
    }
}

/// Settles an in-flight attempt as a failure: it stays counted.
pub async fn settle_failed(store: &dyn RateLimitStore, r: &Reservation) -> Result<(), StoreError> {
    if r.in_flight {
        store.settle_attempt(r).await?;
    }
    Ok(())
}

/// Takes a reservation back, e.g. after a successful sign-in.
pub async fn refund(store: &dyn RateLimitStore, r: &Reservation) -> Result<(), StoreError> {
    store.refund_attempt(r).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
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
    async fn refuses_at_the_limit_until_the_window_ends() {
        let store = MemoryStore::new();
        for t in [120, 130, 140] {
            assert!(reserved(&reserve(&store, &[(P, "a")], t).await.unwrap()));
        }
        assert_eq!(
            reserve(&store, &[(P, "a")], 150).await.unwrap(),
            Decision::Limited {
                retry_after_secs: 30
            }
        );
        // Another subject is unaffected.
        assert!(reserved(&reserve(&store, &[(P, "b")], 150).await.unwrap()));
        // At 180 a new window begins.
        assert!(reserved(&reserve(&store, &[(P, "a")], 180).await.unwrap()));
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
                &reserve(&store, &[(hourly, "v")], 3_600 + i * 1200)
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
            &reserve(&store, &[(hourly, "w")], 3600).await.unwrap()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_sign_ins_wait_for_each_other_and_settled_failures_refuse() {
        // 40 sign-ins at once under a limit of 3, each in flight for 5 ms, each right: every
        // one gets through, none refused for the others being in flight.
        let store = Arc::new(MemoryStore::new());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    let d = reserve_attempt(store.as_ref(), &[(P, "s")], 500)
                        .await
                        .unwrap();
                    if let Decision::Reserved(r) = &d {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        refund(store.as_ref(), r).await.unwrap();
                    }
                    d
                })
            })
            .collect();
        let mut passed = 0;
        for t in tasks {
            passed += usize::from(reserved(&t.await.unwrap()));
        }
        assert_eq!(
            passed, 40,
            "a correct sign-in never waits out its window for others"
        );
        // Three wrong ones, settled: now the counter is full of failures and refuses at once.
        for _ in 0..3 {
            let Decision::Reserved(r) = reserve_attempt(store.as_ref(), &[(P, "s")], 500)
                .await
                .unwrap()
            else {
                panic!("refused");
            };
            settle_failed(store.as_ref(), &r).await.unwrap();
        }
        let started = std::time::Instant::now();
        assert_eq!(
            reserve_attempt(store.as_ref(), &[(P, "s")], 500)
                .await
                .unwrap(),
            Decision::Limited {
                retry_after_secs: 40
            }
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "no wait for settled failures"
        );
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
        assert_ne!(
            account_network_subject("a@example.com", "203.0.113.7"),
            account_network_subject("a@example.com", "203.0.113.8")
        );
    }
}
