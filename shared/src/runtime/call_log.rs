//! The AWS call log: with `AWS_CALL_LOG=true` (the test stack only; the template's
//! `AwsCallLog` parameter), every SDK client logs one line per operation naming the service,
//! the operation and the resources it touches. `infra/checks/test_iam.py` checks each line
//! against the calling function's policy in `infra/template.yaml`, so a call its role would be
//! refused on AWS fails the suite locally.
//!
//! Only names are logged (table, index, bucket and key, secret id, state machine, event bus,
//! sender identity), never a request body, item, value or credential.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;
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
        tracing::info!(
            service = meta.service(),
            operation = meta.name(),
            resources = %resources.join(" "),
            "aws call"
        );
        Ok(())
    }
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
