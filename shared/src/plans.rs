//! Plans and quotas: the one place that decides which plan a tenant is on, what it may still
//! add, and what it uses. The catalogue is the stored plans plus the built-in ones not stored
//! yet (`crate::domain::plan::BuiltinPlans`). A tenant's usage is its quota counters
//! (`QUOTA#tenant:<id>`): seats and databases are moved in the transactions that add and remove
//! them, each increase conditioned on the plan's limit; stored bytes and objects are moved by the
//! S3 notifications of what really happened (`Change::RecordObject`). The reconcile recounts
//! them from the records when they drift.

use crate::domain::plan::{BuiltinPlans, Plan, PlanId, Quota};
use crate::domain::tenant::Tenant;
use crate::domain::TenantId;
use crate::events::DomainEvent;
use crate::http::error::{ApiError, ErrorCode};
use crate::store::changes::{self, Change};
use crate::store::{Store, StoreError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The catalogue as this deployment sees it.
#[derive(Clone, Copy)]
pub struct Catalogue<'a> {
    pub store: &'a dyn Store,
    pub seeds: BuiltinPlans,
}

impl Catalogue<'_> {
    /// Plan `id`: stored, or a built-in one as seeded; `None` if the catalogue has no such plan.
    pub async fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        Ok(match self.store.stored_plan(id).await? {
            Some(p) => Some(p),
            None => self.seeds.seed(id),
        })
    }

    /// Every plan: the built-in ones first (cheapest first), then the others by id.
    pub async fn all(&self) -> Result<Vec<Plan>, StoreError> {
        let stored = self.store.stored_plans().await?;
        let mut all: Vec<Plan> = self
            .seeds
            .seeds()
            .into_iter()
            .filter(|seed| !stored.iter().any(|p| p.id == seed.id))
            .collect();
        all.extend(stored);
        all.sort_by_key(|p| {
            let rank = crate::domain::plan::BUILTIN_IDS
                .iter()
                .position(|b| *b == p.id.as_str())
                .unwrap_or(crate::domain::plan::BUILTIN_IDS.len());
            (rank, p.id.clone())
        });
        Ok(all)
    }

    /// The plan tenant `t` is on. A plan with tenants cannot be deleted, so it is there; a
    /// tenant whose plan is missing anyway is held to the free plan's seed, and the fault is
    /// logged.
    pub async fn of_tenant(&self, t: &Tenant) -> Result<Plan, StoreError> {
        if let Some(p) = self.plan(&t.plan).await? {
            return Ok(p);
        }
        tracing::error!(tenant = %t.slug, plan = %t.plan, "tenant's plan is not in the catalogue; holding it to the free plan's limits");
        let free = PlanId::free();
        Ok(match self.store.stored_plan(&free).await? {
            Some(p) => p,
            None => self.seeds.seed(&free).unwrap_or_else(unreachable_free),
        })
    }

    /// A plan a tenant may be put on now: in the catalogue (else a 400 on `field`) and active
    /// (else 409 `PLAN_RETIRED`).
    pub async fn open_plan(&self, id: &PlanId, field: &str) -> Result<Plan, ApiError> {
        let plan = self.plan(id).await?.ok_or_else(|| {
            crate::domain::fields::FieldError::new(field, "must be a plan of the catalogue")
        })?;
        if !plan.open() {
            return Err(ApiError::refused(
                ErrorCode::PlanRetired,
                "that plan is retired: no tenant may be put on it",
            ));
        }
        Ok(plan)
    }
}

// The free seed always exists (it is one of `BUILTIN_IDS`); this only satisfies the types.
fn unreachable_free() -> Plan {
    BuiltinPlans::default().seeds().remove(0)
}

/// The changes that move tenant counts when a tenant goes from plan `from` (`None`: a new
/// tenant) to `to` (`None`: purged): the new plan's count is conditioned on it being open.
pub fn plan_moves(from: Option<&Plan>, to: Option<&Plan>) -> Vec<Change> {
    if from.map(|p| &p.id) == to.map(|p| &p.id) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(to) = to {
        out.push(Change::UsePlan {
            plan: to.clone(),
            by: 1,
        });
    }
    if let Some(from) = from {
        out.push(Change::UsePlan {
            plan: from.clone(),
            by: -1,
        });
    }
    out
}

/// The counter a quota is kept in.
pub fn counter(quota: Quota) -> &'static str {
    match quota {
        Quota::Seats => changes::SEATS_COUNT,
        Quota::Databases => changes::DATABASES_COUNT,
        Quota::StoredBytes => changes::STORED_BYTES,
        Quota::StoredObjects => changes::STORED_OBJECTS,
    }
}

/// What a tenant uses, as its counters say (one read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub counters: BTreeMap<String, i64>,
}

impl Usage {
    pub async fn read(store: &dyn Store, tenant: &TenantId) -> Result<Usage, StoreError> {
        Ok(Usage {
            counters: store.quotas(&changes::tenant_scope(tenant)).await?,
        })
    }

    /// How much of `quota` is used; `None` if it was never counted.
    pub fn counted(&self, quota: Quota) -> Option<i64> {
        self.counters.get(counter(quota)).copied()
    }

    /// How much of `quota` is used (0 if never counted).
    pub fn used(&self, quota: Quota) -> i64 {
        self.counted(quota).unwrap_or(0).max(0)
    }

    /// The quotas whose use is above the plan's limit (after a downgrade): nothing more of
    /// them may be added until it is back under.
    pub fn over(&self, plan: &Plan) -> Vec<Quota> {
        Quota::ALL
            .iter()
            .copied()
            .filter(|q| {
                plan.entitlements
                    .limit(*q)
                    .is_some_and(|l| self.used(*q) > l)
            })
            .collect()
    }

    /// The quotas at or above their limit.
    pub fn full(&self, plan: &Plan) -> Vec<Quota> {
        Quota::ALL
            .iter()
            .copied()
            .filter(|q| {
                plan.entitlements
                    .limit(*q)
                    .is_some_and(|l| self.used(*q) >= l)
            })
            .collect()
    }

    /// `GET /tenants/{slug}/usage`: each entitlement with used and limit, and the period (the
    /// calendar month, UTC, that `now` is in).
    pub fn report(&self, tenant: &Tenant, plan: &Plan, now: i64) -> Value {
        let mut usage = serde_json::Map::new();
        for q in Quota::ALL {
            usage.insert(
                q.as_str().into(),
                json!({"used": self.used(*q), "limit": plan.entitlements.limit(*q)}),
            );
        }
        let names = |qs: Vec<Quota>| qs.iter().map(|q| q.as_str()).collect::<Vec<_>>();
        let (start, end) = month_of(now);
        json!({
            "tenant": tenant.slug,
            "plan": {"id": plan.id, "name": plan.name, "status": plan.status},
            "usage": usage,
            "max_upload_bytes": plan.entitlements.max_upload_bytes,
            "features": plan.features,
            "over_quota": names(self.over(plan)),
            "full": names(self.full(plan)),
            "period": {"start": start, "end": end},
            "as_of": now,
        })
    }
}

/// The calendar month (UTC) that Unix second `now` falls in: its first second and the first
/// second of the next month.
pub fn month_of(now: i64) -> (i64, i64) {
    use time::{Date, OffsetDateTime, Time};
    let Ok(at) = OffsetDateTime::from_unix_timestamp(now) else {
        return (now, now);
    };
    let first = |y: i32, m: time::Month| {
        Date::from_calendar_date(y, m, 1)
            .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
            .unwrap_or(now)
    };
    let start = first(at.year(), at.month());
    let (ny, nm) = match at.month() {
        time::Month::December => (at.year() + 1, time::Month::January),
        m => (at.year(), m.next()),
    };
    (start, first(ny, nm))
}

/// The refusal of one more of a quota the tenant holds `limit` of.
pub fn limit_error(quota: Quota, limit: i64) -> ApiError {
    match quota {
        Quota::Seats => ApiError::refused(
            ErrorCode::SeatLimit,
            format!("this tenant's plan allows {limit} seats (members and pending invitations); all are taken"),
        ),
        Quota::Databases => ApiError::refused(
            ErrorCode::DatabaseLimit,
            format!("this tenant's plan allows {limit} registered databases; remove one first"),
        ),
        Quota::StoredBytes => ApiError::refused(
            ErrorCode::StorageLimit,
            format!("this tenant's plan allows {limit} stored bytes; the upload would pass it"),
        ),
        Quota::StoredObjects => ApiError::refused(
            ErrorCode::ObjectLimit,
            format!("this tenant's plan allows {limit} stored objects; the upload would pass it"),
        ),
    }
}

/// One more seat or database, held to the plan's limit in the commit it joins.
#[derive(Debug)]
pub struct Taken {
    /// The counter's move (`Change::Quota`): the commit is refused (`Refusal::QuotaReached`)
    /// if another request took the last one first.
    pub change: Change,
    /// The `QuotaReached` event when this one fills the quota: commit it too.
    pub reached: Option<DomainEvent>,
    pub quota: Quota,
    pub limit: Option<i64>,
}

impl Taken {
    /// The changes to add to the commit: the counter, and the event when the quota fills.
    pub fn changes(&self, now_ms: i64) -> Vec<Change> {
        let mut out = vec![self.change.clone()];
        if let Some(e) = &self.reached {
            out.push(Change::Outbox(e.outbox_at(now_ms)));
        }
        out
    }

    /// The answer when the commit was refused by this counter.
    pub fn refused(&self) -> ApiError {
        match self.limit {
            Some(l) => limit_error(self.quota, l),
            None => ApiError::concurrent_update(),
        }
    }
}

/// Takes one more seat or database for `tenant` on `plan`: refused at once when the quota is
/// full, else the change that takes it. A counter never kept (a tenant from before the count
/// existed) is counted from the records first, so what was there counts too; two first takes
/// at once may both count, which reads high, never low.
pub async fn take_one(
    store: &dyn Store,
    tenant: &Tenant,
    plan: &Plan,
    quota: Quota,
    now: i64,
) -> Result<Taken, ApiError> {
    let scope = changes::tenant_scope(&tenant.id);
    let name = counter(quota);
    let (held, by) = match store.quota(&scope, name).await? {
        Some(n) => (n, 1),
        None => {
            let n = match quota {
                Quota::Seats => store.count_seats(&tenant.id, now).await?,
                _ => store.count_databases(&tenant.id).await?,
            };
            (n, n + 1)
        }
    };
    let limit = plan.entitlements.limit(quota);
    if let Some(l) = limit {
        if held >= l {
            return Err(limit_error(quota, l));
        }
    }
    let reached = limit.filter(|l| held + 1 == *l).map(|l| {
        DomainEvent::QuotaReached(crate::events::QuotaReached {
            tenant_id: tenant.id.clone(),
            slug: tenant.slug.clone(),
            partner_id: tenant.partner.clone(),
            plan: plan.id.clone(),
            quota: quota.as_str().to_string(),
            used: l,
            limit: l,
        })
    });
    Ok(Taken {
        change: Change::Quota {
            scope,
            name: name.to_string(),
            by,
            cap: limit.unwrap_or(i64::MAX),
        },
        reached,
        quota,
        limit,
    })
}

/// Gives back one seat or database: the counter's move, when it is counted (a tenant from
/// before the count existed has nothing to give back; the reconcile's recount starts it).
pub async fn release_one(
    store: &dyn Store,
    tenant: &TenantId,
    quota: Quota,
) -> Result<Option<Change>, StoreError> {
    let scope = changes::tenant_scope(tenant);
    let name = counter(quota);
    Ok(match store.quota(&scope, name).await? {
        Some(n) if n > 0 => Some(Change::Quota {
            scope,
            name: name.to_string(),
            by: -1,
            cap: i64::MAX,
        }),
        _ => None,
    })
}

/// What each of `uploads` uploads of one request may take: the largest single upload, within
/// its share of what the plan's stored bytes leave (so the forms of one request cannot pass
/// the limit together); refused when no byte or no object is left for them, or when the sizes
/// they declared (`declared`, in all) pass what is left.
pub fn upload_room(
    plan: &Plan,
    usage: &Usage,
    uploads: i64,
    declared: i64,
) -> Result<i64, ApiError> {
    let e = &plan.entitlements;
    if let Some(l) = e.stored_objects {
        if usage.used(Quota::StoredObjects) + uploads > l {
            return Err(limit_error(Quota::StoredObjects, l));
        }
    }
    match e.stored_bytes {
        None => Ok(e.max_upload_bytes),
        Some(l) => {
            let left = l - usage.used(Quota::StoredBytes);
            let share = left / uploads.max(1);
            if share < 1 || declared > left {
                return Err(limit_error(Quota::StoredBytes, l));
            }
            Ok(share.min(e.max_upload_bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::{Entitlements, PlanStatus};

    fn plan(seats: Option<i64>, bytes: Option<i64>, objects: Option<i64>) -> Plan {
        Plan {
            id: PlanId::parse("team").unwrap(),
            name: "Team".into(),
            status: PlanStatus::Active,
            entitlements: Entitlements {
                seats,
                stored_bytes: bytes,
                stored_objects: objects,
                databases: Some(2),
                max_upload_bytes: 100,
                partner_tenants: None,
            },
            features: vec![],
            tenants: 0,
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn usage(pairs: &[(&str, i64)]) -> Usage {
        Usage {
            counters: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn over_is_above_the_limit_and_full_is_at_it() {
        let p = plan(Some(3), None, Some(10));
        let u = usage(&[("seats", 4), ("stored_objects", 10), ("databases", 1)]);
        assert_eq!(u.over(&p), vec![Quota::Seats]);
        assert_eq!(u.full(&p), vec![Quota::Seats, Quota::StoredObjects]);
        assert!(usage(&[]).over(&p).is_empty());
    }

    #[test]
    fn an_upload_gets_the_smaller_of_the_largest_upload_and_the_bytes_left() {
        let p = plan(None, Some(1000), Some(5));
        assert_eq!(
            upload_room(&p, &usage(&[("stored_bytes", 950)]), 1, 0).unwrap(),
            50
        );
        assert_eq!(
            upload_room(&p, &usage(&[("stored_bytes", 10)]), 1, 0).unwrap(),
            100
        );
        // Two forms share what is left; declared sizes past it are refused.
        assert_eq!(
            upload_room(&p, &usage(&[("stored_bytes", 900)]), 2, 0).unwrap(),
            50
        );
        assert!(upload_room(&p, &usage(&[("stored_bytes", 900)]), 1, 101).is_err());
        let full = upload_room(&p, &usage(&[("stored_bytes", 1000)]), 1, 0).unwrap_err();
        assert_eq!(full.status(), 409);
        assert!(format!("{full:?}").contains("StorageLimit"));
        let objects = upload_room(&p, &usage(&[("stored_objects", 4)]), 2, 0).unwrap_err();
        assert!(format!("{objects:?}").contains("ObjectLimit"));
        assert_eq!(
            upload_room(&plan(None, None, None), &usage(&[]), 50, 0).unwrap(),
            100
        );
    }

    #[test]
    fn the_period_is_the_calendar_month() {
        // 2026-12-05T17:00:00Z
        let (start, end) = month_of(1_796_490_000);
        assert_eq!(start, 1_796_083_200); // 2026-12-01
        assert_eq!(end, 1_798_761_600); // 2027-01-01
        let (s2, e2) = month_of(start);
        assert_eq!((s2, e2), (start, end));
    }

    #[test]
    fn plan_moves_count_the_new_plan_up_and_the_old_down() {
        let a = plan(None, None, None);
        let mut b = a.clone();
        b.id = PlanId::parse("pro").unwrap();
        assert!(plan_moves(Some(&a), Some(&a)).is_empty());
        let moves = plan_moves(Some(&a), Some(&b));
        assert!(matches!(&moves[0], Change::UsePlan { plan, by: 1 } if plan.id == b.id));
        assert!(matches!(&moves[1], Change::UsePlan { plan, by: -1 } if plan.id == a.id));
        assert_eq!(plan_moves(None, Some(&a)).len(), 1);
    }
}
