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
    refresh: HashMap<String, RefreshTokenRecord>,
    families: HashMap<String, RefreshFamily>,
    rate: HashMap<String, Vec<i64>>,
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
            list.retain(|m| m.tenant_id != tenant.id);
            list.push(Membership {
                tenant_id: tenant.id.clone(),
                tenant_slug: tenant.slug.to_string(),
                role,
            });
            list.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        });
        Ok(())
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
        family: &RefreshFamily,
        first: &RefreshTokenRecord,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            if d.families.contains_key(&family.family_id)
                || d.refresh.contains_key(&first.token_hash)
            {
                return Err(StoreError::Conflict("session already exists"));
            }
            d.families.insert(family.family_id.clone(), family.clone());
            d.refresh.insert(first.token_hash.clone(), first.clone());
            Ok(())
        })
    }

    async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        Ok(self.with(|d| d.refresh.get(token_hash).cloned()))
    }

    async fn refresh_family(&self, family_id: &str) -> Result<Option<RefreshFamily>, StoreError> {
        Ok(self.with(|d| d.families.get(family_id).cloned()))
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        next: &RefreshTokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        self.with(|d| {
            match d.refresh.get(old_hash) {
                Some(old) if !old.used => {}
                _ => return Ok(RotateOutcome::AlreadyUsed),
            }
            match d.families.get(&next.family_id) {
                Some(f) if !f.revoked => {}
                _ => return Ok(RotateOutcome::FamilyRevoked),
            }
            if d.refresh.contains_key(&next.token_hash) {
                return Err(StoreError::Conflict("refresh token hash collision"));
            }
            if let Some(old) = d.refresh.get_mut(old_hash) {
                old.used = true;
            }
            d.refresh.insert(next.token_hash.clone(), next.clone());
            Ok(RotateOutcome::Rotated)
        })
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        self.with(|d| {
            if let Some(f) = d.families.get_mut(family_id) {
                f.revoked = true;
            }
        });
        Ok(())
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn rate_hits(&self, keys: &[String]) -> Result<Vec<Vec<i64>>, StoreError> {
        Ok(self.with(|d| {
            keys.iter()
                .map(|k| d.rate.get(k).cloned().unwrap_or_default())
                .collect()
        }))
    }

    async fn record_rate_hit(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            let entry = d.rate.entry(key.to_string()).or_default();
            entry.push(now);
            *entry = trim_hits(std::mem::take(entry), now, window_secs, keep);
        });
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
