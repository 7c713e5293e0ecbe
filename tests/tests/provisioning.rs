//! Provisioning, offboarding and the reconcile, end to end on the deployed stack: the real
//! state machine (infra/statemachines/provisioning.asl.json) running the real provision-step
//! binary, started by the real EventBridge rule, with the reconcile's route and schedule.
//! `make test` deploys with a 20 s recovery window, a 5 s staleness threshold, a reconcile
//! every minute, and a provision-step built with the fault switch (`faults` feature).

#[path = "provisioning/impersonation_expiry.rs"]
mod impersonation_expiry;
#[path = "provisioning/lifecycle_events.rs"]
mod lifecycle_events;
mod support;

use shared::store::fault_switch_key;
use shared::store::TenantStore;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{unique_email, unique_slug, Platform, Reply};

struct Aws {
    s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sfn: aws_sdk_sfn::Client,
    dynamo: aws_sdk_dynamodb::Client,
    bucket: String,
    table: String,
    stack: String,
    state_machine: String,
}

impl Aws {
    async fn new() -> Aws {
        let sdk = shared::runtime::aws::sdk_config().await;
        let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n}: run `make test`"));
        Aws {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(true)
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sfn: aws_sdk_sfn::Client::new(&sdk),
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            bucket: var("BUCKET_NAME"),
            table: var("TABLE_NAME"),
            stack: var("STACK_NAME"),
            state_machine: var("STATE_MACHINE_ARN"),
        }
    }

    /// Arms the fault switch for `step` of the tenant `slug` (before the tenant exists).
    async fn fault(&self, slug: &str, step: &str, kind: &str, remaining: u32) {
        self.dynamo
            .put_item()
            .table_name(&self.table)
            .item("PK", AttributeValue::S(fault_switch_key(slug, step).0))
            .item("SK", AttributeValue::S(fault_switch_key(slug, step).1))
            .item("kind", AttributeValue::S(kind.into()))
            .item("remaining", AttributeValue::N(remaining.to_string()))
            .send()
            .await
            .unwrap();
    }

    async fn clear_fault(&self, slug: &str, step: &str) {
        self.dynamo
            .delete_item()
            .table_name(&self.table)
            .key("PK", AttributeValue::S(fault_switch_key(slug, step).0))
            .key("SK", AttributeValue::S(fault_switch_key(slug, step).1))
            .send()
            .await
            .unwrap();
    }

    /// Every object key under the tenant's prefix, with its tags.
    /// Puts `n` small objects under the tenant's prefix (32 at a time).
    async fn put_many(&self, tenant_id: &str, n: usize) {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..n)
            .for_each_concurrent(32, |i| async move {
                self.s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(format!("tenants/{tenant_id}/bulk/{i:05}.txt"))
                    .body(b"x".to_vec().into())
                    .send()
                    .await
                    .unwrap();
            })
            .await;
    }

    /// How many objects are under the tenant's prefix (every page).
    async fn count(&self, tenant_id: &str) -> usize {
        let mut n = 0;
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("tenants/{tenant_id}/"))
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            n += page.contents().len();
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => return n,
            }
        }
    }

    async fn tags(&self, key: &str) -> Vec<(String, String)> {
        self.s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }

    async fn objects(&self, tenant_id: &str) -> Vec<(String, Vec<(String, String)>)> {
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("tenants/{tenant_id}/"))
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for o in page.contents() {
            let key = o.key().unwrap().to_string();
            let tags = self
                .s3
                .get_object_tagging()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .unwrap()
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            out.push((key, tags));
        }
        out
    }

    fn secret_name(&self, tenant_id: &str) -> String {
        format!("{}/tenants/{tenant_id}", self.stack)
    }

    /// The tenant's secrets (any state), as (name, scheduled for deletion).
    async fn secrets_of(&self, tenant_id: &str) -> Vec<(String, bool)> {
        let name = self.secret_name(tenant_id);
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .secrets
                .list_secrets()
                .include_planned_deletion(true)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            for s in page.secret_list() {
                if s.name() == Some(name.as_str()) {
                    out.push((name.clone(), s.deleted_date().is_some()));
                }
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return out,
            }
        }
    }

    /// Every execution of the state machine whose input names the tenant, with its output.
    async fn executions_for(&self, tenant_id: &str) -> Vec<(String, String, Value)> {
        let list = self
            .sfn
            .list_executions()
            .state_machine_arn(&self.state_machine)
            .max_results(1000)
            .send()
            .await
            .unwrap();
        let mut out = Vec::new();
        for e in list.executions() {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(e.execution_arn())
                .send()
                .await
                .unwrap();
            if d.input().is_some_and(|i| i.contains(tenant_id)) {
                let output = d
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or(Value::Null);
                out.push((
                    e.name().to_string(),
                    d.status().as_str().to_string(),
                    output,
                ));
            }
        }
        out
    }
}

async fn operator(platform: &Platform) -> String {
    let op = platform.user(true).await;
    platform.sign_in(op.email.as_str(), "operator").await
}

async fn create(platform: &Platform, op: &str, slug: &str, owner: &str) -> Value {
    let r = platform
        .call(
            "POST",
            "/tenants",
            Some(op),
            Some(json!({"slug": slug, "name": "Provisioned Co", "owner_email": owner})),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["data"].clone()
}

async fn tenant(platform: &Platform, op: &str, slug: &str) -> Value {
    let r = platform
        .call("GET", format!("/tenants/{slug}"), Some(op), None, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["data"].clone()
}

/// Polls the tenant until `done` holds (30 s at most).
async fn wait_until(
    platform: &Platform,
    op: &str,
    slug: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = tenant(platform, op, slug).await;
        if done(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{slug}: never {what}: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reconcile(platform: &Platform, op: &str, slug: &str) -> Reply {
    platform
        .call(
            "POST",
            format!("/tenants/{slug}/reconcile"),
            Some(op),
            None,
            &[],
        )
        .await
}

/// A tenant created, provisioned and its owner invited: its id.
async fn active_tenant(platform: &Platform, op: &str, slug: &str, owner: &str) -> String {
    let id = create(platform, op, slug, owner).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    platform.wait_for_status(slug, op, "active").await;
    platform.wait_for_mail(owner, 1).await;
    id
}

/// Deletes the tenant and waits for its offboarding run to retire everything.
async fn delete_and_retire(platform: &Platform, op: &str, slug: &str) -> Value {
    let deleted = platform
        .call("DELETE", format!("/tenants/{slug}"), Some(op), None, &[])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.json);
    wait_until(platform, op, slug, "retired", |t| {
        !t["offboarding"]["retired_at"].is_null()
    })
    .await
}

async fn restore(platform: &Platform, op: &str, slug: &str) -> Reply {
    platform
        .call(
            "POST",
            format!("/tenants/{slug}/restore"),
            Some(op),
            None,
            &[],
        )
        .await
}

fn step<'a>(t: &'a Value, name: &str) -> &'a Value {
    &t["provisioning"][name]
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_new_tenant_becomes_active_with_every_step_ok_and_each_artifact_exactly_once() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let (slug, owner) = (unique_slug("prov"), unique_email("prov-owner"));
    let created = create(&platform, &op, &slug, &owner).await;
    assert_eq!(created["status"], "provisioning");
    let id = created["id"].as_str().unwrap().to_string();
    let t = platform.wait_for_status(&slug, &op, "active").await;
    for s in ["storage", "secrets", "invitation"] {
        assert_eq!(step(&t, s)["state"], "ok", "{s}: {t}");
        assert_eq!(step(&t, s)["attempts"], 1, "{s}: {t}");
    }
    assert!(t["run"].is_null(), "the lease is freed: {t}");
    // Each artifact exists once, and the record points at it.
    let objects = aws.objects(&id).await;
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].0, format!("tenants/{id}/.tenant"));
    assert_eq!(step(&t, "storage")["artifact"], objects[0].0);
    assert_eq!(
        aws.secrets_of(&id).await,
        vec![(aws.secret_name(&id), false)]
    );
    let arn = step(&t, "secrets")["artifact"].as_str().unwrap();
    assert!(arn.contains(&aws.secret_name(&id)), "{arn}");
    let mail = platform.wait_for_mail(&owner, 1).await;
    assert!(mail[0].1.contains("/accept-invitation#token="));
    // Running everything again (a duplicate event, then a reconcile) sends nothing and
    // makes nothing twice.
    let again = reconcile(&platform, &op, &slug).await;
    assert_eq!(again.status, 200, "{}", again.json);
    assert_eq!(
        again.json["data"]["summary"], "nothing to do",
        "{}",
        again.json
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        platform.mail_to(&owner).await.len(),
        1,
        "the owner is invited once"
    );
    assert_eq!(aws.objects(&id).await.len(), 1);
    assert_eq!(aws.secrets_of(&id).await.len(), 1);
    // The audit records the activation by the platform itself.
    let audit = platform
        .call(
            "GET",
            format!("/tenants/{slug}/audit"),
            Some(&op),
            None,
            &[],
        )
        .await;
    let actions: Vec<&str> = audit.json["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"tenant.activated"), "{actions:?}");
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_transient_failure_is_retried_with_backoff_then_ok() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let slug = unique_slug("flaky");
    aws.fault(&slug, "secrets", "transient", 2).await;
    create(&platform, &op, &slug, &unique_email("flaky")).await;
    let t = platform.wait_for_status(&slug, &op, "active").await;
    assert_eq!(step(&t, "secrets")["state"], "ok", "{t}");
    assert_eq!(
        step(&t, "secrets")["attempts"],
        3,
        "two failures, then success: {t}"
    );
    assert_eq!(step(&t, "storage")["attempts"], 1, "{t}");
    aws.clear_fault(&slug, "secrets").await;
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_permanent_failure_is_recorded_and_the_reconcile_heals_it_once_the_fault_is_gone() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let slug = unique_slug("broken");
    aws.fault(&slug, "storage", "permanent", 0).await;
    create(&platform, &op, &slug, &unique_email("broken")).await;
    let t = wait_until(&platform, &op, &slug, "settled with an error", |t| {
        step(t, "storage")["state"] == "error" && t["run"].is_null()
    })
    .await;
    assert_eq!(t["status"], "provisioning", "{t}");
    assert_eq!(
        step(&t, "storage")["attempts"],
        1,
        "a permanent error is not retried: {t}"
    );
    let reason = step(&t, "storage")["message"].as_str().unwrap();
    assert!(reason.contains("injected permanent fault"), "{reason}");
    assert_eq!(
        step(&t, "secrets")["state"],
        "ok",
        "the other steps went on: {t}"
    );
    // While the fault stays, a reconcile re-drives and fails the same way.
    let failing = reconcile(&platform, &op, &slug).await;
    assert_eq!(
        failing.json["data"]["tenants"][0]["status_after"], "provisioning",
        "{}",
        failing.json
    );
    aws.clear_fault(&slug, "storage").await;
    let healed = reconcile(&platform, &op, &slug).await;
    assert_eq!(healed.status, 200, "{}", healed.json);
    let report = &healed.json["data"]["tenants"][0];
    assert_eq!(report["action"], "redrive", "{report}");
    assert_eq!(report["reasons"], json!(["storage failed"]), "{report}");
    assert_eq!(report["execution_status"], "SUCCEEDED", "{report}");
    assert_eq!(report["status_after"], "active", "{report}");
    assert_eq!(tenant(&platform, &op, &slug).await["status"], "active");
    // Twice in a row: the second does nothing, and says so.
    let second = reconcile(&platform, &op, &slug).await;
    assert_eq!(
        second.json["data"]["summary"], "nothing to do",
        "{}",
        second.json
    );
    assert_eq!(second.json["data"]["runs_started"], 0);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn drift_is_found_and_repaired_by_the_reconcile() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let (slug, owner) = (unique_slug("drift"), unique_email("drift"));
    let id = active_tenant(&platform, &op, &slug, &owner).await;
    // Behind the platform's back: the marker and the secret go.
    aws.s3
        .delete_object()
        .bucket(&aws.bucket)
        .key(format!("tenants/{id}/.tenant"))
        .send()
        .await
        .unwrap();
    aws.secrets
        .delete_secret()
        .secret_id(aws.secret_name(&id))
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let r = reconcile(&platform, &op, &slug).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let report = &r.json["data"]["tenants"][0];
    // The minute schedule may have got there first; either way the artifacts come back.
    if report["action"] == "redrive" {
        assert_eq!(
            report["reasons"],
            json!(["storage: artifact missing", "secrets: artifact missing"]),
            "{report}"
        );
        assert_eq!(report["status_after"], "active");
    }
    wait_until(&platform, &op, &slug, "repaired", |t| t["run"].is_null()).await;
    assert_eq!(aws.objects(&id).await.len(), 1, "the marker is back");
    assert_eq!(
        aws.secrets_of(&id).await,
        vec![(aws.secret_name(&id), false)]
    );
    let t = tenant(&platform, &op, &slug).await;
    assert_eq!(t["status"], "active");
    assert_eq!(step(&t, "storage")["attempts"], 2, "{t}");
    assert_eq!(
        platform.mail_to(&owner).await.len(),
        1,
        "a repair sends no mail"
    );
    let again = reconcile(&platform, &op, &slug).await;
    assert_eq!(
        again.json["data"]["summary"], "nothing to do",
        "{}",
        again.json
    );
}

/// A tenant stored as POST /tenants stores it, but whose event never left.
async fn tenant_without_event(platform: &Platform, slug: &str) -> String {
    use shared::store::changes::{tenant_count_changes, Change};
    use shared::store::CommitStore;
    let now = shared::runtime::time::now_unix();
    let mut t = shared::domain::tenant::Tenant::new(
        shared::domain::tenant::TenantSlug::parse(slug).unwrap(),
        "Lost Event Co".into(),
        now,
    );
    t.provisioning = shared::domain::tenant::Step::ALL
        .iter()
        .map(|s| (*s, shared::domain::tenant::StepStatus::pending(now)))
        .collect();
    // Its record, slug claim and status counters, as POST /tenants commits them: only the
    // outbox item and the publishing are missing.
    let mut changes = vec![Change::CreateTenant(t.clone())];
    changes.extend(tenant_count_changes(None, Some((t.status, None))));
    platform.store.commit(changes).await.unwrap();
    t.id.to_string()
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_tenant_whose_event_was_lost_becomes_active_on_request_and_on_the_schedule() {
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let (asked, scheduled) = (unique_slug("lost"), unique_slug("lost-sched"));
    tenant_without_event(&platform, &asked).await;
    tenant_without_event(&platform, &scheduled).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        tenant(&platform, &op, &asked).await["status"],
        "provisioning"
    );
    let r = reconcile(&platform, &op, &asked).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json["data"]["tenants"][0]["status_after"], "active",
        "{}",
        r.json
    );
    // Nobody asks for the other: the schedule (every minute here) finds it once it is
    // older than the staleness threshold (5 s here).
    let deadline = Instant::now() + Duration::from_secs(100);
    loop {
        let t = tenant(&platform, &op, &scheduled).await;
        if t["status"] == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule never healed it: {t}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn concurrent_reconciles_and_a_duplicate_event_during_a_run_start_no_second_run() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let slug = unique_slug("busy");
    // Two transient failures hold the run for its backoff (1 s, then 2 s).
    aws.fault(&slug, "storage", "transient", 2).await;
    let id = create(&platform, &op, &slug, &unique_email("busy")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = wait_until(&platform, &op, &slug, "claimed", |t| !t["run"].is_null()).await;
    let run = t["run"]["id"].as_str().unwrap().to_string();
    // Five reconciles at once, and the same TenantCreated published again, while it runs.
    let events = aws_sdk_eventbridge_put(&id, &slug).await;
    let tries = (0..5).map(|_| reconcile(&platform, &op, &slug));
    let replies = futures_util::future::join_all(tries).await;
    events.await.unwrap();
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.json);
        let report = &r.json["data"]["tenants"][0];
        assert_eq!(report["action"], "busy", "{report}");
        assert!(report["execution"].is_null(), "{report}");
    }
    let t = platform.wait_for_status(&slug, &op, "active").await;
    assert_eq!(step(&t, "storage")["attempts"], 3, "{t}");
    aws.clear_fault(&slug, "storage").await;
    // Every execution but the first found the lease held and did nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = aws.executions_for(&id).await;
    assert!(
        runs.len() >= 2,
        "the duplicate event started an execution: {runs:?}"
    );
    let working: Vec<_> = runs
        .iter()
        .filter(|(_, _, out)| out["claim"]["mode"] != "none")
        .collect();
    assert_eq!(working.len(), 1, "{runs:?}");
    assert_eq!(working[0].0, run);
    for (name, status, out) in &runs {
        assert_eq!(status, "SUCCEEDED", "{name}: {out}");
    }
}

/// Publishes `TenantCreated` for the tenant again, as a duplicate delivery would.
async fn aws_sdk_eventbridge_put(id: &str, slug: &str) -> tokio::task::JoinHandle<()> {
    let detail = json!({"tenant_id": id, "slug": slug}).to_string();
    tokio::spawn(async move {
        let sdk = shared::runtime::aws::sdk_config().await;
        let publisher = shared::events::EventBridgePublisher::new(
            shared::eventbridge::Client::new(&sdk),
            std::env::var("EVENT_BUS_NAME").unwrap(),
        );
        use shared::events::EventPublisher;
        publisher
            .publish(&shared::store::changes::OutboxEvent {
                id: "duplicate".into(),
                kind: "TenantCreated".into(),
                detail,
                created_at: shared::runtime::time::now_unix(),
            })
            .await
            .unwrap();
    })
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_deleted_tenant_is_retired_reversibly_and_restored_within_its_window() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let (slug, owner) = (unique_slug("offb"), unique_email("offb"));
    let id = active_tenant(&platform, &op, &slug, &owner).await;
    aws.s3
        .put_object()
        .bucket(&aws.bucket)
        .key(format!("tenants/{id}/reports/q3.csv"))
        .body(b"a,b\n1,2\n".to_vec().into())
        .send()
        .await
        .unwrap();
    // Thousands of objects: retiring and restoring touch none of them one by one.
    aws.put_many(&id, 3000).await;
    let t = delete_and_retire(&platform, &op, &slug).await;
    let off = &t["offboarding"];
    assert_eq!(off["steps"]["secrets"]["state"], "ok", "{off}");
    assert_eq!(off["steps"]["invitation"]["state"], "skipped", "{off}");
    // Retired, not gone: the marker tagged, the objects kept as they were, the secret
    // scheduled for deletion.
    assert_eq!(aws.count(&id).await, 3002);
    let marker = format!("tenants/{id}/.tenant");
    assert_eq!(
        aws.tags(&marker).await,
        vec![("offboarded".to_string(), "true".to_string())]
    );
    assert!(aws
        .tags(&format!("tenants/{id}/reports/q3.csv"))
        .await
        .is_empty());
    assert_eq!(
        aws.secrets_of(&id).await,
        vec![(aws.secret_name(&id), true)]
    );
    // Nobody but operators may restore; then the operator does, within the window.
    let restored = restore(&platform, &op, &slug).await;
    assert_eq!(restored.status, 200, "{}", restored.json);
    assert_eq!(restored.json["data"]["status"], "provisioning");
    let t = platform.wait_for_status(&slug, &op, "active").await;
    assert!(t["offboarding"].is_null(), "{t}");
    assert!(aws.tags(&marker).await.is_empty(), "the marker is untagged");
    assert_eq!(aws.count(&id).await, 3002);
    assert_eq!(
        aws.secrets_of(&id).await,
        vec![(aws.secret_name(&id), false)]
    );
    assert_eq!(
        platform.mail_to(&owner).await.len(),
        1,
        "offboarding and restoring mail nobody"
    );
    let again = restore(&platform, &op, &slug).await;
    assert_eq!(again.status, 409, "{}", again.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn after_the_recovery_window_the_artifacts_are_gone_and_the_record_says_so() {
    let platform = Platform::start().await;
    let aws = Aws::new().await;
    let op = operator(&platform).await;
    let slug = unique_slug("purge");
    let id = active_tenant(&platform, &op, &slug, &unique_email("purge")).await;
    // More objects than one delete request takes (1,000): purged in batches.
    aws.put_many(&id, 2500).await;
    let t = delete_and_retire(&platform, &op, &slug).await;
    let purge_after = t["offboarding"]["purge_after"].as_i64().unwrap();
    let wait = purge_after - shared::runtime::time::now_unix() + 1;
    if wait > 0 {
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
    let r = reconcile(&platform, &op, &slug).await;
    assert_eq!(r.status, 200, "{}", r.json);
    // The minute schedule may have purged it first; either way it ends purged.
    let t = wait_until(&platform, &op, &slug, "purged", |t| {
        !t["offboarding"]["purged_at"].is_null()
    })
    .await;
    assert_eq!(t["status"], "deleted");
    assert!(
        t["offboarding"]["steps"]["secrets"]["artifact"].is_null(),
        "{t}"
    );
    assert!(aws.objects(&id).await.is_empty(), "the objects are deleted");
    assert!(
        aws.secrets_of(&id).await.is_empty(),
        "the secret is deleted"
    );
    // The people and connections go too, and the record keeps only a tombstone.
    assert_eq!(
        t["offboarding"]["steps"]["invitation"]["state"], "ok",
        "{t}"
    );
    assert!(t["owner_email"].is_null(), "{t}");
    let tenant_id = shared::domain::TenantId::parse(&id).unwrap();
    assert!(
        platform
            .store
            .tenant_members(&tenant_id)
            .await
            .unwrap()
            .is_empty(),
        "the memberships are removed"
    );
    let late = restore(&platform, &op, &slug).await;
    assert_eq!(late.status, 409, "{}", late.json);
    assert_eq!(late.json["error"]["code"], "RECOVERY_WINDOW_PASSED");
    let again = reconcile(&platform, &op, &slug).await;
    assert_eq!(
        again.json["data"]["summary"], "nothing to do",
        "{}",
        again.json
    );
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn only_operators_reconcile_and_restore() {
    let platform = Platform::start().await;
    let op = operator(&platform).await;
    let owner = platform.user(false).await;
    let slug = unique_slug("acl");
    create(&platform, &op, &slug, owner.email.as_str()).await;
    platform.wait_for_status(&slug, &op, "active").await;
    let owner_token = platform.sign_in(owner.email.as_str(), "portal").await;
    platform.join(&slug, &owner_token).await;
    let stranger = platform.user(false).await;
    let stranger_token = platform.sign_in(stranger.email.as_str(), "portal").await;
    for path in ["reconcile", "restore"] {
        let by_owner = platform
            .call(
                "POST",
                format!("/tenants/{slug}/{path}"),
                Some(&owner_token),
                None,
                &[],
            )
            .await;
        assert_eq!(by_owner.status, 403, "{path}: {}", by_owner.json);
        let by_stranger = platform
            .call(
                "POST",
                format!("/tenants/{slug}/{path}"),
                Some(&stranger_token),
                None,
                &[],
            )
            .await;
        assert_eq!(by_stranger.status, 404, "{path}: {}", by_stranger.json);
        let anonymous = platform
            .call("POST", format!("/tenants/{slug}/{path}"), None, None, &[])
            .await;
        assert_eq!(anonymous.status, 401, "{path}: {}", anonymous.json);
    }
    let unknown = reconcile(&platform, &op, "no-such-tenant-here").await;
    assert_eq!(unknown.status, 404, "{}", unknown.json);
}
