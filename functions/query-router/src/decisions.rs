//! This instance's short memory of the gate's yes for the query routes: who (user, token
//! audience and session epoch) may query which database, with the registration and the asker's
//! settings, kept `DECISION_TTL`. A warm query within it makes no DynamoDB read at all; the
//! token is still verified on every request (signature, expiry, audience).
//!
//! What that costs, said plainly: a change that takes a member's access away (removal from the
//! tenant, the tenant's suspension or deletion, the registration's removal through another
//! instance, a password reset that ends every session, the account disabled) reaches a query
//! this instance already admitted at most `DECISION_TTL` later. Only yes is kept: a refusal is
//! decided afresh every time, and this instance's own removal of a registration forgets it at
//! once.

use crate::query::Asker;
use lru::LruCache;
use shared::access::jwt::Principal;
use shared::domain::DatabaseId;
use shared::store::DatabaseRecord;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a yes is kept (the revocation delay of the query routes).
pub const DECISION_TTL: Duration = Duration::from_secs(5);
/// How many (caller, database) pairs an instance remembers.
pub const DECISIONS: usize = 1024;

/// A yes of the gate: the registration and who is asking.
pub(crate) struct Admitted {
    pub(crate) record: DatabaseRecord,
    pub(crate) asker: Asker,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    operator: bool,
    session_epoch: u64,
    db: DatabaseId,
}

impl Key {
    fn of(principal: &Principal, db: &DatabaseId) -> Key {
        Key {
            user: principal.user_id.as_str().to_string(),
            operator: principal.audience == shared::domain::Audience::Operator,
            session_epoch: principal.session_epoch,
            db: db.clone(),
        }
    }
}

pub struct Decisions {
    kept: Mutex<LruCache<Key, (Instant, Arc<Admitted>)>>,
    ttl: Duration,
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions::new(DECISION_TTL)
    }
}

impl Decisions {
    pub fn new(ttl: Duration) -> Self {
        Decisions {
            kept: Mutex::new(LruCache::new(
                NonZeroUsize::new(DECISIONS).unwrap_or(NonZeroUsize::MIN),
            )),
            ttl,
        }
    }

    /// The yes kept for this token's holder and database, while it is fresh.
    pub(crate) fn get(&self, principal: &Principal, db: &DatabaseId) -> Option<Arc<Admitted>> {
        let key = Key::of(principal, db);
        let mut kept = lock(&self.kept);
        match kept.get(&key) {
            Some((at, admitted)) if at.elapsed() < self.ttl => Some(admitted.clone()),
            Some(_) => {
                kept.pop(&key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn keep(&self, principal: &Principal, admitted: Arc<Admitted>) {
        let key = Key::of(principal, &admitted.record.id);
        lock(&self.kept).push(key, (Instant::now(), admitted));
    }

    /// Forgets every yes for database `db` (its registration removed here).
    pub fn forget(&self, db: &DatabaseId) {
        let mut kept = lock(&self.kept);
        let gone: Vec<Key> = kept
            .iter()
            .filter(|(k, _)| &k.db == db)
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            kept.pop(&k);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{Audience, TenantId, UserId};

    fn principal(user: &UserId, audience: Audience, epoch: u64) -> Principal {
        Principal {
            user_id: user.clone(),
            audience,
            token_id: "t".into(),
            session_epoch: epoch,
            session_id: None,
            mfa_at: None,
            impersonation: None,
        }
    }

    fn admitted(db: &DatabaseId) -> Arc<Admitted> {
        Arc::new(Admitted {
            record: DatabaseRecord {
                id: db.clone(),
                tenant: TenantId::new_random(),
                name: "n".into(),
                engine: "postgres".into(),
                host: "h".into(),
                sealed: "s".into(),
                tls: "verify-full".into(),
                ca_sealed: None,
                created_at: 0,
            },
            asker: Asker {
                user_id: "u".into(),
                tenant_id: "t".into(),
                role: "member",
            },
        })
    }

    #[test]
    fn a_yes_is_kept_only_for_the_same_holder_epoch_audience_and_database() {
        let d = Decisions::default();
        let (user, other) = (UserId::new_random(), UserId::new_random());
        let (db, db2) = (DatabaseId::new_random(), DatabaseId::new_random());
        let p = principal(&user, Audience::Portal, 3);
        d.keep(&p, admitted(&db));
        assert!(d.get(&p, &db).is_some());
        assert!(d.get(&p, &db2).is_none(), "another database");
        assert!(
            d.get(&principal(&other, Audience::Portal, 3), &db)
                .is_none(),
            "another user"
        );
        assert!(
            d.get(&principal(&user, Audience::Portal, 4), &db).is_none(),
            "a token of a later session epoch (after a reset) is decided afresh"
        );
        assert!(d
            .get(&principal(&user, Audience::Operator, 3), &db)
            .is_none());
        d.forget(&db);
        assert!(d.get(&p, &db).is_none(), "forgotten with its registration");
    }

    #[test]
    fn a_yes_older_than_its_time_to_live_is_decided_again() {
        let d = Decisions::new(Duration::from_millis(20));
        let user = UserId::new_random();
        let db = DatabaseId::new_random();
        let p = principal(&user, Audience::Portal, 0);
        d.keep(&p, admitted(&db));
        std::thread::sleep(Duration::from_millis(40));
        assert!(d.get(&p, &db).is_none());
    }
}
