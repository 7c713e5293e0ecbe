//! Partners through the deployed stack (API Gateway -> the real `partners` and `tenants`
//! binaries -> DynamoDB): attach, detach and moves between partners keep their counts exact.
//! Who may call each partner route is in `access_matrix.rs`.

mod support;

use support::{futures_join, operator_token, partner, tenant_with_owner, Platform, Reply};

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn partner_counts_stay_exact_under_concurrent_attach_detach_and_moves() {
    let platform = Platform::start().await;
    let (_, op) = operator_token(&platform).await;
    let p = partner(&platform, &op).await;
    let q = partner(&platform, &op).await;
    let owner = platform.user(false).await;
    let mut tenants = Vec::new();
    for _ in 0..8 {
        tenants.push(tenant_with_owner(&platform, &op, &owner, None).await);
    }
    let attach = |partner: &str, t: &str| {
        platform.call(
            "PUT",
            format!("/partners/{partner}/tenants/{t}"),
            Some(&op),
            None,
            &[],
        )
    };
    // All eight to P at once, and four of them to Q at the same time.
    let mut calls = Vec::new();
    for t in &tenants {
        calls.push(attach(&p, t));
    }
    for t in &tenants[..4] {
        calls.push(attach(&q, t));
    }
    let first = futures_join(calls.into_iter()).await;
    assert!(
        first.iter().all(|r| r.status == 200 || r.status == 409),
        "{:?}",
        first
            .iter()
            .map(|r| (r.status, r.json.clone()))
            .collect::<Vec<_>>()
    );
    // Then detach half of P's and move the rest around, concurrently.
    let mut calls = Vec::new();
    for t in &tenants[4..6] {
        calls.push(platform.call(
            "DELETE",
            format!("/partners/{p}/tenants/{t}"),
            Some(&op),
            None,
            &[],
        ));
    }
    for t in &tenants[..2] {
        calls.push(attach(&p, t));
        calls.push(attach(&q, t));
    }
    futures_join(calls.into_iter()).await;
    // Counts must equal what is actually attached.
    for partner in [&p, &q] {
        let listed = platform
            .call(
                "GET",
                format!("/partners/{partner}/tenants?limit=100"),
                Some(&op),
                None,
                &[],
            )
            .await;
        let attached = listed.json["data"]["items"].as_array().unwrap().len() as i64;
        let record = platform
            .call("GET", format!("/partners/{partner}"), Some(&op), None, &[])
            .await;
        assert_eq!(
            record.json["data"]["tenant_count"].as_i64().unwrap(),
            attached,
            "{partner}: {}",
            record.json
        );
    }
    let total = |r: Reply| r.json["data"]["tenant_count"].as_i64().unwrap();
    let in_p = total(
        platform
            .call("GET", format!("/partners/{p}"), Some(&op), None, &[])
            .await,
    );
    let in_q = total(
        platform
            .call("GET", format!("/partners/{q}"), Some(&op), None, &[])
            .await,
    );
    assert_eq!(in_p + in_q, 6, "two were detached");
    // A deleted tenant leaves the count; a terminated partner takes no new tenants.
    let victim = &tenants[6];
    let owner_of = platform
        .call("GET", format!("/tenants/{victim}"), Some(&op), None, &[])
        .await;
    let was_in_p = owner_of.json["data"]["partner_id"].is_string();
    assert_eq!(
        platform
            .call("DELETE", format!("/tenants/{victim}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    if was_in_p {
        let after = total(
            platform
                .call("GET", format!("/partners/{p}"), Some(&op), None, &[])
                .await,
        ) + total(
            platform
                .call("GET", format!("/partners/{q}"), Some(&op), None, &[])
                .await,
        );
        assert_eq!(after, 5);
    }
    assert_eq!(
        platform
            .call("DELETE", format!("/partners/{q}"), Some(&op), None, &[])
            .await
            .status,
        200
    );
    let refused = attach(&q, &tenants[7]).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.json["error"]["code"], "PARTNER_TERMINATED");
}
