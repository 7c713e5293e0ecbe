//! Local tooling around the deployed platform: a Lambda Runtime API that runs a function's
//! real binary in isolation (for `make bench`'s cold-start and memory figures, where a quiet,
//! controlled runtime matters), and a reader of the SAM template's functions and routes.
//! `make dev` and `make test` run the platform itself on the emulator, deployed from the
//! template (`localstack/deploy.py`).

pub mod runtime_api;
pub mod template;

use shared::domain::{Role, User};
use shared::store::{StoreError, TenantStore};
use shared::tenant::{Tenant, TenantSlug, TenantStatus};
use template::EnvValue;

/// An active tenant with a unique slug and `owner` as its owner, for benches' seed data.
pub async fn seed_tenant(
    store: &dyn TenantStore,
    name: &str,
    owner: &User,
) -> Result<Tenant, StoreError> {
    let id = shared::domain::TenantId::new_random();
    let tenant = Tenant {
        slug: TenantSlug::parse(&format!("bench-{}", &id.as_str()[..12])).expect("a valid slug"),
        id,
        name: name.to_string(),
        status: TenantStatus::Active,
        redirect_origins: Vec::new(),
        created_at: shared::time::now_unix(),
    };
    store.create_tenant(&tenant).await?;
    store
        .add_membership(&owner.id, &tenant, Role::Owner)
        .await?;
    Ok(tenant)
}

/// AWS settings every function receives, taken from the harness's own environment.
const PASSED_THROUGH: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "RUST_BACKTRACE",
];

/// The environment a function gets: the template's variables (intrinsics resolved from the
/// harness's environment by name; any variable may be overridden there) plus AWS basics.
pub fn function_env(
    declared: &[(String, EnvValue)],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (name, value) in declared {
        match (lookup(name), value) {
            (Some(v), _) => env.push((name.clone(), v)),
            (None, EnvValue::Literal(v)) => env.push((name.clone(), v.clone())),
            // Set by CloudFormation when deployed; locally, unset unless the environment has it
            // (e.g. an optional origin). Required ones are reported by the function's config.
            (None, EnvValue::Intrinsic) => {}
        }
    }
    for name in PASSED_THROUGH {
        if let Some(v) = lookup(name) {
            env.push((name.to_string(), v));
        }
    }
    env
}
