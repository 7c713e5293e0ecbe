//! Sign-in over HTTP, black box: the deployed stack on the emulator (API Gateway -> the real
//! `login` binary as a Lambda function -> DynamoDB, Secrets Manager).

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::{unique_ip, Platform, PASSWORD};

/// Waits out the deployed refresh grace window (`make test` deploys it short).
async fn after_the_grace_window() {
    let secs: u64 = std::env::var("REFRESH_REUSE_GRACE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    tokio::time::sleep(std::time::Duration::from_millis(secs * 1000 + 1100)).await;
}

async fn sign_in(p: &Platform, email: &str, audience: &str, ip: &str) -> support::Reply {
    p.post(
        "/auth/login",
        json!({"email": email, "password": PASSWORD, "audience": audience}),
        ip,
    )
    .await
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn sign_in_me_refresh_logout_end_to_end() {
    let p = Platform::start().await;
    let ip = unique_ip();
    let u = p.user(false).await;
    let r = sign_in(&p, u.email.as_str(), "portal", &ip).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.headers.contains_key("x-request-id"));
    let access = r.json["data"]["access_token"].as_str().unwrap().to_string();
    let refresh = r.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let me = p
        .send(
            "GET",
            "/auth/me",
            &[
                ("authorization", &format!("Bearer {access}")),
                ("x-request-id", "trace-me-1"),
            ],
            None,
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.headers["x-request-id"], "trace-me-1");
    assert_eq!(me.json["data"]["user"]["id"], u.id.as_str());

    let rotated = p
        .post("/auth/refresh", json!({"refresh_token": refresh}), &ip)
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    let refresh2 = rotated.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        p.get("/auth/me", rotated.json["data"]["access_token"].as_str())
            .await
            .status,
        200
    );

    let out = p
        .post("/auth/logout", json!({"refresh_token": refresh2}), &ip)
        .await;
    assert_eq!(out.status, 200);
    assert_eq!(
        p.post("/auth/refresh", json!({"refresh_token": refresh2}), &ip)
            .await
            .status,
        401
    );
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn reused_refresh_token_revokes_family() {
    // Once the grace window is over, a second use is reuse.
    let p = Platform::start().await;
    let ip = unique_ip();
    let u = p.user(false).await;
    let first =
        sign_in(&p, u.email.as_str(), "portal", &ip).await.json["data"]["refresh_token"].clone();
    let second = p
        .post("/auth/refresh", json!({"refresh_token": first}), &ip)
        .await;
    assert_eq!(second.status, 200);
    after_the_grace_window().await;
    let reuse = p
        .post("/auth/refresh", json!({"refresh_token": first}), &ip)
        .await;
    assert_eq!(
        (reuse.status, reuse.json["error"]["code"].as_str()),
        (401, Some("INVALID_REFRESH_TOKEN"))
    );
    // The thief's reuse killed the legitimate holder's newer token too.
    let after = p
        .post(
            "/auth/refresh",
            json!({"refresh_token": second.json["data"]["refresh_token"]}),
            &ip,
        )
        .await;
    assert_eq!(after.status, 401);
    p.shutdown().await;
}

/// Refreshes `token` from `n` callers at once; each caller's status and new refresh token.
async fn refresh_in_parallel(
    p: &std::sync::Arc<Platform>,
    token: &Value,
    ip: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (p, token, ip) = (p.clone(), token.clone(), ip.to_string());
            tokio::spawn(async move {
                let r = p
                    .post("/auth/refresh", json!({"refresh_token": token}), &ip)
                    .await;
                (r.status, r.json["data"]["refresh_token"].clone())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn two_tabs_refreshing_at_once_both_stay_signed_in() {
    let p = std::sync::Arc::new(Platform::start().await);
    let ip = unique_ip();
    let u = p.user(false).await;
    let token =
        sign_in(&p, u.email.as_str(), "portal", &ip).await.json["data"]["refresh_token"].clone();
    let tabs = refresh_in_parallel(&p, &token, &ip, 2).await;
    assert!(tabs.iter().all(|(s, _)| *s == 200), "{tabs:?}");
    assert_ne!(tabs[0].1, tabs[1].1);
    // Afterwards each tab refreshes with its own token, and its access token opens /auth/me.
    for (_, own) in &tabs {
        let next = p
            .post("/auth/refresh", json!({"refresh_token": own}), &ip)
            .await;
        assert_eq!(next.status, 200, "{}", next.json);
        let me = p
            .get("/auth/me", next.json["data"]["access_token"].as_str())
            .await;
        assert_eq!(me.status, 200);
    }
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn parallel_refreshes_of_one_token_are_bounded_and_every_winner_can_go_on() {
    let p = std::sync::Arc::new(Platform::start().await);
    let ip = unique_ip();
    let u = p.user(false).await;
    let token =
        sign_in(&p, u.email.as_str(), "portal", &ip).await.json["data"]["refresh_token"].clone();
    let results = refresh_in_parallel(&p, &token, &ip, 8).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, t)| t)
        .collect();
    // One rotation, plus at most three more heads inside the grace window; the rest are
    // refused without ending the session.
    assert!(
        (1..=shared::store::MAX_SESSION_HEADS).contains(&winners.len()),
        "{results:?}"
    );
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 401),
        "{results:?}"
    );
    for t in winners {
        let next = p
            .post("/auth/refresh", json!({"refresh_token": t}), &ip)
            .await;
        assert_eq!(
            next.status, 200,
            "a winner's token must keep working: {}",
            next.json
        );
    }
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn fifty_parallel_wrong_passwords_let_at_most_ten_reach_argon2() {
    let p = std::sync::Arc::new(Platform::start().await);
    let u = p.user(false).await;
    let attacker = unique_ip();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (p, email, ip) = (p.clone(), u.email.to_string(), attacker.clone());
            // From one network: the account's limit from that network stops them.
            tokio::spawn(async move {
                p.post(
                    "/auth/login",
                    json!({"email": email, "password": "wrong guess"}),
                    &ip,
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let verified = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(verified + limited, 50, "{statuses:?}");
    assert!(
        verified <= 10,
        "{verified} guesses reached Argon2: {statuses:?}"
    );
    assert!(verified >= 1, "{statuses:?}");
    // The guesses did not lock the owner out: the right password from elsewhere works.
    let owner = p
        .post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(owner.status, 200, "{}", owner.json);
    // And from one IPv6 /64, rotating the rest of the address, the address limit holds too.
    let net = uuid::Uuid::new_v4().as_u128() as u16;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move {
                p.post(
                    "/auth/login",
                    json!({"email": format!("ghost{i}@example.com"), "password": "x"}),
                    &format!("2001:db8:{net:x}:1:{:x}::{:x}", i * 7 + 1, i + 1),
                )
                .await
                .status
            })
        })
        .collect();
    let mut v6 = Vec::new();
    for t in tasks {
        v6.push(t.await.unwrap());
    }
    assert!(v6.iter().filter(|s| **s == 401).count() <= 10, "{v6:?}");
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn twenty_simultaneous_right_passwords_all_sign_in() {
    let p = std::sync::Arc::new(Platform::start().await);
    let u = p.user(false).await;
    let ip = unique_ip();
    // Twice the ten an account may have in flight from one network.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (p, email, ip) = (p.clone(), u.email.to_string(), ip.clone());
            tokio::spawn(async move {
                p.post(
                    "/auth/login",
                    json!({"email": email, "password": PASSWORD}),
                    &ip,
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let p = Platform::start().await;
    let u = p.user(false).await;
    let wrong = p
        .post(
            "/auth/login",
            json!({"email": u.email, "password": "not the password"}),
            &unique_ip(),
        )
        .await;
    let unknown = p
        .post(
            "/auth/login",
            json!({"email": "no-such-user@example.com", "password": "not the password"}),
            &unique_ip(),
        )
        .await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.json, unknown.json);
    for h in ["content-type", "cache-control"] {
        assert_eq!(wrong.headers.get(h), unknown.headers.get(h), "{h}");
    }
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn repeated_failures_get_429_with_retry_after() {
    let p = Platform::start().await;
    let u = p.user(false).await;
    // Per account and network: ten failures from one address lock the account there.
    let guesser = unique_ip();
    for _ in 0..10 {
        assert_eq!(
            p.post(
                "/auth/login",
                json!({"email": u.email, "password": "wrong wrong"}),
                &guesser
            )
            .await
            .status,
            401
        );
    }
    let locked = p
        .post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
            &guesser,
        )
        .await;
    assert_eq!(
        (locked.status, locked.json["error"]["code"].as_str()),
        (429, Some("TOO_MANY_REQUESTS"))
    );
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    // Not from another network: the owner still signs in.
    assert_eq!(
        p.post(
            "/auth/login",
            json!({"email": u.email, "password": PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        200
    );
    // Per address: ten failures for ten unknown emails lock the address.
    let ip = unique_ip();
    for n in 0..10 {
        assert_eq!(
            p.post(
                "/auth/login",
                json!({"email": format!("ghost{n}@example.com"), "password": "x"}),
                &ip
            )
            .await
            .status,
            401
        );
    }
    let fresh = p.user(false).await;
    assert_eq!(
        p.post(
            "/auth/login",
            json!({"email": fresh.email, "password": PASSWORD}),
            &ip
        )
        .await
        .status,
        429
    );
    assert_eq!(
        p.post(
            "/auth/login",
            json!({"email": fresh.email, "password": PASSWORD}),
            &unique_ip()
        )
        .await
        .status,
        200
    );
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn operator_audience_only_for_platform_admins() {
    let p = Platform::start().await;
    let ip = unique_ip();
    let plain = p.user(false).await;
    let admin = p.user(true).await;
    let refused = sign_in(&p, plain.email.as_str(), "operator", &ip).await;
    assert_eq!(
        (refused.status, refused.json["error"]["code"].as_str()),
        (403, Some("OPERATOR_AUDIENCE_DENIED"))
    );
    let ok = sign_in(&p, admin.email.as_str(), "operator", &ip).await;
    assert_eq!(ok.status, 200);
    let me = p
        .get("/auth/me", ok.json["data"]["access_token"].as_str())
        .await;
    assert_eq!(
        (
            me.json["data"]["audience"].as_str(),
            me.json["data"]["user"]["platform_admin"].as_bool()
        ),
        (Some("operator"), Some(true))
    );
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn every_bad_access_token_is_rejected() {
    let p = Platform::start().await;
    let u = p.user(false).await;
    let (kid, der) = p.signing_key().await;
    let key = EncodingKey::from_ed_der(&der);
    let now = shared::runtime::time::now_unix();
    let issuer = std::env::var("JWT_ISSUER").unwrap();
    let good = json!({"iss": issuer, "sub": u.id.as_str(), "aud": "portal", "exp": now + 600, "nbf": now, "iat": now, "jti": "t1", "sep": 0});
    let sign = |claims: &Value, kid: Option<&str>| {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&h, claims, &key).unwrap()
    };
    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        c
    };
    let without = |field: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(field);
        c
    };
    // The control: a correctly forged token with the real key is accepted.
    assert_eq!(
        p.get("/auth/me", Some(&sign(&good, Some(&kid))))
            .await
            .status,
        200
    );

    let jwks = p.get("/.well-known/jwks.json", None).await;
    let public_x = jwks.json["data"]["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_string();
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.clone());
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(public_x.as_bytes())).unwrap()
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string()),
        URL_SAFE_NO_PAD.encode(good.to_string())
    );
    let cases = vec![
        ("alg none", none),
        ("HS256 with the public key", hs256),
        (
            "wrong audience",
            sign(&with("aud", json!("billing")), Some(&kid)),
        ),
        (
            "wrong issuer",
            sign(&with("iss", json!("evil")), Some(&kid)),
        ),
        ("expired", sign(&with("exp", json!(now - 120)), Some(&kid))),
        (
            "not yet valid",
            sign(&with("nbf", json!(now + 600)), Some(&kid)),
        ),
        ("unknown kid", sign(&good, Some("not-a-key"))),
        ("no kid", sign(&good, None)),
        ("no jti", sign(&without("jti"), Some(&kid))),
        ("no sub", sign(&without("sub"), Some(&kid))),
        ("no sep (session epoch)", sign(&without("sep"), Some(&kid))),
        ("tampered payload", {
            let t = sign(&good, Some(&kid));
            let parts: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD
                    .encode(with("sub", json!(uuid::Uuid::new_v4().to_string())).to_string()),
                parts[2]
            )
        }),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (name, token) in cases {
        let r = p.get("/auth/me", Some(&token)).await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (401, Some("INVALID_TOKEN")),
            "{name}"
        );
    }
    assert_eq!(p.get("/auth/me", None).await.status, 401);
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn bad_input_gets_a_4xx_envelope_never_a_5xx() {
    let p = Platform::start().await;
    let ip = unique_ip();
    let h = [
        ("content-type", "application/json"),
        ("x-forwarded-for", ip.as_str()),
    ];
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "/auth/login", b"{\"email\":".to_vec(), 400),
        ("POST", "/auth/login", b"".to_vec(), 400),
        (
            "POST",
            "/auth/login",
            br#"{"email":"a@example.com"}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/auth/login",
            br#"{"email":["a"],"password":"x"}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/auth/login",
            br#"{"email":"a@example.com","password":true}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/auth/login",
            format!(
                r#"{{"email":"a@example.com","password":"{}"}}"#,
                "p".repeat(20_000)
            )
            .into_bytes(),
            413,
        ),
        (
            "POST",
            "/auth/refresh",
            br#"{"refresh_token":null}"#.to_vec(),
            400,
        ),
        (
            "POST",
            "/auth/refresh",
            br#"{"refresh_token":"forged-token"}"#.to_vec(),
            401,
        ),
        ("POST", "/auth/logout", b"[1,2,3]".to_vec(), 400),
        ("POST", "/auth/login", vec![0xff, 0xfe, 0x00], 400),
    ];
    for (method, path, body, status) in cases {
        let r = p.send(method, path, &h, Some(body)).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.json);
        assert_eq!(r.json["success"], false, "{method} {path}");
        assert!(r.json["error"]["code"].is_string(), "{method} {path}");
        let request_id = r.headers.get("x-request-id").and_then(|v| v.to_str().ok());
        assert!(request_id.is_some_and(|v| v.len() >= 32), "{method} {path}");
        assert!(
            r.headers.contains_key("x-amzn-requestid"),
            "{method} {path}"
        );
    }
    // A caller's own safe request id is echoed.
    for path in ["/health/live"] {
        let traced = [("x-request-id", "trace-7f3a")];
        let r = p.send("GET", path, &traced, None).await;
        assert_eq!(
            r.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
            Some("trace-7f3a"),
            "{path}"
        );
    }
    p.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn health_and_jwks_over_http() {
    let p = Platform::start().await;
    let ready = p.get("/health/ready", None).await;
    assert_eq!(
        (ready.status, ready.json["data"]["status"].as_str()),
        (200, Some("ready"))
    );
    assert_eq!(p.get("/health/live", None).await.status, 200);
    let jwks = p.get("/.well-known/jwks.json", None).await;
    let key = &jwks.json["data"]["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("OKP"), Some("EdDSA"))
    );
    assert!(key.get("d").is_none());
    assert_eq!(jwks.headers["cache-control"], "public, max-age=300");
    // The body itself is a JWK Set (RFC 7517), as standard verifiers fetch it, and a token
    // signed in verifies against it.
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(jwks.json.clone()).expect("the body is a JWK Set");
    assert_eq!(
        set.keys.len(),
        jwks.json["data"]["keys"].as_array().unwrap().len()
    );
    let user = p.user(false).await;
    let login = p
        .post(
            "/auth/login",
            json!({"email": user.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    let access = login.json["data"]["access_token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(access).unwrap().kid.unwrap();
    let jwk = set.find(&kid).expect("the token's kid is published");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["portal"]);
    let claims = jsonwebtoken::decode::<Value>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("verifies with the published key");
    assert_eq!(claims.claims["sub"], user.id.as_str());
    p.shutdown().await;
}
