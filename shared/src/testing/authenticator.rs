//! A software passkey authenticator for tests: what a browser and a platform authenticator do
//! with the options the API gives, written out (P-256, "none" attestation), so handler tests
//! and black-box tests can run both WebAuthn ceremonies through the real routes. It answers
//! for an origin of the test's choosing, so a test can also present another origin's answer.
//!
//! The CBOR it writes is the handful of fixed shapes a registration needs, in CTAP2's
//! canonical order (shorter keys first), which the relying party checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One credential on a software authenticator.
pub struct SoftPasskey {
    key: SigningKey,
    id: Vec<u8>,
    counter: u32,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A CBOR byte string header and body.
fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        n @ 0..=23 => out.push(0x40 | n as u8),
        n @ 24..=255 => out.extend([0x58, n as u8]),
        n => {
            out.push(0x59);
            out.extend((n as u16).to_be_bytes());
        }
    }
    out.extend(bytes);
}

/// A CBOR text string header and body (short strings only).
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 24, "short keys only");
    out.push(0x60 | text.len() as u8);
    out.extend(text.as_bytes());
}

impl SoftPasskey {
    /// Answers registration `options` (the API's `options`, as `navigator.credentials.create`
    /// takes them) from `origin`: a new credential and its `RegistrationResponseJSON`.
    pub fn register(options: &Value, origin: &str) -> (SoftPasskey, Value) {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let id: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
        let mut passkey = SoftPasskey {
            key,
            id,
            counter: 0,
        };
        let response = passkey.registration_response(options, origin);
        (passkey, response)
    }

    fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": options["challenge"],
            "origin": origin,
            "crossOrigin": false,
        }))
        .expect("client data serializes")
    }

    fn registration_response(&mut self, options: &Value, origin: &str) -> Value {
        let rp_id = options["rp"]["id"].as_str().expect("options name the RP");
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().expect("x"), point.y().expect("y"));
        // COSE_Key, EC2 P-256 ES256: {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
        let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut cose, x);
        cose.push(0x22);
        cbor_bytes(&mut cose, y);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        // User present, user verified, attested credential data.
        auth_data.push(0x45);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((self.id.len() as u16).to_be_bytes());
        auth_data.extend(&self.id);
        auth_data.extend(&cose);
        // {"fmt": "none", "attStmt": {}, "authData": ...}
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        // SubjectPublicKeyInfo of a P-256 key, DER.
        let mut spki = hex_prefix();
        spki.extend(point.as_bytes());
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {"credProps": {"rk": false}},
            "response": {
                "clientDataJSON": b64(&Self::client_data("webauthn.create", options, origin)),
                "attestationObject": b64(&attestation),
                "authenticatorData": b64(&auth_data),
                "publicKey": b64(&spki),
                "publicKeyAlgorithm": -7,
                "transports": ["internal"],
            },
        })
    }

    /// The credential id, base64url (as the API names a passkey).
    pub fn id(&self) -> String {
        b64(&self.id)
    }

    /// Answers assertion `options` (as `navigator.credentials.get` takes them) from `origin`:
    /// an `AuthenticationResponseJSON` signed by this credential, its counter one higher.
    pub fn assert(&mut self, options: &Value, origin: &str) -> Value {
        let rp_id = options["rpId"].as_str().expect("options name the RP");
        self.counter += 1;
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        // User present, user verified.
        auth_data.push(0x05);
        auth_data.extend(self.counter.to_be_bytes());
        let client_data = Self::client_data("webauthn.get", options, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature: DerSignature = self.key.sign(&signed);
        json!({
            "id": b64(&self.id),
            "rawId": b64(&self.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_bytes()),
                "userHandle": null,
            },
        })
    }
}

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1), before the
/// 65-byte uncompressed point.
fn hex_prefix() -> Vec<u8> {
    const PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    (0..PREFIX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&PREFIX[i..i + 2], 16).expect("hex"))
        .collect()
}
