//! Impersonation: an operator acting as a user of one tenant, to see what they see. Read-only
//! unless a tenant owner approved write access first ([`Approval`]); the token itself says who
//! acts for whom (`access::impersonation`).

use crate::domain::{TenantId, UserId};
use serde::{Deserialize, Serialize};

/// Where an owner's approval of write access stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Asked for, mailed to the owners, not decided.
    Pending,
    /// An owner approved: usable once, by the operator who asked, until `expires_at`.
    Approved,
    Declined,
    /// Spent by the token exchange it allowed.
    Used,
}

crate::domain::named_enum!(ApprovalStatus {
    Pending => "pending",
    Approved => "approved",
    Declined => "declined",
    Used => "used",
});

/// An operator's request for write access as one user of one tenant, and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Random, 32 hex digits.
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub operator_id: UserId,
    pub reason: String,
    pub status: ApprovalStatus,
    pub created_at: i64,
    /// A pending request lapses at this time; an approved one can be used until it.
    pub expires_at: i64,
    pub decided_by: Option<UserId>,
    pub decided_at: Option<i64>,
}

/// An impersonation that started and has not ended yet: what the reconcile reads to record the
/// end of one whose token expired (nobody stopped it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub operator_id: UserId,
    pub write: bool,
    /// When its token expires (Unix seconds).
    pub expires_at: i64,
}

/// How long a request waits for an owner (seconds).
pub const PENDING_SECS: i64 = 24 * 3600;
/// How long an approval can be used once given (seconds).
pub const APPROVED_SECS: i64 = 30 * 60;
/// The longest an impersonation token lives (seconds); no refresh token is ever issued.
pub const MAX_TOKEN_SECS: i64 = 15 * 60;
/// How recent the operator's second factor must be for write access (seconds).
pub const WRITE_FACTOR_SECS: i64 = 5 * 60;
/// The shortest and longest reason.
pub const REASON_CHARS: std::ops::RangeInclusive<usize> = 10..=500;

/// A reason as given: trimmed, 10-500 characters, no control characters. `None` otherwise.
pub fn reason(raw: &str) -> Option<String> {
    let r = raw.trim();
    (REASON_CHARS.contains(&r.chars().count()) && !r.chars().any(char::is_control))
        .then(|| r.to_string())
}

/// [`reason`] for the body's field `field`: the answer names the field, never the value.
pub fn reason_field(field: &str, raw: &str) -> Result<String, crate::domain::fields::FieldError> {
    reason(raw).ok_or_else(|| {
        crate::domain::fields::FieldError::new(
            field,
            "must be 10-500 characters without control characters",
        )
    })
}

/// Whether `id` has the shape of an approval's or an impersonation's id (32 hex digits), so a
/// path or a token cannot smuggle key separators into store keys.
pub fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_ids() {
        assert_eq!(
            reason("  ticket 4411: login loop  ").as_deref(),
            Some("ticket 4411: login loop")
        );
        assert!(reason("too short").is_none());
        assert!(reason(&"x".repeat(501)).is_none());
        assert!(reason("ten chars\nwith a newline").is_none());
        assert!(is_id(&new_id()));
        assert!(!is_id("ABC"));
        assert!(!is_id(&format!("{}#", &new_id()[..31])));
    }
}
