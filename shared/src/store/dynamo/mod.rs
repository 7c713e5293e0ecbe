//! `Store` on DynamoDB, following the key schema in `store/mod.rs`: the client, the helpers every
//! aggregate uses (attribute values, typed reads, conditional writes, transactions whose
//! cancellation is read per item) and one module per aggregate. Every multi-item change is a
//! `TransactWriteItems` with conditions, so a crash or a race never leaves half of it behind.

mod changes;
mod databases;
mod flags;
mod idempotency;
mod partners;
mod plans;
mod ratelimits;
mod resets;
mod sessions;
mod tenants;
mod users;

use super::*;
use crate::domain::tenant::TenantStatus;
use crate::domain::UserStatus;
use crate::runtime::aws::sdk_cause;
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
    fn tenant_id(&self, name: &str) -> Result<TenantId, StoreError> {
        TenantId::parse(self.s(name)?)
            .ok_or_else(|| self.corrupt(format!("bad tenant id in {name}")))
    }
    fn user_id(&self, name: &str) -> Result<UserId, StoreError> {
        UserId::parse(self.s(name)?).ok_or_else(|| self.corrupt(format!("bad user id in {name}")))
    }
}

/// Why a transaction wrote nothing.
#[derive(Debug)]
enum TxError {
    /// Conditions failed: the position in the list sent and the partition key (`PK`) of each
    /// item whose condition failed.
    Refused { failed: Vec<(usize, String)> },
    /// Anything else (throttling, validation, the network).
    Sdk(Box<SdkError<TransactWriteItemsError>>),
}

impl TxError {
    fn refused(&self) -> bool {
        matches!(self, TxError::Refused { failed } if !failed.is_empty())
    }
}

/// The partition key of a transaction item, whatever its kind.
fn item_pk(item: &TransactWriteItem) -> Option<String> {
    let key = item
        .put()
        .map(|p| p.item())
        .or_else(|| item.update().map(|u| u.key()))
        .or_else(|| item.delete().map(|d| d.key()))
        .or_else(|| item.condition_check().map(|c| c.key()))?;
    key.get("PK").and_then(|v| v.as_s().ok()).cloned()
}

/// The position and key of each item whose condition failed, from the cancellation reasons
/// (one per item, in the order sent). `None` if the transaction was not cancelled.
fn failed_items(
    err: &SdkError<TransactWriteItemsError>,
    items: &[TransactWriteItem],
) -> Option<Vec<(usize, String)>> {
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .zip(items)
                .enumerate()
                .filter(|(_, (r, _))| r.code() == Some("ConditionalCheckFailed"))
                .filter_map(|(i, (_, item))| Some((i, item_pk(item)?)))
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
fn conflict_if_refused(result: Result<(), TxError>, what: &'static str) -> Result<(), StoreError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.refused() => Err(StoreError::Conflict(what)),
        Err(e) => Err(e.into()),
    }
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Refused { .. } => StoreError::Conflict("a condition failed"),
            TxError::Sdk(e) => unavailable(*e),
        }
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
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
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
                Ok(_) => return Ok(()),
                Err(e) => {
                    return Err(match failed_items(&e, &items) {
                        Some(failed) if !failed.is_empty() => TxError::Refused { failed },
                        _ => TxError::Sdk(Box::new(e)),
                    })
                }
            }
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The stored item under (`pk`, `sk`), as the table holds it (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub async fn raw_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.get(pk.to_string(), sk).await
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

    /// A put without a condition (it replaces what is there).
    fn put_always(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The items of partition `pk` whose sort key begins with `prefix` (strongly consistent,
    /// one page of at most `limit`).
    async fn items_with_prefix(
        &self,
        pk: String,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(page.items().to_vec())
    }

    fn build<T, E: std::error::Error + Send + Sync + 'static>(
        built: Result<T, E>,
    ) -> Result<T, StoreError> {
        built.map_err(|e| StoreError::Unavailable(Box::new(e)))
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

#[async_trait]
impl Health for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.get("HEALTH".to_string(), "HEALTH").await.map(|_| ())
    }
}

/// A sort-key condition on `#sk` (e.g. `begins_with(#sk, :prefix)`): the sort attribute, the
/// condition, and the values it names.
type SortCondition = (&'static str, String, Vec<(&'static str, AttributeValue)>);
/// A filter expression, and the values and names it uses.
type FilterExpression = (String, Vec<(String, AttributeValue)>, Vec<(String, String)>);

/// One paginated query: a partition of the table or of an index, an optional sort-key
/// condition and filter, in either direction. The cursor is bound to `query_name` and may only
/// point inside this partition.
struct PageQuery<'a> {
    query_name: String,
    index: Option<&'static str>,
    /// The partition attribute (`PK`, `GSI1PK`, `GSI2PK`) and its value.
    partition: (&'static str, String),
    /// A sort-key condition on `#sk` (e.g. `begins_with(#sk, :prefix)`), its sort attribute,
    /// and the values it names.
    sort: Option<SortCondition>,
    /// A filter expression and the values and names it uses.
    filter: Option<FilterExpression>,
    forward: bool,
    limit: usize,
    cursor: Option<&'a str>,
}

/// How many index pages one filtered page may read before answering with what it has.
const MAX_FILTERED_READS: usize = 5;

impl DynamoStore {
    /// Reads one page of `q`: items in order and the cursor of the next page.
    async fn page_query(
        &self,
        q: PageQuery<'_>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let (pk_attr, pk_value) = q.partition.clone();
        let mut start: Option<Item> = match q.cursor {
            None => None,
            Some(c) => {
                let position =
                    crate::store::page::decode_within(&q.query_name, c, pk_attr, &pk_value)
                        .map_err(|_| StoreError::InvalidCursor)?;
                Some(position.into_iter().map(|(k, v)| (k, s(v))).collect())
            }
        };
        let limit = q.limit.clamp(1, crate::store::page::MAX_LIMIT);
        // A filtered query evaluates a full page per read, so a selective filter does not
        // answer with many near-empty pages.
        let read_limit = if q.filter.is_some() {
            crate::store::page::MAX_LIMIT
        } else {
            limit
        };
        let mut items: Vec<Item> = Vec::new();
        let mut reads = 0;
        let last_key = loop {
            let mut key_condition = "#pk = :pk".to_string();
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(q.index.map(str::to_string))
                .expression_attribute_names("#pk", pk_attr)
                .expression_attribute_values(":pk", s(pk_value.clone()))
                .scan_index_forward(q.forward)
                .limit(i32::try_from(read_limit).unwrap_or(1))
                .set_exclusive_start_key(start.take());
            if q.index.is_none() {
                req = req.consistent_read(true);
            }
            if let Some((sk_attr, condition, values)) = &q.sort {
                key_condition = format!("{key_condition} AND {condition}");
                req = req.expression_attribute_names("#sk", *sk_attr);
                for (name, v) in values {
                    req = req.expression_attribute_values(*name, v.clone());
                }
            }
            if let Some((expr, values, names)) = &q.filter {
                req = req.filter_expression(expr);
                for (name, v) in values {
                    req = req.expression_attribute_values(name, v.clone());
                }
                for (name, attr) in names {
                    req = req.expression_attribute_names(name, attr);
                }
            }
            let page = req
                .key_condition_expression(key_condition)
                .send()
                .await
                .map_err(unavailable)?;
            reads += 1;
            let next = page.last_evaluated_key.clone().filter(|k| !k.is_empty());
            items.extend(page.items.unwrap_or_default());
            if items.len() >= limit || next.is_none() || reads >= MAX_FILTERED_READS {
                break next;
            }
            start = next;
        };
        // Exactly the key attributes of the table and the index read: a start key with more or
        // fewer is refused by DynamoDB.
        let key_attrs = |item: &Item| -> BTreeMap<String, String> {
            let names: &[&str] = match q.index {
                None => &["PK", "SK"],
                Some("GSI1") => &["PK", "SK", "GSI1PK", "GSI1SK"],
                Some(_) => &["PK", "SK", "GSI2PK", "GSI2SK"],
            };
            names
                .iter()
                .filter_map(|n| {
                    item.get(*n)
                        .and_then(|v| v.as_s().ok())
                        .map(|v| (n.to_string(), v.clone()))
                })
                .collect()
        };
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|i| crate::store::page::encode(&q.query_name, key_attrs(i)))
        } else {
            last_key.map(|k| {
                let position = k
                    .into_iter()
                    .filter_map(|(name, v)| v.as_s().ok().map(|v| (name, v.clone())))
                    .collect();
                crate::store::page::encode(&q.query_name, position)
            })
        };
        Ok((items, next_cursor))
    }

    /// The items at these keys that exist (`BatchGetItem`, consistent, unprocessed keys
    /// retried), at most 100 keys.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut pending = keys;
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            if rounds > 5 {
                return Err(StoreError::Unavailable(
                    "batch read kept being throttled".into(),
                ));
            }
            let request = Self::build(
                KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build(),
            )?;
            let resp = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable)?;
            if let Some(mut found) = resp.responses {
                out.extend(found.remove(&self.table).unwrap_or_default());
            }
            if let Some(mut left) = resp.unprocessed_keys {
                if let Some(ka) = left.remove(&self.table) {
                    pending = ka.keys;
                }
            }
        }
        Ok(out)
    }
}

/// A JSON object stored as a string attribute.
fn json_attr(map: &serde_json::Map<String, serde_json::Value>) -> AttributeValue {
    s(serde_json::Value::Object(map.clone()).to_string())
}

impl Fields<'_> {
    fn json_object(
        &self,
        name: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        match self.item.get(name) {
            None => Ok(serde_json::Map::new()),
            Some(AttributeValue::S(v)) => serde_json::from_str(v)
                .map_err(|_| self.corrupt(format!("{name} is not a JSON object"))),
            Some(_) => Err(self.corrupt(format!("{name} is not a string"))),
        }
    }
    fn opt_s(&self, name: &str) -> Option<&str> {
        self.item
            .get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
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
