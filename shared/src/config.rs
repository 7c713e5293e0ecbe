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
}
