//! Access tokens: EdDSA (Ed25519) JWTs with a `kid`, signed by the first key of the signing-key
//! secret; every key in it is published as JWKS so rotation is add-new-first, remove-old-later.
//! Verification pins the algorithm, requires a known `kid`, and checks `iss`, `aud`, `exp`,
//! `nbf`, `iat`, `sub` and `jti`.
//!
//! Secret format (Secrets Manager, JSON):
//! `{"keys":[{"kid":"2026-11-a","private_key_pkcs8":"<base64 DER, PKCS#8 v1 or v2>"}]}`

use crate::domain::{Audience, UserId};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Clock skew tolerated on `exp`/`nbf`/`iat`, in seconds.
const LEEWAY_SECS: u64 = 5;

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
    /// that load the user refuse tokens from before it, without waiting for `exp`.
    #[serde(default)]
    pub sep: u64,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub audience: Audience,
    pub token_id: String,
    pub session_epoch: u64,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
}

#[derive(Deserialize)]
struct SecretKeys {
    keys: Vec<SecretKey>,
}

#[derive(Deserialize)]
struct SecretKey {
    kid: String,
    private_key_pkcs8: String,
}

pub struct TokenKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    jwks: Value,
    issuer: String,
    ttl_secs: i64,
}

impl TokenKeys {
    pub fn from_secret_json(secret: &str, issuer: &str, ttl_secs: i64) -> Result<Self, KeyError> {
        let parsed: SecretKeys = serde_json::from_str(secret).map_err(|_| KeyError::Shape)?;
        let mut verifying = HashMap::new();
        let mut published = Vec::new();
        let mut signing = None;
        for key in parsed.keys {
            let bad = || KeyError::BadKey {
                kid: key.kid.clone(),
            };
            let der = STANDARD
                .decode(key.private_key_pkcs8.trim())
                .map_err(|_| bad())?;
            let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad())?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let decoding = DecodingKey::from_ed_components(&x).map_err(|_| bad())?;
            if verifying.insert(key.kid.clone(), decoding).is_some() {
                return Err(KeyError::DuplicateKid { kid: key.kid });
            }
            published.push(json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": key.kid, "x": x}));
            if signing.is_none() {
                signing = Some((key.kid.clone(), EncodingKey::from_ed_der(&der)));
            }
        }
        let (signing_kid, signing) = signing.ok_or(KeyError::Empty)?;
        Ok(TokenKeys {
            signing_kid,
            signing,
            verifying,
            jwks: json!({ "keys": published }),
            issuer: issuer.to_string(),
            ttl_secs,
        })
    }

    /// Reads the signing-key secret named in `config` (once, at init).
    pub async fn load(
        secrets: &aws_sdk_secretsmanager::Client,
        config: &crate::config::Config,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let secret = crate::aws::secret_string(secrets, &config.jwt_signing_key_secret_id).await?;
        Ok(Self::from_secret_json(
            &secret,
            &config.jwt_issuer,
            config.access_token_ttl_secs,
        )?)
    }

    /// A fresh signing-key secret in the format above (for tests and local bootstraps).
    pub fn generate_secret_json(kid: &str) -> String {
        let pair = Ed25519KeyPair::generate().expect("the OS random source is available");
        let der = pair.to_pkcs8().expect("a generated key serialises");
        json!({"keys": [{"kid": kid, "private_key_pkcs8": STANDARD.encode(der.as_ref())}]})
            .to_string()
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user` and `audience` in session epoch `session_epoch`, issued at `now`.
    pub fn issue(
        &self,
        user: &UserId,
        audience: Audience,
        session_epoch: u64,
        now: i64,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_string(),
            aud: audience.as_str().to_string(),
            exp: now + self.ttl_secs,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            sep: session_epoch,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        header.typ = Some("JWT".to_string());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)?;
        Ok(IssuedToken {
            token,
            expires_in: self.ttl_secs,
        })
    }

    /// Verifies a presented token for one of `audiences`, against the current time.
    pub fn verify(&self, token: &str, audiences: &[Audience]) -> Result<Principal, TokenRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::WrongAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenRejection::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&audiences.iter().map(|a| a.as_str()).collect::<Vec<_>>());
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|e| TokenRejection::Invalid(e.to_string()))?;
        let claims = data.claims;
        let now = crate::time::now_unix();
        if claims.iat > now + LEEWAY_SECS as i64 {
            return Err(TokenRejection::Invalid("issued in the future".into()));
        }
        if claims.jti.is_empty() {
            return Err(TokenRejection::Invalid("empty jti".into()));
        }
        let user_id =
            UserId::parse(&claims.sub).ok_or_else(|| TokenRejection::Invalid("bad sub".into()))?;
        let audience = Audience::parse(&claims.aud)
            .ok_or_else(|| TokenRejection::Invalid("bad aud".into()))?;
        Ok(Principal {
            user_id,
            audience,
            token_id: claims.jti,
            session_epoch: claims.sep,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::now_unix;

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
               "exp": now + 900, "nbf": now, "iat": now, "jti": "j"})
    }

    #[test]
    fn issued_token_verifies_for_its_audience_only() {
        let k = keys();
        let user = UserId::new_random();
        let t = k.issue(&user, Audience::Portal, 0, now_unix()).unwrap();
        let p = k.verify(&t.token, &[Audience::Portal]).unwrap();
        assert_eq!((p.user_id, p.audience), (user, Audience::Portal));
        assert!(matches!(
            k.verify(&t.token, &[Audience::Operator]),
            Err(TokenRejection::Invalid(_))
        ));
    }

    #[test]
    fn jwks_publishes_the_verifying_key() {
        let k = keys();
        let jwk = &k.jwks()["keys"][0];
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

    #[test]
    fn rejects_expired_future_wrong_issuer_unknown_kid_and_other_algorithms() {
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
        let own = &k.signing;

        let mut expired = claims(now - 3600);
        expired["exp"] = json!(now - 60);
        assert!(matches!(
            k.verify(
                &forge(&expired, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            ),
            Err(TokenRejection::Invalid(_))
        ));

        let mut not_yet = claims(now);
        not_yet["nbf"] = json!(now + 600);
        assert!(matches!(
            k.verify(
                &forge(&not_yet, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            ),
            Err(TokenRejection::Invalid(_))
        ));

        let mut wrong_iss = claims(now);
        wrong_iss["iss"] = json!("someone-else");
        assert!(matches!(
            k.verify(
                &forge(&wrong_iss, Algorithm::EdDSA, Some("k1"), own),
                &[Audience::Portal]
            ),
            Err(TokenRejection::Invalid(_))
        ));

        assert_eq!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, Some("k9"), own),
                &[Audience::Portal]
            ),
            Err(TokenRejection::UnknownKey)
        );
        assert_eq!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, None, own),
                &[Audience::Portal]
            ),
            Err(TokenRejection::UnknownKey)
        );
        // Same kid, different key: signature check fails.
        assert!(matches!(
            k.verify(
                &forge(&claims(now), Algorithm::EdDSA, Some("k1"), &other_key),
                &[Audience::Portal]
            ),
            Err(TokenRejection::Invalid(_))
        ));
        // HS256 signed with the public key (the classic confusion attack).
        let x = k.jwks()["keys"][0]["x"].as_str().unwrap().to_string();
        let hs = forge(
            &claims(now),
            Algorithm::HS256,
            Some("k1"),
            &EncodingKey::from_secret(x.as_bytes()),
        );
        assert_eq!(
            k.verify(&hs, &[Audience::Portal]),
            Err(TokenRejection::WrongAlgorithm)
        );
        // alg "none": header and payload with an empty signature.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(claims(now).to_string())
        );
        assert!(k.verify(&none, &[Audience::Portal]).is_err());
        assert_eq!(
            k.verify("garbage", &[Audience::Portal]),
            Err(TokenRejection::Malformed)
        );
    }

    #[test]
    fn missing_claims_are_rejected() {
        let k = keys();
        for missing in ["jti", "nbf", "iat", "sub", "aud", "exp"] {
            let mut c = claims(now_unix());
            c.as_object_mut().unwrap().remove(missing);
            assert!(
                k.verify(
                    &forge(&c, Algorithm::EdDSA, Some("k1"), &k.signing),
                    &[Audience::Portal]
                )
                .is_err(),
                "missing {missing}"
            );
        }
    }

    #[test]
    fn secret_errors_are_reported() {
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
