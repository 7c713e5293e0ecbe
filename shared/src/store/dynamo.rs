//! `Store` on DynamoDB, following the key schema in `store/mod.rs`. Every multi-item change is a
//! `TransactWriteItems` with conditions, so a crash or a race never leaves half of it behind.

use super::*;
use crate::aws::sdk_cause;
use crate::domain::UserStatus;
use crate::tenant::TenantStatus;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: impl Into<String>, sk: &str) -> Item {
    HashMap::from([("PK".to_string(), s(pk)), ("SK".to_string(), s(sk))])
}

fn unavailable<E: std::error::Error>(err: E) -> StoreError {
    StoreError::Unavailable(sdk_cause(err))
}

/// The outcome of a single-item conditional write: `Ok(true)` when written, `Ok(false)` when
/// its condition failed, `Unavailable` for anything else.
fn conditional<T, E>(result: Result<T, SdkError<E>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Reads typed attributes out of one item, naming the item in any error.
struct Fields<'a> {
    item: &'a Item,
    key: &'a str,
}

impl<'a> Fields<'a> {
    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            key: self.key.to_string(),
            reason,
        }
    }
    fn s(&self, name: &str) -> Result<&'a str, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(self.corrupt(format!("missing string attribute {name}"))),
        }
    }
    fn n<T: std::str::FromStr>(&self, name: &str) -> Result<T, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| self.corrupt(format!("bad number in {name}"))),
            _ => Err(self.corrupt(format!("missing number attribute {name}"))),
        }
    }
    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            _ => Err(self.corrupt(format!("missing bool attribute {name}"))),
        }
    }
    fn n_or<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, StoreError> {
        if self.item.contains_key(name) {
            self.n(name)
        } else {
            Ok(default)
        }
    }
    fn strings(&self, name: &str) -> Result<Vec<String>, StoreError> {
        match self.item.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| {
                    v.as_s()
                        .cloned()
                        .map_err(|_| self.corrupt(format!("non-string in {name}")))
                })
                .collect(),
            Some(_) => Err(self.corrupt(format!("{name} is not a list"))),
        }
    }
    fn user_id(&self, name: &str) -> Result<UserId, StoreError> {
        UserId::parse(self.s(name)?).ok_or_else(|| self.corrupt(format!("bad user id in {name}")))
    }
}

/// Which items of a cancelled transaction failed their condition, by position.
fn failed_conditions(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<bool>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

/// Whether DynamoDB cancelled a transaction only because another transaction was in flight on
/// the same items: no condition failed, so nothing was decided and the transaction may be sent
/// again (a cancelled transaction writes nothing).
fn only_conflicts(err: &SdkError<TransactWriteItemsError>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            conflicts_alone(e.cancellation_reasons().iter().map(|r| r.code()))
        }
        _ => false,
    }
}

/// Cancellation reason codes, one per item, that mean "retry": at least one conflict, and
/// every other item passed (`None`).
fn conflicts_alone<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let mut conflict = false;
    for code in codes {
        match code {
            Some("TransactionConflict") => conflict = true,
            None | Some("None") => {}
            Some(_) => return false,
        }
    }
    conflict
}

/// How many times a transaction is sent while it is cancelled only by conflicts. On real
/// DynamoDB, of many concurrent transactions guarding one item, the losers are often cancelled
/// with `TransactionConflict` rather than a failed condition; sent again, they see the winner's
/// write and fail on their condition, so "exactly one wins" holds instead of "none might".
const CONFLICT_ATTEMPTS: u32 = 4;

/// The outcome of a transaction whose conditions guard uniqueness: `Conflict(what)` when any
/// condition failed, `Unavailable` for anything else.
fn conflict_if_refused<T>(
    result: Result<T, SdkError<TransactWriteItemsError>>,
    what: &'static str,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => {
            Err(StoreError::Conflict(what))
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// An id that is never issued, read when an email is unknown so both paths cost two reads.
const ABSENT_USER_KEY: &str = "USER#00000000-0000-0000-0000-000000000000";

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// Sends one transaction, again after a short random pause while it is cancelled only by
    /// conflicts with concurrent transactions (see [`CONFLICT_ATTEMPTS`]).
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), SdkError<TransactWriteItemsError>> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            match result {
                Err(e) if attempt < CONFLICT_ATTEMPTS && only_conflicts(&e) => {
                    let pause_ms =
                        rand::Rng::gen_range(&mut rand::thread_rng(), 5..=(20u64 << attempt));
                    tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
                    attempt += 1;
                }
                other => return other.map(|_| ()),
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    fn put(&self, item: Item, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn user_item(user: &User) -> Item {
        let mut item = key(format!("USER#{}", user.id), "USER");
        item.insert("entity".into(), s("user"));
        item.insert("user_id".into(), s(user.id.as_str()));
        item.insert("email".into(), s(user.email.as_str()));
        item.insert("password_hash".into(), s(&user.password_hash));
        item.insert(
            "platform_admin".into(),
            AttributeValue::Bool(user.platform_admin),
        );
        item.insert(
            "status".into(),
            s(match user.status {
                UserStatus::Active => "active",
                UserStatus::Disabled => "disabled",
            }),
        );
        item.insert("session_epoch".into(), n(user.session_epoch));
        item.insert("reset_generation".into(), n(user.reset_generation));
        item.insert("created_at".into(), n(user.created_at));
        item
    }

    fn parse_user(item: &Item) -> Result<User, StoreError> {
        let f = Fields { item, key: "USER" };
        Ok(User {
            id: f.user_id("user_id")?,
            email: Email::parse(f.s("email")?).map_err(|e| f.corrupt(e.to_string()))?,
            password_hash: f.s("password_hash")?.to_string(),
            platform_admin: f.bool("platform_admin")?,
            status: match f.s("status")? {
                "active" => UserStatus::Active,
                "disabled" => UserStatus::Disabled,
                other => return Err(f.corrupt(format!("unknown status {other}"))),
            },
            session_epoch: f.n("session_epoch")?,
            reset_generation: f.n_or("reset_generation", 0)?,
            created_at: f.n("created_at")?,
        })
    }

    fn parse_tenant(item: &Item) -> Result<Tenant, StoreError> {
        let f = Fields {
            item,
            key: "TENANT",
        };
        let origins = f
            .strings("redirect_origins")?
            .iter()
            .map(|o| RedirectOrigin::parse(o).map_err(|e| f.corrupt(e)))
            .collect::<Result<_, _>>()?;
        Ok(Tenant {
            id: f.s("tenant_id")?.to_string(),
            slug: TenantSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            status: match f.s("status")? {
                "provisioning" => TenantStatus::Provisioning,
                "active" => TenantStatus::Active,
                "suspended" => TenantStatus::Suspended,
                other => return Err(f.corrupt(format!("unknown status {other}"))),
            },
            redirect_origins: origins,
            created_at: f.n("created_at")?,
        })
    }

    fn build<T, E: std::error::Error + Send + Sync + 'static>(
        built: Result<T, E>,
    ) -> Result<T, StoreError> {
        built.map_err(|e| StoreError::Unavailable(Box::new(e)))
    }

    fn refresh_item(r: &RefreshTokenRecord) -> Item {
        let mut item = key(format!("REFRESH#{}", r.token_hash), "REFRESH");
        item.insert("entity".into(), s("refresh_token"));
        item.insert("token_hash".into(), s(&r.token_hash));
        item.insert("family_id".into(), s(&r.family_id));
        item.insert("user_id".into(), s(r.user_id.as_str()));
        item.insert("audience".into(), s(r.audience.as_str()));
        item.insert("used".into(), AttributeValue::Bool(r.used));
        item.insert("session_epoch".into(), n(r.session_epoch));
        item.insert("expires_at".into(), n(r.expires_at));
        item
    }

    fn parse_refresh(item: &Item) -> Result<RefreshTokenRecord, StoreError> {
        let f = Fields {
            item,
            key: "REFRESH",
        };
        Ok(RefreshTokenRecord {
            token_hash: f.s("token_hash")?.to_string(),
            family_id: f.s("family_id")?.to_string(),
            user_id: f.user_id("user_id")?,
            audience: Audience::parse(f.s("audience")?)
                .ok_or_else(|| f.corrupt("bad audience".into()))?,
            used: f.bool("used")?,
            session_epoch: f.n("session_epoch")?,
            expires_at: f.n("expires_at")?,
        })
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut claim = key(format!("EMAIL#{}", user.email), "EMAIL");
        claim.insert("entity".into(), s("email_claim"));
        claim.insert("user_id".into(), s(user.id.as_str()));
        let result = self
            .transact(vec![
                self.put(claim, "attribute_not_exists(PK)")?,
                self.put(Self::user_item(user), "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "a user with this email already exists")
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let claim = self.get(format!("EMAIL#{email}"), "EMAIL").await?;
        let Some(claim) = claim else {
            // Same number of round trips as a known email: sign-in timing must not tell them apart.
            self.get(ABSENT_USER_KEY.to_string(), "USER").await?;
            return Ok(None);
        };
        let id = Fields {
            item: &claim,
            key: "EMAIL",
        }
        .user_id("user_id")?;
        self.user_by_id(&id).await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.get(format!("USER#{id}"), "USER")
            .await?
            .as_ref()
            .map(Self::parse_user)
            .transpose()
    }

    async fn memberships(&self, id: &UserId) -> Result<Vec<Membership>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                .expression_attribute_values(":pk", s(format!("USER#{id}")))
                .expression_attribute_values(":prefix", s("MEMBER#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let f = Fields {
                    item,
                    key: "MEMBER",
                };
                let role = match f.s("role")? {
                    "owner" => Role::Owner,
                    "admin" => Role::Admin,
                    "member" => Role::Member,
                    other => return Err(f.corrupt(format!("unknown role {other}"))),
                };
                out.push(Membership {
                    tenant_id: f.s("tenant_id")?.to_string(),
                    tenant_slug: f.s("tenant_slug")?.to_string(),
                    role,
                });
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

fn origin_list(origins: &[RedirectOrigin]) -> AttributeValue {
    AttributeValue::L(origins.iter().map(|o| s(o.as_str())).collect())
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        let mut claim = key(format!("SLUG#{}", tenant.slug), "SLUG");
        claim.insert("entity".into(), s("slug_claim"));
        claim.insert("tenant_id".into(), s(&tenant.id));
        let mut item = key(format!("TENANT#{}", tenant.id), "TENANT");
        item.insert("entity".into(), s("tenant"));
        item.insert("tenant_id".into(), s(&tenant.id));
        item.insert("slug".into(), s(tenant.slug.as_str()));
        item.insert("name".into(), s(&tenant.name));
        let status = match tenant.status {
            TenantStatus::Provisioning => "provisioning",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        };
        item.insert("status".into(), s(status));
        item.insert(
            "redirect_origins".into(),
            origin_list(&tenant.redirect_origins),
        );
        item.insert("created_at".into(), n(tenant.created_at));
        let result = self
            .transact(vec![
                self.put(claim, "attribute_not_exists(PK)")?,
                self.put(item, "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "a tenant with this slug already exists")
    }

    async fn tenant_by_slug(&self, slug: &TenantSlug) -> Result<Option<Tenant>, StoreError> {
        let Some(claim) = self.get(format!("SLUG#{slug}"), "SLUG").await? else {
            return Ok(None);
        };
        let id = Fields {
            item: &claim,
            key: "SLUG",
        }
        .s("tenant_id")?
        .to_string();
        self.tenant_by_id(&id).await
    }

    async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.get(format!("TENANT#{id}"), "TENANT")
            .await?
            .as_ref()
            .map(Self::parse_tenant)
            .transpose()
    }

    async fn add_membership(
        &self,
        user: &UserId,
        tenant: &Tenant,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut item = key(format!("USER#{user}"), &format!("MEMBER#{}", tenant.id));
        item.insert("entity".into(), s("membership"));
        item.insert("tenant_id".into(), s(&tenant.id));
        item.insert("tenant_slug".into(), s(tenant.slug.as_str()));
        item.insert("user_id".into(), s(user.as_str()));
        let role = match role {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        };
        item.insert("role".into(), s(role));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", tenant.id)));
        item.insert("GSI1SK".into(), s(format!("USER#{user}")));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn set_redirect_origins(
        &self,
        tenant_id: &str,
        origins: &[RedirectOrigin],
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("TENANT#{tenant_id}"), "TENANT")))
            .update_expression("SET redirect_origins = :o")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":o", origin_list(origins))
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::NotFound("tenant"))
        }
    }
}

#[async_trait]
impl ResetStore for DynamoStore {
    async fn create_reset_token(
        &self,
        user: &User,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let generation = user.reset_generation + 1;
        let bump = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("USER#{}", user.id), "USER")))
                .update_expression("SET reset_generation = :next")
                .condition_expression("attribute_exists(PK) AND (reset_generation = :seen OR (attribute_not_exists(reset_generation) AND :seen = :zero))")
                .expression_attribute_values(":next", n(generation))
                .expression_attribute_values(":seen", n(user.reset_generation))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )?;
        let mut token = key(format!("RESET#{token_hash}"), "RESET");
        token.insert("entity".into(), s("reset_token"));
        token.insert("token_hash".into(), s(token_hash));
        token.insert("user_id".into(), s(user.id.as_str()));
        token.insert("generation".into(), n(generation));
        token.insert("expires_at".into(), n(expires_at));
        let result = self
            .transact(vec![
                TransactWriteItem::builder().update(bump).build(),
                self.put(token, "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "a concurrent reset request won")
    }

    async fn reset_token(&self, token_hash: &str) -> Result<Option<ResetTokenRecord>, StoreError> {
        let Some(item) = self.get(format!("RESET#{token_hash}"), "RESET").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "RESET",
        };
        Ok(Some(ResetTokenRecord {
            token_hash: f.s("token_hash")?.to_string(),
            user_id: f.user_id("user_id")?,
            generation: f.n("generation")?,
            expires_at: f.n("expires_at")?,
        }))
    }

    async fn consume_reset_token(
        &self,
        token: &ResetTokenRecord,
        new_password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let spend = Self::build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("RESET#{}", token.token_hash), "RESET")))
                .condition_expression("attribute_exists(PK) AND expires_at > :now")
                .expression_attribute_values(":now", n(now))
                .build(),
        )?;
        let change = Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(format!("USER#{}", token.user_id), "USER")))
                .update_expression("SET password_hash = :hash, session_epoch = session_epoch + :one, reset_generation = :next")
                .condition_expression("reset_generation = :generation AND #status = :active")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":hash", s(new_password_hash))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":next", n(token.generation + 1))
                .expression_attribute_values(":generation", n(token.generation))
                .expression_attribute_values(":active", s("active"))
                .build(),
        )?;
        let result = self
            .transact(vec![
                TransactWriteItem::builder().delete(spend).build(),
                TransactWriteItem::builder().update(change).build(),
            ])
            .await;
        match result {
            Ok(_) => Ok(true),
            // A failed condition: spent (possibly by a concurrent consume that won), expired,
            // superseded by a newer request, or the account is no longer active.
            Err(e) if failed_conditions(&e).is_some_and(|f| f.contains(&true)) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(
        &self,
        family: &RefreshFamily,
        first: &RefreshTokenRecord,
    ) -> Result<(), StoreError> {
        let mut fam = key(format!("FAMILY#{}", family.family_id), "FAMILY");
        fam.insert("entity".into(), s("refresh_family"));
        fam.insert("family_id".into(), s(&family.family_id));
        fam.insert("user_id".into(), s(family.user_id.as_str()));
        fam.insert("revoked".into(), AttributeValue::Bool(family.revoked));
        fam.insert("expires_at".into(), n(family.expires_at));
        let result = self
            .transact(vec![
                self.put(fam, "attribute_not_exists(PK)")?,
                self.put(Self::refresh_item(first), "attribute_not_exists(PK)")?,
            ])
            .await;
        conflict_if_refused(result, "session already exists")
    }

    async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.get(format!("REFRESH#{token_hash}"), "REFRESH")
            .await?
            .as_ref()
            .map(Self::parse_refresh)
            .transpose()
    }

    async fn refresh_family(&self, family_id: &str) -> Result<Option<RefreshFamily>, StoreError> {
        let Some(item) = self.get(format!("FAMILY#{family_id}"), "FAMILY").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "FAMILY",
        };
        Ok(Some(RefreshFamily {
            family_id: f.s("family_id")?.to_string(),
            user_id: f.user_id("user_id")?,
            revoked: f.bool("revoked")?,
            expires_at: f.n("expires_at")?,
        }))
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        next: &RefreshTokenRecord,
    ) -> Result<RotateOutcome, StoreError> {
        let spend = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("REFRESH#{old_hash}"), "REFRESH")))
            .update_expression("SET used = :yes")
            .condition_expression("attribute_exists(PK) AND used = :no")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let family_alive = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(format!("FAMILY#{}", next.family_id), "FAMILY")))
            .condition_expression("attribute_exists(PK) AND revoked = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let result = self
            .transact(vec![
                TransactWriteItem::builder().update(spend).build(),
                self.put(Self::refresh_item(next), "attribute_not_exists(PK)")?,
                TransactWriteItem::builder()
                    .condition_check(family_alive)
                    .build(),
            ])
            .await;
        match result {
            Ok(_) => Ok(RotateOutcome::Rotated),
            Err(e) => match failed_conditions(&e).as_deref() {
                Some([true, ..]) => Ok(RotateOutcome::AlreadyUsed),
                Some([_, _, true]) => Ok(RotateOutcome::FamilyRevoked),
                Some([_, true, _]) => Err(StoreError::Conflict("refresh token hash collision")),
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("FAMILY#{family_id}"), "FAMILY")))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        // A failed condition: nothing to revoke, the family never existed or has expired away.
        conditional(result).map(drop)
    }
}

fn parse_hits(item: Option<&Item>) -> Vec<i64> {
    match item.and_then(|i| i.get("hits")) {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn rate_hits(&self, keys: &[String]) -> Result<Vec<Vec<i64>>, StoreError> {
        let mut wanted: Vec<&String> = keys.iter().collect();
        wanted.sort();
        wanted.dedup();
        let mut found: HashMap<String, Item> = HashMap::new();
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for k in &wanted {
            request = request.keys(key(format!("RATE#{k}"), "RATE"));
        }
        let mut pending = Some(
            request
                .build()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?,
        );
        // BatchGetItem may hand back unprocessed keys under throttling; ask again, a bounded number of times.
        for _ in 0..5 {
            let Some(req) = pending.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                if let Some(AttributeValue::S(pk)) = item.get("PK") {
                    found.insert(pk.clone(), item);
                }
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        if pending.is_some() {
            return Err(StoreError::Unavailable("rate-limit read throttled".into()));
        }
        Ok(keys
            .iter()
            .map(|k| parse_hits(found.get(&format!("RATE#{k}"))))
            .collect())
    }

    async fn record_rate_hit(
        &self,
        key_name: &str,
        now: i64,
        window_secs: i64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let item_key = key(format!("RATE#{key_name}"), "RATE");
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key.clone()))
            .update_expression(
                "SET hits = list_append(if_not_exists(hits, :empty), :now), expires_at = :exp",
            )
            .expression_attribute_values(":empty", AttributeValue::L(vec![]))
            .expression_attribute_values(":now", AttributeValue::L(vec![n(now)]))
            .expression_attribute_values(":exp", n(now + window_secs))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(unavailable)?;
        let hits = parse_hits(out.attributes.as_ref());
        let trimmed = trim_hits(hits.clone(), now, window_secs, keep);
        if trimmed.len() < hits.len() {
            // Only if nobody appended since our read; otherwise the next hit trims.
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key))
                .update_expression("SET hits = :trimmed")
                .condition_expression("size(hits) = :seen")
                .expression_attribute_values(
                    ":trimmed",
                    AttributeValue::L(trimmed.into_iter().map(n).collect()),
                )
                .expression_attribute_values(":seen", n(hits.len()))
                .send()
                .await;
            // A failed condition means someone appended meanwhile: fine, as said above.
            conditional(result)?;
        }
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        let pk = format!("IDEMP#{id}");
        // A refused claim reads the holder; if the holder vanished in between (released or
        // expired), the claim is tried again.
        for _ in 0..3 {
            let mut item = key(pk.clone(), "IDEMP");
            item.insert("entity".into(), s("idempotency_key"));
            item.insert("fingerprint".into(), s(fingerprint));
            item.insert("state".into(), s("pending"));
            item.insert("expires_at".into(), n(lease_until));
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR expires_at <= :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            if conditional(result)? {
                return Ok(IdempotencyClaim::Claimed);
            }
            let Some(held) = self.get(pk.clone(), "IDEMP").await? else {
                continue;
            };
            let f = Fields {
                item: &held,
                key: "IDEMP",
            };
            if f.n::<i64>("expires_at")? <= now {
                continue;
            }
            let theirs = f.s("fingerprint")?.to_string();
            return match f.s("state")? {
                "pending" => Ok(IdempotencyClaim::InProgress {
                    fingerprint: theirs,
                }),
                "done" => Ok(IdempotencyClaim::Done {
                    fingerprint: theirs,
                    status: f.n("response_status")?,
                    data: f.s("response_data")?.to_string(),
                }),
                other => Err(f.corrupt(format!("unknown state {other}"))),
            };
        }
        Err(StoreError::Conflict("idempotency key is contended"))
    }

    async fn complete_idempotency(
        &self,
        id: &str,
        fingerprint: &str,
        status: u16,
        data: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("IDEMP#{id}"), "IDEMP")))
            .update_expression(
                "SET #state = :done, response_status = :status, response_data = :data, expires_at = :exp",
            )
            .condition_expression("fingerprint = :fp AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":status", n(status))
            .expression_attribute_values(":data", s(data))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict("idempotency claim lost"))
        }
    }

    async fn release_idempotency(&self, id: &str, fingerprint: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("IDEMP#{id}"), "IDEMP")))
            .condition_expression("fingerprint = :fp AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":fp", s(fingerprint))
            .send()
            .await;
        // A failed condition: someone else's record, or already gone; nothing of ours to release.
        conditional(result).map(drop)
    }
}

#[async_trait]
impl Health for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.get("HEALTH".to_string(), "HEALTH").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::conflicts_alone;

    #[test]
    fn only_a_cancellation_by_conflicts_alone_is_sent_again() {
        assert!(conflicts_alone([Some("TransactionConflict"), Some("None")]));
        assert!(conflicts_alone([None, Some("TransactionConflict")]));
        // A failed condition decides the outcome: sending again cannot change it.
        assert!(!conflicts_alone([
            Some("ConditionalCheckFailed"),
            Some("TransactionConflict")
        ]));
        assert!(!conflicts_alone([Some("ThrottlingError"), Some("None")]));
        // Nothing conflicted: not a conflict cancellation at all.
        assert!(!conflicts_alone([Some("None"), None]));
        assert!(!conflicts_alone([]));
    }
}
