//! A person's sessions (signed-in devices) as the API shows them: to their owner
//! (`GET /account/sessions`, login) and to operators (a user's page, users).

use crate::domain::User;
use crate::store::{Session, SessionStore, StoreError};
use serde_json::{json, Value};

/// How many sessions a list reads (newest first); older ones are not shown. Ending them all
/// does not depend on this: it moves the account's session epoch.
pub const SHOWN: usize = 50;

/// The user's sessions that can still be used, newest first (at most [`SHOWN`]).
pub async fn live<S: SessionStore + ?Sized>(
    store: &S,
    user: &User,
) -> Result<Vec<Session>, StoreError> {
    let now = crate::runtime::time::now_unix();
    Ok(store
        .user_sessions(&user.id, SHOWN)
        .await?
        .into_iter()
        .filter(|s| s.is_live(user.session_epoch, now))
        .collect())
}

/// One session; `current` marks the caller's own.
pub fn view(s: &Session, current: Option<&str>) -> Value {
    json!({
        "session_id": s.session_id,
        "audience": s.audience,
        "created_at": s.created_at,
        "last_used_at": s.last_used_at,
        "expires_at": s.expires_at,
        "client_ip": s.client_ip,
        "user_agent": s.user_agent,
        "current": current == Some(s.session_id.as_str()),
    })
}
