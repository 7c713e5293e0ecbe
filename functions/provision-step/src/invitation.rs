//! `invitation`: the owner's invitation (a new user) or access notice (an existing one), sent
//! once. A step already `ok` never sends again, not on a retry, a reconcile or a restore.
//! Offboarding and purging send nothing to the tenant's members.

use crate::{App, Done, StepError, StepWork};
use shared::domain::tenant::{StepState, StepStatus, Tenant};
use shared::domain::{Role, UserStatus};
use shared::mail::invitation::{self, Invite, Sender};

pub(crate) struct Invitation;

impl StepWork for Invitation {
    async fn provision(app: &App, t: &Tenant, prev: &StepStatus) -> Result<Done, StepError> {
        invite_owner(app, t, prev).await
    }

    async fn offboard(_: &App, _: &Tenant) -> Result<Done, StepError> {
        Ok(Done::skipped("no mail is sent when a tenant is offboarded"))
    }

    async fn purge(_: &App, _: &Tenant) -> Result<Done, StepError> {
        Ok(Done::skipped("no mail is sent when a tenant is offboarded"))
    }
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
    let sent = if owner.status == UserStatus::Invited {
        invitation::send(
            &Sender {
                store,
                mailer: app.mailer.as_ref(),
                links: &app.links,
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
    } else {
        invitation::try_notify_access(
            app.mailer.as_ref(),
            &owner,
            &t.name,
            Role::Owner.as_str(),
            &inviter,
        )
        .await
        .map(|()| "notified")
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
