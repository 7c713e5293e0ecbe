//! Configuration from the environment, read once at init. Every value a function needs is
//! named here with its default, so the README's configuration table has one source.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// `JWT_ISSUER`: the `iss` of every access token.
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_TTL_SECONDS` (default 900).
    pub access_token_ttl_secs: i64,
    /// `REFRESH_TOKEN_TTL_SECONDS` (default 30 days): a sign-in's whole session lifetime.
    pub refresh_token_ttl_secs: i64,
    /// `REFRESH_REUSE_GRACE_SECONDS` (default 10): a refresh token presented again this soon
    /// after it was rotated is a concurrent refresh (two tabs), not a theft.
    pub refresh_reuse_grace_secs: i64,
    /// `JWT_KEYS_REFRESH_SECONDS` (default 300): how often access-token keys are read again.
    pub keys_refresh_secs: u64,
    /// `LOCAL_MODE` (default false): plain `http` origins are accepted. Only `make dev` and
    /// `make test` turn it on.
    pub local_mode: bool,
    /// `OPERATOR_MFA`: `required` (the default) or `optional`. Required, an operator token of
    /// an account without a second factor can do nothing but enroll one.
    pub operator_mfa_required: bool,
    /// `IMPERSONATION_TTL_SECONDS`: how long an impersonation token lives (900, at most).
    pub impersonation_ttl_secs: i64,
}

/// Reads variables through `get`, naming each one in its error.
struct Vars<F>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn set(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.set(name).ok_or(ConfigError::Missing(name))
    }

    fn number(&self, name: &'static str, default: i64, max: i64) -> Result<i64, ConfigError> {
        match self.set(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|v| (0..=max).contains(v))
                .ok_or(ConfigError::Invalid {
                    name,
                    reason: format!("expected a whole number between 0 and {max}"),
                }),
        }
    }

    fn positive(&self, name: &'static str, default: i64, max: i64) -> Result<i64, ConfigError> {
        match self.number(name, default, max)? {
            0 => Err(ConfigError::Invalid {
                name,
                reason: format!("expected a whole number between 1 and {max}"),
            }),
            v => Ok(v),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.set(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(_) => Err(ConfigError::Invalid {
                name,
                reason: "expected true or false".into(),
            }),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars(get);
        Ok(Config {
            table_name: v.required("TABLE_NAME")?,
            jwt_issuer: v
                .set("JWT_ISSUER")
                .unwrap_or_else(|| "saas-control-plane".to_string()),
            access_token_ttl_secs: v.positive("ACCESS_TOKEN_TTL_SECONDS", 900, 24 * 3600)?,
            refresh_token_ttl_secs: v.positive(
                "REFRESH_TOKEN_TTL_SECONDS",
                30 * 24 * 3600,
                365 * 24 * 3600,
            )?,
            refresh_reuse_grace_secs: v.number("REFRESH_REUSE_GRACE_SECONDS", 10, 300)?,
            keys_refresh_secs: v.positive("JWT_KEYS_REFRESH_SECONDS", 300, 24 * 3600)? as u64,
            local_mode: v.flag("LOCAL_MODE")?,
            impersonation_ttl_secs: v.positive(
                "IMPERSONATION_TTL_SECONDS",
                crate::domain::impersonation::MAX_TOKEN_SECS,
                crate::domain::impersonation::MAX_TOKEN_SECS,
            )?,
            operator_mfa_required: match v.set("OPERATOR_MFA").as_deref() {
                None | Some("required") => true,
                Some("optional") => false,
                Some(_) => {
                    return Err(ConfigError::Invalid {
                        name: "OPERATOR_MFA",
                        reason: "expected required or optional".into(),
                    })
                }
            },
        })
    }

    /// The secret this function's access-token keys come from: `JWT_SIGNING_KEY_SECRET_ID`
    /// (private keys; `login` only) or `JWT_PUBLIC_KEYS_SECRET_ID` (public keys).
    pub fn key_secret_id(&self, signing: bool) -> Result<String, ConfigError> {
        let name = if signing {
            "JWT_SIGNING_KEY_SECRET_ID"
        } else {
            "JWT_PUBLIC_KEYS_SECRET_ID"
        };
        Vars(|n: &str| std::env::var(n).ok()).required(name)
    }
}

/// Where links in platform mail point (reset links now, invitations later).
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `PLATFORM_ORIGIN` (required): the platform's own origin. Links point here unless the
    /// user belongs to exactly one tenant and holds no platform or partner role.
    pub platform_origin: crate::domain::tenant::RedirectOrigin,
}

impl LinkConfig {
    pub fn from_env(local_mode: bool) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), local_mode)
    }

    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        local_mode: bool,
    ) -> Result<Self, ConfigError> {
        let raw = Vars(get).required("PLATFORM_ORIGIN")?;
        let platform_origin = crate::domain::tenant::RedirectOrigin::parse(&raw, local_mode)
            .map_err(|why| ConfigError::Invalid {
                name: "PLATFORM_ORIGIN",
                reason: why.to_string(),
            })?;
        Ok(LinkConfig { platform_origin })
    }
}

/// Mail settings (`SENDER_EMAIL`).
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `SENDER_EMAIL`: verified SES identity mail comes from.
    pub sender_email: String,
}

impl MailConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(MailConfig {
            sender_email: Vars(|n: &str| std::env::var(n).ok()).required("SENDER_EMAIL")?,
        })
    }
}

/// Where domain events go (`EVENT_BUS_NAME`, the EventBridge bus).
#[derive(Debug, Clone)]
pub struct EventConfig {
    pub bus_name: String,
}

impl EventConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(EventConfig {
            bus_name: Vars(|n: &str| std::env::var(n).ok()).required("EVENT_BUS_NAME")?,
        })
    }
}

/// Storage settings (`presign`).
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `BUCKET_NAME`: the tenants' bucket.
    pub bucket: String,
    /// `PRESIGN_EXPIRES_SECONDS` (default 900, at most 3600): a link's lifetime unless asked.
    pub expires_secs: u64,
}

impl StorageConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars(get);
        Ok(StorageConfig {
            bucket: v.required("BUCKET_NAME")?,
            expires_secs: v.positive("PRESIGN_EXPIRES_SECONDS", 900, 3600)? as u64,
        })
    }
}

/// The built-in plans' limits until the catalogue stores them (`crate::domain::plan`):
/// `UPLOAD_MAX_BYTES_FREE` / `_PRO` / `_ENTERPRISE` (10 MiB, 100 MiB, 1 GiB, the largest
/// upload) and `MAX_DATABASES_PER_TENANT` (10), the limits of before plans were kept.
pub fn builtin_plans_from_env() -> Result<crate::domain::plan::BuiltinPlans, ConfigError> {
    builtin_plans_from_lookup(|name| std::env::var(name).ok())
}

pub fn builtin_plans_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<crate::domain::plan::BuiltinPlans, ConfigError> {
    let v = Vars(get);
    let d = crate::domain::plan::BuiltinPlans::default();
    let max = crate::domain::plan::MAX_UPLOAD_BYTES;
    Ok(crate::domain::plan::BuiltinPlans {
        max_upload_bytes: [
            v.positive("UPLOAD_MAX_BYTES_FREE", d.max_upload_bytes[0], max)?,
            v.positive("UPLOAD_MAX_BYTES_PRO", d.max_upload_bytes[1], max)?,
            v.positive("UPLOAD_MAX_BYTES_ENTERPRISE", d.max_upload_bytes[2], max)?,
        ],
        databases: v.positive("MAX_DATABASES_PER_TENANT", d.databases, 1000)?,
    })
}

/// Query-router settings.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// `DATA_KEY_SECRET_ID`: the secret holding the data key (32 bytes, base64).
    pub data_key_secret_id: String,
    /// `ALLOW_PRIVATE_DATABASE_HOSTS` (default false): loopback and private hosts may be
    /// registered. Only the local emulator turns it on.
    pub allow_private_hosts: bool,
    /// `ALLOW_PLAINTEXT_DATABASES` (default false): `sslmode=disable` may be registered and
    /// used. Off on AWS unless the operator turns it on; `make dev` and `make test` turn it on.
    pub allow_plaintext: bool,
    /// `QUERY_TIMEOUT_MS` (default 5000): each query's statement timeout.
    pub statement_timeout_ms: u64,
}

impl QueryConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let v = Vars(|n: &str| std::env::var(n).ok());
        Ok(QueryConfig {
            data_key_secret_id: v.required("DATA_KEY_SECRET_ID")?,
            allow_private_hosts: v.flag("ALLOW_PRIVATE_DATABASE_HOSTS")?,
            allow_plaintext: v.flag("ALLOW_PLAINTEXT_DATABASES")?,
            statement_timeout_ms: v.positive("QUERY_TIMEOUT_MS", 5000, 60_000)? as u64,
        })
    }
}

/// Password-recovery settings (`forgot-password`).
#[derive(Debug, Clone)]
pub struct ResetConfig {
    /// `PASSWORD_RESET_TTL_SECONDS` (default 1800).
    pub token_ttl_secs: i64,
    /// `FORGOT_PASSWORD_MIN_RESPONSE_MS` (default 400): every forgot-password answer takes at
    /// least this long, so known and unknown emails cannot be told apart by timing.
    pub min_response_ms: u64,
}

impl ResetConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars(get);
        Ok(ResetConfig {
            token_ttl_secs: v.positive("PASSWORD_RESET_TTL_SECONDS", 1800, 24 * 3600)?,
            min_response_ms: v.positive("FORGOT_PASSWORD_MIN_RESPONSE_MS", 400, 10_000)? as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply_and_required_values_are_enforced() {
        let cfg = Config::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap();
        assert_eq!(cfg.access_token_ttl_secs, 900);
        assert_eq!(cfg.refresh_reuse_grace_secs, 10);
        assert!(!cfg.local_mode);
        assert!(matches!(
            Config::from_lookup(lookup(&[])),
            Err(ConfigError::Missing("TABLE_NAME"))
        ));
        let bad = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("ACCESS_TOKEN_TTL_SECONDS", "-5"),
        ]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
        let bad = Config::from_lookup(lookup(&[("TABLE_NAME", "t"), ("LOCAL_MODE", "yes")]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
        let zero_grace = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("REFRESH_REUSE_GRACE_SECONDS", "0"),
        ]))
        .unwrap();
        assert_eq!(zero_grace.refresh_reuse_grace_secs, 0);
    }

    #[test]
    fn platform_origin_is_required_and_http_only_in_local_mode() {
        assert!(matches!(
            LinkConfig::from_lookup(lookup(&[]), true),
            Err(ConfigError::Missing("PLATFORM_ORIGIN"))
        ));
        let local = [("PLATFORM_ORIGIN", "http://127.0.0.1:3000")];
        assert_eq!(
            LinkConfig::from_lookup(lookup(&local), true)
                .unwrap()
                .platform_origin
                .as_str(),
            "http://127.0.0.1:3000"
        );
        assert!(LinkConfig::from_lookup(lookup(&local), false).is_err());
        let https = [("PLATFORM_ORIGIN", "https://console.example.com")];
        assert!(LinkConfig::from_lookup(lookup(&https), false).is_ok());
    }

    #[test]
    fn reset_defaults() {
        let cfg = ResetConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!((cfg.token_ttl_secs, cfg.min_response_ms), (1800, 400));
        assert!(ResetConfig::from_lookup(lookup(&[("PASSWORD_RESET_TTL_SECONDS", "0")])).is_err());
    }
}

/// Provisioning and offboarding settings (`tenants`, `provision-step`, `reconcile`).
#[derive(Debug, Clone)]
pub struct ProvisioningConfig {
    /// `RECOVERY_WINDOW_SECONDS` (default 7 days, at most 30): how long a deleted tenant can be
    /// restored. Its secret is scheduled for deletion with a recovery window of this many days
    /// (rounded up, and within Secrets Manager's 7-30); after it the reconcile purges.
    pub recovery_window_secs: i64,
    /// `PROVISIONING_STALE_SECONDS` (default 300): a tenant still `provisioning` this long after
    /// its last change, with no run holding it, is re-driven by the scheduled reconcile.
    pub stale_after_secs: i64,
    /// `PARTNER_MAX_TENANTS` (default 500): the most live (not deleted) tenants a partner's
    /// admins may have created for it; operators are not held to it. Each tenant costs a
    /// secret, a state machine run and a mail.
    pub partner_max_tenants: i64,
}

impl ProvisioningConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let v = Vars(get);
        Ok(ProvisioningConfig {
            recovery_window_secs: v.positive(
                "RECOVERY_WINDOW_SECONDS",
                7 * 24 * 3600,
                30 * 24 * 3600,
            )?,
            stale_after_secs: v.number("PROVISIONING_STALE_SECONDS", 300, 24 * 3600)?,
            partner_max_tenants: v.positive("PARTNER_MAX_TENANTS", 500, 1_000_000)?,
        })
    }

    /// The secret's recovery window in days, as Secrets Manager takes it (7 to 30).
    pub fn secret_recovery_days(&self) -> i64 {
        ((self.recovery_window_secs + 86_399) / 86_400).clamp(7, 30)
    }
}
