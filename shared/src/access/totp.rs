//! Time-based one-time passwords (TOTP, RFC 6238 over HOTP, RFC 4226) as a second factor, and
//! the recovery codes that stand in for the authenticator when it is lost. Pure and synchronous:
//! the caller keeps the secret (sealed with `crypto::DataKey`), the last accepted time step and
//! the recovery-code hashes in its store.
//!
//! The parameters are the ones every authenticator app supports and most assume whatever the
//! URI says: HMAC-SHA1, 6 digits, 30-second steps, a 20-byte (160-bit) secret as RFC 4226
//! recommends. SHA-1 is fine here: HOTP relies on HMAC's pseudo-randomness, which collisions in
//! SHA-1 do not break, and apps that honour `algorithm=SHA256` are too few to rely on.
//!
//! A code is accepted for the current step and one step either side (clock drift between the
//! phone and us), and only once: `verify` returns the step it matched, the caller stores it and
//! makes its write conditional on it, and a later `verify` refuses that step and every earlier
//! one. Without that, a code read over a shoulder or phished stays good for up to 90 seconds.

use super::{constant_time_eq, sha256_hex};
use aws_lc_rs::hmac;
use data_encoding::BASE32_NOPAD;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use std::fmt;
use subtle::{Choice, ConditionallySelectable};

/// Length of a secret: the HMAC-SHA1 output length, RFC 4226's recommended size.
pub const SECRET_BYTES: usize = 20;
/// Digits in a code.
pub const DIGITS: usize = 6;
/// Length of a time step, in seconds.
pub const PERIOD_SECS: i64 = 30;
/// 10^DIGITS: a code is the truncated HMAC value modulo this.
const MODULUS: u32 = 1_000_000;
/// Steps accepted either side of the current one.
const DRIFT_STEPS: u64 = 1;
/// Length of an HMAC-SHA1 tag.
const SHA1_OUTPUT_LEN: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a TOTP secret must be {SECRET_BYTES} bytes, not {0}")]
    SecretLength(usize),
}

/// The shared key between us and the user's authenticator. Its `Debug` prints no byte of it,
/// so a secret that reaches a log line or an error message by accident stays secret.
#[derive(Clone)]
pub struct TotpSecret([u8; SECRET_BYTES]);

impl TotpSecret {
    /// A fresh secret from the OS CSPRNG, for enrolment.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// A stored secret (as unsealed from the store). Any length but `SECRET_BYTES` is refused:
    /// it would be a corrupt record or someone else's format, not a shorter secret to accept.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        <[u8; SECRET_BYTES]>::try_from(bytes)
            .map(TotpSecret)
            .map_err(|_| TotpError::SecretLength(bytes.len()))
    }

    /// The raw bytes, to seal and store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32, upper case, no padding: what authenticator apps take when the user types
    /// the key instead of scanning the QR code, and what `otpauth_uri` carries.
    pub fn base32(&self) -> String {
        // `data-encoding`: a small, dependency-free, widely used crate whose encodings are
        // checked against the RFC 4648 vectors; no reason to hand-write one.
        BASE32_NOPAD.encode(&self.0)
    }

    /// From the base32 text an authenticator app is given (what a client that holds the
    /// secret, such as a test or a script, computes codes from).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = BASE32_NOPAD
            .decode(text.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| TotpError::SecretLength(0))?;
        Self::from_bytes(&bytes)
    }

    fn hmac_key(&self) -> hmac::Key {
        // `Key::new` panics only if aws-lc cannot allocate its context, never on the key's
        // content: any byte string is a valid HMAC key.
        hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.0)
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// RFC 3986's unreserved characters stay; everything else in a label or parameter value is
/// percent-encoded, so a `:` in the issuer cannot split the label, a `&` or `=` cannot add a
/// parameter, and a `+` is not read back as a space by a form decoder.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `otpauth://` URI (Google's Key URI format) that the enrolment page shows as a QR code:
/// `otpauth://totp/<issuer>:<account>?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`.
/// The issuer is in both the label and the parameter because older apps read only the label and
/// newer ones prefer the parameter. With an empty issuer the label is the account alone and the
/// parameter is left out, rather than an empty name the app would show.
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let account = utf8_percent_encode(account, COMPONENT);
    let secret = secret.base32();
    let tail = format!("algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}");
    if issuer.is_empty() {
        format!("otpauth://totp/{account}?secret={secret}&{tail}")
    } else {
        let issuer = utf8_percent_encode(issuer, COMPONENT);
        format!("otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&{tail}")
    }
}

/// RFC 4226 dynamic truncation of HMAC-SHA1(key, counter): the 31-bit value that codes of any
/// length are taken from.
fn truncated(key: &hmac::Key, counter: u64) -> u32 {
    let tag = hmac::sign(key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // An HMAC-SHA1 tag is always 20 bytes, and the offset is at most 15, so every index below
    // is in bounds.
    let offset = usize::from(mac[SHA1_OUTPUT_LEN - 1] & 0x0f);
    u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ])
}

/// The 6-digit HOTP value for `counter` (RFC 4226), as a number: `code_at` pads it.
pub fn hotp(secret: &TotpSecret, counter: u64) -> u32 {
    truncated(&secret.hmac_key(), counter) % MODULUS
}

/// The time step of a Unix time; `None` before 1970, when no step exists.
fn step_of(unix_secs: i64) -> Option<u64> {
    u64::try_from(unix_secs)
        .ok()
        .map(|t| t / PERIOD_SECS as u64)
}

/// Six zero-padded digits, as the bytes a presented code is compared with.
fn code_bytes(value: u32) -> [u8; DIGITS] {
    let mut out = [b'0'; DIGITS];
    let mut rest = value;
    for digit in out.iter_mut().rev() {
        // `rest % 10` is below 10, so the cast cannot truncate.
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out
}

/// The code an authenticator shows at `unix_secs` (zero-padded, 6 digits). A time before 1970
/// is taken as step 0: this is for tests and tooling, and `verify` refuses such a clock.
pub fn code_at(secret: &TotpSecret, unix_secs: i64) -> String {
    let value = hotp(secret, step_of(unix_secs).unwrap_or(0));
    code_bytes(value).iter().map(|&b| char::from(b)).collect()
}

/// The six ASCII digits of a presented code, or `None` if it is not one: surrounding whitespace
/// is trimmed and a single space in the middle is allowed ("123 456", as apps display it);
/// anything else (other lengths, letters, signs, non-ASCII digits such as Arabic-Indic ones) is
/// refused before any HMAC is computed.
fn parse_code(code: &str) -> Option<[u8; DIGITS]> {
    let trimmed = code.trim().as_bytes();
    let half = DIGITS / 2;
    let digits: Vec<u8> = match trimmed.len() {
        DIGITS => trimmed.to_vec(),
        n if n == DIGITS + 1 && trimmed[half] == b' ' => trimmed
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != half)
            .map(|(_, &b)| b)
            .collect(),
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    <[u8; DIGITS]>::try_from(digits).ok()
}

/// Checks a presented code at `now_unix` and returns the time step it matched, which the caller
/// must store (conditioning its write on the value it read) and pass back as `last_used_step`.
///
/// Steps `now - 1`, `now` and `now + 1` are candidates, and any step at or before
/// `last_used_step` is refused, so each code is accepted once and never an older one after a
/// newer one. Every candidate's code is computed and compared in constant time, with no early
/// exit, so the response time does not tell which step (if any) matched. If two candidates
/// share the code (about one in a million), the latest is returned, which closes the most steps.
///
/// A malformed code, or a clock before 1970, is `None` without computing anything.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix: i64,
    last_used_step: Option<u64>,
) -> Option<u64> {
    let presented = parse_code(code)?;
    let now = step_of(now_unix)?;
    let key = secret.hmac_key();
    let first = now.saturating_sub(DRIFT_STEPS);
    let last = now.saturating_add(DRIFT_STEPS);
    let mut found = Choice::from(0);
    let mut matched = 0u64;
    for step in first..=last {
        let expected = code_bytes(truncated(&key, step) % MODULUS);
        // Not secret (the caller knows the last step), but folded in without a branch anyway.
        let fresh = last_used_step.is_none_or(|used| step > used);
        let hit = Choice::from(u8::from(constant_time_eq(&presented, &expected) & fresh));
        matched = u64::conditional_select(&matched, &step, hit);
        found |= hit;
    }
    bool::from(found).then_some(matched)
}

/// Number of recovery codes issued at once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Characters in a recovery code, without the display hyphen.
pub const RECOVERY_CODE_CHARS: usize = 10;
/// Lower-case letters and digits without the look-alikes 0/o, 1/l/i: 31 symbols, so a code
/// carries 10 * log2(31) ≈ 49.5 bits, and a user copying one from paper cannot mistype a
/// character into another valid one.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// One-time codes that replace the authenticator once each (the caller deletes a hash when it is
/// used). Shown to the user once, grouped `xxxxx-xxxxx`; only their hashes are stored.
pub struct RecoveryCodes;

impl RecoveryCodes {
    /// `RECOVERY_CODE_COUNT` distinct codes from the OS CSPRNG, as (plaintext to show, hashes to
    /// store), in the same order. Each character is drawn uniformly (`gen_range` rejects the
    /// bias of a plain modulo).
    pub fn generate() -> (Vec<String>, Vec<String>) {
        let mut plaintext: Vec<String> = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while plaintext.len() < RECOVERY_CODE_COUNT {
            let raw: String = (0..RECOVERY_CODE_CHARS)
                .map(|_| char::from(RECOVERY_ALPHABET[OsRng.gen_range(0..RECOVERY_ALPHABET.len())]))
                .collect();
            let (head, tail) = raw.split_at(RECOVERY_CODE_CHARS / 2);
            let shown = format!("{head}-{tail}");
            // A repeat is astronomically unlikely, but two equal codes would be one code.
            if plaintext.contains(&shown) {
                continue;
            }
            hashes.push(sha256_hex(raw.as_bytes()));
            plaintext.push(shown);
        }
        (plaintext, hashes)
    }
}

/// The canonical form of a presented recovery code: surrounding whitespace trimmed, hyphens and
/// spaces removed, ASCII lower-cased; `None` unless exactly `RECOVERY_CODE_CHARS` characters of
/// the alphabet remain. Only ASCII is lower-cased, so no Unicode character (the Kelvin sign,
/// say) folds into a valid one.
pub fn normalise_recovery_code(code: &str) -> Option<String> {
    let mut out = String::with_capacity(RECOVERY_CODE_CHARS);
    for c in code.trim().chars() {
        if c == '-' || c == ' ' {
            continue;
        }
        let lower = c.to_ascii_lowercase();
        let known = u8::try_from(lower).is_ok_and(|b| RECOVERY_ALPHABET.contains(&b));
        if !known || out.len() == RECOVERY_CODE_CHARS {
            return None;
        }
        out.push(lower);
    }
    (out.len() == RECOVERY_CODE_CHARS).then_some(out)
}

/// The stored hash of a presented recovery code, or `None` if it cannot be one. A plain SHA-256
/// is right here, unlike for passwords: the codes are random with ~49.5 bits each, not chosen by
/// people, so there is no dictionary for a slow hash to slow down, and a code only stands in for
/// the second factor (the password, Argon2-hashed, is still needed); lookups stay cheap.
pub fn recovery_code_hash(code: &str) -> Option<String> {
    normalise_recovery_code(code).map(|c| sha256_hex(c.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226 Appendix D and RFC 6238 Appendix B (SHA-1): the ASCII secret "1234567890" twice.
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    #[test]
    fn hotp_matches_rfc_4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        let secret = rfc_secret();
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp(&secret, counter as u64), want, "counter {counter}");
        }
    }

    #[test]
    fn totp_matches_rfc_6238_appendix_b_sha1() {
        let vectors: [(i64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        let secret = rfc_secret();
        let key = secret.hmac_key();
        for (time, eight) in vectors {
            let step = (time / PERIOD_SECS) as u64;
            // The RFC's 8-digit values come from the same truncated value.
            assert_eq!(truncated(&key, step) % 100_000_000, eight, "time {time}");
            assert_eq!(hotp(&secret, step), eight % MODULUS, "time {time}");
            assert_eq!(
                code_at(&secret, time),
                format!("{:06}", eight % MODULUS),
                "time {time}"
            );
        }
        // Zero padding: the 1111111109 code starts with a zero.
        assert_eq!(code_at(&secret, 1111111109), "081804");
    }

    #[test]
    fn base32_of_the_rfc_secret() {
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn secrets_are_twenty_random_bytes_and_round_trip() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_BYTES);
        assert_ne!(a.as_bytes(), b.as_bytes());
        let back = TotpSecret::from_bytes(a.as_bytes()).unwrap();
        assert_eq!(back.as_bytes(), a.as_bytes());
        assert_eq!(a.base32().len(), 32);
        for len in [0, 16, 19, 21, 32] {
            assert_eq!(
                TotpSecret::from_bytes(&vec![7u8; len]).unwrap_err(),
                TotpError::SecretLength(len)
            );
        }
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let secret = rfc_secret();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("GEZDGNBV"), "{shown}");
        assert!(!shown.contains("49"), "{shown}"); // b'1' as a number
        assert!(!shown.contains("1234"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    const NOW: i64 = 1111111111;

    fn step_now() -> u64 {
        (NOW / PERIOD_SECS) as u64
    }

    fn code_for_step(secret: &TotpSecret, step: u64) -> String {
        code_at(secret, step as i64 * PERIOD_SECS)
    }

    #[test]
    fn verify_accepts_one_step_of_drift_each_way_and_no_more() {
        let secret = rfc_secret();
        let now = step_now();
        for step in [now - 1, now, now + 1] {
            let code = code_for_step(&secret, step);
            assert_eq!(verify(&secret, &code, NOW, None), Some(step), "step {step}");
        }
        for step in [now - 3, now - 2, now + 2, now + 3] {
            let code = code_for_step(&secret, step);
            // The vectors' codes differ from the accepted steps' codes, so None means the
            // window, not a collision.
            for near in [now - 1, now, now + 1] {
                assert_ne!(code, code_for_step(&secret, near));
            }
            assert_eq!(verify(&secret, &code, NOW, None), None, "step {step}");
        }
        // Another secret's code is refused.
        let other = TotpSecret::from_bytes(&[9u8; SECRET_BYTES]).unwrap();
        let theirs = code_for_step(&other, now);
        assert_ne!(theirs, code_for_step(&secret, now));
        assert_eq!(verify(&secret, &theirs, NOW, None), None);
    }

    #[test]
    fn verify_accepts_whitespace_as_apps_show_it() {
        let secret = rfc_secret();
        let code = code_for_step(&secret, step_now());
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        for presented in [
            spaced.clone(),
            format!("  {code}\n"),
            format!("\t{spaced} "),
        ] {
            assert_eq!(
                verify(&secret, &presented, NOW, None),
                Some(step_now()),
                "{presented:?}"
            );
        }
        assert_eq!(parse_code(" 123 456 "), Some(*b"123456"));
        assert_eq!(parse_code("000000"), Some(*b"000000"));
    }

    #[test]
    fn verify_refuses_a_replayed_or_older_step() {
        let secret = rfc_secret();
        let now = step_now();
        let code = code_for_step(&secret, now);
        let used = verify(&secret, &code, NOW, None).unwrap();
        assert_eq!(used, now);
        // The same code again, once its step is stored: refused.
        assert_eq!(verify(&secret, &code, NOW, Some(used)), None);
        // An earlier step, still inside the drift window: refused too.
        let earlier = code_for_step(&secret, now - 1);
        assert_eq!(verify(&secret, &earlier, NOW, Some(used)), None);
        // The next step's code: accepted, and then closed in turn.
        let next = code_for_step(&secret, now + 1);
        assert_eq!(verify(&secret, &next, NOW, Some(used)), Some(now + 1));
        assert_eq!(verify(&secret, &next, NOW, Some(now + 1)), None);
        // A stored step before the window does not block the current code.
        assert_eq!(verify(&secret, &code, NOW, Some(now - 2)), Some(now));
    }

    #[test]
    fn verify_refuses_malformed_codes() {
        let secret = rfc_secret();
        let code = code_for_step(&secret, step_now());
        let arabic_indic: String = code
            .chars()
            .map(|c| char::from_u32(0x0660 + c.to_digit(10).unwrap()).unwrap())
            .collect();
        let malformed = [
            String::new(),
            "   ".to_string(),
            "12345".to_string(),
            "1234567".to_string(),
            "12a456".to_string(),
            "١٢٣٤٥٦".to_string(),
            // The right code made malformed: a naive prefix or digit-value match would pass.
            format!("{code}7"),
            code[..5].to_string(),
            arabic_indic,
            format!("+{}", &code[1..]),
            format!("{} {}", &code[..2], &code[2..]),
            format!("{}  {}", &code[..3], &code[3..]),
            format!("{}-{}", &code[..3], &code[3..]),
            format!("{}\u{a0}{}", &code[..3], &code[3..]),
        ];
        for bad in &malformed {
            assert_eq!(parse_code(bad), None, "{bad:?}");
            assert_eq!(verify(&secret, bad, NOW, None), None, "{bad:?}");
        }
    }

    #[test]
    fn verify_returns_the_latest_step_when_two_share_a_code() {
        // Found offline: the RFC secret's codes for these two adjacent steps are equal.
        let (s, shared) = (37079356u64, "186519");
        let secret = rfc_secret();
        assert_eq!(code_for_step(&secret, s), shared);
        assert_eq!(code_for_step(&secret, s + 1), shared);
        let now = s as i64 * PERIOD_SECS;
        assert_eq!(verify(&secret, shared, now, None), Some(s + 1));
        // Once the later step is stored, the same code is refused (its earlier step too).
        assert_eq!(verify(&secret, shared, now, Some(s + 1)), None);
        // With only the earlier step stored, the later one is still fresh.
        assert_eq!(verify(&secret, shared, now, Some(s)), Some(s + 1));
    }

    #[test]
    fn verify_at_the_edges_of_time_does_not_panic() {
        let secret = rfc_secret();
        // Step 0 has no earlier neighbour.
        let code = code_for_step(&secret, 0);
        assert_eq!(verify(&secret, &code, 0, None), Some(0));
        // A clock before 1970 accepts nothing.
        assert_eq!(verify(&secret, &code, -1, None), None);
        assert_eq!(code_at(&secret, -1), code);
        let _ = verify(&secret, "123456", i64::MAX, Some(u64::MAX));
        let _ = code_at(&secret, i64::MAX);
        let _ = code_at(&secret, i64::MIN);
    }

    #[test]
    fn otpauth_uri_round_trips_through_a_url_parser() {
        let secret = rfc_secret();
        let uri = otpauth_uri(&secret, "Acme SaaS", "ana+x@example.com");
        assert!(
            !uri.contains(' ') && !uri.contains('+') && !uri.contains('@'),
            "{uri}"
        );

        let url = url::Url::parse(&uri).unwrap();
        assert_eq!(url.scheme(), "otpauth");
        assert_eq!(url.host_str(), Some("totp"));
        let label = url.path().trim_start_matches('/');
        let (issuer, account) = label.split_once(':').unwrap();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .unwrap()
                .into_owned()
        };
        assert_eq!(decode(issuer), "Acme SaaS");
        assert_eq!(decode(account), "ana+x@example.com");

        let params: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(params["secret"], "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(params["issuer"], "Acme SaaS");
        assert_eq!(params["algorithm"], "SHA1");
        assert_eq!(params["digits"], "6");
        assert_eq!(params["period"], "30");
        assert_eq!(params.len(), 5);
    }

    #[test]
    fn otpauth_uri_cannot_be_split_by_its_input() {
        let secret = rfc_secret();
        let uri = otpauth_uri(&secret, "A:B&secret=AAAA", "x:y?z#w");
        let url = url::Url::parse(&uri).unwrap();
        assert_eq!(url.fragment(), None);
        let label = url.path().trim_start_matches('/');
        assert_eq!(label.matches(':').count(), 1, "{uri}");
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            params
                .iter()
                .filter(|(k, _)| k == "secret")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>(),
            ["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]
        );
        assert!(params
            .iter()
            .any(|(k, v)| k == "issuer" && v == "A:B&secret=AAAA"));

        // No issuer: the label is the account alone.
        let bare = otpauth_uri(&secret, "", "ana");
        assert!(bare.starts_with("otpauth://totp/ana?secret="), "{bare}");
        assert!(!bare.contains("issuer="), "{bare}");
    }

    #[test]
    fn recovery_codes_are_distinct_well_formed_and_hash_back() {
        let (plain, hashes) = RecoveryCodes::generate();
        assert_eq!(plain.len(), RECOVERY_CODE_COUNT);
        assert_eq!(hashes.len(), RECOVERY_CODE_COUNT);
        let distinct: std::collections::HashSet<_> = plain.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
        for (code, hash) in plain.iter().zip(&hashes) {
            let (head, tail) = code.split_once('-').unwrap();
            assert_eq!((head.len(), tail.len()), (5, 5), "{code}");
            assert!(
                code.bytes()
                    .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b)),
                "{code}"
            );
            assert_eq!(hash.len(), 64);
            assert!(hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(recovery_code_hash(code).as_deref(), Some(hash.as_str()));
            // As typed from paper: upper case, no hyphen.
            assert_eq!(
                recovery_code_hash(&code.to_uppercase().replace('-', "")).as_deref(),
                Some(hash.as_str())
            );
        }
    }

    #[test]
    fn recovery_codes_normalise_case_and_separators() {
        let want = Some("abcdefghjk".to_string());
        for presented in [
            "ABCDE-FGHJK",
            "abcde-fghjk",
            "abcdefghjk",
            " AbCdE FgHjK\n",
            "abc-de-fg hjk",
        ] {
            assert_eq!(normalise_recovery_code(presented), want, "{presented:?}");
        }
        assert_eq!(
            recovery_code_hash("ABCDE-FGHJK"),
            Some(sha256_hex(b"abcdefghjk"))
        );
    }

    #[test]
    fn malformed_recovery_codes_are_refused_and_wrong_ones_hash_differently() {
        for bad in [
            "",
            "abcde",
            "abcde-fghj",
            "abcde-fghjkm",
            "abcde-fghj0", // 0, o, 1, l, i are not in the alphabet
            "abcde-fghjo",
            "abcde-fghj1",
            "abcde-fghjl",
            "abcde-fghji",
            "abcde_fghjk",
            "abcde-fghj\u{212a}", // the Kelvin sign lower-cases to 'k' in Unicode
            "ábcde-fghjk",
        ] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad:?}");
            assert_eq!(recovery_code_hash(bad), None, "{bad:?}");
        }
        let right = recovery_code_hash("abcde-fghjk").unwrap();
        let wrong = recovery_code_hash("abcde-fghjm").unwrap();
        assert_ne!(right, wrong);
    }
}
