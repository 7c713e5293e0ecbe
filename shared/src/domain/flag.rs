//! Feature flags: what operators turn on and off without a deploy. A flag has a key, a state
//! and overrides; [`evaluate`] is the one rule that says whether it is on for a tenant and a
//! user, and why.
//!
//! **Keys** are lower-case dotted names, 3-64 characters: segments of letters, digits and `-`,
//! each starting with a letter, the first naming the area that owns the flag (`billing.new-
//! invoices`, `query.read-replicas`). A key is never reused for another meaning: delete the
//! flag and pick a new key.
//!
//! **The order of evaluation**, first match wins:
//! 1. `killed`: off, above every override (the kill switch);
//! 2. an override for the user;
//! 3. an override for the tenant;
//! 4. an override for the tenant's partner;
//! 5. an override for the tenant's plan;
//! 6. the state: `on`, `off`, or `rollout`, on for a tenant whose bucket (a stable hash of the
//!    flag's key and the tenant's id, 0-9999) is below `rollout_percent` x 100. A tenant keeps
//!    its bucket, so it never flips between requests, and raising the percentage only adds
//!    tenants. Each flag hashes apart, so the same tenants are not always first.

use crate::domain::plan::PlanId;
use crate::domain::{PartnerId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A flag's key (see the module's convention).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FlagKey(String);

impl FlagKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let segment_ok = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && !s.ends_with('-')
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let ok = (3..=64).contains(&raw.len()) && raw.split('.').all(segment_ok);
        ok.then(|| FlagKey(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    Off,
    On,
    /// On for `rollout_percent` of tenants, sticky per tenant.
    Rollout,
    /// Forced off everywhere, above every override.
    Killed,
}

crate::domain::named_enum!(FlagState {
    Off => "off",
    On => "on",
    Rollout => "rollout",
    Killed => "killed",
});

/// What an override is for, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    User,
    Tenant,
    Partner,
    Plan,
}

crate::domain::named_enum!(Axis {
    User => "user",
    Tenant => "tenant",
    Partner => "partner",
    Plan => "plan",
});

/// The most overrides one axis of one flag holds.
pub const MAX_OVERRIDES_PER_AXIS: usize = 100;
/// The most overrides one flag holds in all: a flag stays under 40 KB, and the whole catalogue
/// ([`crate::store::MAX_FLAGS`] flags) under 4 MB, one answer of `GET /flags`.
pub const MAX_OVERRIDES: usize = 200;

/// One override: the flag is `value` for the member `id` of `axis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub axis: Axis,
    /// The user's, tenant's, partner's or plan's id.
    pub id: String,
    /// What people know it by where the id says little (a tenant's slug when it was set).
    #[serde(default)]
    pub label: Option<String>,
    pub value: bool,
    pub set_at: i64,
    pub set_by: UserId,
}

/// A flag as operators keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub key: FlagKey,
    pub description: String,
    /// Who answers for it: a team or a person, free text.
    pub owner: String,
    pub state: FlagState,
    /// 0-100; what `rollout` turns on (kept while in another state, for coming back to it).
    pub rollout_percent: u8,
    pub overrides: Vec<Override>,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub killed_at: Option<i64>,
    #[serde(default)]
    pub killed_by: Option<UserId>,
    #[serde(default)]
    pub kill_reason: Option<String>,
}

impl Flag {
    /// The override for `id` on `axis`, if any.
    pub fn override_for(&self, axis: Axis, id: &str) -> Option<&Override> {
        self.overrides.iter().find(|o| o.axis == axis && o.id == id)
    }

    /// How many overrides `axis` holds.
    pub fn overrides_on(&self, axis: Axis) -> usize {
        self.overrides.iter().filter(|o| o.axis == axis).count()
    }
}

/// Whom a flag is evaluated for: a tenant (and what it belongs to), and perhaps a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    pub user: Option<&'a UserId>,
    pub tenant: &'a TenantId,
    pub partner: Option<&'a PartnerId>,
    pub plan: &'a PlanId,
}

/// Which rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Killed,
    UserOverride,
    TenantOverride,
    PartnerOverride,
    PlanOverride,
    On,
    Off,
    /// The tenant's bucket is inside the rollout.
    RolloutIn,
    RolloutOut,
}

crate::domain::named_enum!(Reason {
    Killed => "killed",
    UserOverride => "user_override",
    TenantOverride => "tenant_override",
    PartnerOverride => "partner_override",
    PlanOverride => "plan_override",
    On => "on",
    Off => "off",
    RolloutIn => "rollout_in",
    RolloutOut => "rollout_out",
});

/// A flag's value for one subject, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    pub value: bool,
    pub reason: Reason,
    /// The tenant's bucket (0-9999) when the rollout decided.
    pub bucket: Option<u32>,
}

/// The tenant's bucket for `key`, 0-9999: the first four bytes of SHA-256(`key` ":" `tenant`),
/// modulo 10,000. Stable across instances, deploys and languages.
pub fn bucket(key: &FlagKey, tenant: &TenantId) -> u32 {
    let digest = Sha256::digest(format!("{key}:{tenant}").as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 10_000
}

/// The rule (see the module's order). `killed` is whether the kill list names the flag: it
/// decides whatever state the flag in hand has (an instance's copy may be older than the kill).
pub fn evaluate(flag: &Flag, killed: bool, s: &Subject<'_>) -> Evaluation {
    let decided = |value, reason| Evaluation {
        value,
        reason,
        bucket: None,
    };
    if killed || flag.state == FlagState::Killed {
        return decided(false, Reason::Killed);
    }
    let ids = [
        (Axis::User, s.user.map(|u| u.as_str())),
        (Axis::Tenant, Some(s.tenant.as_str())),
        (Axis::Partner, s.partner.map(|p| p.as_str())),
        (Axis::Plan, Some(s.plan.as_str())),
    ];
    for (axis, id) in ids {
        if let Some(o) = id.and_then(|id| flag.override_for(axis, id)) {
            let reason = match axis {
                Axis::User => Reason::UserOverride,
                Axis::Tenant => Reason::TenantOverride,
                Axis::Partner => Reason::PartnerOverride,
                Axis::Plan => Reason::PlanOverride,
            };
            return decided(o.value, reason);
        }
    }
    match flag.state {
        FlagState::On => decided(true, Reason::On),
        FlagState::Off | FlagState::Killed => decided(false, Reason::Off),
        FlagState::Rollout => {
            let b = bucket(&flag.key, s.tenant);
            let inside = b < u32::from(flag.rollout_percent.min(100)) * 100;
            Evaluation {
                value: inside,
                reason: if inside {
                    Reason::RolloutIn
                } else {
                    Reason::RolloutOut
                },
                bucket: Some(b),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(state: FlagState, percent: u8, overrides: &[(Axis, &str, bool)]) -> Flag {
        Flag {
            key: FlagKey::parse("billing.new-invoices").unwrap(),
            description: String::new(),
            owner: "billing".into(),
            state,
            rollout_percent: percent,
            overrides: overrides
                .iter()
                .map(|(axis, id, value)| Override {
                    axis: *axis,
                    id: id.to_string(),
                    label: None,
                    value: *value,
                    set_at: 0,
                    set_by: UserId::system(),
                })
                .collect(),
            version: 1,
            created_at: 0,
            updated_at: 0,
            killed_at: None,
            killed_by: None,
            kill_reason: None,
        }
    }

    #[test]
    fn keys_follow_the_convention() {
        for ok in [
            "billing.new-invoices",
            "abc",
            "query.read-replicas.v2",
            "a1.b2",
        ] {
            assert!(FlagKey::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Billing.x",
            "billing..x",
            ".billing",
            "billing.",
            "1billing",
            "billing.-x",
            "billing.x-",
            "billing x",
            "billing_x",
            &"a".repeat(65),
        ] {
            assert!(FlagKey::parse(bad).is_none(), "{bad}");
        }
    }

    /// state, rollout %, overrides, expected value, expected reason.
    type Row<'a> = (FlagState, u8, Vec<(Axis, &'a str, bool)>, bool, Reason);

    /// Every state against every axis' override (on and off), and the order between axes.
    /// Columns: state, rollout %, overrides, expected value, expected reason. The subject is
    /// user `u`, tenant `t`, partner `p`, plan `pro`; overrides for someone else never match.
    #[test]
    fn the_order_of_evaluation_over_every_state_and_axis() {
        use Axis::*;
        use FlagState::*;
        use Reason as R;
        let user = UserId::parse("00000000-0000-4000-8000-000000000001").unwrap();
        let tenant = TenantId::parse("000000000000400080000000000000aa").unwrap();
        let partner = PartnerId::parse("000000000000400080000000000000bb").unwrap();
        let plan = PlanId::parse("pro").unwrap();
        let (u, t, p) = (user.as_str(), tenant.as_str(), partner.as_str());
        let other = "000000000000400080000000000000ff";
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // No override: the state decides.
            (Off, 0, vec![], false, R::Off),
            (On, 0, vec![], true, R::On),
            (Rollout, 100, vec![], true, R::RolloutIn),
            (Rollout, 0, vec![], false, R::RolloutOut),
            (Killed, 100, vec![], false, R::Killed),
            // One override per axis, each value, against each state.
            (Off, 0, vec![(User, u, true)], true, R::UserOverride),
            (On, 0, vec![(User, u, false)], false, R::UserOverride),
            (Rollout, 0, vec![(User, u, true)], true, R::UserOverride),
            (Rollout, 100, vec![(User, u, false)], false, R::UserOverride),
            (Killed, 0, vec![(User, u, true)], false, R::Killed),
            (Off, 0, vec![(Tenant, t, true)], true, R::TenantOverride),
            (On, 0, vec![(Tenant, t, false)], false, R::TenantOverride),
            (Rollout, 0, vec![(Tenant, t, true)], true, R::TenantOverride),
            (Rollout, 100, vec![(Tenant, t, false)], false, R::TenantOverride),
            (Killed, 0, vec![(Tenant, t, true)], false, R::Killed),
            (Off, 0, vec![(Partner, p, true)], true, R::PartnerOverride),
            (On, 0, vec![(Partner, p, false)], false, R::PartnerOverride),
            (Rollout, 0, vec![(Partner, p, true)], true, R::PartnerOverride),
            (Rollout, 100, vec![(Partner, p, false)], false, R::PartnerOverride),
            (Killed, 0, vec![(Partner, p, true)], false, R::Killed),
            (Off, 0, vec![(Plan, "pro", true)], true, R::PlanOverride),
            (On, 0, vec![(Plan, "pro", false)], false, R::PlanOverride),
            (Rollout, 0, vec![(Plan, "pro", true)], true, R::PlanOverride),
            (Rollout, 100, vec![(Plan, "pro", false)], false, R::PlanOverride),
            (Killed, 0, vec![(Plan, "pro", true)], false, R::Killed),
            // Most specific first.
            (Off, 0, vec![(Plan, "pro", true), (Partner, p, false)], false, R::PartnerOverride),
            (Off, 0, vec![(Partner, p, true), (Tenant, t, false)], false, R::TenantOverride),
            (Off, 0, vec![(Tenant, t, false), (User, u, true)], true, R::UserOverride),
            (On, 0, vec![(Plan, "pro", false), (Partner, p, false), (Tenant, t, false), (User, u, true)], true, R::UserOverride),
            (Off, 0, vec![(Plan, "pro", true), (Partner, p, true), (Tenant, t, true), (User, u, false)], false, R::UserOverride),
            // Overrides for someone else do not match.
            (Off, 0, vec![(User, other, true), (Tenant, other, true), (Partner, other, true), (Plan, "free", true)], false, R::Off),
            (On, 0, vec![(User, other, false), (Tenant, other, false), (Partner, other, false), (Plan, "free", false)], true, R::On),
        ];
        for (i, (state, percent, overrides, value, reason)) in table.iter().enumerate() {
            let f = flag(*state, *percent, overrides);
            let s = Subject {
                user: Some(&user),
                tenant: &tenant,
                partner: Some(&partner),
                plan: &plan,
            };
            let e = evaluate(&f, false, &s);
            assert_eq!((e.value, e.reason), (*value, *reason), "row {i}");
        }
    }

    #[test]
    fn the_kill_list_decides_whatever_the_flag_in_hand_says() {
        let tenant = TenantId::new_random();
        let plan = PlanId::free();
        let f = flag(FlagState::On, 0, &[(Axis::Tenant, tenant.as_str(), true)]);
        let s = Subject {
            user: None,
            tenant: &tenant,
            partner: None,
            plan: &plan,
        };
        assert_eq!(evaluate(&f, false, &s).reason, Reason::TenantOverride);
        assert_eq!(
            (evaluate(&f, true, &s).value, evaluate(&f, true, &s).reason),
            (false, Reason::Killed)
        );
    }

    #[test]
    fn a_user_override_needs_a_user_and_missing_axes_are_skipped() {
        let tenant = TenantId::new_random();
        let plan = PlanId::free();
        let user = UserId::new_random();
        let f = flag(FlagState::Off, 0, &[(Axis::User, user.as_str(), true)]);
        let s = Subject {
            user: None,
            tenant: &tenant,
            partner: None,
            plan: &plan,
        };
        assert_eq!(evaluate(&f, false, &s).reason, Reason::Off);
    }

    #[test]
    fn rollout_is_sticky_monotonic_and_near_its_share() {
        let tenants: Vec<TenantId> = (0..4000).map(|_| TenantId::new_random()).collect();
        let plan = PlanId::free();
        let on_at = |percent: u8| -> Vec<bool> {
            let f = flag(FlagState::Rollout, percent, &[]);
            tenants
                .iter()
                .map(|t| {
                    let s = Subject {
                        user: None,
                        tenant: t,
                        partner: None,
                        plan: &plan,
                    };
                    evaluate(&f, false, &s).value
                })
                .collect()
        };
        let (ten, thirty) = (on_at(10), on_at(30));
        assert_eq!(ten, on_at(10), "the same tenants every time");
        assert!(
            ten.iter().zip(&thirty).all(|(a, b)| !a || *b),
            "raising the share only adds tenants"
        );
        let share = thirty.iter().filter(|v| **v).count() as f64 / tenants.len() as f64;
        assert!((0.26..0.34).contains(&share), "30% rollout gave {share}");
        // Another flag hashes apart: not the same first tenants.
        let other = Flag {
            key: FlagKey::parse("query.other").unwrap(),
            ..flag(FlagState::Rollout, 10, &[])
        };
        let other_on: Vec<bool> = tenants
            .iter()
            .map(|t| {
                let s = Subject {
                    user: None,
                    tenant: t,
                    partner: None,
                    plan: &plan,
                };
                evaluate(&other, false, &s).value
            })
            .collect();
        assert_ne!(ten, other_on);
        // A known value (computed apart, in Python's hashlib), so a change of the hash, which
        // would move every tenant of every rollout, is seen.
        let t = TenantId::parse("000000000000400080000000000000aa").unwrap();
        assert_eq!(
            bucket(&FlagKey::parse("billing.new-invoices").unwrap(), &t),
            3401
        );
    }
}
