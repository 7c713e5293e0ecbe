//! The end of an impersonation nobody stopped: once its token expired, the scheduled pass
//! records the end in the tenant's audit (`impersonation.ended`, why `expired`) and mails the
//! tenant's owners, as a stop does. The record's removal is conditioned on it being there, in
//! the audit entry's transaction, so an end is recorded once, whether a stop or a pass (or two
//! passes) got there first.

use crate::App;
use serde_json::json;
use shared::mail::{ImpersonationFacts, ImpersonationNotice};
use shared::runtime::time::{now_ms, now_unix};
use shared::store::changes::{AuditEntry, AuditTarget, Change, CommitError};

/// How many expired impersonations one pass records (the rest wait for the next).
pub const PER_PASS: usize = 50;

/// Records the ends of the impersonations that expired unstopped; how many it recorded.
pub async fn record_expired(app: &App) -> usize {
    let store = app.store.as_ref();
    let lapsed = match store.lapsed_impersonations(now_unix(), PER_PASS).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(cause = %shared::runtime::logging::chain(&e), "expired impersonations not read; the next pass tries again");
            return 0;
        }
    };
    let mut recorded = 0;
    for open in lapsed {
        let tenant = match store.tenant_by_id(&open.tenant_id).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(impersonation = %open.id, cause = %shared::runtime::logging::chain(&e), "tenant not read; the next pass tries again");
                continue;
            }
        };
        let entry = AuditEntry::new(
            AuditTarget::Tenant(open.tenant_id.clone()),
            open.operator_id.clone(),
            "impersonation.ended",
            json!({
                "impersonation": open.id,
                "user_id": open.user_id,
                "why": "expired",
                "expired_at": open.expires_at,
            }),
            now_ms(),
            "reconcile",
        )
        .with_partner(tenant.as_ref().and_then(|t| t.partner.clone()));
        let committed = store
            .commit(vec![
                Change::CloseImpersonation {
                    id: open.id.clone(),
                    expires_at: open.expires_at,
                },
                Change::Audit(entry),
            ])
            .await;
        match committed {
            Ok(()) => recorded += 1,
            // Stopped, or recorded by another pass, meanwhile.
            Err(CommitError::Refused { .. }) => continue,
            Err(e) => {
                tracing::warn!(impersonation = %open.id, cause = %e, "expired impersonation not recorded; the next pass tries again");
                continue;
            }
        }
        tracing::info!(impersonation = %open.id, "expired impersonation recorded as ended");
        let Some(tenant) = tenant else { continue };
        let (operator, user) = match tokio::try_join!(
            store.user_by_id(&open.operator_id),
            store.user_by_id(&open.user_id)
        ) {
            Ok((Some(o), Some(u))) => (o, u),
            _ => continue,
        };
        let facts = ImpersonationFacts {
            tenant_name: &tenant.name,
            operator: &operator.email,
            user: &user.email,
            write: open.write,
            reason: "(as given when it started)",
            until: open.expires_at,
        };
        if let Err(e) = shared::mail::notify_owners(store, app.mailer.as_ref(), &tenant, |to| {
            shared::mail::impersonation(to, ImpersonationNotice::Ended, &facts)
        })
        .await
        {
            tracing::error!(impersonation = %open.id, cause = %shared::runtime::logging::chain(&e), "the end of an expired impersonation was not mailed");
        }
    }
    recorded
}
