//! The API Gateway stand-in: an HTTP server that matches each request to a template route,
//! turns it into a REST API (v1) Lambda-proxy event, invokes the function's pool, and turns the
//! proxy response back into HTTP. Also serves the Lambda Invoke API
//! (`POST /2015-03-31/functions/{name}/invocations`) for functions without routes.

use crate::routes::{percent_decode, Lookup, RouteTable};
use crate::runtime_api::{FunctionPool, Outcome};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use shared::proxy_event::ProxyRequest;
use shared::request::is_valid_request_id;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// API Gateway's payload limit.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

pub struct Front {
    pub routes: RouteTable,
    pub pools: Vec<Arc<FunctionPool>>,
    /// Use `X-Forwarded-For` as the caller address (tests simulate many clients this way).
    /// Off by default: API Gateway takes the address from the connection.
    pub trust_forwarded_for: bool,
    pub quiet: bool,
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    r
}

/// An answer the gateway makes itself, with the headers the functions' envelope carries.
fn envelope_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut r = json_response(
        status,
        json!({"success": false, "error": {"code": code, "message": message}}),
    );
    let headers = r.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

impl Front {
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        // API Gateway's id for this request: given to the function as `requestContext.requestId`
        // and returned as `x-amzn-RequestId`. Answers the gateway makes itself (no route, body
        // too large) carry `X-Request-ID` as the functions' answers do.
        let gateway_id = uuid::Uuid::new_v4().to_string();
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v))
            .unwrap_or(&gateway_id)
            .to_string();
        let (mut response, function) = self.dispatch(req, peer, &gateway_id).await;
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&gateway_id) {
            headers.insert("x-amzn-requestid", v);
        }
        if !headers.contains_key("x-request-id") {
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                headers.insert("x-request-id", v);
            }
        }
        if !self.quiet {
            println!(
                "gateway: {method} {path} -> {} ({:.1} ms){}",
                response.status().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0,
                function.map(|f| format!(" [{f}]")).unwrap_or_default()
            );
        }
        response
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        gateway_id: &str,
    ) -> (Response<Full<Bytes>>, Option<String>) {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        if let Some(name) = path
            .strip_prefix("/2015-03-31/functions/")
            .and_then(|r| r.strip_suffix("/invocations"))
        {
            return (self.invoke_api(name, req).await, Some(name.to_string()));
        }
        let matched = match self.routes.lookup(&method, &path) {
            Lookup::Found(m) => m,
            Lookup::MethodNotAllowed => {
                return (
                    envelope_error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "METHOD_NOT_ALLOWED",
                        "this method is not allowed on this route",
                    ),
                    None,
                )
            }
            Lookup::NotFound => {
                return (
                    envelope_error(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "no such route"),
                    None,
                )
            }
        };
        let pool = &self.pools[matched.route.function];
        let mut event = ProxyRequest::new(&method, &path);
        event.request_id = gateway_id.to_string();
        event.resource = matched.route.resource.clone();
        event.path_parameters = matched.params;
        event.query = req
            .uri()
            .query()
            .map(|q| {
                q.split('&')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').unwrap_or((p, ""));
                        (form_decode(k), form_decode(v))
                    })
                    .collect()
            })
            .unwrap_or_default();
        event.headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        event.source_ip = peer.ip().to_string();
        if self.trust_forwarded_for {
            if let Some(first) = req
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
            {
                event.source_ip = first.trim().to_string();
            }
        }
        let body = match Limited::new(req.into_body(), MAX_PAYLOAD).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return (
                    envelope_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PAYLOAD_TOO_LARGE",
                        "request body exceeds 10 MB",
                    ),
                    None,
                )
            }
        };
        event.body = (!body.is_empty()).then(|| body.to_vec());
        let payload = Bytes::from(event.to_event().to_string());
        let name = pool.spec.function_name.clone();
        let outcome = pool.invoke(payload).await;
        (proxy_response(outcome, &name), Some(name))
    }

    async fn invoke_api(&self, name: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(pool) = self.pools.iter().find(|p| p.spec.function_name == name) else {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"Type": "User", "message": format!("Function not found: {name}")}),
            );
        };
        let Ok(body) = Limited::new(req.into_body(), MAX_PAYLOAD).collect().await else {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"message": "payload too large"}),
            );
        };
        match pool.invoke(body.to_bytes()).await {
            Outcome::Response(b) => {
                let mut r = Response::new(Full::new(b));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().expect("static"));
                r
            }
            Outcome::FunctionError(b) => {
                let mut r = Response::new(Full::new(b));
                r.headers_mut()
                    .insert("x-amz-function-error", "Unhandled".parse().expect("static"));
                r
            }
            Outcome::Crashed(why) => {
                eprintln!("gateway: {name} crashed: {why}");
                let mut r = json_response(
                    StatusCode::OK,
                    json!({"errorType": "Runtime.ExitError", "errorMessage": "function process exited"}),
                );
                r.headers_mut()
                    .insert("x-amz-function-error", "Unhandled".parse().expect("static"));
                r
            }
            Outcome::TimedOut => json_response(
                StatusCode::OK,
                json!({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}),
            ),
        }
    }
}

/// A query-string component: `+` is a space, then percent-decoding.
fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Turns a Lambda-proxy response into HTTP, or answers as API Gateway does when the function fails.
fn proxy_response(outcome: Outcome, function: &str) -> Response<Full<Bytes>> {
    let payload = match outcome {
        Outcome::Response(b) => b,
        Outcome::FunctionError(b) => {
            eprintln!(
                "gateway: {function} returned an error: {}",
                String::from_utf8_lossy(&b)
            );
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"message": "Internal server error"}),
            );
        }
        Outcome::Crashed(why) => {
            eprintln!("gateway: {function} crashed: {why}");
            return json_response(
                StatusCode::BAD_GATEWAY,
                json!({"message": "Internal server error"}),
            );
        }
        Outcome::TimedOut => {
            return json_response(
                StatusCode::GATEWAY_TIMEOUT,
                json!({"message": "Endpoint request timed out"}),
            )
        }
    };
    let Ok(v) = serde_json::from_slice::<Value>(&payload) else {
        eprintln!("gateway: {function} returned a response that is not a proxy response");
        return json_response(
            StatusCode::BAD_GATEWAY,
            json!({"message": "Internal server error"}),
        );
    };
    let status = v
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match v.get("body").and_then(Value::as_str) {
        None => Bytes::new(),
        Some(text) if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            Bytes::from(STANDARD.decode(text).unwrap_or_default())
        }
        Some(text) => Bytes::from(text.to_string()),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    if let Some(Value::Object(h)) = v.get("headers") {
        for (k, val) in h {
            if let (Ok(name), Some(Ok(value))) = (
                k.parse::<hyper::header::HeaderName>(),
                val.as_str().map(str::parse),
            ) {
                headers.insert(name, value);
            }
        }
    }
    if let Some(Value::Object(h)) = v.get("multiValueHeaders") {
        for (k, vals) in h {
            let Ok(name) = k.parse::<hyper::header::HeaderName>() else {
                continue;
            };
            headers.remove(&name);
            for val in vals
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let Ok(value) = val.parse() {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::form_decode;

    #[test]
    fn query_components_decode_plus_and_percent_escapes() {
        assert_eq!(form_decode("a+b%20c%2Bd"), "a b c+d");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%41"), "%zzA");
    }
}
