//! Access-token keys over HTTP, black box: a rotation with `make keys-rotate` (README,
//! "Access-token keys", as printed) reaches the signing function and the verify-only functions
//! of the deployed stack without a redeploy, and after `make keys-retire` a retired key stops
//! working. It moves the stack's own keys, so `make test` runs it
//! alone, after every other test (`localstack/test.sh`).

mod support;

use serde_json::{json, Value};
use shared::domain::Role;
use support::{unique_ip, workspace, Platform, PASSWORD};

/// `make keys-<command>` on the stack `make test` deployed: the target finds the stack's key
/// secrets from its stack.json (`STACK_FILE`, which `make test` exports), not from variables.
fn make_keys(command: &str) {
    let out = std::process::Command::new("make")
        .args(["-s", "--no-print-directory", &format!("keys-{command}")])
        .current_dir(workspace())
        .env_remove("JWT_SIGNING_KEY_SECRET_ID")
        .env_remove("JWT_PUBLIC_KEYS_SECRET_ID")
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make keys-{command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Long enough for every function to have read its key secret again.
async fn after_a_key_refresh() {
    let secs: u64 = std::env::var("KEYS_REFRESH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    tokio::time::sleep(std::time::Duration::from_millis(secs * 1000 + 1500)).await;
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn a_key_rotation_reaches_every_function_without_a_restart() {
    let p = Platform::start().await;
    let owner = p.user(false).await;
    let tenant = shared::testing::tenant(&p.store, "Keys", Some((&owner, Role::Owner))).await;
    let ip = unique_ip();
    let sign_in = || async {
        let r = p
            .post(
                "/auth/login",
                json!({"email": owner.email, "password": PASSWORD}),
                &ip,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["data"]["access_token"].as_str().unwrap().to_string()
    };
    // tenants verifies with the public keys only.
    let origins = format!("/tenants/{}/redirect-origins", tenant.slug);
    let old = sign_in().await;
    assert_eq!(p.get(&origins, Some(&old)).await.status, 200);

    make_keys("rotate");
    after_a_key_refresh().await;
    let new = sign_in().await;
    assert_ne!(kid_of(&new), kid_of(&old), "login signs with the new key");
    for token in [&new, &old] {
        assert_eq!(p.get(&origins, Some(token)).await.status, 200);
        assert_eq!(p.get("/auth/me", Some(token)).await.status, 200);
    }
    let jwks = p.get("/.well-known/jwks.json", None).await.json;
    let kids: Vec<&Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(kids.len(), 2, "{jwks}");

    make_keys("retire");
    after_a_key_refresh().await;
    assert_eq!(
        p.get(&origins, Some(&old)).await.status,
        401,
        "a retired key is refused"
    );
    assert_eq!(p.get(&origins, Some(&new)).await.status, 200);
    let jwks = p.get("/.well-known/jwks.json", None).await.json;
    assert_eq!(jwks["keys"][0]["kid"].as_str().unwrap(), kid_of(&new));
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    p.shutdown().await;
}
