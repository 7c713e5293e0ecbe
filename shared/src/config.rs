//! Configuration from the environment, read once at init. Every value a function needs is
//! named here with its default, so the README's configuration table has one source.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Clone)]
pub struct Config {
    /// `TABLE_NAME`: the single DynamoDB table.
    pub table_name: String,
    /// `JWT_SIGNING_KEY_SECRET_ID`: Secrets Manager id of the access-token signing keys.
    pub jwt_signing_key_secret_id: String,
    /// `JWT_ISSUER`: the `iss` of every access token.
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_TTL_SECONDS` (default 900).
    pub access_token_ttl_secs: i64,
    /// `REFRESH_TOKEN_TTL_SECONDS` (default 30 days): a sign-in's whole session lifetime.
    pub refresh_token_ttl_secs: i64,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let seconds = |name: &'static str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<i64>() {
                    Ok(v) if (1..=max).contains(&v) => Ok(v),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected whole seconds between 1 and {max}"),
                    }),
                },
            }
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            jwt_signing_key_secret_id: required("JWT_SIGNING_KEY_SECRET_ID")?,
            jwt_issuer: get("JWT_ISSUER").unwrap_or_else(|| "saas-control-plane".to_string()),
            access_token_ttl_secs: seconds("ACCESS_TOKEN_TTL_SECONDS", 900, 24 * 3600)?,
            refresh_token_ttl_secs: seconds(
                "REFRESH_TOKEN_TTL_SECONDS",
                30 * 24 * 3600,
                365 * 24 * 3600,
            )?,
        })
    }
}

/// Password-recovery settings (`forgot-password`, `reset-password`).
#[derive(Debug, Clone)]
pub struct ResetConfig {
    /// `SENDER_EMAIL`: verified SES identity mail comes from.
    pub sender_email: String,
    /// `PASSWORD_RESET_TTL_SECONDS` (default 1800).
    pub token_ttl_secs: i64,
    /// First of `PASSWORD_RESET_ALLOWED_ORIGINS` (comma-separated), else `FRONTEND_URL`'s origin:
    /// where reset links point for users whose tenant has no redirect origin.
    pub fallback_origin: Option<crate::tenant::RedirectOrigin>,
    /// `FORGOT_PASSWORD_MIN_RESPONSE_MS` (default 400): every forgot-password answer takes at
    /// least this long, so known and unknown emails cannot be told apart by timing.
    pub min_response_ms: u64,
}

impl ResetConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64, max: u64| match set(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|v| (1..=max).contains(v))
                .ok_or(ConfigError::Invalid {
                    name,
                    reason: format!("expected a whole number between 1 and {max}"),
                }),
        };
        let fallback_origin = match (set("PASSWORD_RESET_ALLOWED_ORIGINS"), set("FRONTEND_URL")) {
            (Some(list), _) => {
                let first = list
                    .split(',')
                    .map(str::trim)
                    .find(|s| !s.is_empty())
                    .unwrap_or_default();
                Some(
                    crate::tenant::RedirectOrigin::parse(first).map_err(|reason| {
                        ConfigError::Invalid {
                            name: "PASSWORD_RESET_ALLOWED_ORIGINS",
                            reason,
                        }
                    })?,
                )
            }
            (None, Some(url)) => {
                // FRONTEND_URL may carry a path; only its origin is used.
                let origin_end = url
                    .find("://")
                    .map(|i| i + 3)
                    .and_then(|start| url[start..].find('/').map(|j| start + j))
                    .unwrap_or(url.len());
                Some(
                    crate::tenant::RedirectOrigin::parse(&url[..origin_end]).map_err(|reason| {
                        ConfigError::Invalid {
                            name: "FRONTEND_URL",
                            reason,
                        }
                    })?,
                )
            }
            (None, None) => None,
        };
        Ok(ResetConfig {
            sender_email: set("SENDER_EMAIL").ok_or(ConfigError::Missing("SENDER_EMAIL"))?,
            token_ttl_secs: number("PASSWORD_RESET_TTL_SECONDS", 1800, 24 * 3600)? as i64,
            fallback_origin,
            min_response_ms: number("FORGOT_PASSWORD_MIN_RESPONSE_MS", 400, 10_000)?,
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
        let cfg = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("JWT_SIGNING_KEY_SECRET_ID", "s"),
        ]))
        .unwrap();
        assert_eq!(cfg.access_token_ttl_secs, 900);
        assert!(matches!(
            Config::from_lookup(lookup(&[("TABLE_NAME", "t")])),
            Err(ConfigError::Missing("JWT_SIGNING_KEY_SECRET_ID"))
        ));
        let bad = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("JWT_SIGNING_KEY_SECRET_ID", "s"),
            ("ACCESS_TOKEN_TTL_SECONDS", "-5"),
        ]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn reset_fallback_origin_prefers_allowed_origins_then_frontend_url() {
        let cfg = ResetConfig::from_lookup(lookup(&[
            ("SENDER_EMAIL", "s@x.io"),
            (
                "PASSWORD_RESET_ALLOWED_ORIGINS",
                " https://a.example.com , https://b.example.com",
            ),
            ("FRONTEND_URL", "https://c.example.com"),
        ]))
        .unwrap();
        assert_eq!(
            cfg.fallback_origin.unwrap().as_str(),
            "https://a.example.com"
        );
        let cfg = ResetConfig::from_lookup(lookup(&[
            ("SENDER_EMAIL", "s@x.io"),
            ("FRONTEND_URL", "https://c.example.com/app/login"),
        ]))
        .unwrap();
        assert_eq!(
            cfg.fallback_origin.unwrap().as_str(),
            "https://c.example.com"
        );
        let cfg = ResetConfig::from_lookup(lookup(&[("SENDER_EMAIL", "s@x.io")])).unwrap();
        assert!(cfg.fallback_origin.is_none());
        assert_eq!((cfg.token_ttl_secs, cfg.min_response_ms), (1800, 400));
        assert!(ResetConfig::from_lookup(lookup(&[
            ("SENDER_EMAIL", "s@x.io"),
            ("FRONTEND_URL", "http://evil.example.com")
        ]))
        .is_err());
        assert!(matches!(
            ResetConfig::from_lookup(lookup(&[])),
            Err(ConfigError::Missing("SENDER_EMAIL"))
        ));
    }
}
