//! The response envelope every route speaks:
//! `{"success":true,"data":...}` or `{"success":false,"error":{"code":...,"message":...}}`,
//! always with `X-Request-ID`, JSON content type and `Cache-Control: no-store`.

use crate::http::error::ApiError;
use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::{json, Value};

/// A successful answer: status, `data`, and any extra headers.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub data: Value,
    pub headers: Vec<(&'static str, String)>,
    /// The members of `data` also stand at the top level of the body (see [`Self::hoisted`]).
    pub hoisted: bool,
}

impl ApiResponse {
    pub fn ok(data: impl Serialize) -> Self {
        Self::with_status(200, data)
    }

    pub fn created(data: impl Serialize) -> Self {
        Self::with_status(201, data)
    }

    pub fn with_status(status: u16, data: impl Serialize) -> Self {
        // Serialising our own response types cannot fail (no maps with non-string keys).
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        ApiResponse {
            status,
            data,
            headers: Vec::new(),
            hoisted: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// For documents whose shape a standard fixes (a JWK Set at `/.well-known/jwks.json`): the
    /// members of `data` are repeated at the top level, so standard clients read the body as
    /// that document and ignore `success`/`data`, while envelope clients read `data`.
    pub fn hoisted(mut self) -> Self {
        self.hoisted = true;
        self
    }
}

/// Renders a route's result as an HTTP response carrying the request id.
pub fn render(request_id: &str, result: Result<ApiResponse, ApiError>) -> Response<Body> {
    let (status, body, extra) = match result {
        Ok(ok) => {
            let mut body = json!({"success": true, "data": ok.data});
            if let (true, Some(Value::Object(members))) = (ok.hoisted, body.get("data").cloned()) {
                for (name, value) in members {
                    if name != "success" && name != "data" {
                        body[name] = value;
                    }
                }
            }
            (ok.status, body, ok.headers)
        }
        Err(err) => {
            let mut extra = Vec::new();
            if let ApiError::TooManyRequests { retry_after_secs } = &err {
                extra.push(("retry-after", retry_after_secs.to_string()));
            } else if let ApiError::MethodNotAllowed { allow } = &err {
                extra.push(("allow", allow.clone()));
            } else if err.status() == 503 {
                // A dependency is down: worth a retry shortly, not at once.
                extra.push(("retry-after", "2".to_string()));
            }
            let body = json!({
                "success": false,
                "error": {"code": err.code(), "message": err.public_message()},
            });
            (err.status(), body, extra)
        }
    };
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", v);
    }
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(r: &Response<Body>) -> Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn hoisted_data_also_stands_at_the_top_level_without_replacing_the_envelope() {
        let r = render(
            "rid",
            Ok(ApiResponse::ok(json!({"keys": [1], "success": "no", "data": "no"})).hoisted()),
        );
        let body = body_json(&r);
        assert_eq!(body["keys"], json!([1]));
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["keys"], json!([1]));
        assert_eq!(body["data"]["data"], "no");
        let plain = body_json(&render("rid", Ok(ApiResponse::ok(json!({"keys": [1]})))));
        assert!(plain.get("keys").is_none());
    }

    #[test]
    fn success_envelope_has_data_and_request_id() {
        let r = render("req-1", Ok(ApiResponse::created(json!({"a": 1}))));
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-request-id"], "req-1");
        assert_eq!(body_json(&r), json!({"success": true, "data": {"a": 1}}));
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let err = ApiError::internal("connection string postgres://secret@db");
        let r = render("req-2", Err(err));
        assert_eq!(r.status(), 500);
        let body = body_json(&r);
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn too_many_requests_sets_retry_after() {
        let r = render(
            "r",
            Err(ApiError::TooManyRequests {
                retry_after_secs: 42,
            }),
        );
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "42");
        assert_eq!(body_json(&r)["error"]["code"], "TOO_MANY_REQUESTS");
    }
}
