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
    assert_eq!(rules, vec![all], "one rule, matching every provisioning EventKind");
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
