//! The AWS call log: with `AWS_CALL_LOG=true` (the test stack only; the template's
//! `AwsCallLog` parameter), every SDK client logs one line per operation naming the service,
//! the operation and the resources it touches. `infra/checks/test_iam.py` checks each line
//! against the calling function's policy in `infra/template.yaml`, so a call its role would be
//! refused on AWS fails the suite locally.
//!
//! Only names are logged (table, index, bucket and key, secret id, state machine, event bus,
//! sender identity), never a request body, item, value or credential. For DynamoDB each line
//! also names the *kind* of every partition key it touches (`leading_keys`, what IAM's
//! `dynamodb:LeadingKeys` condition sees): the key's prefix up to its first `#` (`USER#`,
//! `EMAIL#`), or a fixed key's whole name (`HEALTH`, `TENANTS`), never an id, an email or a hash.
//!
//! Each line also carries the process it came from (`process`, random per process) and its
//! number among that process's calls (`seq`, from 1), so the check can prove it read every line
//! a process wrote up to its last one: a gap is a line it never saw.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The interceptor, when the call log is on (read once per process).
pub fn call_log() -> Option<CallLog> {
    static ON: OnceLock<bool> = OnceLock::new();
    ON.get_or_init(|| std::env::var("AWS_CALL_LOG").is_ok_and(|v| v == "true"))
        .then_some(CallLog)
}

/// Builds an SDK client from the process's `SdkConfig`, with the call log when it is on. An
/// optional closure adjusts the service's config builder (S3's path-style addressing).
#[macro_export]
macro_rules! aws_client {
    ($($krate:ident)::+, $sdk:expr) => {
        $crate::aws_client!($($krate)::+, $sdk, |b| b)
    };
    ($($krate:ident)::+, $sdk:expr, $adjust:expr) => {{
        let builder = $($krate)::+::config::Builder::from($sdk);
        let builder = match $crate::runtime::call_log::call_log() {
            Some(log) => builder.interceptor(log),
            None => builder,
        };
        $($krate)::+::Client::from_conf(($adjust)(builder).build())
    }};
}

#[derive(Debug, Clone, Copy)]
pub struct CallLog;

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // Once per attempt, with the request as it will be sent (the endpoint, and so S3's bucket,
    // is known only from here on).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let request = context.request();
        let raw = request.body().bytes().unwrap_or_default();
        let resources = resources(meta.service(), meta.name(), request.uri(), raw);
        let leading = leading_keys(meta.service(), meta.name(), raw);
        tracing::info!(
            service = meta.service(),
            operation = meta.name(),
            resources = %resources.join(" "),
            leading_keys = %leading.join(" "),
            process = %process_id(),
            seq = next_seq(),
            "aws call"
        );
        Ok(())
    }
}

/// This process's id in the call log: random, drawn once.
fn process_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// The next number of this process's calls: 1, 2, 3, ...
fn next_seq() -> u64 {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

/// What an operation touches, as `Operation@resource` (the operation is the item-level one
/// inside a transaction or batch, which is how IAM authorises those).
fn resources(service: &str, operation: &str, uri: &str, raw: &[u8]) -> Vec<String> {
    let body = &serde_json::from_slice::<Value>(raw).unwrap_or(Value::Null);
    let at = |op: &str, resource: &str| format!("{op}@{resource}");
    let str_field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match service.to_ascii_lowercase().as_str() {
        "dynamodb" => dynamodb_resources(operation, body),
        // A batch delete is authorised per key, as DeleteObject.
        "s3" if operation == "DeleteObjects" => {
            let bucket = s3_resource(uri);
            let text = String::from_utf8_lossy(raw);
            text.split("<Key>")
                .skip(1)
                .filter_map(|rest| rest.split_once("</Key>"))
                .map(|(key, _)| {
                    at(
                        "DeleteObject",
                        &format!("{bucket}/{}", key.replace("&amp;", "&")),
                    )
                })
                .collect()
        }
        "s3" => vec![at(operation, &s3_resource(uri))],
        "secretsmanager" | "secrets manager" => str_field(body, "SecretId")
            .or_else(|| str_field(body, "Name"))
            .map(|id| vec![at(operation, &id)])
            .unwrap_or_default(),
        "sfn" => str_field(body, "stateMachineArn")
            .or_else(|| str_field(body, "executionArn"))
            .map(|arn| vec![at(operation, &arn)])
            .unwrap_or_default(),
        "eventbridge" => body
            .get("Entries")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| at(operation, &str_field(e, "EventBusName").unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        "sesv2" => str_field(body, "FromEmailAddress")
            .map(|from| vec![at(operation, &sender_identity(&from))])
            .unwrap_or_default(),
        _ => vec![],
    }
}

fn dynamodb_resources(operation: &str, body: &Value) -> Vec<String> {
    fn table(v: &Value) -> &str {
        v.get("TableName").and_then(Value::as_str).unwrap_or("")
    }
    let mut out = Vec::new();
    match operation {
        "TransactWriteItems" | "TransactGetItems" => {
            for item in body
                .get("TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (kind, op) in [
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                    ("Get", "GetItem"),
                ] {
                    if let Some(inner) = item.get(kind) {
                        out.push(format!("{op}@{}", table(inner)));
                    }
                }
            }
        }
        "BatchGetItem" | "BatchWriteItem" => {
            for (name, requests) in body
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if operation == "BatchGetItem" {
                    out.push(format!("BatchGetItem@{name}"));
                    continue;
                }
                for r in requests.as_array().into_iter().flatten() {
                    let op = if r.get("PutRequest").is_some() {
                        "PutItem"
                    } else {
                        "DeleteItem"
                    };
                    out.push(format!("{op}@{name}"));
                }
            }
        }
        _ => {
            let mut resource = table(body).to_string();
            if let Some(index) = body.get("IndexName").and_then(Value::as_str) {
                resource = format!("{resource}/index/{index}");
            }
            out.push(format!("{operation}@{resource}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The leading keys of each DynamoDB authorisation an operation needs, as
/// `Operation@resource=PREFIX[,PREFIX...]`: the item-level operation inside a transaction or a
/// batch write (one authorisation per item), every key of a batch read together (one
/// authorisation per table), and for a query the partition key it names (an index's own, on an
/// index). Only each key's kind is logged ([`key_prefix`]). Empty for other services.
fn leading_keys(service: &str, operation: &str, raw: &[u8]) -> Vec<String> {
    if !service.eq_ignore_ascii_case("dynamodb") {
        return Vec::new();
    }
    let body = serde_json::from_slice::<Value>(raw).unwrap_or(Value::Null);
    dynamodb_leading_keys(operation, &body)
}

fn dynamodb_leading_keys(operation: &str, body: &Value) -> Vec<String> {
    fn table(v: &Value) -> String {
        v.get("TableName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }
    fn entry(op: &str, resource: &str, prefixes: &[String]) -> String {
        format!("{op}@{resource}={}", prefixes.join(","))
    }
    let mut out = Vec::new();
    match operation {
        "TransactWriteItems" | "TransactGetItems" => {
            for item in body
                .get("TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (kind, op, field) in [
                    ("Put", "PutItem", "Item"),
                    ("Update", "UpdateItem", "Key"),
                    ("Delete", "DeleteItem", "Key"),
                    ("ConditionCheck", "ConditionCheckItem", "Key"),
                    ("Get", "GetItem", "Key"),
                ] {
                    if let Some(inner) = item.get(kind) {
                        if let Some(prefix) = inner.get(field).and_then(pk_prefix) {
                            out.push(entry(op, &table(inner), &[prefix]));
                        }
                    }
                }
            }
        }
        "BatchGetItem" => {
            for (name, request) in body
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let mut prefixes: Vec<String> = request
                    .get("Keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(pk_prefix)
                    .collect();
                prefixes.sort();
                prefixes.dedup();
                if !prefixes.is_empty() {
                    out.push(entry("BatchGetItem", name, &prefixes));
                }
            }
        }
        "BatchWriteItem" => {
            for (name, requests) in body
                .get("RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                for r in requests.as_array().into_iter().flatten() {
                    let (op, key) = match (r.get("PutRequest"), r.get("DeleteRequest")) {
                        (Some(put), _) => ("PutItem", put.get("Item")),
                        (None, Some(delete)) => ("DeleteItem", delete.get("Key")),
                        (None, None) => continue,
                    };
                    if let Some(prefix) = key.and_then(pk_prefix) {
                        out.push(entry(op, name, &[prefix]));
                    }
                }
            }
        }
        "Query" => {
            let mut resource = table(body);
            if let Some(index) = body.get("IndexName").and_then(Value::as_str) {
                resource = format!("{resource}/index/{index}");
            }
            if let Some(prefix) = query_partition_prefix(body) {
                out.push(entry(operation, &resource, &[prefix]));
            }
        }
        "GetItem" | "UpdateItem" | "DeleteItem" => {
            if let Some(prefix) = body.get("Key").and_then(pk_prefix) {
                out.push(entry(operation, &table(body), &[prefix]));
            }
        }
        "PutItem" => {
            if let Some(prefix) = body.get("Item").and_then(pk_prefix) {
                out.push(entry(operation, &table(body), &[prefix]));
            }
        }
        _ => {}
    }
    out.sort();
    out.dedup();
    out
}

/// The kind of an item's partition key (the table's is `PK`, store/mod.rs).
fn pk_prefix(key: &Value) -> Option<String> {
    key.get("PK")?.get("S")?.as_str().map(key_prefix)
}

/// The partition key a query names: the attribute ending in `PK` (the table's `PK`, or an
/// index's `GSI1PK`, `GSI2PK`) that its key condition sets equal to a value.
fn query_partition_prefix(body: &Value) -> Option<String> {
    let expr = body.get("KeyConditionExpression")?.as_str()?;
    let names = body.get("ExpressionAttributeNames");
    let values = body.get("ExpressionAttributeValues")?;
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'#' | b':' | b'.' | b'-');
    for (i, &b) in bytes.iter().enumerate() {
        // `=`, not part of `<=`, `>=` or `<>`.
        if b != b'=' || (i > 0 && matches!(bytes[i - 1], b'<' | b'>')) {
            continue;
        }
        let mut end = i;
        while end > 0 && bytes[end - 1] == b' ' {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && word(bytes[start - 1]) {
            start -= 1;
        }
        let mut from = i + 1;
        while from < bytes.len() && bytes[from] == b' ' {
            from += 1;
        }
        let mut to = from;
        while to < bytes.len() && word(bytes[to]) {
            to += 1;
        }
        let (name, placeholder) = (&expr[start..end], &expr[from..to]);
        let attribute = if name.starts_with('#') {
            names
                .and_then(|n| n.get(name))
                .and_then(Value::as_str)
                .unwrap_or("")
        } else {
            name
        };
        if !attribute.ends_with("PK") {
            continue;
        }
        if let Some(value) = values
            .get(placeholder)
            .and_then(|v| v.get("S"))
            .and_then(Value::as_str)
        {
            return Some(key_prefix(value));
        }
    }
    None
}

/// What of a partition key value may be logged: its kind, the part up to and including the
/// first `#` (`USER#`), when that part is an upper-case name; a fixed key without `#`
/// (`HEALTH`, `TENANTS`) whole; anything else `?`. Never an id, an email or a hash.
fn key_prefix(value: &str) -> String {
    fn kind(s: &str) -> bool {
        s.len() <= 32
            && s.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    }
    match value.split_once('#') {
        Some((head, _)) if kind(head) => format!("{head}#"),
        None if kind(value) => value.to_string(),
        _ => "?".to_string(),
    }
}

/// `bucket/key` from a path-style URI (the emulator), with `?prefix=` for a listing.
fn s3_resource(uri: &str) -> String {
    let Ok(url) = url::Url::parse(uri) else {
        return String::new();
    };
    let path = percent_encoding::percent_decode_str(url.path().trim_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    match url.query_pairs().find(|(k, _)| k == "prefix") {
        Some((_, prefix)) if !path.contains('/') => format!("{path}?prefix={prefix}"),
        _ => path,
    }
}

/// The SES identity a sender address is authorised by: the address itself.
fn sender_identity(from: &str) -> String {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].to_string(),
        _ => from.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transaction_is_logged_as_its_item_actions() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "secret-looking"}}}},
            {"Update": {"TableName": "t"}},
            {"ConditionCheck": {"TableName": "t"}},
        ]});
        assert_eq!(
            resources(
                "DynamoDB",
                "TransactWriteItems",
                "",
                body.to_string().as_bytes()
            ),
            ["ConditionCheckItem@t", "PutItem@t", "UpdateItem@t"]
        );
    }

    #[test]
    fn a_query_on_an_index_names_the_index() {
        let body = json!({"TableName": "t", "IndexName": "GSI1"});
        assert_eq!(
            resources("DynamoDB", "Query", "", body.to_string().as_bytes()),
            ["Query@t/index/GSI1"]
        );
    }

    #[test]
    fn s3_keys_and_listing_prefixes_come_from_the_path() {
        assert_eq!(
            resources("S3", "PutObject", "http://h:1/b/tenants/a%20b/.tenant", b""),
            ["PutObject@b/tenants/a b/.tenant"]
        );
        assert_eq!(
            resources(
                "S3",
                "ListObjectsV2",
                "http://h:1/b/?list-type=2&prefix=tenants%2Fx%2F",
                b""
            ),
            ["ListObjectsV2@b?prefix=tenants/x/"]
        );
    }

    #[test]
    fn a_batch_delete_is_logged_per_key() {
        let xml = b"<Delete><Object><Key>tenants/t/a</Key></Object><Object><Key>tenants/t/b&amp;c</Key></Object></Delete>";
        assert_eq!(
            resources("S3", "DeleteObjects", "http://h:1/b/?delete", xml),
            ["DeleteObject@b/tenants/t/a", "DeleteObject@b/tenants/t/b&c"]
        );
    }

    #[test]
    fn the_sender_identity_is_the_bare_address() {
        let body = json!({"FromEmailAddress": "Platform <no-reply@example.com>"});
        assert_eq!(
            resources("SESv2", "SendEmail", "", body.to_string().as_bytes()),
            ["SendEmail@no-reply@example.com"]
        );
    }

    #[test]
    fn each_transaction_item_is_logged_with_its_key_kind_alone() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "SESSION#abc"}, "SK": {"S": "SESSION"}}}},
            {"Update": {"TableName": "t", "Key": {"PK": {"S": "USER#u1"}, "SK": {"S": "USER"}}}},
            {"Update": {"TableName": "t", "Key": {"PK": {"S": "RATE#login#9f86d0"}, "SK": {"S": "RATE"}}}},
        ]});
        let logged = leading_keys(
            "DynamoDB",
            "TransactWriteItems",
            body.to_string().as_bytes(),
        );
        assert_eq!(
            logged,
            [
                "PutItem@t=SESSION#",
                "UpdateItem@t=RATE#",
                "UpdateItem@t=USER#"
            ]
        );
    }

    #[test]
    fn an_email_or_id_in_a_key_is_never_logged() {
        let body = json!({"TableName": "t", "Key": {"PK": {"S": "EMAIL#someone@example.com"}, "SK": {"S": "EMAIL"}}});
        let logged = leading_keys("DynamoDB", "GetItem", body.to_string().as_bytes()).join(" ");
        assert_eq!(logged, "GetItem@t=EMAIL#");
        assert!(!logged.contains("someone"));
        // A fixed key is logged whole; a value of no known shape is not logged at all.
        assert_eq!(key_prefix("HEALTH"), "HEALTH");
        assert_eq!(key_prefix("someone@example.com"), "?");
        assert_eq!(key_prefix("lower#case"), "?");
    }

    #[test]
    fn a_batch_read_is_one_authorisation_with_every_key_kind() {
        let body = json!({"RequestItems": {"t": {"Keys": [
            {"PK": {"S": "TENANT#1"}, "SK": {"S": "TENANT"}},
            {"PK": {"S": "USER#2"}, "SK": {"S": "USER"}},
            {"PK": {"S": "TENANT#3"}, "SK": {"S": "TENANT"}},
        ]}}});
        assert_eq!(
            leading_keys("DynamoDB", "BatchGetItem", body.to_string().as_bytes()),
            ["BatchGetItem@t=TENANT#,USER#"]
        );
    }

    #[test]
    fn a_query_names_its_partition_key_and_on_an_index_the_index_s() {
        let table = json!({"TableName": "t", "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": "USER#u1"}, ":prefix": {"S": "MEMBER#"}}});
        assert_eq!(
            leading_keys("DynamoDB", "Query", table.to_string().as_bytes()),
            ["Query@t=USER#"]
        );
        let index = json!({"TableName": "t", "IndexName": "GSI1",
            "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
            "ExpressionAttributeNames": {"#pk": "GSI1PK", "#sk": "GSI1SK"},
            "ExpressionAttributeValues": {":pk": {"S": "TENANT#t1"}, ":prefix": {"S": "MEMBER#"}}});
        assert_eq!(
            leading_keys("DynamoDB", "Query", index.to_string().as_bytes()),
            ["Query@t/index/GSI1=TENANT#"]
        );
        let fixed = json!({"TableName": "t", "IndexName": "GSI2",
            "KeyConditionExpression": "#sk >= :from AND #pk = :pk",
            "ExpressionAttributeNames": {"#pk": "GSI2PK", "#sk": "GSI2SK"},
            "ExpressionAttributeValues": {":pk": {"S": "TENANTS"}, ":from": {"S": "a"}}});
        assert_eq!(
            leading_keys("DynamoDB", "Query", fixed.to_string().as_bytes()),
            ["Query@t/index/GSI2=TENANTS"]
        );
    }

    #[test]
    fn other_services_carry_no_leading_keys() {
        let body = json!({"SecretId": "USER#x"});
        assert!(leading_keys(
            "Secrets Manager",
            "GetSecretValue",
            body.to_string().as_bytes()
        )
        .is_empty());
    }

    #[test]
    fn each_call_of_a_process_has_the_next_number() {
        let first = next_seq();
        let second = next_seq();
        assert!(second > first);
        assert_eq!(process_id().len(), 16);
        assert_eq!(process_id(), process_id());
    }

    #[test]
    fn nothing_but_names_is_logged() {
        let body = json!({"SecretId": "arn:secret:x", "SecretString": "hunter2"});
        let logged = resources(
            "Secrets Manager",
            "PutSecretValue",
            "",
            body.to_string().as_bytes(),
        )
        .join(" ");
        assert_eq!(logged, "PutSecretValue@arn:secret:x");
        assert!(!logged.contains("hunter2"));
    }
}
