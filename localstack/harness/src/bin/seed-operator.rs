//! Creates the first platform operator (idempotent): `OPERATOR_EMAIL` / `OPERATOR_PASSWORD`,
//! with obviously-local defaults. Used by `make dev`; never part of a deployment.

use shared::access::password::hash_password;
use shared::domain::{Email, User, UserId, UserStatus};
use shared::store::{DynamoStore, StoreError, UserStore};

pub const DEFAULT_EMAIL: &str = "operator@local.test";
pub const DEFAULT_PASSWORD: &str = "local-dev-only-change-me";

#[tokio::main]
async fn main() {
    let email_raw = std::env::var("OPERATOR_EMAIL").unwrap_or_else(|_| DEFAULT_EMAIL.to_string());
    let password =
        std::env::var("OPERATOR_PASSWORD").unwrap_or_else(|_| DEFAULT_PASSWORD.to_string());
    let Ok(table) = std::env::var("TABLE_NAME") else {
        eprintln!("seed-operator: TABLE_NAME must be set");
        std::process::exit(2);
    };
    let email = Email::parse(&email_raw).unwrap_or_else(|e| {
        eprintln!("seed-operator: OPERATOR_EMAIL: {e}");
        std::process::exit(2);
    });
    let sdk = shared::runtime::aws::sdk_config().await;
    let store = DynamoStore::new(shared::dynamodb::Client::new(&sdk), table);
    let hash = hash_password(password).await.unwrap_or_else(|e| {
        eprintln!("seed-operator: {e}");
        std::process::exit(1);
    });
    let user = User {
        id: UserId::new_random(),
        email: email.clone(),
        password_hash: hash,
        platform_admin: true,
        status: UserStatus::Active,
        session_epoch: 0,
        reset_generation: 0,
        email_verified: false,
        last_sign_in_at: None,
        created_at: shared::runtime::time::now_unix(),
    };
    match store.create_user(&user).await {
        Ok(()) => println!("operator {email}: created"),
        Err(StoreError::Conflict(_)) => println!("operator {email}: exists (password unchanged)"),
        Err(e) => {
            eprintln!("seed-operator: cannot create operator: {e}");
            std::process::exit(1);
        }
    }
}
