//! `Store` on DynamoDB, following the key schema in `store/mod.rs`. Every multi-item change is a
//! `TransactWriteItems` with conditions, so a crash or a race never leaves half of it behind.

use super::*;
use crate::aws::sdk_cause;
use crate::domain::UserStatus;
use crate::tenant::TenantStatus;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
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

/// Error codes that mean this request can never succeed as sent (permissions, a malformed
/// request, a missing table): a 500 with a clear log line, not a 503 that invites retries.
const NOT_RETRYABLE: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ValidationException",
    "ResourceNotFoundException",
    "MissingAuthenticationTokenException",
    "InvalidSignatureException",
];

/// An SDK error as a store error: `Rejected` for what retrying cannot fix, `Unavailable` for
/// the rest (throttling, timeouts, 5xx, a network that is down).
fn unavailable<E: ProvideErrorMetadata + std::error::Error>(err: E) -> StoreError {
    if err.code().is_some_and(|c| NOT_RETRYABLE.contains(&c)) {
        StoreError::Rejected(sdk_cause(err))
    } else {
        StoreError::Unavailable(sdk_cause(err))
    }
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

/// The positions of the items whose condition failed in a cancelled transaction; the caller
/// knows which item it put at each position. `None` if the transaction was not cancelled.
fn failed_items(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<usize>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .enumerate()
                .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                .map(|(i, _)| i)
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
        Err(e) if failed_items(&e).is_some_and(|f| !f.is_empty()) => {
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
        item.insert("status".into(), s(user.status.as_str()));
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
            status: UserStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown user status".into()))?,
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
            .map(|o| RedirectOrigin::parse(o, true).map_err(|e| f.corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Tenant {
            id: f.s("tenant_id")?.to_string(),
            slug: TenantSlug::parse(f.s("slug")?).ok_or_else(|| f.corrupt("bad slug".into()))?,
            name: f.s("name")?.to_string(),
            status: TenantStatus::parse(f.s("status")?)
                .ok_or_else(|| f.corrupt("unknown tenant status".into()))?,
            redirect_origins: origins,
            created_at: f.n("created_at")?,
        })
    }

    fn build<T, E: std::error::Error + Send + Sync + 'static>(
        built: Result<T, E>,
    ) -> Result<T, StoreError> {
        built.map_err(|e| StoreError::Unavailable(Box::new(e)))
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
            let (page, next) = self.membership_page(id, None, start.take()).await?;
            out.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    async fn memberships_up_to(
        &self,
        id: &UserId,
        n: usize,
    ) -> Result<Vec<Membership>, StoreError> {
        let limit = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        Ok(self.membership_page(id, Some(limit), None).await?.0)
    }

    async fn holds_partner_role(&self, id: &UserId) -> Result<bool, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(format!("USER#{id}")))
            .expression_attribute_values(":prefix", s("PARTNER#"))
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(!page.items().is_empty())
    }

    async fn grant_partner_admin(&self, id: &UserId, partner_id: &str) -> Result<(), StoreError> {
        let mut item = key(format!("USER#{id}"), &format!("PARTNER#{partner_id}"));
        item.insert("entity".into(), s("partner_admin"));
        item.insert("user_id".into(), s(id.as_str()));
        item.insert("partner_id".into(), s(partner_id));
        item.insert("GSI1PK".into(), s(format!("PARTNER#{partner_id}")));
        item.insert("GSI1SK".into(), s(format!("USER#{id}")));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl DynamoStore {
    /// One page of a user's memberships (strongly consistent: memberships decide access), and
    /// where the next page starts.
    async fn membership_page(
        &self,
        id: &UserId,
        limit: Option<i32>,
        start: Option<Item>,
    ) -> Result<(Vec<Membership>, Option<Item>), StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(format!("USER#{id}")))
            .expression_attribute_values(":prefix", s("MEMBER#"))
            .consistent_read(true)
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(page.items().len());
        for item in page.items() {
            let f = Fields {
                item,
                key: "MEMBER",
            };
            out.push(Membership {
                tenant_id: f.s("tenant_id")?.to_string(),
                tenant_slug: f.s("tenant_slug")?.to_string(),
                role: Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?,
            });
        }
        let next = page.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out, next))
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
        item.insert("status".into(), s(tenant.status.as_str()));
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
        item.insert("role".into(), s(role.as_str()));
        item.insert("GSI1PK".into(), s(format!("TENANT#{}", tenant.id)));
        item.insert("GSI1SK".into(), s(format!("USER#{user}")));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        if conditional(result)? {
            Ok(())
        } else {
            Err(StoreError::Conflict("already a member of this tenant"))
        }
    }

    async fn tenant_members(&self, tenant_id: &str) -> Result<Vec<(UserId, Role)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .key_condition_expression("GSI1PK = :pk AND begins_with(GSI1SK, :prefix)")
                .expression_attribute_values(":pk", s(format!("TENANT#{tenant_id}")))
                .expression_attribute_values(":prefix", s("USER#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let f = Fields {
                    item,
                    key: "MEMBER",
                };
                let role =
                    Role::parse(f.s("role")?).ok_or_else(|| f.corrupt("unknown role".into()))?;
                out.push((f.user_id("user_id")?, role));
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
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
            Err(e) if failed_items(&e).is_some_and(|f| !f.is_empty()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn hash_map(map: &BTreeMap<String, i64>) -> AttributeValue {
    AttributeValue::M(map.iter().map(|(h, t)| (h.clone(), n(t))).collect())
}

impl Fields<'_> {
    /// A map of names to numbers (session heads and spent hashes, rate-limit hits).
    fn number_map(&self, name: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        match self.item.get(name) {
            None => Ok(BTreeMap::new()),
            Some(AttributeValue::M(m)) => m
                .iter()
                .map(|(k, v)| {
                    v.as_n()
                        .ok()
                        .and_then(|x| x.parse().ok())
                        .map(|t| (k.clone(), t))
                        .ok_or_else(|| self.corrupt(format!("non-number in {name}")))
                })
                .collect(),
            Some(_) => Err(self.corrupt(format!("{name} is not a map"))),
        }
    }
}

fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "SESSION")
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(
        &self,
        session: &Session,
        refund: Option<&crate::ratelimit::Reservation>,
    ) -> Result<(), StoreError> {
        let mut item = session_key(&session.session_id);
        item.insert("entity".into(), s("session"));
        item.insert("session_id".into(), s(&session.session_id));
        item.insert("user_id".into(), s(session.user_id.as_str()));
        item.insert("audience".into(), s(session.audience.as_str()));
        item.insert("session_epoch".into(), n(session.session_epoch));
        item.insert("expires_at".into(), n(session.expires_at));
        item.insert("revoked".into(), AttributeValue::Bool(session.revoked));
        item.insert("heads".into(), hash_map(&session.heads));
        item.insert("spent".into(), hash_map(&session.spent));
        let put = self.put(item.clone(), "attribute_not_exists(PK)")?;
        let mut items = vec![put];
        if let Some(r) = refund {
            for k in &r.keys {
                items.push(
                    TransactWriteItem::builder()
                        .update(self.refund_update(k, &r.hit_id)?)
                        .build(),
                );
            }
        }
        let with_refund = items.len() > 1;
        let result = self.transact(items).await;
        match result {
            Ok(()) => Ok(()),
            // Only a refund's window was gone (expired away): nothing to give back, so the
            // session alone is written.
            Err(e)
                if with_refund
                    && failed_items(&e).is_some_and(|f| !f.is_empty() && !f.contains(&0)) =>
            {
                let result = self
                    .transact(vec![self.put(item, "attribute_not_exists(PK)")?])
                    .await;
                conflict_if_refused(result, "session already exists")
            }
            Err(e) => conflict_if_refused::<()>(Err(e), "session already exists"),
        }
    }

    async fn session(&self, session_id: &str) -> Result<Option<Session>, StoreError> {
        let Some(item) = self.get(format!("SESSION#{session_id}"), "SESSION").await? else {
            return Ok(None);
        };
        let f = Fields {
            item: &item,
            key: "SESSION",
        };
        Ok(Some(Session {
            session_id: f.s("session_id")?.to_string(),
            user_id: f.user_id("user_id")?,
            audience: Audience::parse(f.s("audience")?)
                .ok_or_else(|| f.corrupt("bad audience".into()))?,
            session_epoch: f.n("session_epoch")?,
            expires_at: f.n("expires_at")?,
            revoked: f.bool("revoked")?,
            heads: f.number_map("heads")?,
            spent: f.number_map("spent")?,
        }))
    }

    async fn rotate_session(
        &self,
        session_id: &str,
        old: &str,
        new: &str,
        now: i64,
        forget: &[String],
    ) -> Result<RotateOutcome, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .condition_expression("attribute_exists(heads.#old) AND revoked = :no")
            .expression_attribute_names("#old", old)
            .expression_attribute_names("#new", new)
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":now", n(now));
        let mut remove = vec!["heads.#old".to_string()];
        for (i, h) in forget.iter().enumerate() {
            update = update.expression_attribute_names(format!("#f{i}"), h);
            remove.push(format!("spent.#f{i}"));
        }
        let result = update
            .update_expression(format!(
                "SET heads.#new = :now, spent.#old = :now REMOVE {}",
                remove.join(", ")
            ))
            .send()
            .await;
        Ok(if conditional(result)? {
            RotateOutcome::Rotated
        } else {
            RotateOutcome::Refused
        })
    }

    async fn add_session_head(
        &self,
        session_id: &str,
        spent: &str,
        spent_at: i64,
        new: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET heads.#new = :now")
            .condition_expression("spent.#spent = :at AND revoked = :no AND size(heads) < :max")
            .expression_attribute_names("#new", new)
            .expression_attribute_names("#spent", spent)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":at", n(spent_at))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":max", n(MAX_SESSION_HEADS))
            .send()
            .await;
        conditional(result)
    }

    async fn revoke_session(&self, session_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET revoked = :yes")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        // A failed condition: nothing to revoke, the session never existed or has expired away.
        conditional(result).map(drop)
    }
}

const REFUND_UPDATE: &str = "REMOVE hits.#hit ADD version :one";
const REFUND_CONDITION: &str = "attribute_exists(hits)";

fn rate_key(k: &str) -> Item {
    key(format!("RATE#{k}"), "RATE")
}

impl DynamoStore {
    /// Removes one hit from a window and moves its version (so a reservation that read the
    /// window before the refund is sent again); only if the window still exists.
    fn refund_update(&self, k: &str, hit_id: &str) -> Result<Update, StoreError> {
        Self::build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(REFUND_UPDATE)
                .condition_expression(REFUND_CONDITION)
                .expression_attribute_names("#hit", hit_id)
                .expression_attribute_values(":one", n(1))
                .build(),
        )
    }
}

#[async_trait]
impl RateLimitStore for DynamoStore {
    async fn rate_windows(&self, keys: &[String]) -> Result<Vec<RateWindow>, StoreError> {
        let mut wanted: Vec<&String> = keys.iter().collect();
        wanted.sort();
        wanted.dedup();
        let mut found: HashMap<String, Item> = HashMap::new();
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for k in &wanted {
            request = request.keys(rate_key(k));
        }
        let mut pending = Some(Self::build(request.build())?);
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
        keys.iter()
            .map(|k| match found.get(&format!("RATE#{k}")) {
                None => Ok(RateWindow::default()),
                Some(item) => {
                    let f = Fields { item, key: "RATE" };
                    Ok(RateWindow {
                        hits: f.number_map("hits")?,
                        version: f.n_or("version", 0)?,
                    })
                }
            })
            .collect()
    }

    async fn put_rate_windows(
        &self,
        writes: &[(String, RateWindow, u64, i64)],
    ) -> Result<bool, StoreError> {
        let mut items = Vec::with_capacity(writes.len());
        for (k, window, seen, expires_at) in writes {
            let mut item = rate_key(k);
            item.insert("entity".into(), s("rate_window"));
            item.insert("hits".into(), hash_map(&window.hits));
            item.insert("version".into(), n(window.version));
            item.insert("expires_at".into(), n(expires_at));
            let condition = if *seen == 0 {
                "attribute_not_exists(version)".to_string()
            } else {
                "version = :seen".to_string()
            };
            let put = Self::build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_values(
                        (*seen != 0).then(|| HashMap::from([(":seen".to_string(), n(seen))])),
                    )
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // One item needs no transaction; several are written all or nothing.
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) if failed_items(&e).is_some_and(|f| !f.is_empty()) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn refund_rate_hit(&self, keys: &[String], hit_id: &str) -> Result<(), StoreError> {
        for k in keys {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(rate_key(k)))
                .update_expression(REFUND_UPDATE)
                .condition_expression(REFUND_CONDITION)
                .expression_attribute_names("#hit", hit_id)
                .expression_attribute_values(":one", n(1))
                .send()
                .await;
            // A failed condition: the window expired away, nothing to give back.
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
