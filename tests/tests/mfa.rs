//! Second factors, black box: enrolling an authenticator app, signing in with it (a code
//! accepted once, recovery codes single use), what needs a recent factor (granting operator
//! rights), an operator's reset of another user's factors, and, on the stack `make deploy`'s
//! path made with its defaults, that an operator without a factor can do nothing but enroll.

mod support;

use serde_json::json;
use shared::access::totp;
use shared::testing::authenticator::SoftPasskey;
use support::{
    enroll, enroll_with, first_step, next_code, operator_token, second_step, strong_operator,
    unique_ip, Platform, PASSWORD,
};

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_second_factor_guards_sign_in_and_each_code_works_once() {
    let platform = Platform::start().await;
    let ana = platform.user(false).await;
    let access = platform.sign_in(ana.email.as_str(), "portal").await;
    // This stack's origin is an IP address (127.0.0.1): WebAuthn refuses those as relying
    // parties, so passkeys say they are unavailable rather than fail in the browser.
    let factors = platform.get("/account/mfa", Some(&access)).await;
    assert_eq!(
        factors.json["data"]["passkeys_available"], false,
        "{}",
        factors.json
    );
    let refused = platform
        .call(
            "POST",
            "/account/mfa/passkeys/options",
            Some(&access),
            Some(json!({ "password": PASSWORD })),
            &[],
        )
        .await;
    assert_eq!(
        (refused.status, refused.json["error"]["code"].clone()),
        (409, json!("INVALID_STATE"))
    );
    // A token alone (no password) cannot put an authenticator on the account.
    let stolen = platform
        .call(
            "POST",
            "/account/mfa/totp",
            Some(&access),
            Some(json!({ "password": "a guess" })),
            &[],
        )
        .await;
    assert_eq!(
        stolen.json["error"]["code"], "INVALID_CREDENTIALS",
        "{}",
        stolen.json
    );
    let status = platform.get("/account/mfa", Some(&access)).await;
    assert_eq!(status.json["data"]["totp"]["pending"], false);
    let (secret, codes) = enroll(&platform, &access).await;
    let status = platform.get("/account/mfa", Some(&access)).await;
    assert_eq!(status.json["data"]["enrolled"], true, "{}", status.json);
    assert_eq!(status.json["data"]["recovery_codes_left"], 10);
    // Another app from this session, which began before the factor: refused (a factor beside
    // the first needs a sign-in with it); and never without the password.
    let again = platform
        .call(
            "POST",
            "/account/mfa/totp",
            Some(&access),
            Some(json!({ "password": PASSWORD })),
            &[],
        )
        .await;
    assert_eq!(again.json["error"]["code"], "MFA_REQUIRED");
    // The password now leads to the second step, not to tokens.
    let step = first_step(&platform, ana.email.as_str(), PASSWORD, "portal").await;
    assert_eq!(step["mfa_required"], true);
    assert!(step.get("access_token").is_none());
    let token = step["mfa_token"].as_str().unwrap().to_string();
    let code = next_code(&secret);
    let (status, body) = second_step(&platform, &token, "code", &code).await;
    assert_eq!(status, 200, "{body}");
    let access = body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 200);
    // The challenge is spent; the same code in a fresh sign-in is refused (replay).
    let (status, body) = second_step(&platform, &token, "code", &code).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("INVALID_MFA_TOKEN"))
    );
    let step = first_step(&platform, ana.email.as_str(), PASSWORD, "portal").await;
    let token = step["mfa_token"].as_str().unwrap().to_string();
    let (status, body) = second_step(&platform, &token, "code", &code).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    // A recovery code works once.
    let (status, body) = second_step(&platform, &token, "recovery_code", &codes[3]).await;
    assert_eq!(status, 200, "{body}");
    let step = first_step(&platform, ana.email.as_str(), PASSWORD, "portal").await;
    let token = step["mfa_token"].as_str().unwrap().to_string();
    let (status, _) = second_step(&platform, &token, "recovery_code", &codes[3]).await;
    assert_eq!(status, 400);
    // A wrong password is the same 401 as ever.
    let wrong = platform
        .post(
            "/auth/login",
            json!({"email": ana.email, "password": "not the password"}),
            &unique_ip(),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.json["error"]["code"].clone()),
        (401, json!("INVALID_CREDENTIALS"))
    );
    // An operator resets her factors: she is mailed, and signs in with her password alone.
    let (_, weak) = operator_token(&platform).await;
    let refused = platform
        .call(
            "DELETE",
            format!("/users/{}/mfa", ana.id),
            Some(&weak),
            None,
            &[],
        )
        .await;
    assert_eq!(
        refused.json["error"]["code"], "MFA_REQUIRED",
        "{}",
        refused.json
    );
    let (_, op) = strong_operator(&platform).await;
    let reset = platform
        .call(
            "DELETE",
            format!("/users/{}/mfa", ana.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.json);
    let mail = platform.wait_for_mail(ana.email.as_str(), 1).await;
    assert!(mail
        .iter()
        .any(|(subject, _)| subject == "Your second factor was reset"));
    let plain = first_step(&platform, ana.email.as_str(), PASSWORD, "portal").await;
    assert!(plain["access_token"].is_string(), "{plain}");
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn granting_operator_rights_needs_a_recent_second_factor() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let target = platform.user(false).await;
    let grant = |token: String| {
        let platform = &platform;
        let path = format!("/users/{}/operator", target.id);
        async move { platform.call("PUT", path, Some(&token), None, &[]).await }
    };
    // Signed in with a password alone: refused, and nothing changes.
    let r = grant(op.clone()).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (403, json!("MFA_REQUIRED"))
    );
    assert!(!platform.store_user(&target.id).await.platform_admin);
    // With a factor: granted; the new operator signs in as one.
    let (secret, _) = enroll(&platform, &op).await;
    let step = first_step(&platform, op_user.email.as_str(), PASSWORD, "operator").await;
    let (status, body) = second_step(
        &platform,
        step["mfa_token"].as_str().unwrap(),
        "code",
        &next_code(&secret),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let strong = body["data"]["access_token"].as_str().unwrap().to_string();
    let r = grant(strong.clone()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["data"]["changed"], true);
    let theirs = platform.sign_in(target.email.as_str(), "operator").await;
    assert_eq!(
        platform.get("/users?limit=1", Some(&theirs)).await.status,
        200
    );
    // An operator keeps their last factor.
    let r = platform
        .call(
            "DELETE",
            "/account/mfa/totp",
            Some(&strong),
            Some(json!({"code": totp::code_at(&secret, shared::runtime::time::now_unix() + 2 * totp::PERIOD_SECS)})),
            &[],
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (409, json!("LAST_FACTOR"))
    );
}

/// On the stack made by `make deploy`'s path with the template's defaults: an operator who
/// has no second factor can read their account and enroll one, and nothing else, until then.
#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn an_operator_without_a_factor_can_only_enroll_where_factors_are_required() {
    let base = std::env::var("SAM_API_URL").expect("SAM_API_URL: run through `make test`");
    let platform = Platform::at(base).await;
    let email = "sam-operator@local.test";
    let password = "local-dev-only-sam-operator-1";
    let step = first_step(&platform, email, password, "operator").await;
    let op = step["access_token"]
        .as_str()
        .expect("no factor yet: tokens")
        .to_string();
    for (method, path) in [
        ("GET", "/users"),
        ("GET", "/tenants"),
        ("GET", "/partners"),
        ("GET", "/audit"),
    ] {
        let r = platform.call(method, path, Some(&op), None, &[]).await;
        assert_eq!(
            (r.status, r.json["error"]["code"].clone()),
            (403, json!("MFA_ENROLLMENT_REQUIRED")),
            "{method} {path}"
        );
    }
    assert_eq!(platform.get("/account", Some(&op)).await.status, 200);
    let (secret, _) = enroll_with(&platform, &op, password).await;
    let step = first_step(&platform, email, password, "operator").await;
    let (status, body) = second_step(
        &platform,
        step["mfa_token"].as_str().unwrap(),
        "code",
        &next_code(&secret),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let op = body["data"]["access_token"].as_str().unwrap();
    assert_eq!(platform.get("/users", Some(op)).await.status, 200);
    assert_eq!(platform.get("/tenants", Some(op)).await.status, 200);

    // A passkey beside the app (this stack's origin is a domain name: passkeys are available),
    // registered and then used for a sign-in's second step, answered as the console's origin
    // would; the same answer for another sign-in is refused.
    let origin =
        std::env::var("SAM_PLATFORM_ORIGIN").expect("SAM_PLATFORM_ORIGIN: run `make test`");
    let status = platform.get("/account/mfa", Some(op)).await;
    assert_eq!(
        status.json["data"]["passkeys_available"], true,
        "{}",
        status.json
    );
    let started = platform
        .call(
            "POST",
            "/account/mfa/passkeys/options",
            Some(op),
            Some(json!({ "password": password })),
            &[],
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.json);
    let (mut soft, credential) = SoftPasskey::register(&started.json["data"]["options"], &origin);
    let added = platform
        .call(
            "POST",
            "/account/mfa/passkeys",
            Some(op),
            Some(json!({ "name": "CI key", "credential": credential })),
            &[],
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.json);
    assert!(
        added.json["data"].get("recovery_codes").is_none(),
        "not the first factor"
    );
    let step = first_step(&platform, email, password, "operator").await;
    assert_eq!(step["methods"], json!(["totp", "passkey", "recovery_code"]));
    let token = step["mfa_token"].as_str().unwrap();
    let options = platform
        .post(
            "/auth/mfa/passkey",
            json!({ "mfa_token": token }),
            &unique_ip(),
        )
        .await;
    assert_eq!(options.status, 200, "{}", options.json);
    let answer = soft.assert(&options.json["data"]["options"], &origin);
    let signed_in = platform
        .post(
            "/auth/mfa",
            json!({ "mfa_token": token, "passkey": answer }),
            &unique_ip(),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.json);
    let op = signed_in.json["data"]["access_token"].as_str().unwrap();
    assert_eq!(platform.get("/users", Some(op)).await.status, 200);
    let step = first_step(&platform, email, password, "operator").await;
    let token = step["mfa_token"].as_str().unwrap();
    let options = platform
        .post(
            "/auth/mfa/passkey",
            json!({ "mfa_token": token }),
            &unique_ip(),
        )
        .await;
    assert_eq!(options.status, 200);
    let replayed = platform
        .post(
            "/auth/mfa",
            json!({ "mfa_token": token, "passkey": answer }),
            &unique_ip(),
        )
        .await;
    assert_eq!(
        (replayed.status, replayed.json["error"]["code"].clone()),
        (400, json!("INVALID_MFA_CODE"))
    );
    // Listed by name, never with its key.
    let listed = platform.get("/account/mfa", Some(op)).await;
    assert_eq!(listed.json["data"]["passkeys"][0]["name"], "CI key");
    assert!(!listed.json.to_string().contains("public_key"));
}
