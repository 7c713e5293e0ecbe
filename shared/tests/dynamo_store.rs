//! `DynamoStore` against the local emulator (started by `make test`, which exports
//! `AWS_ENDPOINT_URL` and `TABLE_NAME`). Each test works on its own fresh ids and emails.

use shared::auth::opaque;
use shared::domain::{Audience, Email, User, UserId, UserStatus};
use shared::ratelimit::{self, Decision, RatePolicy};
use shared::store::*;
use std::sync::Arc;

async fn store() -> DynamoStore {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME: run through `make test`");
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL: run through `make test`"
    );
    let sdk = shared::aws::sdk_config().await;
    DynamoStore::new(shared::dynamodb::Client::new(&sdk), table)
}

fn user() -> User {
    User {
        id: UserId::new_random(),
        email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        platform_admin: false,
        status: UserStatus::Active,
        session_epoch: 3,
        reset_generation: 0,
        created_at: 1_700_000_000,
    }
}

async fn session(s: &DynamoStore, u: &User) -> (RefreshFamily, RefreshTokenRecord) {
    let family = RefreshFamily {
        family_id: opaque::random_id(),
        user_id: u.id.clone(),
        revoked: false,
        expires_at: i64::MAX / 2,
    };
    let first = RefreshTokenRecord {
        token_hash: opaque::mint().hash,
        family_id: family.family_id.clone(),
        user_id: u.id.clone(),
        audience: Audience::Portal,
        used: false,
        session_epoch: u.session_epoch,
        expires_at: family.expires_at,
    };
    s.create_session(&family, &first).await.unwrap();
    (family, first)
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn users_round_trip_and_emails_are_unique() {
    let s = store().await;
    let u = user();
    s.create_user(&u).await.unwrap();
    assert_eq!(s.user_by_email(&u.email).await.unwrap(), Some(u.clone()));
    assert_eq!(s.user_by_id(&u.id).await.unwrap(), Some(u.clone()));
    let mut twin = user();
    twin.email = u.email.clone();
    assert!(matches!(
        s.create_user(&twin).await,
        Err(StoreError::Conflict(_))
    ));
    // The failed transaction left nothing of the twin behind.
    assert_eq!(s.user_by_id(&twin.id).await.unwrap(), None);
    let unknown = Email::parse("nobody-here@example.com").unwrap();
    assert_eq!(s.user_by_email(&unknown).await.unwrap(), None);
    assert_eq!(s.memberships(&u.id).await.unwrap(), vec![]);
    s.ping().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn concurrent_rotations_of_one_token_let_exactly_one_through() {
    let s = Arc::new(store().await);
    let u = user();
    s.create_user(&u).await.unwrap();
    let (_, first) = session(&s, &u).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        let first = first.clone();
        tasks.push(tokio::spawn(async move {
            let next = RefreshTokenRecord {
                token_hash: opaque::mint().hash,
                ..first.clone()
            };
            s.rotate_refresh_token(&first.token_hash, &next)
                .await
                .unwrap()
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            RotateOutcome::Rotated => rotated += 1,
            RotateOutcome::AlreadyUsed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
    assert!(
        s.refresh_token(&first.token_hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn revoked_family_refuses_rotation() {
    let s = store().await;
    let u = user();
    let (family, first) = session(&s, &u).await;
    s.revoke_family(&family.family_id).await.unwrap();
    assert!(
        s.refresh_family(&family.family_id)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let next = RefreshTokenRecord {
        token_hash: opaque::mint().hash,
        ..first.clone()
    };
    assert_eq!(
        s.rotate_refresh_token(&first.token_hash, &next)
            .await
            .unwrap(),
        RotateOutcome::FamilyRevoked
    );
    // Nothing was half-written: the old token is still unused and the new one absent.
    assert!(
        !s.refresh_token(&first.token_hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );
    assert_eq!(s.refresh_token(&next.token_hash).await.unwrap(), None);
    // Revoking an unknown family is a no-op, not an error.
    s.revoke_family("no-such-family").await.unwrap();
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn rate_limits_count_across_calls_and_trim_old_hits() {
    let s = store().await;
    let policy = RatePolicy {
        name: "itest",
        limit: 3,
        window_secs: 100,
    };
    let subject = uuid::Uuid::new_v4().to_string();
    for t in [1000, 1001, 1002, 1003, 1004] {
        ratelimit::record(&s, &[(policy, &subject)], t)
            .await
            .unwrap();
    }
    assert_eq!(
        ratelimit::check(&s, &[(policy, &subject)], 1010)
            .await
            .unwrap(),
        Decision::Limited {
            retry_after_secs: 92
        }
    );
    assert_eq!(
        ratelimit::check(&s, &[(policy, &subject)], 1110)
            .await
            .unwrap(),
        Decision::Allowed
    );
    let key = format!("itest#{}", shared::auth::sha256_hex(subject.as_bytes()));
    let stored = s.rate_hits(&[key.clone(), key]).await.unwrap();
    assert!(
        stored[0].len() <= 4,
        "hits should be trimmed, got {:?}",
        stored[0]
    );
    assert_eq!(stored[0], stored[1]);
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn idempotency_keys_are_claimed_once_kept_released_and_lapse() {
    let s = Arc::new(store().await);
    let id = uuid::Uuid::new_v4().to_string();
    // Of 10 concurrent claims of one key, exactly one wins; the rest see it in progress.
    let claims = (0..10).map(|_| {
        let s = s.clone();
        let id = id.clone();
        tokio::spawn(async move { s.claim_idempotency(&id, "fp-a", 1_000, 1_120).await })
    });
    let mut won = 0;
    for c in claims {
        match c.await.unwrap().unwrap() {
            IdempotencyClaim::Claimed => won += 1,
            IdempotencyClaim::InProgress { fingerprint } => assert_eq!(fingerprint, "fp-a"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    // Only the claimant's fingerprint settles it.
    assert!(matches!(
        s.complete_idempotency(&id, "fp-b", 201, "{}", 90_000).await,
        Err(StoreError::Conflict(_))
    ));
    s.complete_idempotency(&id, "fp-a", 201, r#"{"x":1}"#, 90_000)
        .await
        .unwrap();
    assert_eq!(
        s.claim_idempotency(&id, "fp-a", 1_001, 1_121)
            .await
            .unwrap(),
        IdempotencyClaim::Done {
            fingerprint: "fp-a".into(),
            status: 201,
            data: r#"{"x":1}"#.into()
        }
    );
    // A done record is not released; once expired, the key is free again.
    s.release_idempotency(&id, "fp-a").await.unwrap();
    assert!(matches!(
        s.claim_idempotency(&id, "fp-a", 2_000, 2_120)
            .await
            .unwrap(),
        IdempotencyClaim::Done { .. }
    ));
    assert_eq!(
        s.claim_idempotency(&id, "fp-c", 90_000, 90_120)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    // A pending claim is released by its holder, and a lapsed one can be taken over.
    s.release_idempotency(&id, "fp-c").await.unwrap();
    assert_eq!(
        s.claim_idempotency(&id, "fp-d", 90_001, 90_121)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    assert_eq!(
        s.claim_idempotency(&id, "fp-e", 90_121, 90_241)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
}
