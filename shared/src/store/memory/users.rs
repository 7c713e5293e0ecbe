//! Users, email claims, memberships (read side), partner-admin grants.

use super::*;

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
            d.claim_hashes
                .insert(user.email.clone(), user.password_hash.clone());
            d.users.insert(user.id.clone(), user.clone());
            d.count_operators(user.account().operator_weight());
            Ok(())
        })
    }

    async fn users_page(
        &self,
        filter: &UserFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<User>, StoreError> {
        let query = filter.query_name();
        let after = super::position_after(&query, cursor, "GSI2PK", "USERS", "GSI2SK")?;
        let mut all: Vec<User> = self.with(|d| {
            d.users
                .values()
                .filter(|u| filter.matches(u))
                .cloned()
                .collect()
        });
        all.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
        Ok(super::page_after(
            all,
            after.as_deref(),
            limit,
            |u| u.email.as_str().to_string(),
            |last| {
                crate::store::page::encode(
                    &query,
                    std::collections::BTreeMap::from([
                        ("GSI2PK".to_string(), "USERS".to_string()),
                        ("GSI2SK".to_string(), last.to_string()),
                    ]),
                )
            },
            false,
        ))
    }

    async fn totp_factor(&self, id: &UserId) -> Result<Option<TotpFactor>, StoreError> {
        Ok(self.with(|d| d.totp.get(id).cloned()))
    }

    async fn passkeys(&self, id: &UserId) -> Result<Vec<crate::store::Passkey>, StoreError> {
        Ok(self.with(|d| d.passkeys.get(id).cloned().unwrap_or_default()))
    }

    async fn passkey_pending(
        &self,
        id: &UserId,
        now: i64,
    ) -> Result<Option<crate::store::PendingPasskey>, StoreError> {
        Ok(self.with(|d| {
            d.pending_passkeys
                .get(id)
                .cloned()
                .filter(|p| p.expires_at > now)
        }))
    }

    async fn recovery_codes_left(&self, id: &UserId) -> Result<usize, StoreError> {
        Ok(self.with(|d| d.recovery.get(id).map_or(0, Vec::len)))
    }

    async fn mfa_challenge(&self, hash: &str) -> Result<Option<MfaChallenge>, StoreError> {
        let now = crate::runtime::time::now_unix();
        Ok(self.with(|d| {
            d.challenges
                .get(hash)
                .cloned()
                .filter(|c| c.expires_at > now)
        }))
    }

    async fn email_change(&self, hash: &str) -> Result<Option<EmailChange>, StoreError> {
        let now = crate::runtime::time::now_unix();
        Ok(self.with(|d| {
            d.email_changes
                .get(hash)
                .cloned()
                .filter(|c| c.expires_at > now)
        }))
    }

    async fn operator_count(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.with(|d| d.operators))
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self.with(|d| d.emails.get(email).and_then(|id| d.users.get(id)).cloned()))
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.with(|d| d.users.get(id).cloned()))
    }

    async fn email_claim(&self, email: &Email) -> Result<Option<EmailClaim>, StoreError> {
        Ok(self.with(|d| {
            d.emails.get(email).map(|id| EmailClaim {
                user_id: id.clone(),
                password_hash: d.claim_hashes.get(email).cloned(),
            })
        }))
    }

    async fn user_or_decoy(&self, id: Option<&UserId>) -> Result<Option<User>, StoreError> {
        Ok(id.and_then(|id| self.with(|d| d.users.get(id).cloned())))
    }

    async fn copy_hash_to_claim(
        &self,
        email: &Email,
        user: &UserId,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|d| {
            if d.emails.get(email) != Some(user) {
                return false;
            }
            d.claim_hashes
                .insert(email.clone(), password_hash.to_string());
            true
        }))
    }

    async fn membership(
        &self,
        id: &UserId,
        tenant: &TenantId,
    ) -> Result<Option<Membership>, StoreError> {
        Ok(self.with(|d| {
            d.memberships
                .get(id)
                .and_then(|ms| ms.iter().find(|m| &m.tenant_id == tenant).cloned())
        }))
    }

    async fn invite(
        &self,
        id: &UserId,
        tenant: &TenantId,
    ) -> Result<Option<crate::store::Invite>, StoreError> {
        let now = crate::runtime::time::now_unix();
        Ok(self.with(|d| {
            d.invites
                .get(&(id.clone(), tenant.clone()))
                .filter(|i| i.expires_at > now)
                .cloned()
        }))
    }

    async fn invites_of(&self, id: &UserId) -> Result<Vec<crate::store::Invite>, StoreError> {
        let now = crate::runtime::time::now_unix();
        Ok(self.with(|d| {
            let mut out: Vec<_> = d
                .invites
                .iter()
                .filter(|((u, _), i)| u == id && i.expires_at > now)
                .map(|(_, i)| i.clone())
                .collect();
            out.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
            out
        }))
    }

    async fn memberships_up_to(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<Vec<Membership>, StoreError> {
        Ok(self.with(|d| {
            let mut all = d.memberships.get(id).cloned().unwrap_or_default();
            all.truncate(n);
            all
        }))
    }

    async fn holds_partner_role(&self, id: &UserId) -> Result<bool, StoreError> {
        Ok(self.with(|d| d.partner_admins.get(id).is_some_and(|p| !p.is_empty())))
    }

    async fn grant_partner_admin(
        &self,
        id: &UserId,
        partner_id: &PartnerId,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            let list = d.partner_admins.entry(id.clone()).or_default();
            if !list.iter().any(|p| p == partner_id) {
                list.push(partner_id.clone());
            }
        });
        Ok(())
    }

    async fn is_partner_admin(&self, id: &UserId, partner: &PartnerId) -> Result<bool, StoreError> {
        Ok(self.with(|d| {
            d.partner_admins
                .get(id)
                .is_some_and(|ps| ps.contains(partner))
        }))
    }

    async fn partners_of(&self, id: &UserId, n: usize) -> Result<Vec<PartnerId>, StoreError> {
        Ok(self.with(|d| {
            let mut ps = d.partner_admins.get(id).cloned().unwrap_or_default();
            ps.truncate(n);
            ps
        }))
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> Result<Vec<User>, StoreError> {
        Ok(self.with(|d| {
            let mut seen = std::collections::HashSet::new();
            ids.iter()
                .filter(|id| seen.insert((*id).clone()))
                .filter_map(|id| d.users.get(id).cloned())
                .collect()
        }))
    }
}
