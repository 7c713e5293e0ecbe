//! Composable writes: changes from any aggregate committed together, all or nothing (one
//! `TransactWriteItems` on DynamoDB, up to 100 changes). A mutation, its audit entry, its
//! counter updates and its outgoing event go in one commit, so a crash or a race can never
//! leave one without the others. Each change carries its own condition; when one fails, the
//! commit says what was refused as a typed [`Refusal`], and nothing is written.

use crate::domain::partner::Partner;
use crate::domain::plan::{Plan, PlanId};
use crate::domain::tenant::{RedirectOrigin, Tenant, TenantStatus};
use crate::domain::{Account, Email, PartnerId, Role, TenantId, User, UserId};

/// The most changes one commit may hold (DynamoDB's transaction limit).
pub const MAX_CHANGES: usize = 100;

/// What an audit entry is about: it is stored under that scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Tenant(TenantId),
    Partner(PartnerId),
    Platform,
}

impl AuditTarget {
    pub fn scope(&self) -> String {
        match self {
            AuditTarget::Tenant(t) => format!("tenant:{t}"),
            AuditTarget::Partner(p) => format!("partner:{p}"),
            AuditTarget::Platform => "platform".to_string(),
        }
    }
}

/// An append-only record of who did what to which tenant or partner (or to the platform).
/// Nothing in the API changes or deletes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// `tenant:<id>`, `partner:<id>` or `platform`.
    pub scope: String,
    /// Unique within the scope; sorts by time (`<unix ms, zero-padded>#<random>`).
    pub id: String,
    pub actor: UserId,
    /// What happened, e.g. `tenant.updated`.
    pub action: String,
    /// The tenant it concerns, if any (also set for partner actions on one tenant).
    pub tenant: Option<TenantId>,
    /// The partner it concerns, if any.
    pub partner: Option<PartnerId>,
    /// A small JSON object: the changed fields before and after (never secrets).
    pub details: String,
    /// The request that made the change.
    pub request_id: String,
    pub at: i64,
}

impl AuditEntry {
    pub fn new(
        target: AuditTarget,
        actor: UserId,
        action: &str,
        details: serde_json::Value,
        at_ms: i64,
        request_id: &str,
    ) -> Self {
        let (tenant, partner) = match &target {
            AuditTarget::Tenant(t) => (Some(t.clone()), None),
            AuditTarget::Partner(p) => (None, Some(p.clone())),
            AuditTarget::Platform => (None, None),
        };
        AuditEntry {
            scope: target.scope(),
            id: format!("{at_ms:015}#{}", crate::access::opaque::random_id()),
            actor,
            action: action.to_string(),
            tenant,
            partner,
            details: details.to_string(),
            request_id: request_id.to_string(),
            at: at_ms / 1000,
        }
    }

    /// Also names `partner` (a tenant entry about a partner's tenant).
    pub fn with_partner(mut self, partner: Option<PartnerId>) -> Self {
        if self.partner.is_none() {
            self.partner = partner;
        }
        self
    }
}

/// An event to publish after the commit (the outbox): stored with the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique; a second event with the same id refuses the commit.
    pub id: String,
    /// e.g. `TenantCreated`.
    pub kind: String,
    /// The event's JSON body.
    pub detail: String,
    pub created_at: i64,
}

/// One change of a commit, with its condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Stores a new tenant and claims its slug; refused if either exists.
    CreateTenant(Tenant),
    /// Writes the tenant's mutable fields (name, plan, domains, billing info, partner, status,
    /// provisioning, updated_at) and its new `version`; refused unless the stored version is
    /// `expect_version` (so a concurrent change is never overwritten).
    UpdateTenant { tenant: Tenant, expect_version: u64 },
    /// Stores a new user and claims their email; refused if either exists. An operator
    /// (`Account::operator_weight`) also counts towards the platform's operators.
    CreateUser(User),
    /// Changes one user's account; refused (`Refusal::UserMoved`) unless the user exists with
    /// the status and flag of `before`. When the edit changes the user's operator weight, the
    /// platform's operator count moves in the same transaction, and a decrease that would leave
    /// no operator is refused (`Refusal::LastOperator`).
    UpdateUser {
        user: UserId,
        before: Account,
        edit: UserEdit,
    },
    /// Removes the user and releases their email's claim; refused (`Refusal::UserMoved`)
    /// unless the user exists with `before`, or (`Refusal::LastOperator`) if they are the last
    /// operator. What else they held (memberships, grants) is removed by changes of its own.
    DeleteUser {
        user: UserId,
        email: Email,
        before: Account,
    },
    /// Adds `user` to `tenant` in `role` at `at` (ms); refused if already a member.
    AddMembership {
        user: UserId,
        tenant: Tenant,
        role: Role,
        at: i64,
    },
    /// Stores `user`'s invitation to a tenant; `replaces`: a live one was read and is replaced
    /// (refused unless it is still there and live), else none was (refused if a live one is
    /// there now), so the seat an invitation takes is taken once (`Refusal::IdTaken`).
    PutInvite {
        user: UserId,
        invite: super::Invite,
        replaces: bool,
    },
    /// Removes `user`'s invitation to `tenant`; refused if there is none (taken already).
    TakeInvite { user: UserId, tenant: TenantId },
    /// Changes a member's role; refused unless they are a member with role `from`.
    ChangeRole {
        user: UserId,
        tenant: TenantId,
        from: Role,
        to: Role,
    },
    /// Removes a member; refused unless they are a member with role `role`.
    RemoveMembership {
        user: UserId,
        tenant: TenantId,
        role: Role,
    },
    /// Adds `by` to the tenant's owner count; refused if the tenant is gone or the count would
    /// fall below 1 (the last owner stays).
    AdjustOwners { tenant: TenantId, by: i64 },
    /// Replaces the tenant's redirect origins (`before`, as read) with `origins` and moves its
    /// version, with the index of origins to tenants (`ORIGIN#`, what a preflight of a mailed-link
    /// route reads) in the same transaction; refused if the tenant does not exist or its origins
    /// are no longer `before`.
    SetRedirectOrigins {
        tenant: TenantId,
        before: Vec<RedirectOrigin>,
        origins: Vec<RedirectOrigin>,
    },
    /// Stores a new partner and claims its slug; refused if either exists.
    CreatePartner(Partner),
    /// Writes the partner's mutable fields and new `version`; refused unless the stored
    /// version is `expect_version`.
    UpdatePartner {
        partner: Partner,
        expect_version: u64,
    },
    /// Adds to the partner's per-status tenant counts, and `live` to its count of tenants not
    /// deleted; refused if the partner does not exist, or, with `require_active`, is not active
    /// (a terminated partner takes no new tenants), or, with a `cap`, already has that many
    /// live tenants (the quota a partner admin creates within).
    PartnerCounts {
        partner: PartnerId,
        deltas: Vec<(TenantStatus, i64)>,
        live: i64,
        require_active: bool,
        cap: Option<i64>,
    },
    /// Makes `user` an admin of `partner`; refused if they already are.
    GrantPartnerAdmin { user: UserId, partner: PartnerId },
    /// Removes `user` as an admin of `partner`; refused if they are not one.
    RevokePartnerAdmin { user: UserId, partner: PartnerId },
    /// Registers a tenant database; refused if its id is taken.
    PutDatabase(super::DatabaseRecord),
    /// Removes a database registration; refused unless it exists and belongs to `tenant`.
    DeleteDatabase {
        id: crate::domain::DatabaseId,
        tenant: TenantId,
    },
    /// Appends an audit entry; refused if its id is taken.
    Audit(AuditEntry),
    /// Adds each `(name, by)` to the counters of `scope` (starting from 0). One change per
    /// scope: a transaction may write an item only once.
    Count {
        scope: String,
        deltas: Vec<(String, i64)>,
    },
    /// Adds `by` to the quota counter `name` of `scope` (an item of its own, `QUOTA#<scope>`,
    /// apart from `Count`'s statistics), held to `cap`: an increase is refused
    /// (`Refusal::QuotaReached`) when the counter is at `cap` already, a decrease when it would
    /// take the counter below zero (or it was never counted). One change per scope.
    Quota {
        scope: String,
        name: String,
        by: i64,
        cap: i64,
    },
    /// Stores a plan of the catalogue (name, status, entitlements, features, version; never
    /// its tenant count); refused (`Refusal::VersionMoved`) unless the stored version is
    /// `expect_version`, where 0 means not stored yet (a new plan, or a built-in plan edited
    /// the first time).
    SavePlan { plan: Plan, expect_version: u64 },
    /// Removes a plan from the catalogue; refused (`Refusal::PlanInUse`) unless it is stored
    /// and no tenant is counted on it.
    DeletePlan { id: PlanId },
    /// Moves a plan's tenant count by `by` (a tenant put on it, or taken off). An increase is
    /// refused (`Refusal::PlanClosed`) unless the plan is active: retiring or deleting a plan
    /// and putting a tenant on it cannot both pass. A built-in plan not stored yet is stored
    /// as `plan` (its seed) by the same write.
    UsePlan { plan: Plan, by: i64 },
    /// One object of a tenant's storage moves from `before` (as the ledger held it; `None`:
    /// never seen) to `after`, as an S3 notification reported it, with the tenant's stored
    /// bytes and objects (`QUOTA#tenant:<id>`, counters `stored_bytes`, `stored_objects`,
    /// `storage_moves`) moved by the difference in the same transaction. Refused
    /// (`Refusal::ObjectMoved`) unless the ledger still holds `before`: a notification is
    /// counted once, however often it is delivered.
    RecordObject {
        tenant: TenantId,
        /// The SHA-256 of the object's key (keys can be longer than a sort key may be).
        key: String,
        before: Option<super::ObjectMark>,
        after: super::ObjectMark,
    },
    /// Sets counters of `scope`'s quota item to what a recount found: each `(name, read, to)`;
    /// refused (`Refusal::QuotaMoved`) unless each counter is still what was read before the
    /// recount (`None`: never counted).
    SetQuotas {
        scope: String,
        values: Vec<(String, Option<i64>, i64)>,
    },
    /// Stores a feature flag (its whole record, overrides included); refused
    /// (`Refusal::VersionMoved`) unless the stored version is `expect_version` (0: not stored).
    SaveFlag {
        flag: crate::domain::flag::Flag,
        expect_version: u64,
    },
    /// Removes a flag; refused (`Refusal::VersionMoved`) unless it is stored at
    /// `expect_version`.
    DeleteFlag {
        key: crate::domain::flag::FlagKey,
        expect_version: u64,
    },
    /// Puts the flag on the kill list (`killed`) or takes it off: the one small item every
    /// evaluation reads, so a kill reaches warm instances before their catalogue is read again.
    KillList {
        key: crate::domain::flag::FlagKey,
        killed: bool,
    },
    /// Stores an operator's request for write access as a tenant's user; refused if its id is
    /// taken.
    PutApproval(crate::domain::impersonation::Approval),
    /// Moves an approval from `from` to `to` at `at`, now lasting until `expires_at`; `by`,
    /// the owner who decided (`None` for its use, which keeps who decided). Refused
    /// (`Refusal::ApprovalMoved`) unless it is still `from` and has not lapsed at `at`: an
    /// approval is decided once and used once.
    DecideApproval {
        id: String,
        from: crate::domain::impersonation::ApprovalStatus,
        to: crate::domain::impersonation::ApprovalStatus,
        by: Option<UserId>,
        at: i64,
        expires_at: i64,
    },
    /// Records a started impersonation until it ends (`IMPERSONATIONS`, by expiry); refused if
    /// its id is taken.
    OpenImpersonation(crate::domain::impersonation::Open),
    /// Removes a started impersonation's record: it ended (stopped, or expired and recorded by
    /// the reconcile); refused (`Refusal::ImpersonationClosed`) if it is gone, so an end is
    /// recorded once.
    CloseImpersonation { id: String, expires_at: i64 },
    /// Puts an impersonation on the revocation list until its token would have expired;
    /// refused (`Refusal::IdTaken`) if it is there already (an end is recorded once).
    RevokeImpersonation { id: String, expires_at: i64 },
    /// Stores an outgoing event; refused if its id is taken.
    Outbox(OutboxEvent),
    /// Stores a requested email change (its token's hash); refused if the hash is taken.
    PutEmailChange(super::EmailChange),
    /// Moves `user` from email `from` to `to`: spends the change's token (refused,
    /// `Refusal::TokenGone`, unless it is there and live at `now`), claims `to` (refused,
    /// `Refusal::EmailTaken`, if someone holds it), releases `from` and writes the user's
    /// email (refused, `Refusal::UserMoved`, unless it is still `from` and the session epoch is
    /// still `session_epoch`), marked verified, with reset links dead. The
    /// new claim carries `password_hash`, the copy sign-in starts on.
    ChangeEmail {
        hash: String,
        now: i64,
        user: UserId,
        from: Email,
        to: Email,
        /// The session epoch the change was asked under (the user update is conditioned on it).
        session_epoch: u64,
        password_hash: String,
    },
    /// Sets the copy of the password hash an email's claim keeps for sign-in; refused
    /// (`Refusal::UserMoved`) unless the claim is `user`'s.
    ClaimHash {
        email: Email,
        user: UserId,
        hash: String,
    },
    /// Ends one session (its refresh tokens stop working); refused (`Refusal::SessionGone`)
    /// unless it exists and is `user`'s.
    RevokeSession { session_id: String, user: UserId },
    /// Stores a pending TOTP factor (replacing a pending one); refused
    /// (`Refusal::FactorExists`) if a confirmed one exists.
    PutTotp {
        user: UserId,
        sealed: String,
        at: i64,
    },
    /// Confirms the pending TOTP factor `sealed` (the one whose code was checked) with the step
    /// of its first code; refused (`Refusal::FactorMoved`) unless that one is still pending.
    ConfirmTotp {
        user: UserId,
        sealed: String,
        step: u64,
    },
    /// Accepts a TOTP code of `step`; refused (`Refusal::CodeUsed`) unless the factor is
    /// confirmed and its last accepted step is earlier (a code is accepted once).
    UseTotp { user: UserId, step: u64 },
    /// Replaces the user's recovery codes (their hashes).
    PutRecoveryCodes { user: UserId, hashes: Vec<String> },
    /// Spends one recovery code; refused (`Refusal::CodeUsed`) unless it is unused.
    UseRecoveryCode { user: UserId, hash: String },
    /// Removes the user's TOTP factor (if `totp`), recovery codes (if `recovery`) and the
    /// passkeys listed (whether or not they exist). The user's factor count moves with a
    /// `UserEdit::factors` in the same commit.
    RemoveFactors {
        user: UserId,
        totp: bool,
        recovery: bool,
        passkeys: Vec<String>,
    },
    /// Starts a passkey registration (replacing one in progress).
    PutPendingPasskey {
        user: UserId,
        pending: super::PendingPasskey,
    },
    /// Stores a registered passkey and spends the registration it finishes: refused
    /// (`Refusal::ChallengeGone`) unless that registration is still the pending one and live at
    /// `now`, or (`Refusal::FactorExists`) if the credential is on the account already.
    AddPasskey {
        user: UserId,
        passkey: super::Passkey,
        pending_state: String,
        now: i64,
    },
    /// Records a passkey's use: refused (`Refusal::CodeUsed`) unless its state is still
    /// `before` (two uses at once cannot both move the counter).
    UsePasskey {
        user: UserId,
        id: String,
        before: String,
        after: String,
        at: i64,
    },
    /// Renames a passkey; refused (`Refusal::FactorMoved`) if it is gone.
    RenamePasskey {
        user: UserId,
        id: String,
        name: String,
    },
    /// Keeps a passkey assertion's server state on a sign-in challenge; refused
    /// (`Refusal::ChallengeGone`) unless the challenge is live at `now`.
    ChallengePasskey {
        hash: String,
        state: String,
        now: i64,
    },
    /// Stores a sign-in's second-factor challenge; refused if its hash is taken.
    PutChallenge(super::MfaChallenge),
    /// Spends a challenge; refused (`Refusal::ChallengeGone`) unless it exists and is live at
    /// `now`.
    SpendChallenge { hash: String, now: i64 },
}

/// What a `Change::UpdateUser` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEdit {
    /// The new status and flag.
    pub account: Option<Account>,
    /// The new display name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// Ends every session of the user (moves the session epoch): refresh tokens and access
    /// tokens alike stop working at once.
    pub end_sessions: bool,
    /// The user's confirmed factors move from the first to the second (refused unless they
    /// are still the first).
    pub factors: Option<(crate::domain::Factors, crate::domain::Factors)>,
    /// Refuses the edit unless the session epoch is still this (a password change must not
    /// overwrite a reset that happened meanwhile).
    pub expect_epoch: Option<u64>,
    /// A new password hash (its copy on the email's claim is `Change::ClaimHash`).
    pub password_hash: Option<String>,
}

impl Change {
    /// How this change moves the platform's operator count.
    pub fn operator_delta(&self) -> i64 {
        match self {
            Change::CreateUser(u) => u.account().operator_weight(),
            Change::UpdateUser { before, edit, .. } => {
                edit.account.unwrap_or(*before).operator_weight() - before.operator_weight()
            }
            Change::DeleteUser { before, .. } => -before.operator_weight(),
            _ => 0,
        }
    }

    /// What it means when the `index`-th of the `items` store items this change writes was
    /// refused: the operator count comes first where a change moves it (creation last).
    pub fn item_refusal(&self, index: usize, items: usize) -> Refusal {
        match self {
            // Its items: the token, the new claim, the old claim, the user.
            Change::ChangeEmail { .. } => match index {
                0 => Refusal::TokenGone,
                1 => Refusal::EmailTaken,
                _ => Refusal::UserMoved,
            },
            Change::UpdateUser { .. } | Change::DeleteUser { .. } => {
                if index == 0 && self.operator_delta() < 0 {
                    Refusal::LastOperator
                } else {
                    Refusal::UserMoved
                }
            }
            _ => self.refusal(items > 1 && index == 0),
        }
    }
}

/// The counter scope of one tenant's quotas (`Change::Quota`, `CounterStore::counters`).
pub fn tenant_scope(tenant: &TenantId) -> String {
    format!("tenant:{tenant}")
}

/// The counter of a tenant's registered databases in its scope.
pub const DATABASES_COUNT: &str = "databases";
/// The counter of a tenant's seats (members and pending invitations) in its scope.
pub const SEATS_COUNT: &str = "seats";
/// The counters of a tenant's storage in its scope (`Change::RecordObject`), and how many
/// times they moved (what a recount is conditioned on).
pub const STORED_BYTES: &str = "stored_bytes";
pub const STORED_OBJECTS: &str = "stored_objects";
pub const STORAGE_MOVES: &str = "storage_moves";
/// When the storage counters last moved (Unix seconds): a recount waits for a quiet spell.
pub const STORAGE_AT: &str = "storage_at";

/// The platform-wide counter scope of tenants by status.
pub const TENANT_COUNTS: &str = "tenants";

impl Change {
    /// The key (partition key) of the main item this change writes: what a refusal names.
    /// A tenant's or partner's creation may also be refused by its slug claim
    /// (`SLUG#<slug>`, `PSLUG#<slug>`), a user's by the email claim (`EMAIL#<email>`).
    pub fn key(&self) -> String {
        match self {
            Change::CreateTenant(t) => format!("TENANT#{}", t.id),
            Change::UpdateTenant { tenant, .. } => format!("TENANT#{}", tenant.id),
            Change::CreateUser(u) => format!("USER#{}", u.id),
            Change::UpdateUser { user, .. } | Change::DeleteUser { user, .. } => {
                format!("USER#{user}")
            }
            Change::AddMembership { user, .. }
            | Change::PutInvite { user, .. }
            | Change::TakeInvite { user, .. }
            | Change::ChangeRole { user, .. }
            | Change::RemoveMembership { user, .. }
            | Change::GrantPartnerAdmin { user, .. }
            | Change::RevokePartnerAdmin { user, .. } => format!("USER#{user}"),
            Change::AdjustOwners { tenant, .. } | Change::SetRedirectOrigins { tenant, .. } => {
                format!("TENANT#{tenant}")
            }
            Change::CreatePartner(p) => format!("PARTNER#{}", p.id),
            Change::UpdatePartner { partner, .. } => format!("PARTNER#{}", partner.id),
            Change::PartnerCounts { partner, .. } => format!("PARTNER#{partner}"),
            Change::PutDatabase(d) => format!("DB#{}", d.id),
            Change::DeleteDatabase { id, .. } => format!("DB#{id}"),
            Change::Audit(a) => format!("AUDIT#{}", a.scope),
            Change::Count { scope, .. } => format!("COUNT#{scope}"),
            Change::Quota { scope, .. } | Change::SetQuotas { scope, .. } => {
                format!("QUOTA#{scope}")
            }
            Change::SavePlan { plan, .. } | Change::UsePlan { plan, .. } => {
                format!("PLAN#{}", plan.id)
            }
            Change::DeletePlan { id } => format!("PLAN#{id}"),
            Change::RecordObject { tenant, key, .. } => format!("OBJ#{tenant}#{key}"),
            Change::SaveFlag { .. } | Change::DeleteFlag { .. } | Change::KillList { .. } => {
                "FLAGS".to_string()
            }
            Change::PutApproval(a) => format!("IMPAPPR#{}", a.id),
            Change::DecideApproval { id, .. } => format!("IMPAPPR#{id}"),
            Change::RevokeImpersonation { .. } => "REVOKED".to_string(),
            Change::OpenImpersonation(_) | Change::CloseImpersonation { .. } => {
                "IMPERSONATIONS".to_string()
            }
            Change::Outbox(e) => format!("OUTBOX#{}", e.id),
            Change::RevokeSession { session_id, .. } => format!("SESSION#{session_id}"),
            Change::ClaimHash { email, .. } => format!("EMAIL#{email}"),
            Change::PutEmailChange(c) => format!("EMAILCHG#{}", c.hash),
            Change::ChangeEmail { user, .. } => format!("USER#{user}"),
            Change::PutTotp { user, .. }
            | Change::ConfirmTotp { user, .. }
            | Change::UseTotp { user, .. }
            | Change::PutRecoveryCodes { user, .. }
            | Change::UseRecoveryCode { user, .. }
            | Change::RemoveFactors { user, .. }
            | Change::PutPendingPasskey { user, .. }
            | Change::AddPasskey { user, .. }
            | Change::UsePasskey { user, .. }
            | Change::RenamePasskey { user, .. } => format!("USER#{user}"),
            Change::ChallengePasskey { hash, .. } => format!("MFACHAL#{hash}"),
            Change::PutChallenge(c) => format!("MFACHAL#{}", c.hash),
            Change::SpendChallenge { hash, .. } => format!("MFACHAL#{hash}"),
        }
    }
}

/// The counter changes that keep tenant counts right when a tenant goes from `before` to
/// `after` (status and partner; `None` for "did not exist"): the platform-wide count by
/// status, and each partner's count by status. Moving between partners changes both; a
/// partner gaining a tenant must be active.
pub fn tenant_count_changes(
    before: Option<(TenantStatus, Option<&PartnerId>)>,
    after: Option<(TenantStatus, Option<&PartnerId>)>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let before_status = before.map(|b| b.0);
    let after_status = after.map(|a| a.0);
    if before_status != after_status {
        let deltas: Vec<(String, i64)> = [(before_status, -1), (after_status, 1)]
            .into_iter()
            .filter_map(|(status, by)| status.map(|s| (s.as_str().to_string(), by)))
            .collect();
        out.push(Change::Count {
            scope: TENANT_COUNTS.to_string(),
            deltas,
        });
    }
    let live = |status: Option<TenantStatus>| {
        i64::from(status.is_some_and(|s| s != TenantStatus::Deleted))
    };
    let before_partner = before.and_then(|b| b.1);
    let after_partner = after.and_then(|a| a.1);
    if before_partner == after_partner {
        if let (Some(p), true) = (after_partner, before_status != after_status) {
            let mut deltas = Vec::new();
            if let Some(s) = before_status {
                deltas.push((s, -1));
            }
            if let Some(s) = after_status {
                deltas.push((s, 1));
            }
            out.push(Change::PartnerCounts {
                partner: p.clone(),
                deltas,
                live: live(after_status) - live(before_status),
                require_active: before.is_none(),
                cap: None,
            });
        }
    } else {
        if let (Some(p), Some(s)) = (before_partner, before_status) {
            out.push(Change::PartnerCounts {
                partner: p.clone(),
                deltas: vec![(s, -1)],
                live: -live(before_status),
                require_active: false,
                cap: None,
            });
        }
        if let (Some(p), Some(s)) = (after_partner, after_status) {
            out.push(Change::PartnerCounts {
                partner: p.clone(),
                deltas: vec![(s, 1)],
                live: live(after_status),
                require_active: true,
                cap: None,
            });
        }
    }
    out
}

/// The name of a partner's count of live (not deleted) tenants in the table (`count_live`),
/// beside its counts by status: the partner admins' quota is a condition on it.
pub const LIVE_COUNT: &str = "live";

/// `changes` with the partner gaining a tenant held to `cap` live tenants (a partner admin's
/// quota): the commit is refused (`Refusal::PartnerInactive`, the partner's one refusal) if the
/// partner has that many already.
pub fn with_partner_cap(mut changes: Vec<Change>, cap: i64) -> Vec<Change> {
    for c in &mut changes {
        if let Change::PartnerCounts {
            require_active: true,
            cap: slot,
            live: 1,
            ..
        } = c
        {
            *slot = Some(cap);
        }
    }
    changes
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Conditions failed: what each refusing change's condition meant. Nothing was written.
    #[error("commit refused: {reasons:?}")]
    Refused { reasons: Vec<Refusal> },
    #[error("a commit holds at most {MAX_CHANGES} changes")]
    TooMany,
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

/// What a refused commit meant: the failed condition of one change, named for the domain, so
/// that handlers decide their answer without knowing the store's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A new tenant's or partner's slug is claimed by another.
    SlugTaken,
    /// A new user's email is claimed by another.
    EmailTaken,
    /// A new record's id is taken (tenant, user, partner, database, audit entry, event).
    IdTaken,
    /// The tenant or partner is no longer at the version the change read (or is gone).
    VersionMoved,
    /// The user is already a member of the tenant.
    AlreadyMember,
    /// The user is no longer a member in the role the change read.
    MembershipMoved,
    /// The change would leave the tenant without an owner (or the tenant is gone).
    LastOwner,
    /// The tenant is gone.
    TenantGone,
    /// The partner is gone, or is not active where the change needs an active one.
    PartnerInactive,
    /// The user already administers the partner.
    AlreadyPartnerAdmin,
    /// The user does not administer the partner.
    NotPartnerAdmin,
    /// The database registration is gone, or belongs to another tenant.
    DatabaseGone,
    /// The invitation was accepted or declined already (or never was).
    InviteGone,
    /// A counter held to a cap (`Change::Quota`) is at it.
    QuotaReached,
    /// The user is gone, or their status or operator flag is no longer what the change read.
    UserMoved,
    /// The change would leave the platform without an operator.
    LastOperator,
    /// The session is gone (expired away) or is another user's.
    SessionGone,
    /// The user has a confirmed factor of this kind already.
    FactorExists,
    /// The factor is not in the state the change read (confirmed meanwhile, or removed).
    FactorMoved,
    /// The one-time code was used already (or never was one).
    CodeUsed,
    /// The sign-in challenge is spent or expired.
    ChallengeGone,
    /// A mailed token is spent or expired.
    TokenGone,
    /// The plan has tenants on it (or is gone).
    PlanInUse,
    /// The plan is retired or gone: no tenant may be put on it.
    PlanClosed,
    /// The storage ledger's entry for the object moved since it was read.
    ObjectMoved,
    /// A quota counter moved while it was being recounted.
    QuotaMoved,
    /// The impersonation approval was decided, used or lapsed meanwhile (or never was).
    ApprovalMoved,
    /// The impersonation's end was recorded already.
    ImpersonationClosed,
}

impl Change {
    /// What it means when this change's condition fails; `claim` when it is the change's claim
    /// of a unique name (a slug, an email) that failed rather than its own record.
    pub fn refusal(&self, claim: bool) -> Refusal {
        match self {
            Change::CreateTenant(_) | Change::CreatePartner(_) if claim => Refusal::SlugTaken,
            Change::CreateUser(_) if claim => Refusal::EmailTaken,
            Change::CreateTenant(_)
            | Change::CreateUser(_)
            | Change::CreatePartner(_)
            | Change::PutDatabase(_)
            | Change::Audit(_)
            | Change::Outbox(_) => Refusal::IdTaken,
            Change::UpdateTenant { .. } | Change::UpdatePartner { .. } => Refusal::VersionMoved,
            Change::AddMembership { .. } => Refusal::AlreadyMember,
            // A live invitation appeared, or the one read went.
            Change::PutInvite { .. } => Refusal::IdTaken,
            Change::TakeInvite { .. } => Refusal::InviteGone,
            Change::ChangeRole { .. } | Change::RemoveMembership { .. } => Refusal::MembershipMoved,
            Change::AdjustOwners { .. } => Refusal::LastOwner,
            Change::SetRedirectOrigins { .. } => Refusal::TenantGone,
            Change::PartnerCounts { .. } => Refusal::PartnerInactive,
            Change::GrantPartnerAdmin { .. } => Refusal::AlreadyPartnerAdmin,
            Change::RevokePartnerAdmin { .. } => Refusal::NotPartnerAdmin,
            Change::DeleteDatabase { .. } => Refusal::DatabaseGone,
            // Counters carry no condition; a refusal is never theirs.
            Change::Count { .. } => Refusal::VersionMoved,
            Change::Quota { .. } => Refusal::QuotaReached,
            Change::SetQuotas { .. } => Refusal::QuotaMoved,
            Change::SavePlan { .. } => Refusal::VersionMoved,
            Change::DeletePlan { .. } => Refusal::PlanInUse,
            Change::UsePlan { .. } => Refusal::PlanClosed,
            Change::RecordObject { .. } => Refusal::ObjectMoved,
            Change::SaveFlag { .. } | Change::DeleteFlag { .. } => Refusal::VersionMoved,
            // A set's add or remove carries no condition.
            Change::KillList { .. } => Refusal::VersionMoved,
            Change::PutApproval(_) | Change::RevokeImpersonation { .. } => Refusal::IdTaken,
            Change::DecideApproval { .. } => Refusal::ApprovalMoved,
            Change::OpenImpersonation(_) => Refusal::IdTaken,
            Change::CloseImpersonation { .. } => Refusal::ImpersonationClosed,

            Change::UpdateUser { .. } | Change::DeleteUser { .. } => Refusal::UserMoved,
            Change::RevokeSession { .. } => Refusal::SessionGone,
            Change::ClaimHash { .. } => Refusal::UserMoved,
            Change::PutEmailChange(_) => Refusal::IdTaken,
            Change::ChangeEmail { .. } => Refusal::UserMoved,
            Change::PutTotp { .. } => Refusal::FactorExists,
            Change::ConfirmTotp { .. } | Change::RemoveFactors { .. } => Refusal::FactorMoved,
            Change::UseTotp { .. } | Change::UseRecoveryCode { .. } => Refusal::CodeUsed,
            Change::PutRecoveryCodes { .. } => Refusal::FactorMoved,
            Change::PutChallenge(_) => Refusal::IdTaken,
            Change::SpendChallenge { .. } | Change::ChallengePasskey { .. } => {
                Refusal::ChallengeGone
            }
            Change::PutPendingPasskey { .. } => Refusal::IdTaken,
            Change::AddPasskey { .. } if claim => Refusal::ChallengeGone,
            Change::AddPasskey { .. } => Refusal::FactorExists,
            Change::UsePasskey { .. } => Refusal::CodeUsed,
            Change::RenamePasskey { .. } => Refusal::FactorMoved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(changes: &[Change]) -> Vec<(String, String, i64)> {
        let mut out = Vec::new();
        for c in changes {
            match c {
                Change::Count { scope, deltas } => {
                    for (name, by) in deltas {
                        out.push((scope.clone(), name.clone(), *by));
                    }
                }
                Change::PartnerCounts {
                    partner, deltas, ..
                } => {
                    for (s, by) in deltas {
                        out.push((format!("partner:{partner}"), s.as_str().to_string(), *by));
                    }
                }
                _ => panic!("unexpected change {c:?}"),
            }
        }
        out
    }

    fn live(changes: &[Change]) -> Vec<i64> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::PartnerCounts { live, .. } => Some(*live),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_partners_live_count_moves_with_deletion_and_restore_and_moves() {
        let p = PartnerId::new_random();
        let q = PartnerId::new_random();
        use TenantStatus::*;
        assert_eq!(
            live(&tenant_count_changes(None, Some((Provisioning, Some(&p))))),
            [1]
        );
        assert_eq!(
            live(&tenant_count_changes(
                Some((Active, Some(&p))),
                Some((Suspended, Some(&p)))
            )),
            [0]
        );
        assert_eq!(
            live(&tenant_count_changes(
                Some((Suspended, Some(&p))),
                Some((Deleted, Some(&p)))
            )),
            [-1]
        );
        assert_eq!(
            live(&tenant_count_changes(
                Some((Deleted, Some(&p))),
                Some((Provisioning, Some(&p)))
            )),
            [1]
        );
        assert_eq!(
            live(&tenant_count_changes(
                Some((Active, Some(&p))),
                Some((Active, Some(&q)))
            )),
            [-1, 1]
        );
        assert_eq!(
            live(&tenant_count_changes(
                Some((Deleted, Some(&p))),
                Some((Deleted, None))
            )),
            [0]
        );
        // The cap holds only the partner gaining a live tenant.
        let capped = with_partner_cap(
            tenant_count_changes(Some((Active, Some(&p))), Some((Active, Some(&q)))),
            5,
        );
        let caps: Vec<Option<i64>> = capped
            .iter()
            .filter_map(|c| match c {
                Change::PartnerCounts { cap, .. } => Some(*cap),
                _ => None,
            })
            .collect();
        assert_eq!(caps, [None, Some(5)]);
    }

    #[test]
    fn count_changes_follow_status_and_partner_moves() {
        let p = PartnerId::new_random();
        let q = PartnerId::new_random();
        use TenantStatus::*;
        // Created under a partner: both counts, and the partner must be active.
        let created = tenant_count_changes(None, Some((Provisioning, Some(&p))));
        assert_eq!(
            counts(&created),
            vec![
                ("tenants".into(), "provisioning".into(), 1),
                (format!("partner:{p}"), "provisioning".into(), 1)
            ]
        );
        assert!(matches!(
            created[1],
            Change::PartnerCounts {
                require_active: true,
                ..
            }
        ));
        // A status change under the same partner: one partner item, two deltas.
        let suspended = tenant_count_changes(Some((Active, Some(&p))), Some((Suspended, Some(&p))));
        // One change per item: a transaction writes an item only once.
        assert_eq!(suspended.len(), 2);
        assert_eq!(counts(&suspended).len(), 4);
        assert!(matches!(
            suspended[1],
            Change::PartnerCounts {
                require_active: false,
                ..
            }
        ));
        // A move between partners, same status: only the partners' counts.
        let moved = tenant_count_changes(Some((Active, Some(&p))), Some((Active, Some(&q))));
        assert_eq!(
            counts(&moved),
            vec![
                (format!("partner:{p}"), "active".into(), -1),
                (format!("partner:{q}"), "active".into(), 1)
            ]
        );
        // Nothing changes: nothing to count.
        assert!(tenant_count_changes(Some((Active, None)), Some((Active, None))).is_empty());
        // Detached: the old partner loses it.
        assert_eq!(
            counts(&tenant_count_changes(
                Some((Active, Some(&p))),
                Some((Active, None))
            )),
            vec![(format!("partner:{p}"), "active".into(), -1)]
        );
    }
}
