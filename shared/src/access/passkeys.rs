//! Passkeys (WebAuthn) as a second factor: the relying party's two ceremonies, registration
//! and assertion, done by `webauthn_rp` (pure Rust, RustCrypto's P-256/P-384/Ed25519/RSA, so
//! no OpenSSL in a Lambda zip). The relying party is the console's origin (`PLATFORM_ORIGIN`):
//! its host is the RP ID and only that exact origin is accepted in the client data.
//!
//! A ceremony starts on one instance and may finish on another, so its server state is
//! serialized (the crate's `bin` encoding, base64url) and stored: a registration's in the
//! user's pending item, an assertion's on the sign-in challenge. Both are spent in the
//! transaction that uses them, so a response is accepted once.
//!
//! What is stored per passkey: the credential id, its public key and extensions (the crate's
//! `StaticState`), its signature counter and flags (`DynamicState`, conditioned on when it
//! moves, so two uses at once cannot both move it), its transports, a name, and times.
//!
//! The user handle given to authenticators is the account's id (a random UUID, no personal
//! data), so every passkey of an account carries the same handle and `excludeCredentials`
//! stops one authenticator registering twice.

use crate::domain::UserId;
use crate::store::Passkey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{
    AllowedCredential, AllowedCredentials, AuthenticationVerificationOptions,
    NonDiscoverableCredentialRequestOptions,
};
use webauthn_rp::request::register::{
    PublicKeyCredentialCreationOptions, PublicKeyCredentialUserEntity,
    RegistrationVerificationOptions, UserHandle16,
};
use webauthn_rp::request::{AsciiDomain, Credentials as _, PublicKeyCredentialDescriptor, RpId};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, NonDiscoverableAuthentication16,
    NonDiscoverableAuthenticationServerState, Registration, RegistrationServerState,
};

/// Passkeys one account may hold: enough for a phone, a laptop and security keys, and a bound
/// on the sign-in challenge's size (every one is listed in `allowCredentials`).
pub const MAX_PER_ACCOUNT: usize = 10;

/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a ceremony did not complete. Only `Unusable` and `Stored` are the platform's fault; the
/// others are the client's (answered as a refused factor, never with the reason).
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The response is not a credential of this ceremony (malformed, wrong origin, wrong
    /// challenge, bad signature, expired, a passkey not on the account).
    #[error("the passkey response did not verify: {0}")]
    Refused(String),
    /// What the store holds does not decode (a bug or tampering).
    #[error("a stored passkey state does not decode: {0}")]
    Stored(String),
    /// The relying party cannot start a ceremony (a bug).
    #[error("the passkey ceremony could not start: {0}")]
    Unusable(String),
}

fn refused(e: impl std::fmt::Display) -> PasskeyError {
    PasskeyError::Refused(e.to_string())
}

fn stored(e: impl std::fmt::Debug) -> PasskeyError {
    PasskeyError::Stored(format!("{e:?}"))
}

/// The relying party: the console's origin.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    rp_id: RpId,
    origin: String,
}

impl RelyingParty {
    /// From the platform's origin (`https://console.example.com`, or locally
    /// `http://<id>.cloudfront.localhost:4566`). `None` when its host is an IP address:
    /// WebAuthn refuses those as relying party ids, so passkeys are unavailable there.
    pub fn from_origin(origin: &str) -> Option<RelyingParty> {
        let url = url::Url::parse(origin).ok()?;
        let host = match url.host()? {
            url::Host::Domain(d) => d.to_ascii_lowercase(),
            url::Host::Ipv4(_) | url::Host::Ipv6(_) => return None,
        };
        let rp_id = RpId::Domain(AsciiDomain::try_from(host).ok()?);
        Some(RelyingParty {
            rp_id,
            origin: url.origin().ascii_serialization(),
        })
    }

    /// The RP ID (the origin's host).
    pub fn id(&self) -> &str {
        self.rp_id.as_ref()
    }
}

/// A started ceremony: what the browser gets (`options`, the JSON form of the
/// `PublicKeyCredentialCreationOptions` or `...RequestOptions`, for
/// `PublicKeyCredential.parse...OptionsFromJSON`) and what the server keeps (`state`).
#[derive(Debug)]
pub struct Started {
    pub options: Value,
    pub state: String,
    pub expires_at: i64,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<u8>, PasskeyError> {
    URL_SAFE_NO_PAD.decode(s).map_err(stored)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The user handle of `user`: the 16 bytes of its UUID.
fn handle(user: &UserId) -> Result<UserHandle16, PasskeyError> {
    let uuid = uuid::Uuid::parse_str(user.as_str()).map_err(stored)?;
    UserHandle16::decode(*uuid.as_bytes()).map_err(stored)
}

fn descriptor(p: &Passkey) -> Result<PublicKeyCredentialDescriptor<Vec<u8>>, PasskeyError> {
    Ok(PublicKeyCredentialDescriptor {
        id: CredentialId::decode(unb64(&p.id)?).map_err(stored)?,
        transports: AuthTransports::decode(p.transports).map_err(stored)?,
    })
}

/// What a started ceremony gives: the client's options, the server's state, its expiry.
fn started<S, C>(server: &S, client: &C) -> Result<Started, PasskeyError>
where
    S: 'static + for<'a> Encode<Output<'a> = Vec<u8>> + webauthn_rp::request::TimedCeremony,
    S::Err: std::fmt::Debug,
    C: serde::Serialize,
{
    let unusable = |e: &dyn std::fmt::Debug| PasskeyError::Unusable(format!("{e:?}"));
    let options = serde_json::to_value(client).map_err(|e| unusable(&e))?;
    let state = server.encode().map_err(|e| unusable(&e))?;
    Ok(Started {
        options,
        state: b64(&state),
        expires_at: unix(server.expiration()),
    })
}

/// Starts registering a passkey for `user` (shown to the authenticator as `email`, with
/// `display_name`), excluding the passkeys the account has.
pub fn start_registration(
    rp: &RelyingParty,
    user: &UserId,
    email: &str,
    display_name: Option<&str>,
    existing: &[Passkey],
) -> Result<Started, PasskeyError> {
    let id = handle(user)?;
    let exclude = existing
        .iter()
        .map(descriptor)
        .collect::<Result<Vec<_>, _>>()?;
    let entity = PublicKeyCredentialUserEntity {
        name: email
            .try_into()
            .map_err(|e| PasskeyError::Unusable(format!("{e:?}")))?,
        id: &id,
        // A name the Nickname profile refuses (control characters) is left out, not fatal.
        display_name: display_name.and_then(|n| n.try_into().ok()),
    };
    let (server, client) =
        PublicKeyCredentialCreationOptions::second_factor(&rp.rp_id, entity, exclude)
            .start_ceremony()
            .map_err(|e| PasskeyError::Unusable(format!("{e:?}")))?;
    started(&server, &client)
}

/// A passkey just registered, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    pub id: String,
    pub public_key: String,
    pub state: String,
    pub transports: u8,
}

/// Finishes a registration: `response` is the browser's `RegistrationResponseJSON`
/// (`credential.toJSON()`), checked against the stored `state` for `user`.
pub fn finish_registration(
    rp: &RelyingParty,
    user: &UserId,
    state: &str,
    response: &[u8],
) -> Result<NewPasskey, PasskeyError> {
    let server = RegistrationServerState::<16>::decode(unb64(state)?.as_slice()).map_err(stored)?;
    let registration = Registration::from_json_relaxed(response).map_err(refused)?;
    let origins = [rp.origin.as_str()];
    let options = RegistrationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        ..RegistrationVerificationOptions::default()
    };
    let credential = server
        .verify(&rp.rp_id, &registration, &options)
        .map_err(refused)?;
    if credential.user_id().encode().map_err(stored)? != handle(user)?.encode().map_err(stored)? {
        return Err(refused("the credential is for another account"));
    }
    let public_key = credential.static_state().encode().map_err(stored)?;
    let dynamic = credential.dynamic_state().encode().map_err(stored)?;
    Ok(NewPasskey {
        id: b64(credential.id().encode().map_err(stored)?),
        public_key: b64(&public_key),
        state: b64(&dynamic),
        transports: credential.transports().encode().map_err(stored)?,
    })
}

/// Starts an assertion with any of `passkeys` (the account's; at least one).
pub fn start_assertion(rp: &RelyingParty, passkeys: &[Passkey]) -> Result<Started, PasskeyError> {
    let mut allowed = AllowedCredentials::with_capacity(passkeys.len());
    for p in passkeys {
        allowed.push(AllowedCredential::from(descriptor(p)?));
    }
    let (server, client) =
        NonDiscoverableCredentialRequestOptions::second_factor(&rp.rp_id, allowed)
            .map_err(|e| PasskeyError::Unusable(format!("{e:?}")))?
            .start_ceremony()
            .map_err(|e| PasskeyError::Unusable(format!("{e:?}")))?;
    started(&server, &client)
}

/// An assertion that verified: which passkey, and its state before and after (the store
/// moves it conditioned on `before`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub id: String,
    pub before: String,
    pub after: String,
}

/// Finishes an assertion: `response` is the browser's `AuthenticationResponseJSON`, checked
/// against the stored `state` and the one of `passkeys` (`user`'s) it names.
pub fn finish_assertion(
    rp: &RelyingParty,
    user: &UserId,
    state: &str,
    response: &[u8],
    passkeys: &[Passkey],
) -> Result<Used, PasskeyError> {
    let server = NonDiscoverableAuthenticationServerState::decode(unb64(state)?.as_slice())
        .map_err(stored)?;
    let authentication =
        NonDiscoverableAuthentication16::from_json_relaxed(response).map_err(refused)?;
    let raw_id = b64(authentication.raw_id().encode().map_err(stored)?);
    let passkey = passkeys
        .iter()
        .find(|p| p.id == raw_id)
        .ok_or_else(|| refused("the passkey is not one of this account's"))?;
    let id_bytes = unb64(&passkey.id)?;
    let cred_id = CredentialId::<&[u8]>::decode(id_bytes.as_slice()).map_err(stored)?;
    let handle = handle(user)?;
    let static_state =
        StaticState::<CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>>::decode(
            unb64(&passkey.public_key)?.as_slice(),
        )
        .map_err(stored)?;
    let before_bytes: [u8; 7] = unb64(&passkey.state)?
        .try_into()
        .map_err(|_| PasskeyError::Stored("a passkey's state is not 7 bytes".into()))?;
    let dynamic = DynamicState::decode(before_bytes).map_err(stored)?;
    let mut credential =
        AuthenticatedCredential::new(cred_id, &handle, static_state, dynamic).map_err(stored)?;
    let origins = [rp.origin.as_str()];
    let options = AuthenticationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        ..AuthenticationVerificationOptions::default()
    };
    server
        .verify(&rp.rp_id, &authentication, &mut credential, &options)
        .map_err(refused)?;
    let after = credential.dynamic_state().encode().map_err(stored)?;
    Ok(Used {
        id: passkey.id.clone(),
        before: passkey.state.clone(),
        after: b64(&after),
    })
}

/// A passkey's name as given: trimmed, 1 to 64 characters, no control characters.
pub fn valid_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&chars) && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_origins_host_and_never_an_address() {
        let rp = RelyingParty::from_origin("https://Console.Example.com").unwrap();
        assert_eq!(rp.id(), "console.example.com");
        assert_eq!(rp.origin, "https://console.example.com");
        let local = RelyingParty::from_origin("http://abc.cloudfront.localhost:4566").unwrap();
        assert_eq!(local.id(), "abc.cloudfront.localhost");
        assert_eq!(local.origin, "http://abc.cloudfront.localhost:4566");
        assert!(RelyingParty::from_origin("http://127.0.0.1:3000").is_none());
        assert!(RelyingParty::from_origin("http://[::1]:3000").is_none());
        assert!(RelyingParty::from_origin("not a url").is_none());
    }

    #[test]
    fn a_registration_starts_with_the_accounts_handle_and_its_passkeys_excluded() {
        let rp = RelyingParty::from_origin("https://console.example.com").unwrap();
        let user = UserId::new_random();
        let started = start_registration(&rp, &user, "ada@example.com", Some("Ada"), &[]).unwrap();
        let pk = &started.options;
        assert_eq!(pk["rp"]["id"], "console.example.com");
        assert_eq!(pk["user"]["name"], "ada@example.com");
        let handle = uuid::Uuid::parse_str(user.as_str()).unwrap();
        assert_eq!(pk["user"]["id"], b64(handle.as_bytes()));
        assert!(pk["challenge"].as_str().is_some_and(|c| c.len() >= 22));
        let now = unix(SystemTime::now());
        assert!(started.expires_at > now && started.expires_at <= now + 301);
        // The state decodes again (another instance finishes the ceremony).
        assert!(
            RegistrationServerState::<16>::decode(unb64(&started.state).unwrap().as_slice())
                .is_ok()
        );
        // Two starts never share a challenge.
        let again = start_registration(&rp, &user, "ada@example.com", None, &[]).unwrap();
        assert_ne!(again.options["challenge"], pk["challenge"]);
    }

    #[test]
    fn garbage_responses_are_refused_not_errors_of_the_platform() {
        let rp = RelyingParty::from_origin("https://console.example.com").unwrap();
        let user = UserId::new_random();
        let started = start_registration(&rp, &user, "ada@example.com", None, &[]).unwrap();
        for body in [
            &b"{}"[..],
            b"not json",
            br#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}"#,
        ] {
            assert!(matches!(
                finish_registration(&rp, &user, &started.state, body),
                Err(PasskeyError::Refused(_))
            ));
        }
        assert!(matches!(
            finish_registration(&rp, &user, "!!", b"{}"),
            Err(PasskeyError::Stored(_))
        ));
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(valid_name("  Laptop  ").as_deref(), Some("Laptop"));
        assert_eq!(valid_name(""), None);
        assert_eq!(valid_name("   "), None);
        assert_eq!(valid_name("a\u{0007}b"), None);
        assert!(valid_name(&"é".repeat(64)).is_some());
        assert_eq!(valid_name(&"é".repeat(65)), None);
    }
}
