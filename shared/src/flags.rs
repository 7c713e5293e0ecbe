//! Feature flags at run time: the one place that reads the catalogue for an evaluation, caches
//! it, and applies the kill switch. The rule itself is `domain::flag::evaluate`.
//!
//! **Caching, and how a kill gets past it.** Each instance keeps the catalogue it read for
//! [`CATALOGUE_TTL`] (5 seconds): an evaluation within that time reads nothing of it. The kill
//! list is not cached: it is one small item (`FLAGS / KILLED`), read strongly consistent by every
//! evaluation, and a flag on it is off whatever the cached catalogue says. A kill commits the
//! flag's `killed` state and its place on the kill list in one transaction, so it takes effect on
//! the next evaluation on every warm instance, with no wait; every other change (a state, a
//! percentage, an override) is seen within 5 seconds. An instance that changes a flag forgets
//! its own copy at once.

use crate::domain::flag::{self, Evaluation, Flag, FlagKey, Subject};
use crate::store::{Store, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an instance keeps the catalogue it read.
pub const CATALOGUE_TTL: Duration = Duration::from_secs(5);

/// The flags in hand and the kill list read for this evaluation.
pub struct Snapshot {
    pub flags: Arc<Vec<Flag>>,
    pub killed: HashSet<String>,
}

impl Snapshot {
    /// `flag` for `subject`.
    pub fn evaluate(&self, flag: &Flag, subject: &Subject<'_>) -> Evaluation {
        flag::evaluate(flag, self.killed.contains(flag.key.as_str()), subject)
    }

    pub fn get(&self, key: &FlagKey) -> Option<&Flag> {
        self.flags.iter().find(|f| &f.key == key)
    }
}

/// The per-instance cache of the catalogue.
#[derive(Default)]
pub struct Evaluator {
    cached: Mutex<Option<(Instant, Arc<Vec<Flag>>)>>,
}

impl Evaluator {
    pub fn new() -> Self {
        Self::default()
    }

    /// The catalogue (from the cache while it is fresh) and the kill list (always read).
    pub async fn snapshot(&self, store: &dyn Store) -> Result<Snapshot, StoreError> {
        let fresh = self
            .lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CATALOGUE_TTL)
            .map(|(_, flags)| flags.clone());
        let (flags, killed) = match fresh {
            Some(flags) => (flags, store.kill_list().await?),
            None => {
                // One consistent query reads both.
                let (flags, killed) = store.flags().await?;
                let flags = Arc::new(flags);
                *self.lock() = Some((Instant::now(), flags.clone()));
                (flags, killed)
            }
        };
        Ok(Snapshot {
            flags,
            killed: killed.into_iter().collect(),
        })
    }

    /// Drops the cached catalogue (after this instance changed it).
    pub fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<Flag>>)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flag::{FlagState, Reason};
    use crate::domain::plan::PlanId;
    use crate::domain::{TenantId, UserId};
    use crate::store::changes::Change;
    use crate::store::{CommitStore, MemoryStore};

    fn flag(state: FlagState, version: u64) -> Flag {
        Flag {
            key: FlagKey::parse("search.fuzzy").unwrap(),
            description: String::new(),
            owner: "search".into(),
            state,
            rollout_percent: 0,
            overrides: vec![],
            version,
            created_at: 0,
            updated_at: 0,
            killed_at: None,
            killed_by: None,
            kill_reason: None,
        }
    }

    #[tokio::test]
    async fn a_kill_is_seen_at_once_other_changes_after_the_cache() {
        let store = MemoryStore::new();
        store
            .commit(vec![Change::SaveFlag {
                flag: flag(FlagState::On, 1),
                expect_version: 0,
            }])
            .await
            .unwrap();
        let evaluator = Evaluator::new();
        let tenant = TenantId::new_random();
        let plan = PlanId::free();
        let subject = Subject {
            user: None::<&UserId>,
            tenant: &tenant,
            partner: None,
            plan: &plan,
        };
        let key = FlagKey::parse("search.fuzzy").unwrap();
        let value = |snap: &Snapshot| snap.evaluate(snap.get(&key).unwrap(), &subject);
        assert_eq!(
            value(&evaluator.snapshot(&store).await.unwrap()).reason,
            Reason::On
        );

        // Turned off elsewhere: this instance still has its copy.
        store
            .commit(vec![Change::SaveFlag {
                flag: flag(FlagState::Off, 2),
                expect_version: 1,
            }])
            .await
            .unwrap();
        assert_eq!(
            value(&evaluator.snapshot(&store).await.unwrap()).reason,
            Reason::On
        );

        // Killed elsewhere (state and list in one commit): seen on the next evaluation.
        store
            .commit(vec![
                Change::SaveFlag {
                    flag: flag(FlagState::Killed, 3),
                    expect_version: 2,
                },
                Change::KillList {
                    key: key.clone(),
                    killed: true,
                },
            ])
            .await
            .unwrap();
        let e = value(&evaluator.snapshot(&store).await.unwrap());
        assert_eq!((e.value, e.reason), (false, Reason::Killed));

        // Forgetting reads the catalogue again.
        evaluator.forget();
        let snap = evaluator.snapshot(&store).await.unwrap();
        assert_eq!(snap.get(&key).unwrap().state, FlagState::Killed);
    }
}
