//! The password policy for new passwords: 12-128 characters, not a common password (list
//! shipped in `common-passwords.txt`, compared case-insensitively), not the account's email.

use crate::domain::Email;

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 128;

const COMMON: &str = include_str!("common-passwords.txt");

/// Why a new password is refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("password is too common; choose something less guessable")]
    Common,
    #[error("password must not be the account's email address")]
    IsEmail,
}

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON
        .lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l == lower)
}

pub fn check(password: &str, email: &Email) -> Result<(), WeakPassword> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(WeakPassword::TooLong);
    }
    if password.trim().to_lowercase() == email.as_str() {
        return Err(WeakPassword::IsEmail);
    }
    if is_common(password) {
        return Err(WeakPassword::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("ana.long-address@example.com").unwrap()
    }

    #[test]
    fn policy_reasons() {
        assert_eq!(check("short", &email()), Err(WeakPassword::TooShort));
        assert_eq!(
            check(&"x".repeat(129), &email()),
            Err(WeakPassword::TooLong)
        );
        assert_eq!(check("Password1234", &email()), Err(WeakPassword::Common));
        assert_eq!(check("QWERTYUIOP123", &email()), Err(WeakPassword::Common));
        assert_eq!(
            check("Ana.Long-Address@Example.com", &email()),
            Err(WeakPassword::IsEmail)
        );
        assert_eq!(check("violet tram umbrella 42", &email()), Ok(()));
        // Length counts characters, not bytes.
        assert_eq!(check("ééééééééééé", &email()), Err(WeakPassword::TooShort));
        assert_eq!(check(&"é".repeat(128), &email()), Ok(()));
    }

    #[test]
    fn shipped_list_is_nonempty_and_lower_case() {
        let words: Vec<&str> = COMMON.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(words.len() > 400, "{}", words.len());
        assert!(words
            .iter()
            .all(|w| *w == w.to_lowercase() && w.chars().count() >= MIN_CHARS));
    }
}
