//! Tenants as the rest of the platform sees them: slugs, the tenant record, who may manage a
//! tenant, and redirect origins (where links in tenant mail may point).

use crate::domain::{Membership, Role, User};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's URL name: 3-63 chars of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (3..=63).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-')
            && !raw.contains("--");
        ok.then(|| TenantSlug(raw.to_string()))
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Provisioning,
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub slug: TenantSlug,
    pub name: String,
    pub status: TenantStatus,
    /// Ordered; the first is primary and is where password-reset links point.
    pub redirect_origins: Vec<RedirectOrigin>,
    pub created_at: i64,
}

/// May `user` (with `memberships`) manage `tenant`'s settings? Platform operators (operator
/// audience, stored flag) always; otherwise only the tenant's owners and admins.
pub fn can_manage(
    user: &User,
    operator_session: bool,
    memberships: &[Membership],
    tenant: &Tenant,
) -> bool {
    if operator_session && user.platform_admin {
        return true;
    }
    memberships
        .iter()
        .any(|m| m.tenant_id == tenant.id && matches!(m.role, Role::Owner | Role::Admin))
}

/// One allowed redirect origin: `scheme://host[:port]`, nothing else. `https` is required
/// except for `localhost` and `127.0.0.1`. Stored lower-cased, without a default port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectOrigin(String);

pub const MAX_REDIRECT_ORIGINS: usize = 10;

impl RedirectOrigin {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let shown: String = raw.chars().take(80).collect();
        let bad = |why: &str| Err(format!("{shown:?} is not allowed: {why}"));
        if raw.len() > 255 || raw.trim() != raw || raw.is_empty() {
            return bad("an origin is 1-255 characters without surrounding spaces");
        }
        let lower = raw.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return bad("expected scheme://host[:port]");
        };
        if rest.contains('*') {
            return bad("wildcards are not allowed");
        }
        if rest.contains('@') {
            return bad("credentials are not allowed");
        }
        if rest.contains(['/', '?', '#', '\\']) {
            return bad("only an origin is allowed: no path, query or fragment (e.g. https://app.example.com)");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = match p.parse() {
                    Ok(n) if n > 0 && !p.starts_with('0') => n,
                    _ => return bad("the port must be a number from 1 to 65535"),
                };
                (h, Some(port))
            }
            None => (rest, None),
        };
        let local = host == "localhost" || host == "127.0.0.1";
        match scheme {
            "https" => {}
            "http" if local => {}
            "http" => return bad("https is required (http only for localhost and 127.0.0.1)"),
            _ => return bad("the scheme must be https"),
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return bad("the host is not a valid host name");
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let origin = match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        Ok(RedirectOrigin(origin))
    }

    /// An ordered list: each entry valid, no duplicates, at most `MAX_REDIRECT_ORIGINS`.
    pub fn parse_list(raw: &[String]) -> Result<Vec<Self>, String> {
        if raw.len() > MAX_REDIRECT_ORIGINS {
            return Err(format!(
                "at most {MAX_REDIRECT_ORIGINS} origins are allowed"
            ));
        }
        let mut out: Vec<RedirectOrigin> = Vec::with_capacity(raw.len());
        for r in raw {
            let origin = Self::parse(r)?;
            if out.contains(&origin) {
                return Err(format!("{origin} is listed twice"));
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
    fn slugs_are_strict() {
        assert!(TenantSlug::parse("acme-co").is_some());
        for bad in [
            "ab",
            "Acme",
            "-acme",
            "acme-",
            "ac--me",
            "ac_me",
            "ac/me",
            &"a".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            RedirectOrigin::parse("HTTPS://App.Example.com")
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            RedirectOrigin::parse("https://app.example.com:443")
                .unwrap()
                .as_str(),
            "https://app.example.com"
        );
        assert_eq!(
            RedirectOrigin::parse("https://app.example.com:8443")
                .unwrap()
                .as_str(),
            "https://app.example.com:8443"
        );
        assert_eq!(
            RedirectOrigin::parse("http://localhost:5173")
                .unwrap()
                .as_str(),
            "http://localhost:5173"
        );
        assert_eq!(
            RedirectOrigin::parse("http://127.0.0.1").unwrap().as_str(),
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
            let err = RedirectOrigin::parse(raw).unwrap_err();
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn origin_lists_reject_duplicates_and_overflow() {
        let dup = vec![
            "https://a.example.com".to_string(),
            "HTTPS://A.example.com:443".to_string(),
        ];
        assert!(RedirectOrigin::parse_list(&dup)
            .unwrap_err()
            .contains("twice"));
        let many: Vec<String> = (0..11)
            .map(|i| format!("https://a{i}.example.com"))
            .collect();
        assert!(RedirectOrigin::parse_list(&many).is_err());
        assert_eq!(RedirectOrigin::parse_list(&[]).unwrap(), vec![]);
    }
}
