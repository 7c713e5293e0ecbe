//! Domain types parsed once at the edge: once an `Email` or `UserId` exists it is valid, so
//! handlers and the store never re-check shape.

pub mod fields;
pub mod flag;
pub mod impersonation;
pub mod partner;
pub mod plan;
pub mod tenant;

use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised (trimmed, lower-cased) email address with a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidEmail(&'static str);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(InvalidEmail("email must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(InvalidEmail("email is too long"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(InvalidEmail("email must contain '@'"));
        };
        // The addr-spec's dot-atom on both sides (RFC 5322 3.4.1), ASCII only: no quoted
        // local parts, comments, display names or list separators, so the stored address is
        // exactly the mailbox SES delivers to.
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_atom = |part: &str, ok: &dyn Fn(char) -> bool| {
            !part.is_empty() && part.split('.').all(|a| !a.is_empty() && a.chars().all(ok))
        };
        if local.len() > 64 || !dot_atom(local, &atext) {
            return Err(InvalidEmail("email has an invalid local part"));
        }
        let label = |c: char| c.is_ascii_alphanumeric() || c == '-';
        if !dot_atom(domain, &label)
            || domain
                .split('.')
                .any(|l| l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
        {
            return Err(InvalidEmail("email has an invalid domain"));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user's stable identifier (UUID v4, hyphenated).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn new_random() -> Self {
        UserId(uuid::Uuid::new_v4().to_string())
    }

    /// The platform itself, as the actor of what no person did (provisioning, the reconcile):
    /// the nil UUID, which no account ever has.
    pub fn system() -> Self {
        UserId(uuid::Uuid::nil().hyphenated().to_string())
    }

    /// Accepts only the canonical UUID form, so ids from tokens or paths cannot smuggle key
    /// separators into store keys.
    pub fn parse(raw: &str) -> Option<Self> {
        uuid::Uuid::parse_str(raw)
            .ok()
            .filter(|u| u.hyphenated().to_string() == raw)
            .map(|_| UserId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifiers of tenants and partners: 32 lower-case hex digits (a UUID v4 without hyphens).
/// Each kind is its own type, so a tenant id can never be passed where a partner's or a
/// user's is expected, and a parsed id cannot smuggle key separators into store keys.
macro_rules! hex_id {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            pub fn new_random() -> Self {
                $ty(uuid::Uuid::new_v4().simple().to_string())
            }

            pub fn parse(raw: &str) -> Option<Self> {
                (raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                    .then(|| $ty(raw.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hex_id!(
    /// A tenant's stable identifier (its slug is its public name).
    TenantId
);
hex_id!(
    /// A partner's (reseller's) stable identifier.
    PartnerId
);
hex_id!(
    /// A registered tenant database's identifier.
    DatabaseId
);

/// Who a token is for: tenant users (`portal`) or platform staff (`operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    Portal,
    Operator,
}

/// A fieldless enum's one mapping to and from its stored (and serialized) name, so the store
/// and the API can never disagree.
macro_rules! named_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(Audience { Portal => "portal", Operator => "operator" });

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    /// Invited to a tenant or partner and has not yet set a password: cannot sign in.
    Invited,
    Disabled,
}

/// A user's role within one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

named_enum!(UserStatus { Active => "active", Invited => "invited", Disabled => "disabled" });
named_enum!(Role { Owner => "owner", Admin => "admin", Member => "member" });

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub password_hash: String,
    /// Stored platform-admin flag: the only thing that lets a user act as an operator.
    pub platform_admin: bool,
    pub status: UserStatus,
    /// Bumped whenever every session of the user must end (password reset, forced sign-out).
    /// Refresh tokens remember the epoch they were issued under and die when it moves.
    pub session_epoch: u64,
    /// Bumped by every password-reset request and every reset: only tokens of the current
    /// generation can be spent.
    pub reset_generation: u64,
    /// Set when the user proves the address (accepting an invitation, resetting the password).
    pub email_verified: bool,
    /// When the user last signed in (Unix seconds), if ever.
    pub last_sign_in_at: Option<i64>,
    pub created_at: i64,
    /// The display name the user gave themself (self-service), if any.
    pub name: Option<String>,
    /// The user's confirmed second factors.
    pub factors: Factors,
}

/// A user's confirmed second factors, as the user record counts them: every change of them is
/// conditioned on what it read (`UserEdit::factors`), so "an operator keeps one" holds under
/// concurrency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Factors {
    /// An authenticator app (TOTP).
    pub totp: bool,
    /// Registered passkeys.
    pub passkeys: u32,
}

impl Factors {
    /// Whether there is any: a correct password then answers with a challenge, and tokens come
    /// only after the factor.
    pub fn any(self) -> bool {
        self.totp || self.passkeys > 0
    }
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }

    /// Whether the user has a confirmed second factor.
    pub fn mfa(&self) -> bool {
        self.factors.any()
    }

    /// What decides whether the account counts as an operator (see [`Account::operator_weight`]).
    pub fn account(&self) -> Account {
        Account {
            status: self.status,
            platform_admin: self.platform_admin,
        }
    }
}

/// The two fields of a user that decide who may run the platform: its status and its stored
/// platform-admin flag. A change of either is conditioned on both (`Change::UpdateUser`), and
/// moves the platform's operator count in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub status: UserStatus,
    pub platform_admin: bool,
}

impl Account {
    /// 1 for an account that is, or will be once it accepts its invitation, an operator who can
    /// act (flag set, not disabled); 0 otherwise. The platform's operator count is the sum of
    /// these, and no change may take it below 1 ("never the last operator").
    pub fn operator_weight(self) -> i64 {
        i64::from(self.platform_admin && self.status != UserStatus::Disabled)
    }
}

/// A user's membership of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub tenant_id: TenantId,
    pub tenant_slug: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_their_canonical_form() {
        let t = TenantId::new_random();
        assert_eq!(TenantId::parse(t.as_str()), Some(t.clone()));
        for bad in [
            "",
            "ABCDEF0123456789abcdef0123456789",
            "x#y",
            &format!("{t}0"),
        ] {
            assert_eq!(TenantId::parse(bad), None, "{bad}");
        }
        assert!(PartnerId::parse(t.as_str()).is_some());
    }

    #[test]
    fn email_is_normalised_and_validated() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "no-at-sign",
            "@example.com",
            "ana@",
            "a b@example.com",
            "ana@.com",
            "ana@x..com",
            "a@b@c",
            // Not addr-spec characters: what a mail header would read as something else.
            "<ana@example.com>",
            "ana@example.com>",
            "\"ana\"@example.com",
            "ana,bob@example.com",
            "ana@example.com;bob@example.org",
            "ana(comment)@example.com",
            ".ana@example.com",
            "ana.@example.com",
            "an..a@example.com",
            "ana@-example.com",
            "ana@exa_mple.com",
            "ana@exämple.com",
            "anä@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
        for good in [
            "ana.long+tag@example.co.uk",
            "o'brien@xn--exmple-cua.com",
            "a_b-c@sub-1.example.com",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn user_id_accepts_only_canonical_uuids() {
        let id = UserId::new_random();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert!(UserId::parse(&id.as_str().to_uppercase()).is_none());
        assert!(UserId::parse("USER#x").is_none());
        assert!(UserId::parse("").is_none());
    }
}

#[cfg(test)]
mod named_enum_tests {
    use super::*;

    #[test]
    fn stored_names_match_serde_names_and_round_trip() {
        fn check<T: Serialize + Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            name: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for &v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), name(v));
                assert_eq!(parse(name(v)), Some(v));
            }
            assert_eq!(parse("nope"), None);
        }
        check(Audience::ALL, Audience::as_str, Audience::parse);
        check(UserStatus::ALL, UserStatus::as_str, UserStatus::parse);
        check(Role::ALL, Role::as_str, Role::parse);
    }
}
