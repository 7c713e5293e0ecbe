//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per measured event,
//! which CloudWatch Logs turns into metrics in namespace `SaasControlPlane` with no API call
//! and no agent. The line is also an ordinary JSON log line, so `make logs` shows it.
//!
//! - Every HTTP request (`request::handle`): `Requests` (1), `Latency` (ms) and `ColdStart`
//!   (1 on a process's first request), by `Function`, and by `Function` and `Code` (`OK` or
//!   the error code: errors by code).
//! - Every provisioning task (`provision-step`): `StepRuns` (1) and `StepLatency` (ms), by
//!   `Function`, `Step` and `Outcome` (`created`, `unchanged`, `repaired`, `retired`, `error`,
//!   `transient failure`, ...), and by `Outcome` alone.
//! - Every request the gate admits to a tenant (`http::call::Call::tenant`, `::database`):
//!   `TenantRequests` (1) by `TenantId`, so an operator sees each tenant's share of the traffic
//!   (its cost).
//! - Every storage notification the meter counts: `StoredBytes` and `StoredObjects` (the
//!   tenant's totals after it) by `TenantId`.

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

pub const NAMESPACE: &str = "SaasControlPlane";

static WARM: AtomicBool = AtomicBool::new(false);

/// 1 the first time a process asks, 0 after.
pub fn cold_start() -> u8 {
    u8::from(!WARM.swap(true, Ordering::Relaxed))
}

/// The function's name as Lambda gives it (`AWS_LAMBDA_FUNCTION_NAME`), else the binary's;
/// read once per process.
fn function_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .ok()
            .or_else(|| {
                std::env::args()
                    .next()
                    .and_then(|a| a.rsplit('/').next().map(str::to_string))
            })
            .unwrap_or_else(|| "unknown".into())
    })
}

/// One EMF document: `dimensions` (names and values), `metrics` (name, unit, value), and
/// extra properties (searchable in the logs, not metrics).
pub fn document(
    dimensions: &[(&str, &str)],
    dimension_sets: &[&[&str]],
    metrics: &[(&str, &str, f64)],
    properties: &[(&str, Value)],
    timestamp_ms: i64,
) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for (name, _, value) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    for (k, v) in properties {
        doc.insert((*k).into(), v.clone());
    }
    Value::Object(doc)
}

fn emit(doc: &Value) {
    // One write per line: Lambda's log capture splits on newlines.
    println!("{doc}");
}

/// The metrics of one HTTP request.
pub fn request(code: &str, status: u16, latency_ms: f64, request_id: &str) {
    let function = function_name();
    emit(&document(
        &[("Function", function), ("Code", code)],
        &[&["Function"], &["Function", "Code"]],
        &[
            ("Requests", "Count", 1.0),
            ("Latency", "Milliseconds", latency_ms),
            ("ColdStart", "Count", f64::from(cold_start())),
        ],
        &[("status", json!(status)), ("request_id", json!(request_id))],
        crate::runtime::time::now_ms(),
    ));
}

/// The metrics of one provisioning task.
pub fn step(step: &str, outcome: &str, latency_ms: f64, run: &str) {
    let function = function_name();
    emit(&document(
        &[("Function", function), ("Step", step), ("Outcome", outcome)],
        // By outcome alone too: one alarm watches every step's errors.
        &[&["Function", "Step", "Outcome"], &["Outcome"]],
        &[
            ("StepRuns", "Count", 1.0),
            ("StepLatency", "Milliseconds", latency_ms),
            ("ColdStart", "Count", f64::from(cold_start())),
        ],
        &[("run", json!(run))],
        crate::runtime::time::now_ms(),
    ));
}

/// One request admitted to a tenant.
pub fn tenant_request(tenant_id: &str) {
    emit(&document(
        &[("TenantId", tenant_id), ("Function", function_name())],
        &[&["TenantId"]],
        &[("TenantRequests", "Count", 1.0)],
        &[],
        crate::runtime::time::now_ms(),
    ));
}

/// A tenant's storage totals after a change.
pub fn tenant_storage(tenant_id: &str, bytes: i64, objects: i64) {
    emit(&document(
        &[("TenantId", tenant_id)],
        &[&["TenantId"]],
        &[
            ("StoredBytes", "Bytes", bytes as f64),
            ("StoredObjects", "Count", objects as f64),
        ],
        &[],
        crate::runtime::time::now_ms(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_every_metric_and_dimension_it_carries() {
        let doc = document(
            &[("Function", "login"), ("Code", "OK")],
            &[&["Function"], &["Function", "Code"]],
            &[("Requests", "Count", 1.0), ("Latency", "Milliseconds", 3.5)],
            &[("request_id", json!("r1"))],
            1_700_000_000_000,
        );
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], NAMESPACE);
        assert_eq!(
            spec["Dimensions"],
            json!([["Function"], ["Function", "Code"]])
        );
        for m in spec["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has no value");
        }
        for set in spec["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(doc[d.as_str().unwrap()].is_string());
            }
        }
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(doc["request_id"], "r1");
    }

    #[test]
    fn only_the_first_request_is_a_cold_start() {
        let first = cold_start();
        assert_eq!(cold_start(), 0);
        assert!(first <= 1);
    }
}
