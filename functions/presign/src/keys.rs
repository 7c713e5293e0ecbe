//! Object keys: what a client may name, and where it lands. Every key is relative to the
//! tenant's own prefix (`tenants/<tenant id>/`), so no key a client sends can reach another
//! tenant's objects.

use shared::domain::TenantId;

pub const MAX_KEY_BYTES: usize = 512;

/// Why a key was refused; the messages never repeat the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    #[error("must be 1-{MAX_KEY_BYTES} bytes of UTF-8")]
    Length,
    #[error("must not start with /")]
    Absolute,
    #[error("must not contain a .. segment")]
    DotDot,
    #[error("must not contain control characters")]
    Control,
    #[error("must not contain an empty or . segment")]
    EmptySegment,
}

/// The client's key, checked.
pub fn check(raw: &str) -> Result<&str, InvalidKey> {
    if raw.is_empty() || raw.len() > MAX_KEY_BYTES {
        return Err(InvalidKey::Length);
    }
    if raw.starts_with('/') {
        return Err(InvalidKey::Absolute);
    }
    if raw.chars().any(char::is_control) {
        return Err(InvalidKey::Control);
    }
    // Backslashes count as separators too: some clients and tools treat them so.
    for segment in raw.split(['/', '\\']) {
        match segment {
            ".." => return Err(InvalidKey::DotDot),
            "" | "." => return Err(InvalidKey::EmptySegment),
            _ => {}
        }
    }
    Ok(raw)
}

/// The tenant's prefix in the bucket.
pub fn prefix(tenant: &TenantId) -> String {
    format!("tenants/{tenant}/")
}

/// The full object key of the client's (checked) key.
pub fn object_key(tenant: &TenantId, key: &str) -> String {
    format!("{}{key}", prefix(tenant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_under_the_tenant_prefix() {
        let t = TenantId::new_random();
        assert_eq!(
            object_key(&t, check("docs/a.txt").unwrap()),
            format!("tenants/{t}/docs/a.txt")
        );
        let other = TenantId::new_random();
        // Naming another tenant's path only nests it under our own prefix.
        let nested = object_key(&t, check(&format!("tenants/{other}/x")).unwrap());
        assert!(nested.starts_with(&prefix(&t)));
    }

    #[test]
    fn bad_keys_are_refused_without_echo() {
        for (raw, why) in [
            ("", InvalidKey::Length),
            ("/etc/passwd", InvalidKey::Absolute),
            ("a/../b", InvalidKey::DotDot),
            ("..", InvalidKey::DotDot),
            ("a\\..\\b", InvalidKey::DotDot),
            ("a\u{0}b", InvalidKey::Control),
            ("a\nb", InvalidKey::Control),
            ("a//b", InvalidKey::EmptySegment),
            ("a/./b", InvalidKey::EmptySegment),
            ("a/", InvalidKey::EmptySegment),
        ] {
            assert_eq!(check(raw), Err(why), "{raw:?}");
        }
        assert_eq!(check(&"x".repeat(513)), Err(InvalidKey::Length));
        assert!(check(&"é".repeat(256)).is_ok());
        assert!(check("a..b/c.d").is_ok());
    }
}
