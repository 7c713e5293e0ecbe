//! The error catalogue and the contract agree: every code `ErrorCode` holds is documented in
//! `infra/openapi.yaml` (`components.schemas.ErrorCode`), and every documented code is in the
//! catalogue. A code added on one side only fails here.

use shared::ErrorCode;
use std::collections::BTreeSet;

fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("infra/openapi.yaml is readable");
    let spec: serde_norway::Value = serde_norway::from_str(&text).expect("the OpenAPI parses");
    spec["components"]["schemas"]["ErrorCode"]["enum"]
        .as_sequence()
        .expect("components.schemas.ErrorCode.enum is a list")
        .iter()
        .map(|v| v.as_str().expect("each code is a string").to_string())
        .collect()
}

#[test]
fn every_code_in_the_catalogue_is_documented_and_every_documented_code_is_in_it() {
    let catalogue: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = catalogue.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&catalogue).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "in the catalogue but not in the OpenAPI: {undocumented:?}; in the OpenAPI but not in the catalogue: {unknown:?}"
    );
}

#[test]
fn each_code_is_unique_and_says_its_status() {
    let mut seen = BTreeSet::new();
    for code in ErrorCode::ALL {
        assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
        assert!(
            (400..600).contains(&code.status()),
            "{} has status {}",
            code.as_str(),
            code.status()
        );
        let s = code.as_str();
        assert!(
            s.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{s} is not SNAKE_CASE"
        );
    }
}
