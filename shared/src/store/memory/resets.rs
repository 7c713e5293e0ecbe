//! Password-reset tokens.

use super::*;

#[async_trait]
impl ResetStore for MemoryStore {
    async fn create_reset_token(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: i64,
        purpose: TokenPurpose,
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
                purpose,
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
        email: &Email,
        new_password_hash: &str,
        now: i64,
        audit: &crate::store::changes::AuditEntry,
    ) -> Result<bool, StoreError> {
        self.with(|d| {
            let live = d
                .resets
                .get(&token.token_hash)
                .is_some_and(|r| r.expires_at > now);
            let user_ok = d.users.get(&token.user_id).is_some_and(|u| {
                let required = match token.purpose {
                    TokenPurpose::Reset => UserStatus::Active,
                    TokenPurpose::Invitation => UserStatus::Invited,
                };
                u.reset_generation == token.generation && u.status == required
            });
            if !(live && user_ok) {
                return Ok(false);
            }
            d.resets.remove(&token.token_hash);
            if let Some(u) = d.users.get_mut(&token.user_id) {
                u.password_hash = new_password_hash.to_string();
                u.session_epoch += 1;
                u.reset_generation += 1;
                u.email_verified = true;
                u.status = UserStatus::Active;
            }
            if d.emails.get(email) == Some(&token.user_id) {
                d.claim_hashes
                    .insert(email.clone(), new_password_hash.to_string());
            }
            let list = d.audit.entry(audit.scope.clone()).or_default();
            list.push(audit.clone());
            list.sort_by(|x, y| x.id.cmp(&y.id));
            Ok(true)
        })
    }
}
