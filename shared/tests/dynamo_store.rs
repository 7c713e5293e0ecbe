//! `DynamoStore` against the local emulator (started by `make test`, which exports
//! `AWS_ENDPOINT_URL` and `TABLE_NAME`). Each test works on its own fresh ids and emails.

use shared::access::opaque;
use shared::access::ratelimit::{self, Decision, RatePolicy, Reservation};
use shared::domain::{Audience, Email, Role, User, UserId, UserStatus};
use shared::store::*;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn store() -> DynamoStore {
    let table = std::env::var("TABLE_NAME").expect("TABLE_NAME: run through `make test`");
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL: run through `make test`"
    );
    let sdk = shared::runtime::aws::sdk_config().await;
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
        email_verified: false,
        last_sign_in_at: None,
        name: None,
        factors: Default::default(),
        created_at: 1_700_000_000,
    }
}

async fn session(s: &DynamoStore, u: &User, refund: Option<&Reservation>) -> (Session, String) {
    let session_id = opaque::random_id();
    let first = opaque::mint_for(&session_id);
    let session = Session {
        session_id,
        user_id: u.id.clone(),
        audience: Audience::Portal,
        session_epoch: u.session_epoch,
        expires_at: i64::MAX / 2,
        revoked: false,
        heads: BTreeMap::from([(first.hash.clone(), 1_000)]),
        spent: BTreeMap::new(),
        mfa_at: None,
        created_at: 1_000,
        last_used_at: 1_000,
        client_ip: Some("192.0.2.1".into()),
        user_agent: Some("dynamo-store-test".into()),
    };
    s.create_session(&session, refund, None).await.unwrap();
    (session, first.hash)
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
    assert_eq!(s.memberships_up_to(&u.id, 10).await.unwrap(), vec![]);
    s.ping().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn concurrent_rotations_of_one_token_let_exactly_one_through() {
    let s = Arc::new(store().await);
    let u = user();
    s.create_user(&u).await.unwrap();
    let (session, first) = session(&s, &u, None).await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        let (id, first) = (session.session_id.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            let next = opaque::mint_for(&id).hash;
            s.rotate_session(&id, &first, &next, 2_000, &[])
                .await
                .unwrap()
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        if t.await.unwrap() == RotateOutcome::Rotated {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
    let stored = s.session(&session.session_id).await.unwrap().unwrap();
    assert_eq!(stored.heads.len(), 1);
    assert_eq!(stored.spent.get(&first), Some(&2_000));
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn grace_heads_are_bounded_and_spent_hashes_are_forgotten_oldest_first() {
    let s = store().await;
    let u = user();
    let (session, first) = session(&s, &u, None).await;
    let id = &session.session_id;
    let mut head = first.clone();
    for t in 0..(MAX_SPENT_REMEMBERED as i64 + 3) {
        let now = 2_000 + t;
        let current = s.session(id).await.unwrap().unwrap();
        let next = opaque::mint_for(id).hash;
        let forget = current.spent_to_forget();
        assert_eq!(
            s.rotate_session(id, &head, &next, now, &forget)
                .await
                .unwrap(),
            RotateOutcome::Rotated
        );
        head = next;
    }
    let stored = s.session(id).await.unwrap().unwrap();
    assert_eq!(stored.spent.len(), MAX_SPENT_REMEMBERED);
    assert!(
        !stored.spent.contains_key(&first),
        "the oldest spent hash is forgotten"
    );
    // Inside the grace window the last spent token may add heads, up to the bound.
    let (last_spent, &at) = stored.spent.iter().max_by_key(|(_, t)| **t).unwrap();
    let mut added = 0;
    for _ in 0..MAX_SESSION_HEADS + 2 {
        if s.add_session_head(id, last_spent, at, &opaque::mint_for(id).hash, at)
            .await
            .unwrap()
        {
            added += 1;
        }
    }
    assert_eq!(added, MAX_SESSION_HEADS - 1);
    // A revoked session takes no rotation and no head; revoking twice or an unknown one is fine.
    s.revoke_session(id).await.unwrap();
    s.revoke_session(id).await.unwrap();
    s.revoke_session("no-such-session").await.unwrap();
    let after = s.session(id).await.unwrap().unwrap();
    let any_head = after.heads.keys().next().unwrap().clone();
    assert_eq!(
        s.rotate_session(id, &any_head, &opaque::mint_for(id).hash, 9_000, &[])
            .await
            .unwrap(),
        RotateOutcome::Refused
    );
    assert!(!s
        .add_session_head(id, last_spent, at, &opaque::mint_for(id).hash, at)
        .await
        .unwrap());
    assert_eq!(
        s.session(id).await.unwrap().unwrap().heads,
        after.heads,
        "nothing half-written"
    );
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn rate_limit_reservations_are_atomic_refundable_and_refusals_are_free() {
    let s = Arc::new(store().await);
    // A day's window, at the real time: the counters' expiry is in the future, and the test
    // does not straddle two windows but once a day.
    let policy = RatePolicy {
        name: "itest",
        limit: 5,
        window_secs: 86_400,
    };
    let now = shared::runtime::time::now_unix();
    let subject = uuid::Uuid::new_v4().to_string();
    let other = uuid::Uuid::new_v4().to_string();
    // 30 concurrent reservations under two counters: exactly the limit get through, and the
    // refused ones are not left counted under the other counter.
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let (s, subject, other) = (s.clone(), subject.clone(), other.clone());
            tokio::spawn(async move {
                let loose = RatePolicy {
                    name: "itest-loose",
                    limit: 1_000,
                    window_secs: 86_400,
                };
                ratelimit::reserve(s.as_ref(), &[(policy, &subject), (loose, &other)], now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut reserved = Vec::new();
    for t in tasks {
        if let Decision::Reserved(r) = t.await.unwrap() {
            reserved.push(r);
        }
    }
    assert_eq!(reserved.len(), policy.limit);
    let loose_key = reserved[0].keys[1].clone();
    let counted = |key: String| {
        let s = s.clone();
        async move {
            let item = s
                .raw_item(&format!("RATE#{key}"), "RATE")
                .await
                .unwrap()
                .unwrap_or_default();
            item.get("n")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        }
    };
    let key = ratelimit::key(&policy, &subject, now);
    assert_eq!(
        counted(key.clone()).await,
        policy.limit as i64,
        "refusals are not written"
    );
    assert_eq!(
        counted(loose_key).await,
        policy.limit as i64,
        "refusals are taken back"
    );
    // A refund frees one slot, and a session created with a refund frees another.
    ratelimit::refund(s.as_ref(), &reserved[0]).await.unwrap();
    let u = user();
    session(&s, &u, Some(&reserved[1])).await;
    assert_eq!(counted(key.clone()).await, policy.limit as i64 - 2);
    // A refund whose counter has gone still lets the session be created.
    let gone = Reservation {
        keys: vec![format!("itest#gone-{}", uuid::Uuid::new_v4())],
        in_flight: true,
    };
    session(&s, &u, Some(&gone)).await;
    for _ in 0..2 {
        assert!(matches!(
            ratelimit::reserve(s.as_ref(), &[(policy, &subject)], now)
                .await
                .unwrap(),
            Decision::Reserved(_)
        ));
    }
    let end = (now / 86_400 + 1) * 86_400;
    assert_eq!(
        ratelimit::reserve(s.as_ref(), &[(policy, &subject)], now)
            .await
            .unwrap(),
        Decision::Limited {
            retry_after_secs: (end - now).max(1) as u64
        }
    );
    // A new window starts afresh.
    assert!(matches!(
        ratelimit::reserve(s.as_ref(), &[(policy, &subject)], end)
            .await
            .unwrap(),
        Decision::Reserved(_)
    ));

    // Sign-ins in flight: twenty at once under a limit of five, each given back, all pass.
    let signer = uuid::Uuid::new_v4().to_string();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, signer) = (s.clone(), signer.clone());
            tokio::spawn(async move {
                let d = ratelimit::reserve_attempt(s.as_ref(), &[(policy, &signer)], now)
                    .await
                    .unwrap();
                if let Decision::Reserved(r) = &d {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    ratelimit::refund(s.as_ref(), r).await.unwrap();
                }
                matches!(d, Decision::Reserved(_))
            })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 20);
    // Five settled failures: refused at once.
    for _ in 0..policy.limit {
        let Decision::Reserved(r) =
            ratelimit::reserve_attempt(s.as_ref(), &[(policy, &signer)], now)
                .await
                .unwrap()
        else {
            panic!("refused");
        };
        ratelimit::settle_failed(s.as_ref(), &r).await.unwrap();
    }
    assert!(matches!(
        ratelimit::reserve_attempt(s.as_ref(), &[(policy, &signer)], now)
            .await
            .unwrap(),
        Decision::Limited { .. }
    ));
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

/// One scenario run against a store: every answer it gives, in order, so both stores can be
/// held to the same contract.
async fn membership_scenario(s: &dyn Store) -> Vec<String> {
    let mut log = Vec::new();
    let owner = user();
    s.create_user(&owner).await.unwrap();
    let tenant = shared::testing::tenant(s, "Compare", Some((&owner, Role::Owner))).await;
    let mut members = vec![owner.id.clone()];
    for _ in 0..6 {
        let u = user();
        s.create_user(&u).await.unwrap();
        s.add_membership(&u.id, &tenant, Role::Member)
            .await
            .unwrap();
        members.push(u.id.clone());
    }
    // Adding again never overwrites a role.
    log.push(format!(
        "re-add owner: {:?}",
        s.add_membership(&owner.id, &tenant, Role::Member)
            .await
            .map_err(|e| e.to_string())
    ));
    members.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    // Pages of 4: every member once, in order, then the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = s
            .tenant_members_page(&tenant.id, 4, cursor.as_deref())
            .await
            .unwrap();
        log.push(format!("page of {}", page.items.len()));
        seen.extend(
            page.items
                .iter()
                .map(|m| (m.user_id.clone(), m.role, m.added_at)),
        );
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        if seen.len() > 20 {
            panic!("paging does not end");
        }
    }
    // Newest first: by when they joined, then by user id (both descending).
    let positions: Vec<String> = seen
        .iter()
        .map(|(u, _, at)| format!("{at:015}#{u}"))
        .collect();
    log.push(format!(
        "newest first: {}",
        positions.windows(2).all(|w| w[0] > w[1])
    ));
    let mut ids: Vec<UserId> = seen.iter().map(|(u, _, _)| u.clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(ids, members);
    let owner_role = seen
        .iter()
        .find(|(u, _, _)| *u == owner.id)
        .map(|(_, r, _)| *r);
    log.push(format!("owner role: {owner_role:?}"));
    // A cursor of another tenant's list, or an edited one, is refused.
    let other = shared::testing::tenant(s, "Other", Some((&owner, Role::Owner))).await;
    let foreign = s
        .tenant_members_page(&other.id, 1, None)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    for bad in [foreign.as_str(), "bm90LWEtY3Vyc29y", ""] {
        log.push(format!(
            "bad cursor: {:?}",
            s.tenant_members_page(&tenant.id, 4, Some(bad))
                .await
                .map(|p| p.items.len())
                .map_err(|e| e.to_string())
        ));
    }
    // A commit is all or nothing: refused by one change, none of the others is written.
    use shared::store::changes::{
        AuditEntry, AuditTarget, Change, CommitError, OutboxEvent, Refusal,
    };
    let scope = format!("tenant:{}", tenant.id);
    let event_id = uuid::Uuid::new_v4().to_string();
    let with = |membership_user: &UserId| {
        vec![
            Change::AddMembership {
                user: membership_user.clone(),
                tenant: tenant.clone(),
                role: Role::Admin,
                at: 1_700_000_000_000,
            },
            Change::Audit(AuditEntry::new(
                AuditTarget::Tenant(tenant.id.clone()),
                owner.id.clone(),
                "member.added",
                serde_json::json!({}),
                1_700_000_000_000,
                "test-request",
            )),
            Change::Count {
                scope: scope.clone(),
                deltas: vec![("members".into(), 1)],
            },
            Change::Outbox(OutboxEvent {
                id: event_id.clone(),
                kind: "MemberAdded".into(),
                detail: "{}".into(),
                created_at: 1_700_000_000,
            }),
        ]
    };
    match s.commit(with(&owner.id)).await {
        Err(CommitError::Refused { reasons }) => log.push(format!(
            "refused by the membership: {}",
            reasons == vec![Refusal::AlreadyMember]
        )),
        other => log.push(format!("unexpected: {other:?}")),
    }
    log.push(format!(
        "after refusal: audit {} counter {} event {}",
        s.audit_entries(&scope, 10).await.unwrap().len(),
        s.counter(&scope, "members").await.unwrap(),
        s.outbox_event(&event_id).await.unwrap().is_some()
    ));
    let newcomer = user();
    s.create_user(&newcomer).await.unwrap();
    log.push(format!(
        "commit: {:?}",
        s.commit(with(&newcomer.id))
            .await
            .map_err(|e| e.to_string())
    ));
    log.push(format!(
        "after commit: audit {} counter {} event {} role {:?}",
        s.audit_entries(&scope, 10).await.unwrap().len(),
        s.counter(&scope, "members").await.unwrap(),
        s.outbox_event(&event_id)
            .await
            .unwrap()
            .map(|e| e.kind)
            .unwrap_or_default(),
        s.membership(&newcomer.id, &tenant.id)
            .await
            .unwrap()
            .map(|m| m.role)
    ));
    log
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn both_stores_answer_the_same_scenario_alike() {
    let dynamo = store().await;
    let memory = MemoryStore::new();
    let on_dynamo = membership_scenario(&dynamo).await;
    let in_memory = membership_scenario(&memory).await;
    assert_eq!(on_dynamo, in_memory);
    assert!(
        on_dynamo
            .iter()
            .any(|l| l.starts_with("owner role: Some(Owner)")),
        "{on_dynamo:?}"
    );
}

/// Tenants, partners, owners and audit through commits, logged so both stores can be compared.
async fn management_scenario(s: &(dyn Store + Sync)) -> Vec<String> {
    use shared::domain::partner::{Partner, PartnerSlug, PartnerStatus};
    use shared::domain::tenant::{Tenant, TenantSlug, TenantStatus};
    use shared::store::changes::{
        tenant_count_changes, AuditEntry, AuditTarget, Change, CommitError,
    };
    let mut log = Vec::new();
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let partner = Partner {
        id: shared::domain::PartnerId::new_random(),
        slug: PartnerSlug::parse(&format!("p-{tag}")).unwrap(),
        name: "P".into(),
        domain: shared::domain::fields::Hostname::parse("p.example.com").unwrap(),
        status: PartnerStatus::Active,
        margin_bp: 1250,
        contact_info: Default::default(),
        billing_info: Default::default(),
        tenant_counts: BTreeMap::new(),
        allowed_plans: None,
        version: 1,
        created_at: 1,
        updated_at: 1,
    };
    s.commit(vec![Change::CreatePartner(partner.clone())])
        .await
        .unwrap();
    let refused = |r: Result<(), CommitError>| match r {
        Ok(()) => "ok".to_string(),
        Err(CommitError::Refused { reasons }) => format!("refused by {reasons:?}"),
        Err(e) => format!("error {e}"),
    };
    let mut tenants = Vec::new();
    for i in 0..3 {
        let mut t = Tenant::new(
            TenantSlug::parse(&format!("s-{tag}-{i}")).unwrap(),
            format!("Scenario {i}"),
            1,
        );
        t.partner = (i < 2).then(|| partner.id.clone());
        t.owners = 1;
        let owner = user();
        let mut changes = vec![
            Change::CreateTenant(t.clone()),
            Change::CreateUser(owner.clone()),
            Change::AddMembership {
                user: owner.id.clone(),
                tenant: t.clone(),
                role: Role::Owner,
                at: 1_700_000_000_000 + i,
            },
        ];
        changes.extend(tenant_count_changes(
            None,
            Some((t.status, t.partner.as_ref())),
        ));
        changes.push(Change::Audit(AuditEntry::new(
            AuditTarget::Tenant(t.id.clone()),
            owner.id.clone(),
            "tenant.created",
            serde_json::json!({}),
            1_700_000_000_000 + i,
            "rid",
        )));
        log.push(format!("create {i}: {}", refused(s.commit(changes).await)));
        tenants.push((t, owner));
    }
    // The same slug again: refused by the slug claim, nothing written.
    let mut dup = Tenant::new(tenants[0].0.slug.clone(), "Dup".into(), 1);
    dup.owners = 1;
    log.push(format!(
        "same slug: {}",
        refused(s.commit(vec![Change::CreateTenant(dup)]).await)
    ));
    // A stale version is refused; the current one writes.
    let (t0, owner0) = tenants[0].clone();
    let mut next = t0.clone();
    next.status = TenantStatus::Suspended;
    next.version = 2;
    let mut changes = vec![Change::UpdateTenant {
        tenant: next.clone(),
        expect_version: 7,
    }];
    log.push(format!(
        "stale: {}",
        refused(s.commit(changes.clone()).await)
    ));
    changes[0] = Change::UpdateTenant {
        tenant: next.clone(),
        expect_version: 1,
    };
    changes.extend(tenant_count_changes(
        Some((t0.status, t0.partner.as_ref())),
        Some((next.status, next.partner.as_ref())),
    ));
    log.push(format!("suspend: {}", refused(s.commit(changes).await)));
    let p = s.partner_by_id(&partner.id).await.unwrap().unwrap();
    log.push(format!(
        "partner counts {:?} total {}",
        p.tenant_counts,
        p.tenant_count()
    ));
    // A partner admin's quota: the partner has 2 live tenants (one suspended), so a cap of 2
    // refuses a third and a cap of 3 takes it; a deleted tenant leaves room again.
    for (cap, i) in [(2, 10), (3, 11), (3, 12)] {
        let mut t = Tenant::new(
            TenantSlug::parse(&format!("s-{tag}-{i}")).unwrap(),
            "Capped".into(),
            1,
        );
        t.partner = Some(partner.id.clone());
        let mut changes = vec![Change::CreateTenant(t.clone())];
        changes.extend(shared::store::changes::with_partner_cap(
            tenant_count_changes(None, Some((t.status, t.partner.as_ref()))),
            cap,
        ));
        log.push(format!(
            "create under cap {cap}: {}",
            refused(s.commit(changes).await)
        ));
    }
    let mut gone = tenants[1].0.clone();
    let before = (gone.status, gone.partner.clone());
    gone.status = TenantStatus::Deleted;
    gone.version = 2;
    let mut changes = vec![Change::UpdateTenant {
        tenant: gone.clone(),
        expect_version: 1,
    }];
    changes.extend(tenant_count_changes(
        Some((before.0, before.1.as_ref())),
        Some((gone.status, gone.partner.as_ref())),
    ));
    log.push(format!("delete one: {}", refused(s.commit(changes).await)));
    let mut t = Tenant::new(
        TenantSlug::parse(&format!("s-{tag}-13")).unwrap(),
        "Capped".into(),
        1,
    );
    t.partner = Some(partner.id.clone());
    let mut changes = vec![Change::CreateTenant(t.clone())];
    changes.extend(shared::store::changes::with_partner_cap(
        tenant_count_changes(None, Some((t.status, t.partner.as_ref()))),
        3,
    ));
    log.push(format!(
        "create after a deletion: {}",
        refused(s.commit(changes).await)
    ));
    let p = s.partner_by_id(&partner.id).await.unwrap().unwrap();
    log.push(format!("partner live {}", p.tenant_count()));
    // The last owner: demoting them is refused by the owner count.
    log.push(format!(
        "demote last owner: {}",
        refused(
            s.commit(vec![
                Change::ChangeRole {
                    user: owner0.id.clone(),
                    tenant: t0.id.clone(),
                    from: Role::Owner,
                    to: Role::Admin,
                },
                Change::AdjustOwners {
                    tenant: t0.id.clone(),
                    by: -1,
                },
            ])
            .await
        )
    ));
    // A terminated partner takes no new tenant.
    let mut ended = p.clone();
    ended.status = PartnerStatus::Terminated;
    ended.version = p.version + 1;
    s.commit(vec![Change::UpdatePartner {
        partner: ended,
        expect_version: p.version,
    }])
    .await
    .unwrap();
    let (t2, _) = tenants[2].clone();
    let mut attached = t2.clone();
    attached.partner = Some(partner.id.clone());
    attached.version = 2;
    let mut changes = vec![Change::UpdateTenant {
        tenant: attached,
        expect_version: 1,
    }];
    changes.extend(tenant_count_changes(
        Some((t2.status, None)),
        Some((t2.status, Some(&partner.id))),
    ));
    log.push(format!(
        "attach to terminated: {}",
        refused(s.commit(changes).await)
    ));
    // Lists: the partner's tenants by slug, a filter, the newest audit entry first.
    let filter = TenantFilter {
        partner: Some(partner.id.clone()),
        ..TenantFilter::default()
    };
    let page = s.tenants_page(&filter, 10, None).await.unwrap();
    log.push(format!(
        "partner tenants {:?}",
        page.items
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    ));
    let filter = TenantFilter {
        q: Some(format!("s-{tag}")),
        status: Some(TenantStatus::Provisioning),
        ..TenantFilter::default()
    };
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.tenants_page(&filter, 1, cursor.as_deref()).await.unwrap();
        names.extend(page.items.iter().map(|t| t.name.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(names.len() < 10, "paging does not end");
    }
    log.push(format!("provisioning by prefix {names:?}"));
    let audit = s
        .audit_page(
            &AuditFilter {
                tenant: Some(tenants[1].0.id.clone()),
                ..AuditFilter::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    log.push(format!(
        "audit of tenant 1: {:?}",
        audit
            .items
            .iter()
            .map(|e| e.action.clone())
            .collect::<Vec<_>>()
    ));
    log
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn both_stores_manage_tenants_and_partners_alike() {
    let dynamo = store().await;
    let memory = MemoryStore::new();
    let on_dynamo = management_scenario(&dynamo).await;
    let in_memory = management_scenario(&memory).await;
    assert_eq!(on_dynamo, in_memory);
    for expected in [
        "same slug: refused by [SlugTaken]",
        "stale: refused by [VersionMoved]",
        "suspend: ok",
        "demote last owner: refused by [LastOwner]",
        "attach to terminated: refused by [PartnerInactive]",
        "create under cap 2: refused by [PartnerInactive]",
        "create under cap 3: ok",
        "create after a deletion: ok",
        "partner live 3",
    ] {
        assert!(
            on_dynamo.iter().any(|l| l == expected),
            "{expected}: {on_dynamo:?}"
        );
    }
}

/// 20 commits at once, each taking one of a quota of 3 (`Change::Quota`, the tenant's database
/// count): exactly 3 succeed, the rest are refused as `QuotaReached`, and a decrease makes room
/// for one more.
#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn a_quota_holds_under_concurrent_takers() {
    use shared::store::changes::{self, Change, CommitError, Refusal};
    let s = Arc::new(store().await);
    let scope = format!("tenant:{}", uuid::Uuid::new_v4());
    let take = |by: i64| Change::Quota {
        scope: scope.clone(),
        name: changes::DATABASES_COUNT.into(),
        by,
        cap: 3,
    };
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, change) = (s.clone(), take(1));
            tokio::spawn(async move { s.commit(vec![change]).await })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => granted += 1,
            Err(CommitError::Refused { reasons }) => {
                assert_eq!(reasons, vec![Refusal::QuotaReached])
            }
            // (A transaction conflict is sent again by the store, which then sees the winner.)
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(granted, 3, "exactly the quota");
    assert!(matches!(
        s.commit(vec![take(1)]).await,
        Err(CommitError::Refused { .. })
    ));
    s.commit(vec![take(-1)]).await.unwrap();
    s.commit(vec![take(1)]).await.unwrap();
}

/// A table of its own, keyed and indexed as the template's, for what is one per table (the
/// operator count); dropped at the end.
struct OwnTable {
    client: shared::dynamodb::Client,
    name: String,
}

impl OwnTable {
    async fn create() -> (DynamoStore, OwnTable) {
        use shared::dynamodb::types::{
            AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
            Projection, ProjectionType, ScalarAttributeType,
        };
        let sdk = shared::runtime::aws::sdk_config().await;
        let client = shared::dynamodb::Client::new(&sdk);
        let name = format!("own-{}", uuid::Uuid::new_v4().simple());
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let key = |n: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .unwrap()
        };
        let index = |i: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(i)
                .key_schema(key(&format!("{i}PK"), KeyType::Hash))
                .key_schema(key(&format!("{i}SK"), KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap()
        };
        let mut create = client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("PK", KeyType::Hash))
            .key_schema(key("SK", KeyType::Range));
        for a in ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK"] {
            create = create.attribute_definitions(attr(a));
        }
        create
            .global_secondary_indexes(index("GSI1"))
            .global_secondary_indexes(index("GSI2"))
            .send()
            .await
            .expect("the emulator creates a table");
        let store = DynamoStore::new(client.clone(), name.clone());
        (store, OwnTable { client, name })
    }

    async fn drop(self) {
        let _ = self
            .client
            .delete_table()
            .table_name(&self.name)
            .send()
            .await;
    }
}

use shared::store::changes;

fn operator() -> User {
    User {
        platform_admin: true,
        ..user()
    }
}

fn revoke(u: &User) -> changes::Change {
    changes::Change::UpdateUser {
        user: u.id.clone(),
        before: u.account(),
        edit: changes::UserEdit {
            account: Some(shared::domain::Account {
                status: u.status,
                platform_admin: false,
            }),
            ..Default::default()
        },
    }
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn the_operator_count_never_reaches_zero_even_when_two_revoke_each_other() {
    use shared::store::changes::{CommitError, Refusal};
    let (s, table) = OwnTable::create().await;
    assert_eq!(s.operator_count().await.unwrap(), None);
    let (a, b) = (operator(), operator());
    s.create_user(&a).await.unwrap();
    s.commit(vec![changes::Change::CreateUser(b.clone())])
        .await
        .unwrap();
    // An invited or plain account does not count.
    s.create_user(&user()).await.unwrap();
    assert_eq!(s.operator_count().await.unwrap(), Some(2));
    // Both at once: exactly one wins; the other is refused as the last operator.
    let s = Arc::new(s);
    let (ra, rb) = tokio::join!(
        {
            let s = s.clone();
            let c = revoke(&a);
            tokio::spawn(async move { s.commit(vec![c]).await })
        },
        {
            let s = s.clone();
            let c = revoke(&b);
            tokio::spawn(async move { s.commit(vec![c]).await })
        }
    );
    let results = [ra.unwrap(), rb.unwrap()];
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for r in &results {
        if let Err(CommitError::Refused { reasons }) = r {
            assert_eq!(reasons, &vec![Refusal::LastOperator]);
        }
    }
    assert_eq!(s.operator_count().await.unwrap(), Some(1));
    let last = if results[0].is_ok() { &b } else { &a };
    // Disabling or removing the last is refused too; a stale read is refused as moved.
    let disable = changes::Change::UpdateUser {
        user: last.id.clone(),
        before: last.account(),
        edit: changes::UserEdit {
            account: Some(shared::domain::Account {
                status: UserStatus::Disabled,
                platform_admin: true,
            }),
            end_sessions: true,
            ..Default::default()
        },
    };
    assert!(matches!(
        s.commit(vec![disable]).await,
        Err(CommitError::Refused { reasons }) if reasons == vec![Refusal::LastOperator]
    ));
    let remove = changes::Change::DeleteUser {
        user: last.id.clone(),
        email: last.email.clone(),
        before: last.account(),
    };
    assert!(matches!(
        s.commit(vec![remove]).await,
        Err(CommitError::Refused { reasons }) if reasons == vec![Refusal::LastOperator]
    ));
    let gone = if results[0].is_ok() { &a } else { &b };
    assert!(matches!(
        s.commit(vec![revoke(gone)]).await,
        Err(CommitError::Refused { reasons }) if reasons.contains(&Refusal::UserMoved)
    ));
    // A name edit moves no count and needs none; the user list finds both by prefix.
    s.commit(vec![changes::Change::UpdateUser {
        user: last.id.clone(),
        before: last.account(),
        edit: changes::UserEdit {
            name: Some(Some("Last One".into())),
            ..Default::default()
        },
    }])
    .await
    .unwrap();
    assert_eq!(
        s.user_by_id(&last.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Last One")
    );
    let page = s
        .users_page(
            &UserFilter {
                operator: Some(true),
                ..Default::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![last.id.clone()]
    );
    // Removing the other (no longer an operator) releases its email.
    s.commit(vec![changes::Change::DeleteUser {
        user: gone.id.clone(),
        email: gone.email.clone(),
        before: s.user_by_id(&gone.id).await.unwrap().unwrap().account(),
    }])
    .await
    .unwrap();
    assert!(s.user_by_email(&gone.email).await.unwrap().is_none());
    assert_eq!(s.operator_count().await.unwrap(), Some(1));
    table.drop().await;
}

#[tokio::test]
#[ignore = "needs the local emulator: run `make test`"]
async fn factors_move_on_any_record_and_passkeys_round_trip() {
    use shared::domain::Factors;
    use shared::store::changes::{Change, Refusal, UserEdit};
    let s = store().await;
    // A record written before second factors existed: no `mfa`, `totp` or `passkeys`.
    let u = user();
    s.create_user(&u).await.unwrap();
    let table = std::env::var("TABLE_NAME").unwrap();
    let sdk = shared::runtime::aws::sdk_config().await;
    shared::dynamodb::Client::new(&sdk)
        .update_item()
        .table_name(&table)
        .key(
            "PK",
            shared::dynamodb::types::AttributeValue::S(format!("USER#{}", u.id)),
        )
        .key(
            "SK",
            shared::dynamodb::types::AttributeValue::S("USER".into()),
        )
        .update_expression("REMOVE mfa, totp, passkeys")
        .send()
        .await
        .unwrap();
    let read = s.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(read.factors, Factors::default());
    let edit = |was: Factors, now: Factors| Change::UpdateUser {
        user: u.id.clone(),
        before: u.account(),
        edit: UserEdit {
            factors: Some((was, now)),
            ..UserEdit::default()
        },
    };
    let one_passkey = Factors {
        totp: false,
        passkeys: 1,
    };
    // Two moves from the same count at once: one wins, the other is refused (stale).
    let (a, b) = tokio::join!(
        s.commit(vec![edit(Factors::default(), one_passkey)]),
        s.commit(vec![edit(
            Factors::default(),
            Factors {
                totp: true,
                passkeys: 0
            }
        )]),
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of two moves from one count: {a:?} {b:?}"
    );
    let now = s.user_by_id(&u.id).await.unwrap().unwrap().factors;
    assert!(now == one_passkey || now.totp, "{now:?}");
    assert!(now.any());

    // A passkey: registered once (its pending registration spent), used conditioned on its
    // state, gone with the factors.
    let v = user();
    s.create_user(&v).await.unwrap();
    let at = shared::runtime::time::now_unix();
    s.commit(vec![Change::PutPendingPasskey {
        user: v.id.clone(),
        pending: PendingPasskey {
            state: "pending-state".into(),
            expires_at: at + 60,
        },
    }])
    .await
    .unwrap();
    let long_id = "A".repeat(1364);
    let passkey = Passkey {
        id: long_id.clone(),
        name: "key".into(),
        public_key: "pk".into(),
        state: "s0".into(),
        transports: 0,
        created_at: at,
        last_used_at: None,
    };
    let add = || Change::AddPasskey {
        user: v.id.clone(),
        passkey: passkey.clone(),
        pending_state: "pending-state".into(),
        now: at,
    };
    s.commit(vec![add()]).await.unwrap();
    match s.commit(vec![add()]).await {
        Err(shared::store::changes::CommitError::Refused { reasons }) => {
            assert!(reasons.contains(&Refusal::ChallengeGone), "{reasons:?}")
        }
        other => panic!("a spent registration registered again: {other:?}"),
    }
    assert_eq!(s.passkeys(&v.id).await.unwrap(), vec![passkey.clone()]);
    let use_it = |before: &str| Change::UsePasskey {
        user: v.id.clone(),
        id: long_id.clone(),
        before: before.into(),
        after: "s1".into(),
        at: at + 1,
    };
    s.commit(vec![use_it("s0")]).await.unwrap();
    assert!(
        s.commit(vec![use_it("s0")]).await.is_err(),
        "the counter moved: the same use again is refused"
    );
    let stored = s.passkeys(&v.id).await.unwrap();
    assert_eq!(
        (stored[0].state.as_str(), stored[0].last_used_at),
        ("s1", Some(at + 1))
    );
    s.commit(vec![Change::RemoveFactors {
        user: v.id.clone(),
        totp: true,
        recovery: true,
        passkeys: vec![long_id],
    }])
    .await
    .unwrap();
    assert!(s.passkeys(&v.id).await.unwrap().is_empty());
}
