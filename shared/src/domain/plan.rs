//! Plans: what a tenant is sold. A plan is an entry of the catalogue operators keep (`/plans`):
//! an id, a name, and its entitlements (the limits a tenant on it is held to, and the names of
//! the features it unlocks). Three plans are built in (`free`, `pro`, `enterprise`): they exist
//! before anyone stores them, with the limits this deployment was configured with
//! ([`BuiltinPlans`]), and are written to the catalogue the first time a tenant takes one or an
//! operator edits one. From then on the stored entry rules.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A plan's id: 2-32 characters of lower-case letters, digits and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlanId(String);

impl PlanId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (2..=32).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.ends_with('-');
        ok.then(|| PlanId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The plan a tenant is on when nothing else was asked for.
    pub fn free() -> Self {
        PlanId("free".into())
    }

    /// One of the three plans every deployment has.
    pub fn is_builtin(&self) -> bool {
        BUILTIN_IDS.contains(&self.0.as_str())
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The built-in plans, cheapest first.
pub const BUILTIN_IDS: [&str; 3] = ["free", "pro", "enterprise"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanStatus {
    /// Tenants may be put on it.
    Active,
    /// Tenants on it stay; no tenant may be put on it.
    Retired,
}

crate::domain::named_enum!(PlanStatus { Active => "active", Retired => "retired" });

/// One limit a plan sets and a tenant's usage is held to. The order is the order answers list
/// them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quota {
    /// Members of the tenant, invited ones and pending invitations included.
    Seats,
    /// Bytes stored under the tenant's prefix.
    StoredBytes,
    /// Objects stored under the tenant's prefix.
    StoredObjects,
    /// Registered databases (the query plane).
    Databases,
}

crate::domain::named_enum!(Quota {
    Seats => "seats",
    StoredBytes => "stored_bytes",
    StoredObjects => "stored_objects",
    Databases => "databases",
});

/// What a plan allows. `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlements {
    pub seats: Option<i64>,
    pub stored_bytes: Option<i64>,
    pub stored_objects: Option<i64>,
    pub databases: Option<i64>,
    /// The largest single upload, in bytes (always bounded: S3 takes at most 5 GiB in one
    /// request).
    pub max_upload_bytes: i64,
    /// How many tenants on this plan one partner may hold.
    pub partner_tenants: Option<i64>,
}

/// S3's largest single `PUT` or `POST`.
pub const MAX_UPLOAD_BYTES: i64 = 5 * 1024 * 1024 * 1024;
/// The largest number any limit may be (about 9 PB, well inside DynamoDB's numbers).
pub const MAX_LIMIT: i64 = 1 << 53;

impl Entitlements {
    /// The limit of one quota.
    pub fn limit(&self, quota: Quota) -> Option<i64> {
        match quota {
            Quota::Seats => self.seats,
            Quota::StoredBytes => self.stored_bytes,
            Quota::StoredObjects => self.stored_objects,
            Quota::Databases => self.databases,
        }
    }

    /// Checks the ranges; the error names the field (relative to `entitlements.`).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let limits = [
            ("seats", self.seats),
            ("stored_bytes", self.stored_bytes),
            ("stored_objects", self.stored_objects),
            ("databases", self.databases),
            ("partner_tenants", self.partner_tenants),
        ];
        for (name, value) in limits {
            if let Some(v) = value {
                if !(0..=MAX_LIMIT).contains(&v) {
                    return Err((
                        name,
                        format!("must be 0 to {MAX_LIMIT}, or null (unlimited)"),
                    ));
                }
            }
        }
        if !(1..=MAX_UPLOAD_BYTES).contains(&self.max_upload_bytes) {
            return Err((
                "max_upload_bytes",
                format!("must be 1 to {MAX_UPLOAD_BYTES} bytes"),
            ));
        }
        Ok(())
    }
}

/// The most feature names one plan may list.
pub const MAX_FEATURES: usize = 50;

/// A feature name: lower-case dotted words (`audit.export`, `sso`), 1-64 characters, each word
/// of letters, digits and `-`, starting with a letter.
pub fn feature_name(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw.split('.').all(|w| {
            w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// An entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: PlanId,
    pub name: String,
    pub status: PlanStatus,
    pub entitlements: Entitlements,
    /// Sorted, without duplicates.
    pub features: Vec<String>,
    /// How many tenants are on it, counted in the transaction of every change of a tenant's
    /// plan since plans were kept (a built-in plan's tenants from before are not counted).
    pub tenants: i64,
    /// Moved by every edit; the `ETag` is made from it. 0 for a built-in plan never stored.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Plan {
    pub fn builtin(&self) -> bool {
        self.id.is_builtin()
    }

    /// Whether a tenant may be put on it now.
    pub fn open(&self) -> bool {
        self.status == PlanStatus::Active
    }
}

/// The limits the built-in plans have until they are stored: this deployment's configuration
/// (`UPLOAD_MAX_BYTES_FREE`/`_PRO`/`_ENTERPRISE`, `MAX_DATABASES_PER_TENANT`), which are the
/// limits tenants had before plans were kept, so that nothing changes for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinPlans {
    /// Largest upload per built-in plan, in [`BUILTIN_IDS`] order.
    pub max_upload_bytes: [i64; 3],
    pub databases: i64,
}

impl Default for BuiltinPlans {
    fn default() -> Self {
        const MIB: i64 = 1024 * 1024;
        BuiltinPlans {
            max_upload_bytes: [10 * MIB, 100 * MIB, 1024 * MIB],
            databases: 10,
        }
    }
}

impl BuiltinPlans {
    /// The built-in plan `id` as it is before anyone stored it.
    pub fn seed(&self, id: &PlanId) -> Option<Plan> {
        let at = BUILTIN_IDS.iter().position(|b| *b == id.as_str())?;
        let name = ["Free", "Pro", "Enterprise"][at];
        Some(Plan {
            id: id.clone(),
            name: name.to_string(),
            status: PlanStatus::Active,
            entitlements: Entitlements {
                seats: None,
                stored_bytes: None,
                stored_objects: None,
                databases: Some(self.databases),
                max_upload_bytes: self.max_upload_bytes[at],
                partner_tenants: None,
            },
            features: Vec::new(),
            tenants: 0,
            version: 0,
            created_at: 0,
            updated_at: 0,
        })
    }

    /// Every built-in plan as seeded.
    pub fn seeds(&self) -> Vec<Plan> {
        BUILTIN_IDS
            .iter()
            .filter_map(|id| PlanId::parse(id).and_then(|id| self.seed(&id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_lower_case_names() {
        for ok in ["free", "pro", "team-2026", "ab"] {
            assert!(PlanId::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Pro",
            "2team",
            "team-",
            "te am",
            "team_x",
            &"x".repeat(33),
        ] {
            assert!(PlanId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn feature_names_are_dotted_lower_case_words() {
        for ok in ["sso", "audit.export", "beta.query-v2"] {
            assert!(feature_name(ok), "{ok}");
        }
        for bad in [
            "",
            "SSO",
            ".sso",
            "sso.",
            "a..b",
            "1st",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(!feature_name(bad), "{bad}");
        }
    }

    #[test]
    fn builtin_seeds_carry_the_configured_limits_and_nothing_else_is_limited() {
        let seeds = BuiltinPlans {
            max_upload_bytes: [1, 2, 3],
            databases: 7,
        };
        let plans = seeds.seeds();
        assert_eq!(plans.len(), 3);
        for (i, p) in plans.iter().enumerate() {
            assert_eq!(p.id.as_str(), BUILTIN_IDS[i]);
            assert!(p.builtin() && p.open());
            assert_eq!(p.entitlements.max_upload_bytes, i as i64 + 1);
            assert_eq!(p.entitlements.databases, Some(7));
            assert_eq!(p.entitlements.seats, None);
            assert_eq!(p.entitlements.check(), Ok(()));
        }
        assert!(seeds.seed(&PlanId::parse("team").unwrap()).is_none());
    }

    #[test]
    fn entitlement_ranges_are_checked() {
        let mut e = BuiltinPlans::default().seeds()[0].entitlements.clone();
        e.seats = Some(-1);
        assert_eq!(e.check().unwrap_err().0, "seats");
        e.seats = Some(3);
        e.max_upload_bytes = MAX_UPLOAD_BYTES + 1;
        assert_eq!(e.check().unwrap_err().0, "max_upload_bytes");
    }
}
