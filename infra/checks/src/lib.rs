//! Checks of the files in `infra/` that need Rust: a reader of the SAM template's functions and
//! routes (`template`), and the tests that hold the template to what else names its routes
//! (`infra/openapi.yaml` and `events/` in `template`'s tests; each function's `ROUTES` and the
//! README's route table in `tests/routes.rs`) and to its policies (`tests/signing_key.rs`). The Python checks beside this crate (`test_*.py`) cover the state
//! machine, the OpenAPI document's own rules, IAM against the calls made, and `deploy.py`.

pub mod template;
