//! Functions that take more than HTTP: `reconcile` (its schedule) and `users` (the first
//! operator's invitation) run the plain Lambda runtime on JSON, and hand the invocations that
//! are API Gateway proxy events (they carry `httpMethod`) to their HTTP handler through here.
//! A direct invocation is an IAM-only action (`lambda:InvokeFunction`): no route reaches it.

use crate::http::error::ApiError;
use base64::Engine;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use std::future::Future;

/// Whether `payload` is an API Gateway proxy event rather than a direct invocation.
pub fn is_http(payload: &Value) -> bool {
    payload.get("httpMethod").is_some()
}

/// Parses the proxy event, runs `handle` on it, and answers in the proxy integration's shape.
pub async fn serve_http<F, Fut>(payload: Value, handle: F) -> Value
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let response = match lambda_http::request::from_str(&payload.to_string()) {
        Ok(req) => handle(req).await,
        Err(_) => {
            crate::http::envelope::render("", Err(ApiError::invalid_request("unreadable request")))
        }
    };
    proxy_response(response)
}

/// An HTTP response as API Gateway's proxy integration expects it.
fn proxy_response(response: Response<Body>) -> Value {
    let (parts, body) = response.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| json!(v))
            .collect();
        headers.insert(name.as_str().to_string(), Value::Array(values));
    }
    let (text, base64) = match body {
        Body::Empty => (String::new(), false),
        Body::Text(t) => (t, false),
        Body::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
        _ => (String::new(), false),
    };
    json!({
        "statusCode": parts.status.as_u16(),
        "multiValueHeaders": headers,
        "body": text,
        "isBase64Encoded": base64,
    })
}
