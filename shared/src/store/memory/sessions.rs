//! Sessions (one record each, heads and spent hashes).

use super::ratelimits::refund_in;
use super::*;

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &Session,
        refund: Option<&crate::store::RateHit>,
        audit: Option<&crate::store::changes::AuditEntry>,
    ) -> Result<(), StoreError> {
        self.with(|d| {
            if d.sessions.contains_key(&session.session_id) {
                return Err(StoreError::Conflict("session already exists"));
            }
            d.sessions
                .insert(session.session_id.clone(), session.clone());
            if let Some(u) = d.users.get_mut(&session.user_id) {
                u.last_sign_in_at = Some(crate::runtime::time::now_unix());
            }
            if let Some(r) = refund {
                refund_in(d, r);
            }
            if let Some(a) = audit {
                let list = d.audit.entry(a.scope.clone()).or_default();
                list.push(a.clone());
                list.sort_by(|x, y| x.id.cmp(&y.id));
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
                s.last_used_at = now;
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

    async fn user_sessions(&self, user: &UserId, n: usize) -> Result<Vec<Session>, StoreError> {
        let mut all: Vec<Session> = self.with(|d| {
            d.sessions
                .values()
                .filter(|s| &s.user_id == user)
                .cloned()
                .collect()
        });
        all.sort_by(|a, b| (b.created_at, &b.session_id).cmp(&(a.created_at, &a.session_id)));
        all.truncate(n);
        Ok(all)
    }
}
