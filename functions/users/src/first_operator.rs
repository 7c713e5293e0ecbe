//! The first operator: a direct invocation of this function (an IAM-only action:
//! `lambda:InvokeFunction` with the deployer's credentials; no route reaches it), which `make
//! deploy` runs once the stack is up and `make dev` runs on the emulator.
//!
//! `{"action": "invite-operator", "email": "<address>", "force": false}` invites the address as
//! a platform operator: an account without a password (created if it does not exist) holds the
//! operator flag, and an invitation mail links to the console's accept page, where the person
//! chooses their password. No password is ever passed, stored in a parameter or logged.
//!
//! Idempotent: the same address again re-sends its invitation while it is not accepted (the
//! earlier link dies), and changes nothing once it is. Refused while any operator exists,
//! unless `force` (a second operator, or a platform whose operators were all removed); the
//! refusal is atomic: two first invitations at once cannot both pass (a one-time claim,
//! `QUOTA#platform first-operator`, in the same transaction).
//!
//! The answer is JSON: `{"ok": true, "outcome": "invited" | "reinvited" | "granted" | "exists",
//! "user_id", "message"}` or `{"ok": false, "error": "<CODE>", "message"}`.

use crate::App;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::{Account, Email, User, UserStatus};
use shared::mail::invitation::{self, Invite, Sender};
use shared::store::changes::{AuditEntry, AuditTarget, Change, CommitError, Refusal, UserEdit};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    action: String,
    email: String,
    #[serde(default)]
    force: bool,
}

/// What the invitation mail calls the role.
const ROLE: &str = "platform operator";

fn refused(code: &str, message: impl Into<String>) -> Value {
    let message = message.into();
    tracing::warn!(code, message = %message, "first operator: refused");
    json!({"ok": false, "error": code, "message": message})
}

fn done(outcome: &str, user: &User, message: &str) -> Value {
    tracing::info!(outcome, user_id = %user.id, "first operator");
    json!({"ok": true, "outcome": outcome, "user_id": user.id, "message": message})
}

/// The direct invocation's answer (never an error of the invocation itself: the caller reads
/// `ok`).
pub async fn invoke(app: &App, payload: Value) -> Value {
    let request: Request = match serde_json::from_value(payload) {
        Ok(r) => r,
        Err(_) => {
            return refused(
                "INVALID_REQUEST",
                r#"expected {"action": "invite-operator", "email": "...", "force": false}"#,
            )
        }
    };
    if request.action != "invite-operator" {
        return refused("INVALID_REQUEST", "the only action is invite-operator");
    }
    let Ok(email) = Email::parse(&request.email) else {
        return refused("INVALID_FIELD", "email is not a valid address");
    };
    match invite(app, email, request.force).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(cause = %shared::runtime::logging::chain(e.as_ref()), "first operator: failed");
            refused(
                "SERVICE_UNAVAILABLE",
                "the store or the mailer is unavailable; nothing was sent: run it again",
            )
        }
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn audit(user: &User, action: &str, force: bool) -> Change {
    Change::Audit(AuditEntry::new(
        AuditTarget::Platform,
        shared::domain::UserId::system(),
        action,
        json!({"user_id": user.id, "force": force, "via": "direct invocation"}),
        shared::runtime::time::now_ms(),
        "first-operator",
    ))
}

/// The one-time claim a first (not forced) invitation makes, so two cannot both pass.
fn first_claim() -> Change {
    Change::Quota {
        scope: "platform".into(),
        name: "first-operator".into(),
        by: 1,
        cap: 1,
    }
}

async fn invite(app: &App, email: Email, force: bool) -> Result<Value, Failure> {
    let store = app.store.as_ref();
    let now = shared::runtime::time::now_unix();
    let (count, existing) = tokio::try_join!(store.operator_count(), store.user_by_email(&email))?;
    let others = count.unwrap_or(0) > 0;
    let user = match existing {
        Some(u) if u.platform_admin && u.status == UserStatus::Active => {
            return Ok(done("exists", &u, "this address is an operator already"));
        }
        Some(u) if u.platform_admin && u.status == UserStatus::Invited => {
            send(app, &u, now).await?;
            return Ok(done(
                "reinvited",
                &u,
                "the invitation was sent again (earlier links no longer work)",
            ));
        }
        Some(u) if u.status == UserStatus::Disabled => {
            return Ok(refused(
                "INVALID_STATE",
                "this account is disabled: an operator enables it in the console",
            ));
        }
        _ if others && !force => {
            return Ok(refused(
                "OPERATOR_EXISTS",
                "an operator exists already: they invite others from the console (force: true to invite anyway)",
            ));
        }
        Some(u) => {
            // An existing account becomes an operator.
            let mut changes = vec![
                Change::UpdateUser {
                    user: u.id.clone(),
                    before: u.account(),
                    edit: UserEdit {
                        account: Some(Account {
                            status: u.status,
                            platform_admin: true,
                        }),
                        ..UserEdit::default()
                    },
                },
                audit(&u, "user.operator_granted", force),
            ];
            if !force {
                changes.push(first_claim());
            }
            if let Err(e) = store.commit(changes).await {
                return commit_refused(e);
            }
            if u.status == UserStatus::Invited {
                send(app, &u, now).await?;
            } else {
                invitation::notify_access(app.mailer.as_ref(), &u, &place(app), ROLE, &u).await;
            }
            return Ok(done(
                "granted",
                &u,
                "the existing account is now an operator",
            ));
        }
        None => {
            let mut user = invitation::invited_user(email, now);
            user.platform_admin = true;
            user
        }
    };
    let mut changes = vec![
        Change::CreateUser(user.clone()),
        audit(&user, "user.operator_invited", force),
    ];
    if !force {
        changes.push(first_claim());
    }
    if let Err(e) = store.commit(changes).await {
        return commit_refused(e);
    }
    send(app, &user, now).await?;
    Ok(done(
        "invited",
        &user,
        "the invitation was sent: its link opens the console's accept page",
    ))
}

fn commit_refused(e: CommitError) -> Result<Value, Failure> {
    match e {
        CommitError::Refused { reasons } if reasons.contains(&Refusal::QuotaReached) => {
            Ok(refused(
                "OPERATOR_EXISTS",
                "a first operator was invited already (force: true to invite another)",
            ))
        }
        CommitError::Refused { .. } => Ok(refused(
            "CONCURRENT_UPDATE",
            "the account changed meanwhile: run it again",
        )),
        other => Err(Box::new(other)),
    }
}

/// What the invitation names as the place: the platform, by its console's address.
fn place(app: &App) -> String {
    format!("the platform at {}", app.links.platform_origin)
}

async fn send(app: &App, user: &User, now: i64) -> Result<(), Failure> {
    invitation::send(
        &Sender {
            store: app.store.as_ref(),
            mailer: app.mailer.as_ref(),
            links: &app.links,
            events: None,
        },
        user,
        &Invite {
            place: &place(app),
            role: ROLE,
            invited_by: user,
        },
        now,
    )
    .await
    .map_err(Failure::from)
}
