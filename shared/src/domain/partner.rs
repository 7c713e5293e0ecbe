//! Partners (resellers): the record, its slug, and what counts it keeps of its tenants.

use crate::domain::fields::Hostname;
use crate::domain::tenant::{check_slug, InvalidSlug, TenantStatus};
use crate::domain::PartnerId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A partner's URL name: the same rule as a tenant's slug (`tenant::check_slug`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartnerSlug(String);

impl PartnerSlug {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::check(raw).ok()
    }

    pub fn check(raw: &str) -> Result<Self, InvalidSlug> {
        check_slug(raw).map(|()| PartnerSlug(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartnerSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerStatus {
    Active,
    /// Soft-deleted: kept, takes no new tenants.
    Terminated,
}

crate::domain::named_enum!(PartnerStatus { Active => "active", Terminated => "terminated" });

#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    pub id: PartnerId,
    pub slug: PartnerSlug,
    pub name: String,
    pub domain: Hostname,
    pub status: PartnerStatus,
    /// The partner's margin in hundredths of a percent (0..=10000), so it is exact.
    pub margin_bp: u32,
    pub contact_info: Map<String, Value>,
    pub billing_info: Map<String, Value>,
    /// Attached tenants by status (deleted ones included, under `deleted`); kept in the same
    /// transaction as every attach, detach and status change.
    pub tenant_counts: BTreeMap<String, i64>,
    /// The plans its admins may put its tenants on (`None`: the built-in ones).
    pub allowed_plans: Option<Vec<crate::domain::plan::PlanId>>,
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Partner {
    /// The plans its admins may put its tenants on.
    pub fn sells(&self, plan: &crate::domain::plan::PlanId) -> bool {
        match &self.allowed_plans {
            Some(list) => list.contains(plan),
            None => plan.is_builtin(),
        }
    }

    /// The plans its admins may put its tenants on, as ids.
    pub fn allowed_plan_ids(&self) -> Vec<crate::domain::plan::PlanId> {
        match &self.allowed_plans {
            Some(list) => list.clone(),
            None => crate::domain::plan::BUILTIN_IDS
                .iter()
                .filter_map(|id| crate::domain::plan::PlanId::parse(id))
                .collect(),
        }
    }

    /// Attached tenants that are not deleted.
    pub fn tenant_count(&self) -> i64 {
        self.tenant_counts
            .iter()
            .filter(|(status, _)| status.as_str() != TenantStatus::Deleted.as_str())
            .map(|(_, n)| *n)
            .sum()
    }

    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }

    pub fn margin_pct(&self) -> f64 {
        f64::from(self.margin_bp) / 100.0
    }
}

/// A margin given as a percentage: 0 to 100 with at most two decimals.
pub fn margin_bp(pct: f64) -> Option<u32> {
    if !pct.is_finite() || !(0.0..=100.0).contains(&pct) {
        return None;
    }
    let bp = (pct * 100.0).round();
    ((pct * 100.0 - bp).abs() < 1e-6).then_some(bp as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_are_exact_hundredths_within_range() {
        assert_eq!(margin_bp(0.0), Some(0));
        assert_eq!(margin_bp(12.5), Some(1250));
        assert_eq!(margin_bp(100.0), Some(10000));
        assert_eq!(margin_bp(33.33), Some(3333));
        for bad in [-0.5, 100.01, 12.345, f64::NAN, f64::INFINITY] {
            assert_eq!(margin_bp(bad), None, "{bad}");
        }
    }
}
