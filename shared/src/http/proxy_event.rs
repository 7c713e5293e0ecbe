//! Builds API Gateway REST API (v1) Lambda-proxy events, exactly the JSON API Gateway sends.
//! The local gateway uses it to turn HTTP requests into events, and handler tests use it to
//! drive functions through the same parsing path (`lambda_http::request::from_str`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default)]
pub struct ProxyRequest {
    pub method: String,
    /// The request path without the stage, e.g. `/tenants/acme`.
    pub path: String,
    /// The matched resource template, e.g. `/tenants/{slug}`.
    pub resource: String,
    pub path_parameters: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub source_ip: String,
    pub request_id: String,
    pub stage: String,
}

impl ProxyRequest {
    pub fn new(method: &str, path: &str) -> Self {
        ProxyRequest {
            method: method.to_string(),
            path: path.to_string(),
            resource: path.to_string(),
            source_ip: "127.0.0.1".to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            stage: "local".to_string(),
            ..Default::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn json_body(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self.header("content-type", "application/json")
    }

    pub fn from_ip(mut self, ip: &str) -> Self {
        self.source_ip = ip.to_string();
        self
    }

    pub fn to_event(&self) -> Value {
        fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
            if pairs.is_empty() {
                return (Value::Null, Value::Null);
            }
            let mut single = Map::new();
            let mut multi: Map<String, Value> = Map::new();
            for (k, v) in pairs {
                single.insert(k.clone(), json!(v));
                match multi.get_mut(k) {
                    Some(Value::Array(list)) => list.push(json!(v)),
                    _ => {
                        multi.insert(k.clone(), json!([v]));
                    }
                }
            }
            (Value::Object(single), Value::Object(multi))
        }
        let (headers, multi_headers) = single_and_multi(&self.headers);
        let (query, multi_query) = single_and_multi(&self.query);
        let path_parameters = if self.path_parameters.is_empty() {
            Value::Null
        } else {
            Value::Object(
                self.path_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            )
        };
        let (body, is_base64) = match &self.body {
            None => (Value::Null, false),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => (json!(text), false),
                Err(_) => (json!(STANDARD.encode(bytes)), true),
            },
        };
        let user_agent = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("user-agent"))
            .map(|(_, v)| v.clone());
        json!({
            "resource": self.resource,
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": path_parameters,
            "stageVariables": null,
            "requestContext": {
                "accountId": "000000000000",
                "resourceId": "local",
                "stage": self.stage,
                "requestId": self.request_id,
                "identity": {"sourceIp": self.source_ip, "userAgent": user_agent},
                "resourcePath": self.resource,
                "httpMethod": self.method,
                "path": format!("/{}{}", self.stage, self.path),
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": crate::runtime::time::now_unix() * 1000,
                "apiId": "local"
            },
            "body": body,
            "isBase64Encoded": is_base64
        })
    }

    /// The `lambda_http` request a function would receive for this event.
    pub fn to_lambda_request(&self) -> lambda_http::Request {
        lambda_http::request::from_str(&self.to_event().to_string())
            .expect("events built here always parse")
    }
}
