//! In-memory store with the same contract as `DynamoStore` (uniqueness, single-use rotation,
//! revocation), for unit tests of domain logic without the network.

use super::*;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Data {
    users: HashMap<UserId, User>,
    emails: HashMap<Email, UserId>,
    memberships: HashMap<UserId, Vec<Membership>>,
    partner_admins: HashMap<UserId, Vec<String>>,
    sessions: HashMap<String, Session>,
    rate: HashMap<String, RateWindow>,
    tenants: HashMap<String, Tenant>,
    slugs: HashMap<TenantSlug, String>,
    resets: HashMap<String, ResetTokenRecord>,
    idempotency: HashMap<String, IdempotencyRecord>,
}

struct IdempotencyRecord {
    fingerprint: String,
    /// `Some((status, data))` once done.
    answer: Option<(u16, String)>,
    /// The lease end while pending, the retention end once done.
    until: i64,
}

#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        let mut guard = self.data.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        self.with(|d| {
            if d.emails.contains_key(&user.email) || d.users.contains_key(&user.id) {
                return Err(StoreError::Conflict(
                    "a user with this email already exists",
                ));
            }
            d.emails.insert(user.email.clone(), user.id.clone());
            d.users.insert(user.id.clone(), user.clone());
            Ok(())
        })
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self.with(|d| d.emails.get(email).and_then(|id| d.users.get(id)).cloned()))
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.with(|d| d.users.get(id).cloned()))
    }

    async fn memberships(&self, id: &UserId) -> Result<Vec<Membership>, StoreError> {
        Ok(self.with(|d| d.memberships.get(id).cloned().unwrap_or_default()))
    }

    async fn memberships_up_to(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<Vec<Membership>, StoreError> {
        let mut all = self.memberships(id).await?;
        all.truncate(n);
        Ok(all)
    }

    async fn holds_partner_role(&self, id: &UserId) -> Result<bool, StoreError> {
        Ok(self.with(|d| d.partner_admins.get(id).is_some_and(|p| !p.is_empty())))
    }

    async fn grant_partner_admin(&self, id: &UserId, partner_id: &str) -> Result<(), StoreError> {
        self.with(|d| {
            let list = d.partner_admins.entry(id.clone()).or_default();
            if !list.iter().any(|p| p == partner_id) {
                list.push(partner_id.to_string());
            }
        });
        Ok(())
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.with(|d| {
            if d.slugs.contains_key(&tenant.slug) || d.tenants.contains_key(&tenant.id) {
                return Err(StoreError::Conflict(
                    "a tenant with this slug already exists",
                ));
            }
            d.slugs.insert(tenant.slug.clone(), tenant.id.clone());
            d.tenants.insert(tenant.id.clone(), tenant.clone());
            Ok(())
        })
    }

    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.slugs.get(slug).and_then(|id| d.tenants.get(id)).cloned()))
    }

    async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(self.with(|d| d.tenants.get(id).cloned()))
    }

    async fn add_membership(
        &self,
        user: &UserId,
        tenant: &Tenant,
        role: Role,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            let list = d.memberships.entry(user.clone()).or_default();
            if list.iter().any(|m| m.tenant_id == tenant.id) {
                return Err(StoreError::Conflict("already a member of this tenant"));
            }
            list.push(Membership {
                tenant_id: tenant.id.clone(),
                tenant_slug: tenant.slug.to_string(),
                role,
            });
            list.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
            Ok(())
        })
    }

    async fn tenant_members(&self, tenant_id: &str) -> Result<Vec<(UserId, Role)>, StoreError> {
        Ok(self.with(|d| {
            let mut out: Vec<(UserId, Role)> = d
                .memberships
                .iter()
                .flat_map(|(u, ms)| {
                    ms.iter()
                        .filter(|m| m.tenant_id == tenant_id)
                        .map(|m| (u.clone(), m.role))
                })
                .collect();
            out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            out
        }))
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &str,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        self.with(|d| match d.tenants.get_mut(tenant_id) {
            Some(t) => {
                t.redirect_origins = origins.to_vec();
                Ok(())
            }
            None => Err(StoreError::NotFound("tenant")),
        })
    }
}

#[async_trait]
impl ResetStore for MemoryStore {
    async fn create_reset_token(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            let Some(stored) = d.users.get_mut(&user.id) else {
                return Err(StoreError::NotFound("user"));
            };
            if stored.reset_generation != user.reset_generation {
                return Err(StoreError::Conflict("a concurrent reset request won"));
            }
            stored.reset_generation += 1;
            let record = ResetTokenRecord {
                token_hash: token_hash.to_string(),
                user_id: user.id.clone(),
                generation: stored.reset_generation,
                expires_at,
            };
            d.resets.insert(token_hash.to_string(), record);
            Ok(())
        })
    }

    async fn reset_token(&self, token_hash: &str) -> Result<Option<ResetTokenRecord>, StoreError> {
        Ok(self.with(|d| d.resets.get(token_hash).cloned()))
    }

    async fn consume_reset_token(
        &self,
        token: &ResetTokenRecord,
        new_password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.with(|d| {
            let live = d
                .resets
                .get(&token.token_hash)
                .is_some_and(|r| r.expires_at > now);
            let user_ok = d
                .users
                .get(&token.user_id)
                .is_some_and(|u| u.reset_generation == token.generation && u.is_active());
            if !(live && user_ok) {
                return Ok(false);
            }
            d.resets.remove(&token.token_hash);
            if let Some(u) = d.users.get_mut(&token.user_id) {
                u.password_hash = new_password_hash.to_string();
                u.session_epoch += 1;
                u.reset_generation += 1;
            }
            Ok(true)
        })
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &Session,
        refund: Option<&crate::ratelimit::Reservation>,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            if d.sessions.contains_key(&session.session_id) {
                return Err(StoreError::Conflict("session already exists"));
            }
            d.sessions
                .insert(session.session_id.clone(), session.clone());
            if let Some(r) = refund {
                refund_in(d, &r.keys, &r.hit_id);
            }
            Ok(())
        })
    }

    async fn session(&self, session_id: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|d| d.sessions.get(session_id).cloned()))
    }

    async fn rotate_session(
        &self,
        session_id: &str,
        old: &str,
        new: &str,
        now: i64,
        forget: &[String],
    ) -> Result<RotateOutcome, StoreError> {
        self.with(|d| match d.sessions.get_mut(session_id) {
            Some(s) if !s.revoked && s.heads.contains_key(old) => {
                s.heads.remove(old);
                s.heads.insert(new.to_string(), now);
                for h in forget {
                    s.spent.remove(h);
                }
                s.spent.insert(old.to_string(), now);
                Ok(RotateOutcome::Rotated)
            }
            _ => Ok(RotateOutcome::Refused),
        })
    }

    async fn add_session_head(
        &self,
        session_id: &str,
        spent: &str,
        spent_at: i64,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.with(|d| match d.sessions.get_mut(session_id) {
            Some(s)
                if !s.revoked
                    && s.spent.get(spent) == Some(&spent_at)
                    && s.heads.len() < MAX_SESSION_HEADS =>
            {
                s.heads.insert(new.to_string(), now);
                Ok(true)
            }
            _ => Ok(false),
        })
    }

    async fn revoke_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.with(|d| {
            if let Some(s) = d.sessions.get_mut(session_id) {
                s.revoked = true;
            }
        });
        Ok(())
    }
}

fn refund_in(d: &mut Data, keys: &[String], hit_id: &str) {
    for k in keys {
        if let Some(w) = d.rate.get_mut(k) {
            w.hits.remove(hit_id);
            w.version += 1;
        }
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn rate_windows(&self, keys: &[String]) -> Result<Vec<RateWindow>, StoreError> {
        Ok(self.with(|d| {
            keys.iter()
                .map(|k| d.rate.get(k).cloned().unwrap_or_default())
                .collect()
        }))
    }

    async fn put_rate_windows(
        &self,
        writes: &[(String, RateWindow, u64, i64)],
    ) -> Result<bool, StoreError> {
        self.with(|d| {
            let current = |k: &String| d.rate.get(k).map_or(0, |w| w.version);
            if writes.iter().any(|(k, _, seen, _)| current(k) != *seen) {
                return Ok(false);
            }
            for (k, w, _, _) in writes {
                d.rate.insert(k.clone(), w.clone());
            }
            Ok(true)
        })
    }

    async fn refund_rate_hit(&self, keys: &[String], hit_id: &str) -> Result<(), StoreError> {
        self.with(|d| refund_in(d, keys, hit_id));
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn claim_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.with(|d| {
            if let Some(held) = d.idempotency.get(id).filter(|r| r.until > now) {
                return Ok(match &held.answer {
                    None => IdempotencyClaim::InProgress {
                        fingerprint: held.fingerprint.clone(),
                    },
                    Some((status, data)) => IdempotencyClaim::Done {
                        fingerprint: held.fingerprint.clone(),
                        status: *status,
                        data: data.clone(),
                    },
                });
            }
            d.idempotency.insert(
                id.to_string(),
                IdempotencyRecord {
                    fingerprint: fingerprint.to_string(),
                    answer: None,
                    until: lease_until,
                },
            );
            Ok(IdempotencyClaim::Claimed)
        })
    }

    async fn complete_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        status: u16,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|d| match d.idempotency.get_mut(id) {
            Some(r) if r.fingerprint == fingerprint => {
                r.answer = Some((status, data.to_string()));
                r.until = expires_at;
                Ok(())
            }
            _ => Err(StoreError::Conflict("idempotency claim lost")),
        })
    }

    async fn release_idempotency(&self, id: &str, fingerprint: &str) -> Result<(), StoreError> {
        self.with(|d| {
            if d.idempotency
                .get(id)
                .is_some_and(|r| r.fingerprint == fingerprint && r.answer.is_none())
            {
                d.idempotency.remove(id);
            }
            Ok(())
        })
    }
}

#[async_trait]
impl Health for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
