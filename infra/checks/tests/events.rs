//! The platform's events are one typed contract (`shared::events::EventKind`): the rule in
//! `infra/template.yaml` that starts provisioning matches exactly those `detail-type`s from the
//! platform's source, and the state machine hands that `detail-type` to the claim, which reads
//! every one of them (and the reconcile's `Reconcile`) as a run's cause.

use shared::events::{EventKind, SOURCE};
use shared::provisioning::RunCause;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_provisioning_rule_matches_the_provisioning_event_kinds_and_nothing_else() {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut rules = Vec::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            let pattern = &event["Properties"]["Pattern"];
            if event["Type"].as_str() != Some("EventBridgeRule")
                || pattern["source"][0].as_str() != Some(SOURCE)
            {
                continue;
            }
            let kinds: BTreeSet<String> = pattern["detail-type"]
                .as_sequence()
                .expect("the rule names its detail-types")
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect();
            rules.push(kinds);
        }
    }
    let all: BTreeSet<String> = EventKind::PROVISIONING
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    assert_eq!(
        rules,
        vec![all],
        "one rule, matching every provisioning EventKind"
    );
}

#[test]
fn the_state_machine_claims_with_the_event_kind_and_the_claim_reads_them_all() {
    let text =
        std::fs::read_to_string(root().join("infra/statemachines/provisioning.asl.json")).unwrap();
    let asl: serde_json::Value = serde_json::from_str(&text).unwrap();
    let claim = &asl["States"][asl["StartAt"].as_str().unwrap()]["Parameters"];
    assert_eq!(claim["action"], "claim");
    assert_eq!(claim["kind.$"], "$.detail-type");
    for kind in EventKind::PROVISIONING {
        assert_eq!(
            RunCause::parse(kind.as_str()),
            Some(RunCause::Event(*kind)),
            "{kind:?}"
        );
    }
    assert_eq!(RunCause::parse("Reconcile"), Some(RunCause::Reconcile));
    assert_eq!(RunCause::parse("TenantPurged"), None);
    assert_eq!(RunCause::parse("TenantSuspended"), None);
}

/// One event of each kind, as the functions make them.
fn one_of_each() -> Vec<shared::events::DomainEvent> {
    use shared::domain::plan::PlanId;
    use shared::domain::tenant::TenantSlug;
    use shared::domain::{PartnerId, Role, TenantId, UserId};
    use shared::events::*;
    let changed = TenantChanged {
        tenant_id: TenantId::new_random(),
        slug: TenantSlug::parse("acme").unwrap(),
        partner_id: Some(PartnerId::new_random()),
    };
    let member = MemberChanged {
        tenant_id: changed.tenant_id.clone(),
        slug: changed.slug.clone(),
        partner_id: None,
        user_id: UserId::new_random(),
        role: Role::Admin,
        previous_role: Some(Role::Member),
    };
    vec![
        DomainEvent::TenantCreated(TenantCreated {
            tenant_id: changed.tenant_id.clone(),
            slug: changed.slug.clone(),
            partner_id: None,
            owner_user_id: UserId::new_random(),
            created_by: Some(UserId::new_random()),
            plan: PlanId::free(),
        }),
        DomainEvent::TenantActivated(changed.clone()),
        DomainEvent::TenantSuspended(changed.clone()),
        DomainEvent::TenantResumed(changed.clone()),
        DomainEvent::TenantPlanChanged(PlanChanged {
            tenant_id: changed.tenant_id.clone(),
            slug: changed.slug.clone(),
            partner_id: None,
            from: PlanId::free(),
            to: PlanId::parse("pro").unwrap(),
            over_quota: vec!["seats".into()],
        }),
        DomainEvent::TenantPartnerChanged(PartnerChanged {
            tenant_id: changed.tenant_id.clone(),
            slug: changed.slug.clone(),
            from: None,
            to: Some(PartnerId::new_random()),
        }),
        DomainEvent::TenantDeleted(changed.clone()),
        DomainEvent::TenantRestored(changed.clone()),
        DomainEvent::TenantPurged(changed.clone()),
        DomainEvent::MemberAdded(MemberChanged {
            previous_role: None,
            ..member.clone()
        }),
        DomainEvent::MemberRemoved(MemberChanged {
            previous_role: None,
            ..member.clone()
        }),
        DomainEvent::MemberRoleChanged(member),
        DomainEvent::QuotaReached(QuotaReached {
            tenant_id: changed.tenant_id.clone(),
            slug: changed.slug.clone(),
            partner_id: None,
            plan: PlanId::free(),
            quota: "seats".into(),
            used: 3,
            limit: 3,
        }),
        DomainEvent::FlagChanged(FlagChanged {
            key: shared::domain::flag::FlagKey::parse("billing.new-invoices").unwrap(),
            action: "killed".into(),
            state_before: Some(shared::domain::flag::FlagState::On),
            state_after: Some(shared::domain::flag::FlagState::Killed),
            rollout_percent: Some(0),
            version: 2,
            changed_by: UserId::new_random(),
        }),
    ]
}

/// Every kind has its schema file (`infra/events/<kind>.v1.schema.json`) and nothing else does,
/// and each kind's detail carries exactly the fields its schema requires (the black-box test
/// validates what the deployed functions publish against the whole schema).
#[test]
fn every_event_kind_has_a_schema_naming_exactly_its_fields() {
    let dir = root().join("infra/events");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut kinds: Vec<String> = EventKind::ALL
        .iter()
        .map(|k| format!("{}.v1.schema.json", k.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(files, kinds);
    let events = one_of_each();
    assert_eq!(events.len(), EventKind::ALL.len());
    for event in events {
        let kind = event.kind().as_str();
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{kind}.v1.schema.json"))).unwrap(),
        )
        .unwrap();
        let detail: serde_json::Value =
            serde_json::from_str(&event.outbox_at(1_700_000_000_000).detail).unwrap();
        let fields: BTreeSet<&str> = detail
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let required: BTreeSet<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(fields, required, "{kind}");
        assert_eq!(detail["schema_version"], 1, "{kind}");
        assert_eq!(schema["additionalProperties"], false, "{kind}");
    }
}
