//! Access tokens: EdDSA (Ed25519) JWTs with a `kid`, signed by the first key of the signing-key
//! secret; every key in it is published as JWKS so rotation is add-new-first, remove-old-later.
//! Verification pins the algorithm, requires a known `kid`, and checks `iss`, `aud`, `exp`,
//! `nbf`, `iat`, `sub`, `jti` and `sep`.
//!
//! Only `login` reads the signing-key secret (private keys). Every other function reads the
//! public-key secret, a JWK Set, and can verify but never sign. Both re-read their secret every
//! `JWT_KEYS_REFRESH_SECONDS` and, at most once per `UNKNOWN_KID_REFRESH_INTERVAL`, when a token
//! names a `kid` they do not know, so keys rotate without a redeploy.
//!
//! Secret formats (Secrets Manager, JSON):
//! - signing: `{"keys":[{"kid":"2026-11-a","private_key_pkcs8":"<base64 DER, PKCS#8 v1 or v2>"}]}`
//! - public: `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"2026-11-a","x":"<base64url>"}]}`

use crate::domain::{Audience, UserId};
use async_trait::async_trait;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Clock skew tolerated on `exp`/`nbf`/`iat`, in seconds.
const LEEWAY_SECS: u64 = 5;
/// Fewest seconds between two re-reads of the keys caused by unknown `kid`s, so a stream of
/// forged tokens cannot turn into a stream of Secrets Manager calls.
pub const UNKNOWN_KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing-key secret is not valid JSON of the expected shape")]
    Shape,
    #[error("signing-key secret has no keys")]
    Empty,
    #[error("key {kid} is not a valid Ed25519 PKCS#8 key")]
    BadKey { kid: String },
    #[error("key id {kid} is used twice")]
    DuplicateKid { kid: String },
    #[error("these keys can verify but not sign")]
    VerifyOnly,
    #[error("signing failed")]
    Sign,
}

/// Why a presented access token was refused. Clients see one generic 401; this goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm is not EdDSA")]
    WrongAlgorithm,
    #[error("token key id is missing or unknown")]
    UnknownKey,
    #[error("token failed validation: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    /// The user's session epoch at issue. A password reset moves the stored epoch, and routes
    /// that load the user refuse tokens from before it, without waiting for `exp`. Required.
    pub sep: u64,
    /// The session (sign-in) the token belongs to, so a person's list of sessions can mark
    /// the one in use and "sign out my other devices" can spare it. Absent in tokens from
    /// before sessions were named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the token's sign-in passed its second factor (Unix seconds), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_at: Option<i64>,
    /// An impersonation token (RFC 8693): the operator acting as `sub`. Such a token also
    /// carries `tid` and `scope`, and its `jti` is the impersonation's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The one tenant an impersonation token acts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// An impersonation token's scope: `read`, or `read write` once an owner approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// RFC 8693's `act` claim: who acts for the token's subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
    /// The actor's session epoch when it started: ending the actor's sessions ends it.
    pub sep: u64,
}

/// The `aud` of an impersonation token. Not `portal`: a verifier elsewhere that knows nothing
/// of `act` (an application checking signature, audience and expiry against the published
/// keys) must not take one for the user's own token.
pub const IMPERSONATION_AUDIENCE: &str = "portal-impersonation";

/// What a token says beyond who and for which audience.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenContext {
    /// The session the token was issued in (`sid`).
    pub session_id: Option<String>,
    /// When the session's sign-in passed its second factor (`mfa_at`).
    pub mfa_at: Option<i64>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub audience: Audience,
    pub token_id: String,
    pub session_epoch: u64,
    /// The session the token was issued in, if it names one.
    pub session_id: Option<String>,
    /// When the sign-in passed its second factor, if it did.
    pub mfa_at: Option<i64>,
    /// Set when an operator acts as this user (an impersonation token).
    pub impersonation: Option<crate::access::impersonation::Impersonation>,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct SecretKeys {
    keys: Vec<SecretKey>,
}

/// One entry of either secret: a private key (signing secret) or a public JWK (public secret).
#[derive(Deserialize)]
struct SecretKey {
    kid: String,
    #[serde(default)]
    private_key_pkcs8: Option<String>,
    #[serde(default)]
    x: Option<String>,
}

/// One reading of a key secret.
struct KeySet {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
}

impl KeySet {
    fn parse(secret: &str) -> Result<Self, KeyError> {
        let parsed: SecretKeys = serde_json::from_str(secret).map_err(|_| KeyError::Shape)?;
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        let mut signing = None;
        for key in parsed.keys {
            let bad = || KeyError::BadKey {
                kid: key.kid.clone(),
            };
            let x = match (&key.private_key_pkcs8, &key.x) {
                (Some(pkcs8), _) => {
                    let der = STANDARD.decode(pkcs8.trim()).map_err(|_| bad())?;
                    let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad())?;
                    if signing.is_none() {
                        signing = Some((key.kid.clone(), EncodingKey::from_ed_der(&der)));
                    }
                    URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
                }
                (None, Some(x)) => {
                    let raw = URL_SAFE_NO_PAD.decode(x).map_err(|_| bad())?;
                    if raw.len() != 32 {
                        return Err(bad());
                    }
                    x.clone()
                }
                (None, None) => return Err(bad()),
            };
            let decoding = DecodingKey::from_ed_components(&x).map_err(|_| bad())?;
            if verifying.insert(key.kid.clone(), decoding).is_some() {
                return Err(KeyError::DuplicateKid { kid: key.kid });
            }
            published.push(json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": key.kid, "x": x}));
        }
        if verifying.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(KeySet {
            signing,
            verifying,
            jwks: json!({ "keys": published }),
        })
    }
}

/// Where a process reads its key secret from, again on every refresh.
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn read(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>>;
}

/// A secret in Secrets Manager.
pub struct SecretKeySource {
    pub client: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
}

#[async_trait]
impl KeySource for SecretKeySource {
    async fn read(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok(crate::runtime::aws::secret_string(&self.client, &self.secret_id).await?)
    }
}

/// How often keys are read again.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Read again when the keys in hand are older than this (`JWT_KEYS_REFRESH_SECONDS`).
    pub every: Duration,
    /// At most one extra read per this interval for tokens with an unknown `kid`.
    pub unknown_kid_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            every: Duration::from_secs(300),
            unknown_kid_interval: UNKNOWN_KID_REFRESH_INTERVAL,
        }
    }
}

struct Loaded {
    set: Arc<KeySet>,
    loaded_at: Instant,
    /// When a read was last tried (successful or not), so a failing source is not hammered.
    tried_at: Instant,
}

/// The access-token keys of one process: signing (login) or verify-only (every other
/// function), kept fresh from their secret.
pub struct TokenKeys {
    issuer: String,
    ttl_secs: i64,
    source: Option<Box<dyn KeySource>>,
    policy: RefreshPolicy,
    loaded: RwLock<Loaded>,
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenKeys {
    /// Keys fixed for the life of the process (tests, tools).
    pub fn from_secret_json(secret: &str, issuer: &str, ttl_secs: i64) -> Result<Self, KeyError> {
        Self::new(
            KeySet::parse(secret)?,
            None,
            RefreshPolicy::default(),
            issuer,
            ttl_secs,
        )
    }

    /// Reads `source` now (at init) and again as `policy` says.
    pub async fn from_source(
        source: Box<dyn KeySource>,
        policy: RefreshPolicy,
        issuer: &str,
        ttl_secs: i64,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let set = KeySet::parse(&source.read().await?)?;
        Ok(Self::new(set, Some(source), policy, issuer, ttl_secs)?)
    }

    fn new(
        set: KeySet,
        source: Option<Box<dyn KeySource>>,
        policy: RefreshPolicy,
        issuer: &str,
        ttl_secs: i64,
    ) -> Result<Self, KeyError> {
        let now = Instant::now();
        Ok(TokenKeys {
            issuer: issuer.to_string(),
            ttl_secs,
            source,
            policy,
            loaded: RwLock::new(Loaded {
                set: Arc::new(set),
                loaded_at: now,
                tried_at: now,
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// A fresh signing-key secret in the format above (for tests and local bootstraps).
    pub fn generate_secret_json(kid: &str) -> String {
        let pair = Ed25519KeyPair::generate().expect("the OS random source is available");
        let der = pair.to_pkcs8().expect("a generated key serialises");
        json!({"keys": [{"kid": kid, "private_key_pkcs8": STANDARD.encode(der.as_ref())}]})
            .to_string()
    }

    /// The public-key secret (a JWK Set) that goes with a signing-key secret.
    pub fn public_secret_json(signing_secret: &str) -> Result<String, KeyError> {
        Ok(KeySet::parse(signing_secret)?.jwks.to_string())
    }

    fn snapshot(&self) -> (Arc<KeySet>, Instant, Instant) {
        let l = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        (l.set.clone(), l.loaded_at, l.tried_at)
    }

    /// The keys to use now, read again first if they are stale, or if `kid` is unknown and no
    /// read for an unknown `kid` happened within the last interval.
    async fn current(&self, kid: Option<&str>) -> Arc<KeySet> {
        let (set, loaded_at, tried_at) = self.snapshot();
        let Some(source) = &self.source else {
            return set;
        };
        let unknown = kid.is_some_and(|k| !set.verifying.contains_key(k));
        let stale = loaded_at.elapsed() >= self.policy.every
            && tried_at.elapsed() >= self.policy.unknown_kid_interval.min(self.policy.every);
        let may_chase = unknown && tried_at.elapsed() >= self.policy.unknown_kid_interval;
        if !(stale || may_chase) {
            return set;
        }
        let _one_reader = self.refreshing.lock().await;
        let (set, _, tried_again) = self.snapshot();
        if tried_again != tried_at {
            return set; // another request read them meanwhile
        }
        let now = Instant::now();
        let read = match source.read().await {
            Ok(secret) => KeySet::parse(&secret).map_err(Into::into),
            Err(e) => Err(e),
        };
        let mut l = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        l.tried_at = now;
        match read {
            Ok(fresh) => {
                tracing::info!(keys = fresh.verifying.len(), "access-token keys read");
                l.set = Arc::new(fresh);
                l.loaded_at = now;
            }
            Err(e) => {
                tracing::warn!(error = %e, "access-token keys could not be read again; keeping the ones in hand")
            }
        }
        l.set.clone()
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub async fn jwks(&self) -> Value {
        self.current(None).await.jwks.clone()
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user` and `audience` in session epoch `session_epoch`, issued
    /// at `now`. Fails for verify-only keys.
    pub async fn issue(
        &self,
        user: &UserId,
        audience: Audience,
        session_epoch: u64,
        now: i64,
    ) -> Result<IssuedToken, KeyError> {
        self.issue_in(user, audience, session_epoch, now, &TokenContext::default())
            .await
    }

    /// `issue`, with what the token says of its session (`context`).
    pub async fn issue_in(
        &self,
        user: &UserId,
        audience: Audience,
        session_epoch: u64,
        now: i64,
        context: &TokenContext,
    ) -> Result<IssuedToken, KeyError> {
        let set = self.current(None).await;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: audience.as_str().to_string(),
            exp: now + self.ttl_secs,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            sep: session_epoch,
            sid: context.session_id.clone(),
            mfa_at: context.mfa_at,
            act: None,
            tid: None,
            scope: None,
        };
        self.sign(&set, &claims)
    }

    /// Signs an impersonation token: `imp.actor` acting as `user` in `imp.tenant`, for the
    /// portal, until `imp.expires_at` (at most 15 minutes from `now`), its `jti` the
    /// impersonation's id. No refresh token goes with it.
    pub async fn issue_impersonation(
        &self,
        user: &UserId,
        session_epoch: u64,
        now: i64,
        imp: &crate::access::impersonation::Impersonation,
    ) -> Result<IssuedToken, KeyError> {
        let set = self.current(None).await;
        let exp = imp
            .expires_at
            .min(now + crate::domain::impersonation::MAX_TOKEN_SECS);
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: IMPERSONATION_AUDIENCE.to_string(),
            exp,
            nbf: now,
            iat: now,
            jti: imp.id.clone(),
            sep: session_epoch,
            sid: None,
            mfa_at: None,
            act: Some(Actor {
                sub: imp.actor.to_string(),
                sep: imp.actor_epoch,
            }),
            tid: Some(imp.tenant.to_string()),
            scope: Some(if imp.write { "read write" } else { "read" }.to_string()),
        };
        let mut issued = self.sign(&set, &claims)?;
        issued.expires_in = exp - now;
        Ok(issued)
    }

    fn sign(&self, set: &KeySet, claims: &AccessClaims) -> Result<IssuedToken, KeyError> {
        let (kid, key) = set.signing.as_ref().ok_or(KeyError::VerifyOnly)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        header.typ = Some("JWT".to_string());
        let token = jsonwebtoken::encode(&header, claims, key).map_err(|_| KeyError::Sign)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies a presented token for one of `audiences`, against the current time.
    pub async fn verify(
        &self,
        token: &str,
        audiences: &[Audience],
    ) -> Result<Principal, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::WrongAlgorithm);
        }
        let kid = header.kid.as_deref().ok_or(TokenRejection::UnknownKey)?;
        let set = self.current(Some(kid)).await;
        let key = set.verifying.get(kid).ok_or(TokenRejection::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        // A route open to portal tokens also admits impersonation tokens (an operator acting as
        // a portal user), which then pass `access::impersonation::admit`.
        let mut accepted: Vec<&str> = audiences.iter().map(|a| a.as_str()).collect();
        if audiences.contains(&Audience::Portal) {
            accepted.push(IMPERSONATION_AUDIENCE);
        }
        validation.set_audience(&accepted);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|e| TokenRejection::Invalid(e.to_string()))?;
        let claims = data.claims;
        let now = crate::runtime::time::now_unix();
        if claims.iat > now + LEEWAY_SECS as i64 {
            return Err(TokenRejection::Invalid("issued in the future".into()));
        }
        if claims.jti.is_empty() {
            return Err(TokenRejection::Invalid("empty jti".into()));
        }
        let user_id =
            UserId::parse(&claims.sub).ok_or_else(|| TokenRejection::Invalid("bad sub".into()))?;
        let impersonating = claims.aud == IMPERSONATION_AUDIENCE;
        if impersonating != claims.act.is_some() {
            return Err(TokenRejection::Invalid(
                "act and the impersonation audience go together".into(),
            ));
        }
        let audience = if impersonating {
            Audience::Portal
        } else {
            Audience::parse(&claims.aud).ok_or_else(|| TokenRejection::Invalid("bad aud".into()))?
        };
        let impersonation = match &claims.act {
            None => None,
            Some(act) => {
                let bad = |why: &str| TokenRejection::Invalid(format!("impersonation: {why}"));
                if !crate::domain::impersonation::is_id(&claims.jti) {
                    return Err(bad("bad jti"));
                }
                if claims.exp - claims.iat > crate::domain::impersonation::MAX_TOKEN_SECS {
                    return Err(bad("lives too long"));
                }
                let write = match claims.scope.as_deref() {
                    Some("read") => false,
                    Some("read write") => true,
                    _ => return Err(bad("bad scope")),
                };
                Some(crate::access::impersonation::Impersonation {
                    id: claims.jti.clone(),
                    actor: UserId::parse(&act.sub).ok_or_else(|| bad("bad act"))?,
                    tenant: claims
                        .tid
                        .as_deref()
                        .and_then(crate::domain::TenantId::parse)
                        .ok_or_else(|| bad("bad tid"))?,
                    write,
                    expires_at: claims.exp,
                    actor_epoch: act.sep,
                })
            }
        };
        Ok(Principal {
            impersonation,
            user_id,
            audience,
            token_id: claims.jti,
            session_epoch: claims.sep,
            session_id: claims
                .sid
                .filter(|s| crate::access::opaque::is_session_id(s)),
            mfa_at: claims.mfa_at,
        })
    }
}

#[cfg(test)]
impl TokenKeys {
    fn signing_key_for_tests(&self) -> EncodingKey {
        self.snapshot()
            .0
            .signing
            .as_ref()
            .expect("signing keys")
            .1
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::time::now_unix;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k1"), "test-issuer", 900)
            .unwrap()
    }

    fn forge(claims: &Value, alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn claims(now: i64) -> Value {
        json!({"iss": "test-issuer", "sub": UserId::new_random().to_string(), "aud": "portal",
               "exp": now + 900, "nbf": now, "iat": now, "jti": "j", "sep": 0})
    }

    #[tokio::test]
    async fn issued_token_verifies_for_its_audience_only() {
        let k = keys();
        let user = UserId::new_random();
        let t = k
            .issue(&user, Audience::Portal, 0, now_unix())
            .await
            .unwrap();
        let p = k.verify(&t.token, &[Audience::Portal]).await.unwrap();
        assert_eq!((p.user_id, p.audience), (user, Audience::Portal));
        assert!(matches!(
            k.verify(&t.token, &[Audience::Operator]).await,
            Err(TokenRejection::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn jwks_publishes_the_verifying_key() {
        let k = keys();
        let jwk = &k.jwks().await["keys"][0];
        assert_eq!(
            (
                jwk["kid"].as_str(),
                jwk["alg"].as_str(),
                jwk["crv"].as_str()
            ),
            (Some("k1"), Some("EdDSA"), Some("Ed25519"))
        );
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(
            jwk.get("d").is_none(),
            "private part must never be published"
        );
    }

    #[tokio::test]
    async fn rejects_expired_future_wrong_issuer_unknown_kid_and_other_algorithms() {
        let k = keys();
        let now = now_unix();
        let secret = TokenKeys::generate_secret_json("k1");
        let der = STANDARD
            .decode(
                serde_json::from_str::<Value>(&secret).unwrap()["keys"][0]["private_key_pkcs8"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let other_key = EncodingKey::from_ed_der(&der);
        let own = &k.signing_key_for_tests();

        let mut expired = claims(now - 3600);
        expired["exp"] = json!(now - 60);
        assert!(matches!(
            k.verify(
                &forge(&expired, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::Invalid(_))
        ));

        let mut not_yet = claims(now);
        not_yet["nbf"] = json!(now + 600);
        assert!(matches!(
            k.verify(
                &forge(&not_yet, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::Invalid(_))
        ));

        let mut wrong_iss = claims(now);
        wrong_iss["iss"] = json!("someone-else");
        assert!(matches!(
            k.verify(
                &forge(&wrong_iss, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::Invalid(_))
        ));

        assert_eq!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, Some("k9"), own),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::UnknownKey)
        );
        assert_eq!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, None, own),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::UnknownKey)
        );
        // Same kid, different key: signature check fails.
        assert!(matches!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, Some("k1"), &other_key),
                &[Audience::Portal]
            )
            .await,
            Err(TokenRejection::Invalid(_))
        ));
        // HS256 signed with the public key (the classic confusion attack).
        let x = k.jwks().await["keys"][0]["x"].as_str().unwrap().to_string();
        let hs = forge(
            &claims(now),
            Algorithm::HS256,
            Some("k1"),
            &EncodingKey::from_secret(x.as_bytes()),
        );
        assert_eq!(
            k.verify(&hs, &[Audience::Portal]).await,
            Err(TokenRejection::WrongAlgorithm)
        );
        // alg "none": header and payload with an empty signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims(now).to_string())
        );
        assert!(k.verify(&none, &[Audience::Portal]).await.is_err());
        assert_eq!(
            k.verify("garbage", &[Audience::Portal]).await,
            Err(TokenRejection::Malformed)
        );
    }

    #[tokio::test]
    async fn an_impersonation_token_is_told_apart_and_never_passes_for_the_users_own() {
        let k = keys();
        let now = now_unix();
        let imp = crate::access::impersonation::Impersonation {
            id: crate::domain::impersonation::new_id(),
            actor: UserId::new_random(),
            tenant: crate::domain::TenantId::new_random(),
            write: false,
            expires_at: now + 600,
            actor_epoch: 3,
        };
        let user = UserId::new_random();
        let t = k.issue_impersonation(&user, 0, now, &imp).await.unwrap();
        let p = k.verify(&t.token, &[Audience::Portal]).await.unwrap();
        assert_eq!((p.user_id, p.audience), (user, Audience::Portal));
        assert_eq!(p.impersonation, Some(imp.clone()));
        // Not for operator routes, and its audience is not the portal's.
        assert!(k.verify(&t.token, &[Audience::Operator]).await.is_err());
        let payload: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload["aud"], IMPERSONATION_AUDIENCE);
        assert_eq!(payload["act"]["sub"], imp.actor.as_str());
        // `act` on a portal token, or the audience without `act`, or a bad scope: refused.
        let own = &k.signing_key_for_tests();
        let mut with_act = claims(now);
        with_act["act"] = json!({"sub": UserId::new_random().to_string(), "sep": 0});
        with_act["tid"] = json!(crate::domain::TenantId::new_random().to_string());
        with_act["scope"] = json!("read write");
        with_act["jti"] = json!(crate::domain::impersonation::new_id());
        assert!(k
            .verify(
                &forge(&with_act, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await
            .is_err());
        let mut no_act = claims(now);
        no_act["aud"] = json!(IMPERSONATION_AUDIENCE);
        assert!(k
            .verify(
                &forge(&no_act, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await
            .is_err());
        let mut bad_scope = with_act.clone();
        bad_scope["aud"] = json!(IMPERSONATION_AUDIENCE);
        assert!(k
            .verify(
                &forge(&bad_scope, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await
            .is_ok());
        bad_scope["scope"] = json!("admin");
        assert!(k
            .verify(
                &forge(&bad_scope, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await
            .is_err());
        // Longer than 15 minutes: refused.
        let mut long = with_act.clone();
        long["aud"] = json!(IMPERSONATION_AUDIENCE);
        long["exp"] = json!(now + 3600);
        assert!(k
            .verify(
                &forge(&long, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            )
            .await
            .is_err());
    }

    #[tokio::test]
    async fn missing_claims_are_rejected() {
        let k = keys();
        for missing in ["jti", "nbf", "iat", "sub", "aud", "exp", "sep"] {
            let mut c = claims(now_unix());
            c.as_object_mut().unwrap().remove(missing);
            assert!(
                k.verify(
                    &forge(&c, Algorithm::EdDSA, Some("k1"), &k.signing_key_for_tests()),
                    &[Audience::Portal]
                )
                .await
                .is_err(),
                "missing {missing}"
            );
        }
    }

    /// A key source whose secret the test can change, counting reads.
    struct Switchable {
        secret: std::sync::Mutex<String>,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl KeySource for Arc<Switchable> {
        async fn read(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.secret.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn verifiers_pick_up_a_rotated_key_on_its_first_token_but_not_on_every_forgery() {
        let old = TokenKeys::generate_secret_json("old");
        let source = Arc::new(Switchable {
            secret: std::sync::Mutex::new(TokenKeys::public_secret_json(&old).unwrap()),
            reads: Default::default(),
        });
        let policy = RefreshPolicy {
            every: Duration::from_secs(3600),
            unknown_kid_interval: Duration::from_millis(200),
        };
        let verifier = TokenKeys::from_source(Box::new(source.clone()), policy, "test-issuer", 900)
            .await
            .unwrap();
        assert!(matches!(
            verifier
                .issue(&UserId::new_random(), Audience::Portal, 0, now_unix())
                .await,
            Err(KeyError::VerifyOnly)
        ));
        // Rotation: the new key signs first, the old one is still published.
        let new = TokenKeys::generate_secret_json("new");
        let both = json!({"keys": [
            serde_json::from_str::<Value>(&new).unwrap()["keys"][0],
            serde_json::from_str::<Value>(&old).unwrap()["keys"][0],
        ]})
        .to_string();
        *source.secret.lock().unwrap() = TokenKeys::public_secret_json(&both).unwrap();
        let signer = TokenKeys::from_secret_json(&both, "test-issuer", 900).unwrap();
        let token = signer
            .issue(&UserId::new_random(), Audience::Portal, 0, now_unix())
            .await
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(verifier
            .verify(&token.token, &[Audience::Portal])
            .await
            .is_ok());
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Forged kids inside the interval cause no further reads.
        let forged = forge(
            &claims(now_unix()),
            Algorithm::EdDSA,
            Some("nope"),
            &signer.signing_key_for_tests(),
        );
        for _ in 0..20 {
            assert_eq!(
                verifier.verify(&forged, &[Audience::Portal]).await,
                Err(TokenRejection::UnknownKey)
            );
        }
        assert_eq!(source.reads.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(verifier.jwks().await["keys"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn keys_are_read_again_once_stale() {
        let first = TokenKeys::generate_secret_json("first");
        let source = Arc::new(Switchable {
            secret: std::sync::Mutex::new(first),
            reads: Default::default(),
        });
        let policy = RefreshPolicy {
            every: Duration::from_millis(100),
            unknown_kid_interval: Duration::from_millis(100),
        };
        let keys = TokenKeys::from_source(Box::new(source.clone()), policy, "i", 60)
            .await
            .unwrap();
        *source.secret.lock().unwrap() = TokenKeys::generate_secret_json("second");
        std::thread::sleep(Duration::from_millis(150));
        let token = keys
            .issue(&UserId::new_random(), Audience::Portal, 0, now_unix())
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(
            header.kid.as_deref(),
            Some("second"),
            "the signer moved to the rotated key"
        );
    }

    #[tokio::test]
    async fn secret_errors_are_reported() {
        assert!(matches!(
            TokenKeys::from_secret_json("nope", "i", 1),
            Err(KeyError::Shape)
        ));
        assert!(matches!(
            TokenKeys::from_secret_json(r#"{"keys":[]}"#, "i", 1),
            Err(KeyError::Empty)
        ));
        assert!(matches!(
            TokenKeys::from_secret_json(
                r#"{"keys":[{"kid":"a","private_key_pkcs8":"AAAA"}]}"#,
                "i",
                1
            ),
            Err(KeyError::BadKey { .. })
        ));
    }
}
