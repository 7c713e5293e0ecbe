//! The tenant gate: the one place that decides who may touch a tenant. A route names what it
//! needs ([`Need`]) and what it does ([`Intent`]); [`tenant`] (a `{slug}` in the path) or
//! [`database`] (a `{db_id}`) reads what the caller is to the tenant and answers with a
//! [`Granted`] proof or the refusal. Handlers take the proof as an argument, so a handler that
//! did not ask cannot compile; nothing else compares a tenant's status to decide access.
//!
//! | need | who passes | deleted tenant | suspended tenant |
//! |---|---|---|---|
//! | `Operator` | operators | operators only (`Lifecycle` routes act on it; a `Write` is 409 `INVALID_STATE`) | operators (and partner admins get as far as 403) |
//! | `Manager` | operators, owners, admins | operators only; an operator's `Write` is 409 `INVALID_STATE` | operators only: owners and admins (partner admins too) get 403 `TENANT_SUSPENDED` |
//! | `ManagerOrPartner` | managers, admins of the tenant's partner | as `Manager` | operators and partner admins; members get 403 `TENANT_SUSPENDED` |
//! | `Member` | members in any role (operators and partner admins are not members unless added) | nobody: 404 | nobody: 403 `TENANT_SUSPENDED` |
//!
//! In order: a caller who may not know the tenant exists (no role, not its partner's admin, not
//! an operator) gets 404 `TENANT_NOT_FOUND`, as does everyone but an operator for a deleted
//! tenant; then the suspension; then the need (403 `FORBIDDEN`); then an operator's write to a
//! deleted tenant. A database id the caller is not a member for is 404 `DATABASE_NOT_FOUND`,
//! whoever asks: an id says nothing about a tenant.
//!
//! Decided on purpose where the five copies this replaces differed (`make test` proves each):
//! a partner admin who is also an owner or admin no longer manages a suspended tenant's members,
//! origins or audit (only its record, as a partner admin); a platform admin who is also a
//! member no longer queries a suspended or deleted tenant's databases with an operator token;
//! a member asking to reconcile a deleted tenant gets 404, not 403; operators may read a
//! deleted tenant but not change its record, members, origins, databases or partner (409
//! `INVALID_STATE`: restore it first), where before some routes allowed it and others said 404.

use crate::access::caller::{
    tenant_access, tenant_not_found, tenant_suspended, Caller, TenantAccess,
};
use crate::domain::tenant::{Tenant, TenantSlug, TenantStatus};
use crate::domain::DatabaseId;
use crate::http::error::{ApiError, ErrorCode};
use crate::store::{DatabaseRecord, Store};

/// Who a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Platform operators: a tenant's lifecycle, its partner, its reconcile.
    Operator,
    /// Operators and the tenant's owners and admins.
    Manager,
    /// Managers, and admins of the partner the tenant is attached to.
    ManagerOrPartner,
    /// The tenant's members, in any role: its files and its databases.
    Member,
    /// The tenant's members in any role, the admins of its partner, and operators: what the
    /// tenant is sold and uses (its plan's usage).
    Viewer,
}

/// What a route does to the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Read,
    /// Changes the tenant or what belongs to it.
    Write,
    /// Moves the tenant through its lifecycle (delete, restore, suspend, resume, reconcile):
    /// the route decides which statuses it acts on.
    Lifecycle,
}

/// Proof that the caller may do what a route needs to this tenant. Only this module makes one.
#[derive(Debug, Clone)]
pub struct Granted {
    tenant: Tenant,
    access: TenantAccess,
}

impl Granted {
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn into_tenant(self) -> Tenant {
        self.tenant
    }

    /// What the caller is to the tenant (operator, partner admin, role).
    pub fn access(&self) -> TenantAccess {
        self.access
    }

    pub fn into_parts(self) -> (Tenant, TenantAccess) {
        (self.tenant, self.access)
    }
}

/// Why the gate refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// 404 `TENANT_NOT_FOUND`: the caller may not know the tenant exists.
    Invisible,
    /// 403 `TENANT_SUSPENDED`.
    Suspended,
    /// 403 `FORBIDDEN`: the caller sees the tenant but the route is not theirs.
    Forbidden,
    /// 409 `INVALID_STATE`: an operator's change to a deleted tenant.
    Deleted,
}

/// The rule, on what is known of the caller and the tenant: pure, so one table tests it.
pub fn decide(
    status: TenantStatus,
    a: TenantAccess,
    need: Need,
    intent: Intent,
) -> Result<(), Denial> {
    let member = a.role.is_some();
    if !a.sees() || (status == TenantStatus::Deleted && (!a.operator || need == Need::Member)) {
        return Err(Denial::Invisible);
    }
    if status == TenantStatus::Suspended {
        let exempt = match need {
            Need::Member => false,
            Need::Manager => a.operator,
            Need::ManagerOrPartner | Need::Operator | Need::Viewer => a.operator || a.partner_admin,
        };
        if !exempt {
            return Err(Denial::Suspended);
        }
    }
    let admitted = match need {
        Need::Operator => a.operator,
        Need::Manager => a.manages(),
        Need::ManagerOrPartner => a.manages() || a.partner_admin,
        Need::Member => member,
        Need::Viewer => member || a.operator || a.partner_admin,
    };
    if !admitted {
        return Err(Denial::Forbidden);
    }
    if status == TenantStatus::Deleted && intent == Intent::Write {
        return Err(Denial::Deleted);
    }
    Ok(())
}

fn refusal(denial: Denial, need: Need) -> ApiError {
    match denial {
        Denial::Invisible => tenant_not_found(),
        Denial::Suspended => tenant_suspended(),
        Denial::Forbidden => ApiError::refused(
            ErrorCode::Forbidden,
            match need {
                Need::Operator => "only platform operators may do this",
                Need::Manager | Need::ManagerOrPartner => {
                    "only the tenant's owners and admins may do this"
                }
                Need::Member | Need::Viewer => "only the tenant's members may do this",
            },
        ),
        Denial::Deleted => ApiError::refused(
            ErrorCode::InvalidState,
            "the tenant is deleted: restore it first",
        ),
    }
}

async fn admit(
    store: &dyn Store,
    caller: &Caller,
    tenant: Tenant,
    need: Need,
    intent: Intent,
) -> Result<Granted, ApiError> {
    let access = tenant_access(store, caller, &tenant).await?;
    decide(tenant.access_status(), access, need, intent).map_err(|d| refusal(d, need))?;
    Ok(Granted { tenant, access })
}

/// The tenant whose slug is `slug` (the path's `{slug}`), if the caller may do `intent` to it
/// as `need` says.
pub async fn tenant(
    store: &dyn Store,
    caller: &Caller,
    slug: Option<&str>,
    need: Need,
    intent: Intent,
) -> Result<Granted, ApiError> {
    let slug = slug
        .and_then(TenantSlug::parse)
        .ok_or_else(tenant_not_found)?;
    let tenant = store
        .tenant_by_slug(&slug)
        .await?
        .ok_or_else(tenant_not_found)?;
    admit(store, caller, tenant, need, intent).await
}

pub fn database_not_found() -> ApiError {
    ApiError::refused(ErrorCode::DatabaseNotFound, "no such database")
}

/// The database registration `id` (the path's `{db_id}`) and its tenant, for the tenant's
/// members (`Need::Member`). A registration that is gone answers `DatabaseDenied::Gone`, so
/// the caller can let go of what it held for it.
pub async fn database(
    store: &dyn Store,
    caller: &Caller,
    id: Option<&str>,
    intent: Intent,
) -> Result<(Granted, DatabaseRecord), DatabaseDenied> {
    let id = id
        .and_then(DatabaseId::parse)
        .ok_or(DatabaseDenied::Refused(database_not_found()))?;
    let Some(record) = store.database(&id).await? else {
        return Err(DatabaseDenied::Gone(id));
    };
    let tenant = store
        .tenant_by_id(&record.tenant)
        .await?
        .ok_or(DatabaseDenied::Refused(database_not_found()))?;
    let access = tenant_access(store, caller, &tenant).await?;
    if access.role.is_none() {
        // Operators and other tenants' users learn nothing about the id.
        return Err(DatabaseDenied::Refused(database_not_found()));
    }
    decide(tenant.status, access, Need::Member, intent)
        .map_err(|d| DatabaseDenied::Refused(refusal(d, Need::Member)))?;
    Ok((Granted { tenant, access }, record))
}

/// Why [`database`] refused.
#[derive(Debug)]
pub enum DatabaseDenied {
    /// No registration has this id (any more): 404 `DATABASE_NOT_FOUND`.
    Gone(DatabaseId),
    Refused(ApiError),
}

impl From<crate::store::StoreError> for DatabaseDenied {
    fn from(e: crate::store::StoreError) -> Self {
        DatabaseDenied::Refused(e.into())
    }
}

impl From<DatabaseDenied> for ApiError {
    fn from(d: DatabaseDenied) -> Self {
        match d {
            DatabaseDenied::Gone(_) => database_not_found(),
            DatabaseDenied::Refused(e) => e,
        }
    }
}

/// Routes for operators alone that name no tenant (the platform's lists, partners): 403 for
/// everyone else, since there is nothing to hide.
pub fn operator(caller: &Caller) -> Result<(), ApiError> {
    if caller.operator {
        Ok(())
    } else {
        Err(ApiError::refused(
            ErrorCode::Forbidden,
            "only platform operators may do this",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use Denial::*;
    use Intent::*;
    use Need::*;
    use TenantStatus as S;

    /// The callers of the table: what each is to the tenant.
    fn who(name: &str) -> TenantAccess {
        let a = |operator, partner_admin, role| TenantAccess {
            operator,
            partner_admin,
            role,
        };
        match name {
            "operator" => a(true, false, None),
            "partner admin" => a(false, true, None),
            "partner admin + owner" => a(false, true, Some(Role::Owner)),
            "owner" => a(false, false, Some(Role::Owner)),
            "admin" => a(false, false, Some(Role::Admin)),
            "member" => a(false, false, Some(Role::Member)),
            "outsider" => a(false, false, None),
            other => panic!("no caller {other}"),
        }
    }

    /// A need, a caller, and the answer on an active, provisioning, suspended, deleted tenant.
    type Row = (Need, &'static str, [Result<(), Denial>; 4]);

    /// Every need, caller and status, for reads: the whole rule in one table.
    #[test]
    fn the_gate_table() {
        let ok = Ok(());
        #[rustfmt::skip]
        let table: &[Row] = &[
            //                                     active         provisioning   suspended          deleted
            (Operator,         "operator",              [ok,            ok,            ok,                ok]),
            (Operator,         "partner admin",         [Err(Forbidden), Err(Forbidden), Err(Forbidden),  Err(Invisible)]),
            (Operator,         "owner",                 [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (Operator,         "outsider",              [Err(Invisible), Err(Invisible), Err(Invisible),  Err(Invisible)]),
            (Manager,          "operator",              [ok,            ok,            ok,                ok]),
            (Manager,          "owner",                 [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Manager,          "admin",                 [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Manager,          "member",                [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (Manager,          "partner admin",         [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (Manager,          "partner admin + owner", [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Manager,          "outsider",              [Err(Invisible), Err(Invisible), Err(Invisible),  Err(Invisible)]),
            (ManagerOrPartner, "operator",              [ok,            ok,            ok,                ok]),
            (ManagerOrPartner, "partner admin",         [ok,            ok,            ok,                Err(Invisible)]),
            (ManagerOrPartner, "partner admin + owner", [ok,            ok,            ok,                Err(Invisible)]),
            (ManagerOrPartner, "owner",                 [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (ManagerOrPartner, "member",                [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (ManagerOrPartner, "outsider",              [Err(Invisible), Err(Invisible), Err(Invisible),  Err(Invisible)]),
            (Member,           "member",                [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Member,           "owner",                 [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Member,           "operator",              [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (Member,           "partner admin",         [Err(Forbidden), Err(Forbidden), Err(Suspended),  Err(Invisible)]),
            (Member,           "outsider",              [Err(Invisible), Err(Invisible), Err(Invisible),  Err(Invisible)]),
            (Viewer,           "member",                [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Viewer,           "admin",                 [ok,            ok,            Err(Suspended),    Err(Invisible)]),
            (Viewer,           "operator",              [ok,            ok,            ok,                ok]),
            (Viewer,           "partner admin",         [ok,            ok,            ok,                Err(Invisible)]),
            (Viewer,           "outsider",              [Err(Invisible), Err(Invisible), Err(Invisible),  Err(Invisible)]),
        ];
        for (need, caller, expected) in table {
            for (status, want) in [S::Active, S::Provisioning, S::Suspended, S::Deleted]
                .iter()
                .zip(expected)
            {
                assert_eq!(
                    decide(*status, who(caller), *need, Read),
                    *want,
                    "{need:?} by {caller} on a {status:?} tenant"
                );
            }
        }
    }

    #[test]
    fn an_operator_changes_a_deleted_tenant_only_through_its_lifecycle() {
        let op = who("operator");
        for need in [Operator, Manager, ManagerOrPartner] {
            assert_eq!(
                decide(S::Deleted, op, need, Write),
                Err(Denial::Deleted),
                "{need:?}"
            );
            assert_eq!(decide(S::Deleted, op, need, Read), Ok(()), "{need:?}");
            assert_eq!(decide(S::Active, op, need, Write), Ok(()), "{need:?}");
        }
        assert_eq!(decide(S::Deleted, op, Operator, Lifecycle), Ok(()));
    }
}
