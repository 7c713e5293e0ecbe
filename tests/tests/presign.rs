//! Presigned storage links through the deployed stack, used for real against the emulator's
//! S3, which checks signatures, expiry and POST policies (moto checks none of them).

mod support;

use serde_json::{json, Value};
use shared::domain::User;
use support::{multipart, unique_slug, Platform};

struct Setup {
    slug: String,
    member: String,
    outsider: String,
    operator: String,
}

async fn setup(platform: &Platform) -> Setup {
    let op_user = platform.user(true).await;
    let operator = platform.sign_in(op_user.email.as_str(), "operator").await;
    let owner: User = platform.user(false).await;
    let slug = unique_slug("st");
    let r = platform
        .call(
            "POST",
            "/tenants",
            Some(&operator),
            Some(json!({"slug": slug, "name": "Storage", "owner_email": owner.email})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    // Another tenant, whose member must get nothing of this one.
    let other_owner = platform.user(false).await;
    let other = unique_slug("st");
    let r = platform
        .call(
            "POST",
            "/tenants",
            Some(&operator),
            Some(json!({"slug": other, "name": "Other", "owner_email": other_owner.email})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    // Existing accounts named owner accept before they hold anything.
    let member = platform.sign_in(owner.email.as_str(), "portal").await;
    let outsider = platform.sign_in(other_owner.email.as_str(), "portal").await;
    platform.join(&slug, &member).await;
    platform.join(&other, &outsider).await;
    Setup {
        slug,
        member,
        outsider,
        operator,
    }
}

async fn presign(platform: &Platform, s: &Setup, token: &str, body: Value) -> support::Reply {
    platform
        .call(
            "POST",
            format!("/tenants/{}/storage/presign", s.slug),
            Some(token),
            Some(body),
            &[],
        )
        .await
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn upload_and_download_through_presigned_urls_and_s3_refuses_tampering() {
    let platform = Platform::start().await;
    let s = setup(&platform).await;
    let up = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "upload", "key": "docs/hello.txt", "content_type": "text/plain", "size": 13}),
    )
    .await;
    assert_eq!(up.status, 200, "{}", up.json);
    assert_eq!(up.json["data"]["method"], "PUT");
    assert_eq!(up.json["data"]["headers"]["content-length"], "13");
    let put_url = up.json["data"]["url"].as_str().unwrap().to_string();
    assert!(put_url.contains("/tenants/"), "{put_url}");
    // A wrong content type breaks the signature.
    let (status, _) = platform
        .send_url(
            "PUT",
            &put_url,
            &[("content-type", "image/png")],
            b"hello storage".to_vec(),
        )
        .await;
    assert_eq!(status, 403, "a different content type is refused");
    // So does any other length than the declared one: the size is signed.
    for body in [
        b"hello storage!".to_vec(),
        vec![b'x'; 5000],
        b"hello".to_vec(),
    ] {
        let (status, _) = platform
            .send_url(
                "PUT",
                &put_url,
                &[("content-type", "text/plain")],
                body.clone(),
            )
            .await;
        assert_eq!(
            status,
            403,
            "a {}-byte body on a 13-byte PUT is refused",
            body.len()
        );
    }
    // A tampered signature is refused.
    let tampered = tamper(&put_url);
    let (status, _) = platform
        .send_url(
            "PUT",
            &tampered,
            &[("content-type", "text/plain")],
            b"hello storage".to_vec(),
        )
        .await;
    assert_eq!(status, 403, "a tampered signature is refused");
    // A size over the plan's largest upload gets no URL at all, and no size gets the form only.
    let over = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "upload", "key": "docs/big.bin", "size": 4097}),
    )
    .await;
    assert_eq!(over.status, 400, "{}", over.json);
    assert!(
        over.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("size"),
        "{}",
        over.json
    );
    assert!(
        !over.json.to_string().contains("4097"),
        "the value is not echoed"
    );
    let form_only = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "upload", "key": "docs/form.bin"}),
    )
    .await;
    assert_eq!(
        form_only.json["data"]["method"], "POST",
        "{}",
        form_only.json
    );
    assert_eq!(
        form_only.json["data"]["url"],
        form_only.json["data"]["post"]["url"]
    );
    let (status, body) = platform
        .send_url(
            "PUT",
            &put_url,
            &[("content-type", "text/plain")],
            b"hello storage".to_vec(),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let down = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "download", "key": "docs/hello.txt"}),
    )
    .await;
    let get_url = down.json["data"]["url"].as_str().unwrap().to_string();
    // Served as an attachment of opaque bytes, and the signature covers that.
    assert!(
        get_url.contains("response-content-disposition=attachment")
            && get_url.contains("response-content-type=application%2Foctet-stream"),
        "{get_url}"
    );
    let (status, _) = platform
        .send_url(
            "GET",
            &get_url.replace(
                "response-content-disposition=attachment",
                "response-content-disposition=inline",
            ),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(status, 403, "the disposition is signed");
    // A download link lives 5 minutes at most.
    let long = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "download", "key": "docs/hello.txt", "expires_in": 301}),
    )
    .await;
    assert_eq!(long.status, 400, "{}", long.json);
    assert!(
        long.json["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("expires_in"),
        "{}",
        long.json
    );
    let (status, body) = platform.send_url("GET", &get_url, &[], Vec::new()).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, b"hello storage".as_slice())
    );
    let (status, _) = platform
        .send_url("GET", &tamper(&get_url), &[], Vec::new())
        .await;
    assert_eq!(status, 403);
    // An expired link is refused.
    let short = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "download", "key": "docs/hello.txt", "expires_in": 1}),
    )
    .await;
    let short_url = short.json["data"]["url"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, _) = platform.send_url("GET", &short_url, &[], Vec::new()).await;
    assert_eq!(status, 403, "an expired link is refused");
}

/// The URL with the last character of its signature changed.
fn tamper(url: &str) -> String {
    let at = url.find("X-Amz-Signature=").expect("a signed URL") + "X-Amz-Signature=".len();
    let mut chars: Vec<char> = url.chars().collect();
    let i = at + 3;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_post_policy_limits_size_and_type() {
    let platform = Platform::start().await;
    let s = setup(&platform).await;
    let up = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "upload", "key": "forms/small.bin", "content_type": "application/octet-stream"}),
    )
    .await;
    assert_eq!(up.status, 200, "{}", up.json);
    let post = &up.json["data"]["post"];
    let max = up.json["data"]["max_bytes"].as_u64().unwrap();
    // make test deploys a 4 KiB free-plan limit.
    assert_eq!(max, 4096);
    let url = post["url"].as_str().unwrap();
    let fields: Vec<(String, String)> = post["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let p = &platform;
    let send = move |file: Vec<u8>, fields: Vec<(String, String)>| async move {
        let (ct, body) = multipart(&fields, &file, "application/octet-stream");
        p.send_url("POST", url, &[("content-type", ct.as_str())], body)
            .await
    };
    let (status, body) = send(vec![7u8; (max + 1) as usize], fields.clone()).await;
    assert!(
        (400..500).contains(&status),
        "an oversize upload is refused: {status} {}",
        String::from_utf8_lossy(&body)
    );
    // Another content type than the policy's is refused.
    let mut other_type = fields.clone();
    for f in other_type.iter_mut() {
        if f.0 == "Content-Type" {
            f.1 = "text/html".into();
        }
    }
    let (status, _) = send(vec![1u8; 10], other_type).await;
    assert!(
        (400..500).contains(&status),
        "a different content type is refused: {status}"
    );
    let (status, body) = send(vec![1u8; 100], fields).await;
    assert!(
        (200..300).contains(&status),
        "a small upload passes: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn only_members_get_links_keys_are_checked_and_bulk_is_bounded() {
    let platform = Platform::start().await;
    let s = setup(&platform).await;
    // A member of another tenant: the tenant does not exist for them.
    let r = presign(
        &platform,
        &s,
        &s.outsider,
        json!({"operation": "download", "key": "docs/hello.txt"}),
    )
    .await;
    assert_eq!(r.status, 404);
    // An operator is not a member.
    let r = presign(
        &platform,
        &s,
        &s.operator,
        json!({"operation": "download", "key": "a"}),
    )
    .await;
    assert_eq!(r.status, 403);
    for bad in ["", "/abs", "a/../b", "a\u{1}b", &"k".repeat(513)] {
        let r = presign(
            &platform,
            &s,
            &s.member,
            json!({"operation": "upload", "key": bad}),
        )
        .await;
        assert_eq!(r.status, 400, "{bad:?}");
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("key:"), "{msg}");
    }
    let r = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "download", "key": "a", "expires_in": 3601}),
    )
    .await;
    assert_eq!(r.status, 400);
    // Bulk: up to 50 at once, each under the tenant's prefix.
    let items: Vec<Value> = (0..50)
        .map(|i| json!({"operation": "upload", "key": format!("bulk/{i}.txt"), "content_type": "text/plain"}))
        .collect();
    let r = presign(&platform, &s, &s.member, json!({ "items": items })).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["data"]["items"].as_array().unwrap().len(), 50);
    let too_many: Vec<Value> = (0..51)
        .map(|i| json!({"operation": "download", "key": format!("b/{i}")}))
        .collect();
    let r = presign(&platform, &s, &s.member, json!({ "items": too_many })).await;
    assert_eq!(r.status, 400);
    let bad_item = json!({"items": [{"operation": "download", "key": "ok"}, {"operation": "delete", "key": "x"}]});
    let r = presign(&platform, &s, &s.member, bad_item).await;
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("items[1].operation"));
    // A suspended tenant gets no links.
    let r = platform
        .call(
            "POST",
            format!("/tenants/{}/suspend", s.slug),
            Some(&s.operator),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let r = presign(
        &platform,
        &s,
        &s.member,
        json!({"operation": "download", "key": "a"}),
    )
    .await;
    assert_eq!(r.status, 403);
}
