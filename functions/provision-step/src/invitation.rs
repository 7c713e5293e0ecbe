//! `invitation`: the owner's invitation (a new user) or access notice (an existing one), sent
//! once. A step already `ok` never sends again, not on a retry, a reconcile or a restore.
//! Offboarding sends nothing to the tenant's members; purging removes them (with the
//! tenant's database registrations and their sealed connection strings), and mails nothing.

use crate::{App, Done, StepError, StepWork};
use shared::domain::tenant::{StepState, StepStatus, Tenant};
use shared::domain::{Role, UserStatus};
use shared::mail::invitation::{self, Invite, Sender};
use shared::store::changes::{Change, CommitError};

pub(crate) struct Invitation;

impl StepWork for Invitation {
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
        invite_owner(app, t, prev).await
    }

    async fn offboard(_: &App, _: &Tenant) -> Result<Done, StepError> {
        Ok(Done::skipped("no mail is sent when a tenant is offboarded"))
    }

    async fn purge(app: &App, t: &Tenant) -> Result<Done, StepError> {
        purge_people(app, t).await
    }
}

/// Changes per commit while purging (well under a transaction's limit).
const PURGE_BATCH: usize = 25;

/// Removes every membership of the tenant and every database registration, a batch at a time.
/// A retry (after a timeout, or a batch refused because the index still showed something
/// already removed) reads what is left and goes on.
async fn purge_people(app: &App, t: &Tenant) -> Result<Done, StepError> {
    let store = app.store.as_ref();
    let members = store.tenant_members(&t.id).await?;
    for batch in members.chunks(PURGE_BATCH) {
        let changes = batch
            .iter()
            .map(|(user, role)| Change::RemoveMembership {
                user: user.clone(),
                tenant: t.id.clone(),
                role: *role,
            })
            .collect();
        commit_purge(app, changes).await?;
    }
    let mut databases = 0;
    loop {
        let page = store.tenant_databases(&t.id, PURGE_BATCH, None).await?;
        if page.items.is_empty() {
            break;
        }
        databases += page.items.len();
        let changes = page
            .items
            .iter()
            .map(|db| Change::DeleteDatabase {
                id: db.id.clone(),
                tenant: t.id.clone(),
            })
            .collect();
        commit_purge(app, changes).await?;
    }
    tracing::info!(tenant = %t.slug, memberships = members.len(), databases, "tenant's people and connections purged");
    Ok(Done {
        message: Some(format!(
            "{} memberships and {databases} database registrations removed",
            members.len()
        )),
        ..Done::ok("purged", None)
    })
}

async fn commit_purge(app: &App, changes: Vec<Change>) -> Result<(), StepError> {
    app.store.commit(changes).await.map_err(|e| match e {
        // Something listed was gone already (an index a moment behind): the retry re-reads.
        CommitError::Refused { .. } => {
            StepError::Transient("a purge batch met a record already removed".into())
        }
        CommitError::Store(e) => e.into(),
        other => StepError::Permanent(other.to_string()),
    })
}

async fn invite_owner(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
    if matches!(prev.state, StepState::Ok | StepState::Skipped) {
        return Ok(Done {
            state: prev.state,
            outcome: "unchanged",
            artifact: prev.artifact.clone(),
            message: prev.message.clone(),
        });
    }
    let Some(email) = &t.owner_email else {
        return Ok(Done::skipped("the tenant has no owner to invite"));
    };
    let store = app.store.as_ref();
    let owner = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| StepError::Permanent("the owner's account does not exist".into()))?;
    let inviter = match &t.created_by {
        Some(id) => store.user_by_id(id).await?,
        None => None,
    };
    // Without a known creator the platform invites in its own name: the owner themself.
    let inviter = inviter.unwrap_or_else(|| owner.clone());
    // An existing account named owner holds an invitation, not the tenant, until it accepts.
    let member = store.membership(&owner.id, &t.id).await?.is_some();
    let sent = if owner.status == UserStatus::Invited {
        invitation::send(
            &Sender {
                store,
                mailer: app.mailer.as_ref(),
                links: &app.links,
                events: None,
            },
            &owner,
            &Invite {
                place: &t.name,
                role: Role::Owner.as_str(),
                invited_by: &inviter,
            },
            shared::runtime::time::now_unix(),
        )
        .await
        .map(|()| "invited")
    } else if member {
        invitation::try_notify_access(
            app.mailer.as_ref(),
            &owner,
            &t.name,
            Role::Owner.as_str(),
            &inviter,
        )
        .await
        .map(|()| "notified")
    } else {
        let invite = Invite {
            place: &t.name,
            role: Role::Owner.as_str(),
            invited_by: &inviter,
        };
        invitation::try_notify_pending(app.mailer.as_ref(), &app.links, &owner, &invite)
            .await
            .map(|()| "invited to accept")
    };
    match sent {
        // The recorded text is the failure's first clause: no address, no token.
        Err(why) => Err(StepError::Transient(
            why.split(':')
                .next()
                .unwrap_or("the mail failed")
                .to_string(),
        )),
        Ok(how) => Ok(Done {
            message: Some(format!("owner {how}")),
            ..Done::ok("created", None)
        }),
    }
}

#[cfg(all(test, not(feature = "faults")))]
mod tests {
    use super::*;
    use shared::domain::tenant::RedirectOrigin;
    use shared::store::{CommitStore, DatabaseRecord, DatabaseStore, MemoryStore, TenantStore};
    use std::sync::Arc;

    macro_rules! idle_client {
        ($krate:ident) => {
            $krate::Client::from_conf(
                $krate::config::Builder::new()
                    .behavior_version($krate::config::BehaviorVersion::latest())
                    .region($krate::config::Region::new("us-east-1"))
                    .build(),
            )
        };
    }

    #[tokio::test]
    async fn a_purge_removes_every_membership_and_database_registration_in_batches() {
        let store = Arc::new(MemoryStore::new());
        let owner = shared::testing::user(store.as_ref(), false).await;
        let t = shared::testing::tenant(store.as_ref(), "Gone", Some((&owner, Role::Owner))).await;
        let other =
            shared::testing::tenant(store.as_ref(), "Kept", Some((&owner, Role::Owner))).await;
        // More members than a batch, and a few databases, here and in another tenant.
        for _ in 0..(PURGE_BATCH + 5) {
            let u = shared::testing::user(store.as_ref(), false).await;
            store.add_membership(&u.id, &t, Role::Member).await.unwrap();
        }
        for (tenant, n) in [(&t, 3), (&other, 1)] {
            for i in 0..n {
                store
                    .commit(vec![Change::PutDatabase(DatabaseRecord {
                        id: shared::domain::DatabaseId::new_random(),
                        tenant: tenant.id.clone(),
                        name: format!("db{i}"),
                        engine: "postgres".into(),
                        host: "db.example.com:5432/app".into(),
                        sealed: "sealed".into(),
                        tls: "verify-full".into(),
                        ca_sealed: None,
                        created_at: i,
                    })])
                    .await
                    .unwrap();
            }
        }
        let app = App {
            store: store.clone(),
            s3: idle_client!(aws_sdk_s3),
            secrets: idle_client!(aws_sdk_secretsmanager),
            mailer: Arc::new(shared::mail::RecordingMailer::default()),
            links: shared::runtime::config::LinkConfig {
                platform_origin: RedirectOrigin::parse("https://console.example.com", false)
                    .unwrap(),
            },
            bucket: "b".into(),
            secret_prefix: String::new(),
            provisioning: shared::runtime::config::ProvisioningConfig::from_lookup(|_| None)
                .unwrap(),
            events: None,
        };
        let done = Invitation::purge(&app, &t).await.unwrap();
        assert_eq!(
            done.message.as_deref(),
            Some("31 memberships and 3 database registrations removed")
        );
        assert!(store.tenant_members(&t.id).await.unwrap().is_empty());
        assert!(store
            .tenant_databases(&t.id, 10, None)
            .await
            .unwrap()
            .items
            .is_empty());
        // The other tenant keeps its own.
        assert_eq!(store.tenant_members(&other.id).await.unwrap().len(), 1);
        assert_eq!(
            store
                .tenant_databases(&other.id, 10, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        // Again: nothing left to do, and no error.
        let again = Invitation::purge(&app, &t).await.unwrap();
        assert_eq!(
            again.message.as_deref(),
            Some("0 memberships and 0 database registrations removed")
        );
    }
}
