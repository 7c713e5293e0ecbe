//! Field rules shared by tenants and partners: display names, host names and bounded JSON
//! objects. Every refusal says which rule was broken and never repeats the value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// A refused field: the field's name and the rule, both safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct FieldError {
    pub field: String,
    pub rule: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, rule: impl fmt::Display) -> Self {
        FieldError {
            field: field.into(),
            rule: rule.to_string(),
        }
    }
}

pub const MAX_NAME_CHARS: usize = 100;

/// A display name: 1-100 characters after trimming, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be 1-{MAX_NAME_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// A DNS host name: lower-cased, at least two labels of letters, digits and inner hyphens
/// (1-63 each), 253 characters at most, no trailing dot, no IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(raw: &str) -> Option<Self> {
        let host = raw.to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let labels: Vec<&str> = host.split('.').collect();
        let ok = host.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| label_ok(l))
            // The last label of a real name is never all digits (that would be an IPv4 address).
            && !labels[labels.len() - 1].bytes().all(|b| b.is_ascii_digit());
        ok.then_some(Hostname(host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const MAX_DOMAINS: usize = 20;

/// A list of host names, deduplicated (first occurrence kept), at most `MAX_DOMAINS`. Entries
/// are named by position in errors.
pub fn domains(field: &str, raw: &[String]) -> Result<Vec<Hostname>, FieldError> {
    let mut out: Vec<Hostname> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let host = Hostname::parse(r).ok_or_else(|| {
            FieldError::new(
                format!("{field}[{i}]"),
                "must be a host name such as app.example.com",
            )
        })?;
        if !out.contains(&host) {
            out.push(host);
        }
    }
    if out.len() > MAX_DOMAINS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_DOMAINS} domains"),
        ));
    }
    Ok(out)
}

/// Bounds of a free-form JSON object (billing and contact details).
pub const MAX_OBJECT_BYTES: usize = 4096;
pub const MAX_OBJECT_DEPTH: usize = 4;

/// A JSON object of at most `MAX_OBJECT_BYTES` serialised and `MAX_OBJECT_DEPTH` levels.
/// An optional field of a partial update: absent is `None`, and `null` is refused (400) like
/// any other wrong type instead of silently meaning "no change". For
/// `#[serde(default, deserialize_with = "shared::domain::fields::not_null")]`.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

pub fn bounded_object(field: &str, value: &Value) -> Result<Map<String, Value>, FieldError> {
    let Value::Object(map) = value else {
        return Err(FieldError::new(field, "must be a JSON object"));
    };
    if value.to_string().len() > MAX_OBJECT_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_OBJECT_BYTES} bytes"),
        ));
    }
    fn depth(v: &Value) -> usize {
        match v {
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    if depth(value) > MAX_OBJECT_DEPTH {
        return Err(FieldError::new(
            field,
            format!("must nest at most {MAX_OBJECT_DEPTH} levels"),
        ));
    }
    Ok(map.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_null_in_a_partial_update_is_refused_not_ignored() {
        #[derive(serde::Deserialize, Debug)]
        struct Patch {
            #[serde(default, deserialize_with = "not_null")]
            name: Option<String>,
        }
        let parse = |v: Value| serde_json::from_value::<Patch>(v);
        assert!(parse(json!({})).unwrap().name.is_none());
        assert_eq!(
            parse(json!({"name": "a"})).unwrap().name.as_deref(),
            Some("a")
        );
        assert!(parse(json!({"name": null})).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Acme  ").unwrap(), "Acme");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", &"é".repeat(100)).is_ok());
        let err = name("name", "bad\u{7}name").unwrap_err();
        assert!(!err.to_string().contains("bad"), "{err}");
    }

    #[test]
    fn hostnames_are_checked_and_lists_deduplicated() {
        assert_eq!(
            Hostname::parse("App.Example.COM").unwrap().as_str(),
            "app.example.com"
        );
        for bad in [
            "localhost",
            "example.com.",
            "-a.example.com",
            "a_b.example.com",
            "1.2.3.4",
            "https://example.com",
            "",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(Hostname::parse(bad).is_none(), "{bad}");
        }
        let list = domains(
            "domains",
            &[
                "a.example.com".into(),
                "A.example.com".into(),
                "b.example.com".into(),
            ],
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        let err = domains("domains", &["a.example.com".into(), "evil value".into()]).unwrap_err();
        assert_eq!(err.field, "domains[1]");
        assert!(!err.to_string().contains("evil"));
        let many: Vec<String> = (0..21).map(|i| format!("h{i}.example.com")).collect();
        assert!(domains("domains", &many).is_err());
    }

    #[test]
    fn objects_are_bounded() {
        assert!(bounded_object("billing_info", &json!({"vat": "EU123"})).is_ok());
        assert!(bounded_object("billing_info", &json!([1])).is_err());
        assert!(bounded_object("billing_info", &json!("x")).is_err());
        assert!(bounded_object("billing_info", &json!({"a": "x".repeat(5000)})).is_err());
        assert!(bounded_object("billing_info", &json!({"a": {"b": {"c": {"d": {}}}}})).is_err());
        assert!(bounded_object("billing_info", &json!({"a": {"b": {"c": 1}}})).is_ok());
    }
}
