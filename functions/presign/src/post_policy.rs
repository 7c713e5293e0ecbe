//! Presigned POST uploads (browser form uploads). The AWS SDK for Rust presigns requests but
//! not POST policies, so the policy is built here and signed with `aws-sigv4`'s own signing-key
//! derivation and signature functions (no hand-written cryptography). The policy fixes the
//! bucket, the exact key, the content type and a `content-length-range`, so S3 itself refuses
//! anything else.

use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub struct PostPolicy<'a> {
    pub bucket: &'a str,
    pub region: &'a str,
    /// Where the form is posted (the bucket's URL).
    pub url: String,
    pub key: &'a str,
    pub content_type: &'a str,
    pub max_bytes: u64,
    pub expires_in: Duration,
}

/// A form to post: the URL and the fields to send before the file.
#[derive(Debug, serde::Serialize)]
pub struct SignedPost {
    pub url: String,
    pub fields: BTreeMap<String, String>,
}

impl PostPolicy<'_> {
    pub fn sign(&self, credentials: &Credentials, now: SystemTime) -> Result<SignedPost, String> {
        let at = DateTime::from(now);
        // 2026-11-24T20:30:00Z -> 20261124T203000Z
        let iso = at
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| e.to_string())?;
        let amz_date: String = iso
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .take(15)
            .chain(std::iter::once('Z'))
            .collect();
        let day = &amz_date[..8];
        let expiration = DateTime::from(now + self.expires_in)
            .fmt(DateTimeFormat::DateTime)
            .map_err(|e| e.to_string())?;
        let credential = format!(
            "{}/{day}/{}/s3/aws4_request",
            credentials.access_key_id(),
            self.region
        );
        let mut conditions: Vec<Value> = vec![
            json!({"bucket": self.bucket}),
            json!({"key": self.key}),
            json!({"Content-Type": self.content_type}),
            json!(["content-length-range", 0, self.max_bytes]),
            json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}),
            json!({"x-amz-credential": credential}),
            json!({"x-amz-date": amz_date}),
        ];
        let mut fields = BTreeMap::from([
            ("key".to_string(), self.key.to_string()),
            ("Content-Type".to_string(), self.content_type.to_string()),
            (
                "x-amz-algorithm".to_string(),
                "AWS4-HMAC-SHA256".to_string(),
            ),
            ("x-amz-credential".to_string(), credential.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ]);
        if let Some(token) = credentials.session_token() {
            conditions.push(json!({"x-amz-security-token": token}));
            fields.insert("x-amz-security-token".into(), token.to_string());
        }
        let policy = json!({"expiration": expiration, "conditions": conditions}).to_string();
        let encoded = STANDARD.encode(policy);
        let signing_key = aws_sigv4::sign::v4::generate_signing_key(
            credentials.secret_access_key(),
            now,
            self.region,
            "s3",
        );
        let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, encoded.as_bytes());
        fields.insert("policy".into(), encoded);
        fields.insert("x-amz-signature".into(), signature);
        Ok(SignedPost {
            url: self.url.clone(),
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_fixes_key_type_and_size_and_carries_the_session_token() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("session".into()), None, "t");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_551_042);
        let post = PostPolicy {
            bucket: "b",
            region: "us-east-1",
            url: "http://127.0.0.1:4566/b".into(),
            key: "tenants/x/a.txt",
            content_type: "text/plain",
            max_bytes: 1024,
            expires_in: Duration::from_secs(900),
        }
        .sign(&creds, now)
        .unwrap();
        let policy: Value =
            serde_json::from_slice(&STANDARD.decode(&post.fields["policy"]).unwrap()).unwrap();
        let conditions = policy["conditions"].to_string();
        assert!(
            conditions.contains(r#"["content-length-range",0,1024]"#),
            "{conditions}"
        );
        assert!(conditions.contains(r#"{"key":"tenants/x/a.txt"}"#));
        assert!(conditions.contains(r#"{"Content-Type":"text/plain"}"#));
        assert_eq!(post.fields["x-amz-security-token"], "session");
        assert_eq!(post.fields["x-amz-date"], "20261124T201042Z");
        assert!(post.fields["x-amz-credential"].starts_with("AKIDEXAMPLE/20261124/us-east-1/s3/"));
        assert_eq!(post.fields["x-amz-signature"].len(), 64);
        // The expiry is the policy's own.
        assert_eq!(policy["expiration"], "2026-11-24T20:25:42Z");
    }
}
