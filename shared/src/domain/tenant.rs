//! Tenants as the rest of the platform sees them: slugs, the tenant record, who may manage a
//! tenant, and redirect origins (where links in tenant mail may point).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a slug was refused (never repeating it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSlug {
    #[error("must be 3-40 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen")]
    Shape,
    #[error("is a reserved word")]
    Reserved,
}

/// Names no tenant or partner may take: they collide with the platform's own hosts and paths.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "administrator",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "cdn",
    "console",
    "dashboard",
    "docs",
    "help",
    "internal",
    "localhost",
    "login",
    "mail",
    "null",
    "operator",
    "partners",
    "platform",
    "root",
    "static",
    "status",
    "support",
    "system",
    "tenants",
    "undefined",
    "www",
];

/// The one rule for slugs (tenants and partners): 3-40 characters of `a-z`, `0-9` and `-`,
/// not starting or ending with `-`, and not a reserved word.
pub fn check_slug(raw: &str) -> Result<(), InvalidSlug> {
    let shape = (3..=40).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.starts_with('-')
        && !raw.ends_with('-');
    if !shape {
        return Err(InvalidSlug::Shape);
    }
    if RESERVED_SLUGS.contains(&raw) {
        return Err(InvalidSlug::Reserved);
    }
    Ok(())
}

/// A tenant's URL name (see [`check_slug`]). It never changes once claimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::check(raw).ok()
    }

    pub fn check(raw: &str) -> Result<Self, InvalidSlug> {
        check_slug(raw).map(|()| TenantSlug(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
    Deleted,
}

crate::domain::named_enum!(TenantStatus {
    Provisioning => "provisioning",
    Active => "active",
    Suspended => "suspended",
    Deleted => "deleted",
});

/// Where one provisioning step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Pending,
    Ok,
    Skipped,
    Error,
}

crate::domain::named_enum!(StepState { Pending => "pending", Ok => "ok", Skipped => "skipped", Error => "error" });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStatus {
    pub state: StepState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the step last changed (Unix seconds).
    pub at: i64,
    #[serde(default)]
    pub attempts: u32,
    /// What the step made and checks for drift: the marker's key, the secret's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

impl StepStatus {
    /// A step not run yet.
    pub fn pending(now: i64) -> Self {
        StepStatus {
            state: StepState::Pending,
            message: None,
            at: now,
            attempts: 0,
            artifact: None,
        }
    }

    /// Settled without error (`ok` or `skipped`).
    pub fn settled(&self) -> bool {
        matches!(self.state, StepState::Ok | StepState::Skipped)
    }

    /// What anyone but an operator may see of the step: its state, when, how many attempts,
    /// and a public reason code (`retrying` after a transient failure, `failed` when it gave
    /// up), never the recorded text (an AWS error names ARNs and the account) or the artifact.
    pub fn public(&self) -> serde_json::Value {
        let reason = match self.state {
            StepState::Error => Some("failed"),
            StepState::Pending if self.attempts > 0 => Some("retrying"),
            _ => None,
        };
        let mut v =
            serde_json::json!({"state": self.state, "at": self.at, "attempts": self.attempts});
        if let Some(r) = reason {
            v["reason"] = r.into();
        }
        v
    }
}

/// The provisioning steps, in the order the API lists them (`Step::ALL`). Each is one task of
/// the state machine (`infra/statemachines/provisioning.asl.json`) and one module of
/// `provision-step`; the rules that settle them are in `provisioning::rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The tenant's prefix in the bucket (a marker object).
    Storage,
    /// The tenant's data-key secret.
    Secrets,
    /// The owner's invitation, sent once.
    Invitation,
}

crate::domain::named_enum!(Step { Storage => "storage", Secrets => "secrets", Invitation => "invitation" });

impl Step {
    /// Whether the step leaves an artifact that offboarding retires, a restore brings back and
    /// the reconcile looks for (the invitation is a mail: there is nothing to retire).
    pub fn has_artifact(self) -> bool {
        !matches!(self, Step::Invitation)
    }
}

/// Each step's status, by step (stored as a JSON object keyed by the step's name).
pub type Steps = std::collections::BTreeMap<Step, StepStatus>;

/// The steps of `steps` not settled without error (`ok` or `skipped`), in order.
pub fn unsettled(steps: &Steps) -> Vec<Step> {
    Step::ALL
        .iter()
        .copied()
        .filter(|s| !steps.get(s).is_some_and(StepStatus::settled))
        .collect()
}

/// What a run of the state machine does to a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunMode {
    /// Create (or restore, or repair) every step's artifact, then activate.
    Provision,
    /// Retire every artifact reversibly (a deleted tenant).
    Offboard,
    /// Remove the retired artifacts for good (the recovery window has passed).
    Purge,
}

crate::domain::named_enum!(RunMode { Provision => "provision", Offboard => "offboard", Purge => "purge" });

/// The lease a run holds on its tenant: while it holds it, no other run starts, and only its
/// steps write step statuses. It lapses at `until` (Unix seconds) if the run dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLease {
    /// The execution's name.
    pub id: String,
    pub mode: RunMode,
    pub since: i64,
    pub until: i64,
}

/// A deleted tenant's way out: its artifacts are retired at deletion and removed for good once
/// `purge_after` (Unix seconds) has passed; until then an operator may restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offboarding {
    pub deleted_at: i64,
    pub purge_after: i64,
    /// The status a restore returns the tenant to.
    pub previous_status: TenantStatus,
    /// Per step, its retirement (then its purge).
    #[serde(default)]
    pub steps: Steps,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: crate::domain::TenantId,
    pub slug: TenantSlug,
    pub name: String,
    pub status: TenantStatus,
    /// An entry of the plan catalogue (`crate::domain::plan`).
    pub plan: crate::domain::plan::PlanId,
    /// Valid host names, deduplicated, in the order given.
    pub domains: Vec<crate::domain::fields::Hostname>,
    /// A bounded JSON object (see `fields::bounded_object`).
    pub billing_info: serde_json::Map<String, serde_json::Value>,
    pub partner: Option<crate::domain::PartnerId>,
    pub owner_email: Option<crate::domain::Email>,
    /// Per provisioning step, its status.
    pub provisioning: Steps,
    /// The run holding the tenant, if any (see `RunLease`).
    pub run: Option<RunLease>,
    /// Set by deletion, cleared by a completed restore.
    pub offboarding: Option<Offboarding>,
    /// Who created the tenant (the invitation names them).
    pub created_by: Option<crate::domain::UserId>,
    /// Ordered; the first is primary and is where password-reset links point.
    pub redirect_origins: Vec<RedirectOrigin>,
    /// How many members hold `owner`: kept with every owner change, never below 1 once set.
    pub owners: u32,
    /// Moved by every change of the record; the `ETag` is made from it.
    pub version: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Tenant {
    /// A new tenant in `provisioning`, on the free plan, with nothing else set.
    pub fn new(slug: TenantSlug, name: String, now: i64) -> Self {
        Tenant {
            id: crate::domain::TenantId::new_random(),
            slug,
            name,
            status: TenantStatus::Provisioning,
            plan: crate::domain::plan::PlanId::free(),
            domains: Vec::new(),
            billing_info: serde_json::Map::new(),
            partner: None,
            owner_email: None,
            provisioning: Steps::new(),
            run: None,
            offboarding: None,
            created_by: None,
            redirect_origins: Vec::new(),
            owners: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// The status access decisions go by: the stored one, except that a tenant being restored
    /// (`provisioning` with an offboarding record) that was suspended when it was deleted is
    /// suspended until the restore ends (and it is suspended again), however long that takes.
    pub fn access_status(&self) -> TenantStatus {
        match (&self.status, &self.offboarding) {
            (TenantStatus::Provisioning, Some(o))
                if o.previous_status == TenantStatus::Suspended =>
            {
                TenantStatus::Suspended
            }
            (status, _) => *status,
        }
    }

    /// Every provisioning step settled without error.
    pub fn provisioned(&self) -> bool {
        unsettled(&self.provisioning).is_empty()
    }

    /// The lease, if it is held by a live run at `now`.
    pub fn live_run(&self, now: i64) -> Option<&RunLease> {
        self.run.as_ref().filter(|r| r.until > now)
    }

    /// The tenant's prefix in the bucket; every object of the tenant lives under it.
    pub fn storage_prefix(&self) -> String {
        format!("tenants/{}/", self.id)
    }

    /// The strong entity tag of this version of the record.
    pub fn etag(&self) -> String {
        format!("\"v{}\"", self.version)
    }
}

/// One allowed redirect origin: `scheme://host[:port]`, nothing else. `https` is required
/// unless plain `http` is allowed (local mode only: `LOCAL_MODE=true`, which `make dev` and
/// `make test` set). Stored lower-cased, without a default port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectOrigin(String);

pub const MAX_REDIRECT_ORIGINS: usize = 10;

/// Why an origin was refused. The messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidOrigin {
    #[error("an origin is 1-255 characters without surrounding spaces")]
    Length,
    #[error("expected scheme://host[:port]")]
    Shape,
    #[error("wildcards are not allowed")]
    Wildcard,
    #[error("credentials are not allowed")]
    Credentials,
    #[error(
        "only an origin is allowed: no path, query or fragment (e.g. https://app.example.com)"
    )]
    Path,
    #[error("the port must be a number from 1 to 65535")]
    Port,
    #[error("https is required (plain http only in local mode)")]
    HttpsRequired,
    #[error("the scheme must be https")]
    Scheme,
    #[error("the host is not a valid host name")]
    Host,
    #[error("at most {MAX_REDIRECT_ORIGINS} origins are allowed")]
    TooMany,
    #[error("origin {0} is listed twice")]
    Duplicate(usize),
    #[error("origin {index}: {why}")]
    Entry {
        index: usize,
        why: Box<InvalidOrigin>,
    },
}

impl RedirectOrigin {
    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, InvalidOrigin> {
        if raw.len() > 255 || raw.trim() != raw || raw.is_empty() {
            return Err(InvalidOrigin::Length);
        }
        let lower = raw.to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or(InvalidOrigin::Shape)?;
        if rest.contains('*') {
            return Err(InvalidOrigin::Wildcard);
        }
        if rest.contains('@') {
            return Err(InvalidOrigin::Credentials);
        }
        if rest.contains(['/', '?', '#', '\\']) {
            return Err(InvalidOrigin::Path);
        }
        match scheme {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err(InvalidOrigin::HttpsRequired),
            _ => return Err(InvalidOrigin::Scheme),
        }
        if let Some((_, p)) = rest.rsplit_once(':') {
            if !matches!(p.parse::<u16>(), Ok(n) if n > 0 && !p.starts_with('0')) {
                return Err(InvalidOrigin::Port);
            }
        }
        // The `url` crate parses the host (and the port) as a browser would, and serialises
        // the origin in its normal form: lower case, punycode, no default port.
        let url = url::Url::parse(&lower).map_err(|_| InvalidOrigin::Host)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        match url.host() {
            Some(url::Host::Domain(d)) if d.len() <= 253 && d.split('.').all(label_ok) => {}
            Some(url::Host::Ipv4(_)) => {}
            _ => return Err(InvalidOrigin::Host),
        }
        Ok(RedirectOrigin(url.origin().ascii_serialization()))
    }

    /// An ordered list: each entry valid, no duplicates, at most `MAX_REDIRECT_ORIGINS`.
    /// Errors name the entry by its position (from 1), never by its value.
    pub fn parse_list(raw: &[String], allow_http: bool) -> Result<Vec<Self>, InvalidOrigin> {
        if raw.len() > MAX_REDIRECT_ORIGINS {
            return Err(InvalidOrigin::TooMany);
        }
        let mut out: Vec<RedirectOrigin> = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let origin = Self::parse(r, allow_http).map_err(|why| InvalidOrigin::Entry {
                index: i + 1,
                why: Box::new(why),
            })?;
            if out.contains(&origin) {
                return Err(InvalidOrigin::Duplicate(i + 1));
            }
            out.push(origin);
        }
        Ok(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_restored_from_suspension_stays_suspended_until_the_restore_ends() {
        let mut t = Tenant::new(TenantSlug::parse("acme").unwrap(), "Acme".into(), 1);
        assert_eq!(t.access_status(), TenantStatus::Provisioning);
        t.offboarding = Some(Offboarding {
            deleted_at: 1,
            purge_after: 2,
            previous_status: TenantStatus::Suspended,
            steps: Steps::new(),
            retired_at: Some(1),
            purged_at: None,
        });
        assert_eq!(t.access_status(), TenantStatus::Suspended);
        t.offboarding.as_mut().unwrap().previous_status = TenantStatus::Active;
        assert_eq!(t.access_status(), TenantStatus::Provisioning);
        t.status = TenantStatus::Deleted;
        assert_eq!(t.access_status(), TenantStatus::Deleted);
    }

    #[test]
    fn slugs_are_strict() {
        for good in ["acme-co", "a1b", "ac--me", &"a".repeat(40)] {
            assert!(TenantSlug::parse(good).is_some(), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "-acme",
            "acme-",
            "ac_me",
            "ac/me",
            "ac me",
            "acmé",
            &"a".repeat(41),
        ] {
            assert_eq!(TenantSlug::check(bad), Err(InvalidSlug::Shape), "{bad}");
        }
        for reserved in ["admin", "api", "www"] {
            assert_eq!(TenantSlug::check(reserved), Err(InvalidSlug::Reserved));
        }
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            RedirectOrigin::parse("HTTPS://App.Example.com", false)
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            RedirectOrigin::parse("https://app.example.com:443", false)
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            RedirectOrigin::parse("https://app.example.com:8443", false)
                .unwrap()
                .as_str(),
            "https://app.example.com:8443"
        );
        assert_eq!(
            RedirectOrigin::parse("http://localhost:5173", true)
                .unwrap()
                .as_str(),
            "http://localhost:5173"
        );
        assert_eq!(
            RedirectOrigin::parse("http://127.0.0.1", true)
                .unwrap()
                .as_str(),
            "http://127.0.0.1"
        );
    }

    #[test]
    fn origins_reject_paths_wildcards_credentials_and_plain_http() {
        let cases = [
            ("https://app.example.com/reset", "path"),
            ("https://app.example.com/", "path"),
            ("https://app.example.com?x=1", "path"),
            ("https://*.example.com", "wildcard"),
            ("https://user:pw@app.example.com", "credentials"),
            ("http://app.example.com", "https is required"),
            ("http://localhost:3000", "https is required"),
            ("ftp://app.example.com", "scheme"),
            ("javascript://alert(1)", "scheme"),
            ("app.example.com", "scheme://host"),
            ("https://app.example.com:0", "port"),
            ("https://app.example.com:99999", "port"),
            ("https://exa mple.com", "host"),
            ("https://", "host"),
            (" https://app.example.com", "spaces"),
        ];
        for (raw, why) in cases {
            let err = RedirectOrigin::parse(raw, false).unwrap_err().to_string();
            assert!(err.contains(why), "{raw}: {err}");
            assert!(
                !err.contains(raw),
                "{raw}: the message echoes the input: {err}"
            );
        }
        // Outside local mode even localhost needs https; in local mode plain http is allowed.
        for raw in [
            "http://localhost:5173",
            "http://127.0.0.1",
            "http://dev.example.com",
        ] {
            assert_eq!(
                RedirectOrigin::parse(raw, false),
                Err(InvalidOrigin::HttpsRequired),
                "{raw}"
            );
            assert!(RedirectOrigin::parse(raw, true).is_ok(), "{raw}");
        }
    }

    #[test]
    fn origin_lists_reject_duplicates_and_overflow() {
        let dup = vec![
            "https://a.example.com".to_string(),
            "HTTPS://A.example.com:443".to_string(),
        ];
        assert_eq!(
            RedirectOrigin::parse_list(&dup, false),
            Err(InvalidOrigin::Duplicate(2))
        );
        let bad = vec![
            "https://a.example.com".to_string(),
            "evil value".to_string(),
        ];
        let err = RedirectOrigin::parse_list(&bad, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("origin 2:") && !err.contains("evil"),
            "{err}"
        );
        let many: Vec<String> = (0..11)
            .map(|i| format!("https://a{i}.example.com"))
            .collect();
        assert!(RedirectOrigin::parse_list(&many, false).is_err());
        assert_eq!(RedirectOrigin::parse_list(&[], false).unwrap(), vec![]);
    }
}
