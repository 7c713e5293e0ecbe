//! The scheduled reconcile's walk through every tenant: a page at a time, from the position the
//! last pass kept, on the in-memory store (no AWS call is made by the walk itself).

use reconcile::{App, Walk, Walked, PAGE};
use shared::access::jwt::TokenKeys;
use shared::store::{MemoryStore, TenantStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A client of `$krate` that is never called: the walk makes no AWS call.
macro_rules! idle_client {
    ($krate:ident) => {
        $krate::Client::from_conf(
            $krate::config::Builder::new()
                .behavior_version($krate::config::BehaviorVersion::latest())
                .region($krate::config::Region::new("us-east-1"))
                .build(),
        )
    };
}

fn app(store: Arc<MemoryStore>, walk: Duration) -> App {
    App {
        store,
        keys: TokenKeys::from_secret_json(&TokenKeys::generate_secret_json("k"), "iss", 900)
            .unwrap(),
        s3: idle_client!(aws_sdk_s3),
        secrets: idle_client!(aws_sdk_secretsmanager),
        sfn: idle_client!(aws_sdk_sfn),
        events: Arc::new(shared::events::RecordingPublisher::default()),
        mailer: Arc::new(shared::mail::RecordingMailer::default()),
        bucket: "b".into(),
        secret_prefix: String::new(),
        state_machine_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:x".into(),
        stale_after_secs: 300,
        wait: Duration::from_secs(1),
        walk,
    }
}

/// One pass: the slugs it was handed, and how it ended.
async fn pass(app: &App) -> (Vec<String>, Walked) {
    let mut walk = Walk::start(app, Instant::now()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(page) = walk.next().await.unwrap() {
        assert!(page.len() <= PAGE, "one page at a time");
        seen.extend(page.into_iter().map(|t| t.slug.as_str().to_string()));
    }
    (seen, walk.outcome().unwrap())
}

#[tokio::test]
async fn passes_go_on_where_the_last_stopped_and_start_over_after_the_last_tenant() {
    let store = Arc::new(MemoryStore::new());
    for i in 0..(2 * PAGE + PAGE / 2) {
        shared::testing::tenant(store.as_ref(), &format!("T{i}"), None).await;
    }
    // No time to walk: each pass handles one page and keeps its position.
    let short = app(store.clone(), Duration::ZERO);
    let (first, how) = pass(&short).await;
    assert_eq!((first.len(), how), (PAGE, Walked::Paused));
    let (second, how) = pass(&short).await;
    assert_eq!((second.len(), how), (PAGE, Walked::Paused));
    let (third, how) = pass(&short).await;
    assert_eq!((third.len(), how), (PAGE / 2, Walked::Finished));
    let mut all: Vec<String> = [first.clone(), second, third].concat();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "no tenant twice");
    assert_eq!(total, 2 * PAGE + PAGE / 2, "every tenant once");
    // Then the walk starts again from the first.
    let (again, _) = pass(&short).await;
    assert_eq!(again, first);

    // Time enough: every tenant in one pass.
    store.set_reconcile_position(None).await.unwrap();
    let long = app(store.clone(), Duration::from_secs(60));
    let (everything, how) = pass(&long).await;
    assert_eq!((everything.len(), how), (total, Walked::Finished));
    assert_eq!(store.reconcile_position().await.unwrap(), None);

    // A kept position the store no longer accepts starts the walk over.
    store
        .set_reconcile_position(Some("not-a-cursor"))
        .await
        .unwrap();
    let (restarted, how) = pass(&long).await;
    assert_eq!((restarted.len(), how), (total, Walked::Finished));
}
