//! users, black box: the first operator's direct invocation (the same script `make deploy`
//! runs), operators' user management through the gateway, and one's own sessions.

mod support;

use serde_json::{json, Value};
use support::{operator_token, token_in, unique_email, unique_ip, Platform, PASSWORD};

/// Signs `email` in and returns (access token, refresh token).
async fn sign_in_pair(platform: &Platform, email: &str, agent: &str) -> (String, String) {
    let r = platform
        .send(
            "POST",
            "/auth/login",
            &[
                ("content-type", "application/json"),
                ("user-agent", agent),
                ("x-forwarded-for", &unique_ip()),
            ],
            Some(
                json!({"email": email, "password": PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    (
        r.json["data"]["access_token"].as_str().unwrap().to_string(),
        r.json["data"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn refresh(platform: &Platform, token: &str) -> u16 {
    platform
        .post(
            "/auth/refresh",
            json!({ "refresh_token": token }),
            &unique_ip(),
        )
        .await
        .status
}

fn invite(email: &str, force: bool) -> String {
    let stack = std::env::var("STACK_FILE").expect("STACK_FILE: run through `make test`");
    let mut args = vec!["invite", "--email", email, "--stack-file", &stack];
    if force {
        args.push("--force");
    }
    support::python("infra/first_operator.py", &args)
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn an_invited_operator_accepts_by_mail_and_signs_in() {
    let platform = Platform::start().await;
    let email = unique_email("first-op");
    // Operators exist on this stack (other tests make them): a second is invited on purpose.
    let out = invite(&email, true);
    assert!(out.contains(": invited"), "{out}");
    let mail = platform.wait_for_mail(&email, 1).await;
    let (subject, body) = &mail[0];
    assert!(
        subject.contains("You are invited to the platform"),
        "{subject}"
    );
    assert!(body.contains("as platform operator"), "{body}");
    let token = token_in(body);
    let accepted = platform
        .post(
            "/auth/accept-invitation",
            json!({"token": token, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.json);
    let op = platform.sign_in(&email, "operator").await;
    let me = platform.get("/account", Some(&op)).await;
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json["data"]["operator"], true);
    assert_eq!(me.json["data"]["status"], "active");
    // Again: nothing changes and nothing is sent.
    let again = invite(&email, false);
    assert!(again.contains(": exists"), "{again}");
    assert_eq!(platform.mail_to(&email).await.len(), 1);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_disabled_account_loses_every_token_and_sign_in_until_enabled() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let ana = platform.user(false).await;
    let (access, refresh_token) = sign_in_pair(&platform, ana.email.as_str(), "ana-laptop").await;
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 200);
    let found = platform
        .get(
            &format!("/users?q={}", &ana.email.as_str()[..12]),
            Some(&op),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.json);
    assert!(found.json["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["user_id"] == json!(ana.id)));
    let r = platform
        .call(
            "POST",
            format!("/users/{}/disable", ana.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // At once: the access token, the refresh token and a new sign-in are all refused, the
    // sign-in exactly as a wrong password is.
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 401);
    assert_eq!(platform.get("/account", Some(&access)).await.status, 401);
    assert_eq!(refresh(&platform, &refresh_token).await, 401);
    let login = platform
        .post(
            "/auth/login",
            json!({"email": ana.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(
        (login.status, login.json["error"]["code"].clone()),
        (401, json!("INVALID_CREDENTIALS"))
    );
    let page = platform.get(&format!("/users/{}", ana.id), Some(&op)).await;
    assert_eq!(page.json["data"]["status"], "disabled");
    assert_eq!(page.json["data"]["sessions"], json!([]));
    let r = platform
        .call(
            "POST",
            format!("/users/{}/enable", ana.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let (access, _) = sign_in_pair(&platform, ana.email.as_str(), "ana-laptop").await;
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 200);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_person_sees_their_devices_and_signs_the_others_out() {
    let platform = Platform::start().await;
    let ana = platform.user(false).await;
    let (_, phone_refresh) = sign_in_pair(&platform, ana.email.as_str(), "ana-phone").await;
    let (laptop, laptop_refresh) = sign_in_pair(&platform, ana.email.as_str(), "ana-laptop").await;
    let list = platform.get("/account/sessions", Some(&laptop)).await;
    assert_eq!(list.status, 200, "{}", list.json);
    let items: &Vec<Value> = list.json["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", list.json);
    let current: Vec<_> = items.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "ana-laptop");
    assert!(current[0]["client_ip"].is_string());
    // "Sign out my other devices": every session ends, and the laptop continues with the
    // fresh tokens of the answer.
    let r = platform
        .call("DELETE", "/account/sessions", Some(&laptop), None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let laptop = r.json["data"]["access_token"].as_str().unwrap().to_string();
    let fresh_refresh = r.json["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(refresh(&platform, &phone_refresh).await, 401);
    assert_eq!(refresh(&platform, &laptop_refresh).await, 401);
    assert_eq!(refresh(&platform, &fresh_refresh).await, 200);
    let listed = platform.get("/account/sessions", Some(&laptop)).await;
    assert_eq!(listed.json["data"]["items"].as_array().unwrap().len(), 1);
    // Another person's session id is not found for her.
    let bob = platform.user(false).await;
    let (bob_access, _) = sign_in_pair(&platform, bob.email.as_str(), "bob").await;
    let bobs = platform.get("/account/sessions", Some(&bob_access)).await;
    let bob_session = bobs.json["data"]["items"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = platform
        .call(
            "DELETE",
            format!("/account/sessions/{bob_session}"),
            Some(&laptop),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        platform.get("/auth/me", Some(&bob_access)).await.status,
        200
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_removed_user_is_gone_and_their_address_is_free() {
    let platform = Platform::start().await;
    let (op_user, op) = operator_token(&platform).await;
    let gone = platform.user(false).await;
    let (access, _) = sign_in_pair(&platform, gone.email.as_str(), "x").await;
    let r = platform
        .call(
            "DELETE",
            format!("/users/{}", gone.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(platform.get("/auth/me", Some(&access)).await.status, 401);
    assert_eq!(
        platform
            .get(&format!("/users/{}", gone.id), Some(&op))
            .await
            .status,
        404
    );
    // The audit keeps the removal, by id alone.
    let audit = platform
        .get(
            &format!("/audit?actor={}&action=user.removed", op_user.id),
            Some(&op),
        )
        .await;
    assert_eq!(audit.status, 200, "{}", audit.json);
    let text = audit.json.to_string();
    assert!(text.contains(&gone.id.to_string()), "{text}");
    assert!(!text.contains(gone.email.as_str()), "{text}");
    // The address can be used again (a new account, with a new id).
    let slug = support::unique_slug("reuse");
    let created = platform
        .call(
            "POST",
            "/tenants",
            Some(&op),
            Some(json!({"slug": slug, "name": "Reuse", "owner_email": gone.email})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    // An operator cannot remove themself.
    let r = platform
        .call(
            "DELETE",
            format!("/users/{}", op_user.id),
            Some(&op),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn changing_ones_password_ends_every_other_session_and_keeps_this_one() {
    let platform = Platform::start().await;
    let ana = platform.user(false).await;
    let (_, phone_refresh) = sign_in_pair(&platform, ana.email.as_str(), "ana-phone").await;
    let (laptop, laptop_refresh) = sign_in_pair(&platform, ana.email.as_str(), "ana-laptop").await;
    let change = |current: &str, new: &str| {
        let body = json!({"current_password": current, "new_password": new});
        let (platform, laptop) = (&platform, laptop.clone());
        async move {
            platform
                .call("POST", "/account/password", Some(&laptop), Some(body), &[])
                .await
        }
    };
    let wrong = change("not my password", support::NEW_PASSWORD).await;
    assert_eq!(
        (wrong.status, wrong.json["error"]["code"].clone()),
        (401, json!("INVALID_CREDENTIALS"))
    );
    let weak = change(PASSWORD, "password").await;
    assert_eq!(weak.json["error"]["code"], "WEAK_PASSWORD", "{}", weak.json);
    let done = change(PASSWORD, support::NEW_PASSWORD).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let fresh = done.json["data"]["access_token"].as_str().unwrap();
    assert_eq!(platform.get("/auth/me", Some(fresh)).await.status, 200);
    // Every token from before, on every device, stops working.
    assert_eq!(platform.get("/auth/me", Some(&laptop)).await.status, 401);
    assert_eq!(refresh(&platform, &phone_refresh).await, 401);
    assert_eq!(refresh(&platform, &laptop_refresh).await, 401);
    let fresh_refresh = done.json["data"]["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&platform, fresh_refresh).await, 200);
    // The new password signs in; the old one does not; the owner is told.
    platform
        .sign_in_with(ana.email.as_str(), support::NEW_PASSWORD, "portal")
        .await;
    let old = platform
        .post(
            "/auth/login",
            json!({"email": ana.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(old.status, 401);
    let mail = platform.wait_for_mail(ana.email.as_str(), 1).await;
    assert!(mail
        .iter()
        .any(|(subject, _)| subject.contains("password was changed")));
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_new_address_counts_once_it_is_proved_and_taken_ones_answer_the_same() {
    let platform = Platform::start().await;
    let ana = platform.user(false).await;
    let other = platform.user(false).await;
    let access = platform.sign_in(ana.email.as_str(), "portal").await;
    let ask = |new: String, password: &'static str| {
        let (platform, access) = (&platform, access.clone());
        async move {
            platform
                .call(
                    "POST",
                    "/account/email",
                    Some(&access),
                    Some(json!({"new_email": new, "password": password})),
                    &[],
                )
                .await
        }
    };
    let wrong = ask(unique_email("new"), "not the password").await;
    assert_eq!(wrong.status, 401, "{}", wrong.json);
    // A taken address answers exactly as a free one does.
    let taken = ask(other.email.to_string(), PASSWORD).await;
    let new = unique_email("ana-new");
    let free = ask(new.clone(), PASSWORD).await;
    assert_eq!(
        (taken.status, free.status),
        (202, 202),
        "{} {}",
        taken.json,
        free.json
    );
    assert_eq!(taken.json["data"], free.json["data"]);
    // The owner of the taken address is told; nothing of theirs changes.
    let told = platform.wait_for_mail(other.email.as_str(), 1).await;
    assert!(
        told[0].1.contains("already has an account"),
        "{}",
        told[0].1
    );
    assert!(!told[0].1.contains("#token="));
    // The old address is told (masked new address); nothing changes until the link is used.
    let notices = platform.wait_for_mail(ana.email.as_str(), 2).await;
    assert!(notices.iter().all(|(_, body)| !body.contains(&new)));
    assert_eq!(platform.store_user(&ana.id).await.email, ana.email);
    let link = platform.wait_for_mail(&new, 1).await;
    let token = token_in(&link[0].1);
    let verify = |token: String| {
        let platform = &platform;
        async move {
            platform
                .post(
                    "/auth/verify-email",
                    json!({ "token": token }),
                    &unique_ip(),
                )
                .await
        }
    };
    let r = verify(token.clone()).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(platform.store_user(&ana.id).await.email.as_str(), new);
    // Spent; the new address signs in, the old one no longer does (and is free again).
    assert_eq!(verify(token).await.status, 400);
    platform.sign_in(&new, "portal").await;
    let old = platform
        .post(
            "/auth/login",
            json!({"email": ana.email, "password": PASSWORD}),
            &unique_ip(),
        )
        .await;
    assert_eq!(old.status, 401);
}
