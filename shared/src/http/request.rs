//! What every handler needs from an incoming API Gateway request: the request id, the client
//! address API Gateway saw, a bounded JSON body and a bearer token. `handle` wraps a route with
//! the request span, the envelope and the one log line per request.

use crate::http::envelope::{render, ApiResponse};
use crate::http::error::ApiError;
use crate::http::error::ErrorCode;
use lambda_http::request::RequestContext as LambdaRequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// Largest JSON body the auth routes accept.
pub const DEFAULT_BODY_LIMIT: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// API Gateway's own id for the request (`requestContext.requestId`), logged beside the
    /// client's so a log line can be matched with either.
    pub gateway_request_id: Option<String>,
    /// The caller's address as API Gateway saw it on the TCP connection. Never taken from
    /// `X-Forwarded-For`, which the client controls.
    pub client_ip: String,
}

impl RequestContext {
    /// An audit entry (scope `platform`) about an account: `actor` did `action` to `account`
    /// (`None`: an email no account has), with the account's id and the client's address added
    /// to `details` and this request's id. Never a password, a code or an email.
    pub fn account_audit(
        &self,
        actor: crate::domain::UserId,
        account: Option<&crate::domain::UserId>,
        action: &str,
        details: serde_json::Value,
    ) -> crate::store::changes::AuditEntry {
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.insert("user_id".into(), serde_json::json!(account));
            map.insert("client_ip".into(), serde_json::json!(self.client_ip));
        }
        crate::store::changes::AuditEntry::new(
            crate::store::changes::AuditTarget::Platform,
            actor,
            action,
            details,
            crate::runtime::time::now_ms(),
            &self.request_id,
        )
    }

    pub fn from_request(req: &Request) -> Self {
        let gateway = match req.request_context_ref() {
            Some(LambdaRequestContext::ApiGatewayV1(ctx)) => Some(ctx),
            _ => None,
        };
        // The caller's id if it is safe to echo, else API Gateway's own, so a log line can be
        // matched with the gateway's access log; a fresh one only outside API Gateway.
        let gateway_request_id = gateway
            .and_then(|ctx| ctx.request_id.clone())
            .filter(|v| is_valid_request_id(v));
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_valid_request_id(v))
            .map(str::to_string)
            .or_else(|| gateway_request_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let client_ip = gateway
            .and_then(|ctx| ctx.identity.source_ip.clone())
            .unwrap_or_else(|| "unknown".to_string());
        RequestContext {
            request_id,
            gateway_request_id,
            client_ip,
        }
    }
}

/// A client-supplied request id is echoed only if it is short and made of safe characters,
/// so it cannot inject anything into headers or log lines.
pub fn is_valid_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Runs one route inside the request span and renders its result in the envelope.
pub async fn handle<F, Fut>(req: Request, route: F) -> Response<Body>
where
    F: FnOnce(RequestContext, Request) -> Fut,
    Fut: Future<Output = Result<ApiResponse, ApiError>>,
{
    let ctx = RequestContext::from_request(&req);
    let method = req.method().to_string();
    let resource = resource(&req).to_string();
    let gateway_request_id = ctx.gateway_request_id.clone().unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %ctx.request_id, aws_request_id = %gateway_request_id, method = %method, resource = %resource);
    let request_id = ctx.request_id.clone();
    let origin = header(&req, "origin").map(str::to_string);
    async move {
        let started = Instant::now();
        let result = route(ctx, req).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(ok) => crate::runtime::metrics::request("OK", ok.status, latency_ms, &request_id),
            Err(err) => crate::runtime::metrics::request(err.code(), err.status(), latency_ms, &request_id),
        }
        match &result {
            Ok(ok) => tracing::info!(status = ok.status, latency_ms, "request completed"),
            Err(err) if err.status() >= 500 => {
                tracing::error!(status = err.status(), code = err.code(), cause = %err.cause_chain(), latency_ms, "request failed")
            }
            Err(err) => tracing::info!(status = err.status(), code = err.code(), latency_ms, "request rejected"),
        }
        let mut response = render(&request_id, result);
        crate::http::cors::apply(origin.as_deref(), response.headers_mut());
        response
    }
    .instrument(span)
    .await
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Parses a JSON body of at most `limit` bytes into `T`. Malformed JSON, wrong types and
/// missing fields are 400s whose message names the problem but never echoes the input.
pub fn json_body<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::refused(
            ErrorCode::InvalidJson,
            "a JSON request body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid_request(data_error_message(&e)),
            Category::Io | Category::Syntax | Category::Eof => {
                ApiError::refused(ErrorCode::InvalidJson, "request body is not valid JSON")
            }
        }
    })
}

/// serde's data errors read like "missing field `email`" or "invalid type: integer `5`,
/// expected a string". Keep the part naming the field or expectation, drop echoed values.
fn data_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text
        .split(" at line ")
        .next()
        .unwrap_or("invalid request body");
    if let Some(rest) = text.strip_prefix("invalid type: ") {
        let expected = rest.split(", expected ").nth(1).unwrap_or("another type");
        return format!("a field has the wrong type (expected {expected})");
    }
    // These quote the client's value (or a field name the client chose): never repeat them.
    if text.starts_with("invalid value")
        || text.starts_with("invalid length")
        || text.starts_with("unknown variant")
    {
        return "a field has an invalid value".to_string();
    }
    if text.starts_with("unknown field") {
        return "the body has a field this route does not accept".to_string();
    }
    text.to_string()
}

/// The API Gateway resource template that matched (e.g. `/tenants/{slug}/redirect-origins`).
pub fn resource(req: &Request) -> &str {
    match req.request_context_ref() {
        Some(LambdaRequestContext::ApiGatewayV1(ctx)) => ctx.resource_path.as_deref().unwrap_or(""),
        _ => "",
    }
}

/// The route a request is for, from a function's table of `(method, resource template,
/// route)`. Routing uses API Gateway's matched resource, never the raw path, so a custom
/// domain's base path or a stage prefix cannot change which code runs. A known resource with
/// another method is a 405; anything else a 404.
/// A route table's routes as (method, resource template): each function's `routes()`, which
/// `infra/checks/tests/routes.rs` holds equal to the template's events.
pub fn route_list<T>(
    table: &'static [(&'static str, &'static str, T)],
) -> impl Iterator<Item = (&'static str, &'static str)> {
    table.iter().map(|r| (r.0, r.1))
}

pub fn matched<T: Copy>(req: &Request, table: &[(&str, &str, T)]) -> Result<T, ApiError> {
    let (method, resource) = (req.method().as_str(), resource(req));
    let mut allow = Vec::new();
    for (m, r, route) in table {
        if *r == resource {
            if *m == method {
                return Ok(*route);
            }
            allow.push(*m);
        }
    }
    Err(if allow.is_empty() {
        ApiError::route_not_found()
    } else {
        ApiError::method_not_allowed(&allow)
    })
}

/// A path parameter of the matched resource.
/// API Gateway passes path parameters percent-encoded; this is the decoded value (`None` if
/// absent or not UTF-8 once decoded).
pub fn path_param(req: &Request, name: &str) -> Option<String> {
    let raw = req.path_parameters_ref()?.first(name)?;
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// Whether the request has no body (or only white space).
pub fn body_is_empty(req: &Request) -> bool {
    body_bytes(req).iter().all(u8::is_ascii_whitespace)
}

/// A query-string parameter (API Gateway hands them decoded), `None` if absent.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// A request header as text, `None` if absent or not visible ASCII.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The `If-Match` header, if sent.
pub fn if_match(req: &Request) -> Option<String> {
    header(req, "if-match").map(str::to_string)
}

/// Whether an `If-Match` value accepts `etag` (`*`, or a list naming it; strong comparison).
pub fn etag_matches(if_match: &str, etag: &str) -> bool {
    if_match.trim() == "*" || if_match.split(',').any(|t| t.trim() == etag)
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// The longest user agent kept with a session: enough to tell browsers and devices apart.
pub const USER_AGENT_MAX_CHARS: usize = 256;

/// The client's `User-Agent`, cut to [`USER_AGENT_MAX_CHARS`] and stripped of control
/// characters (it is shown back to the account's owner, never trusted), if it sent one.
pub fn user_agent(req: &Request) -> Option<String> {
    let raw = req.headers().get("user-agent")?.to_str().ok()?;
    let clean: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_MAX_CHARS)
        .collect();
    Some(clean.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn req(body: &str) -> Request {
        lambda_http::http::Request::builder()
            .body(Body::Text(body.to_string()))
            .unwrap()
    }

    #[test]
    fn json_body_maps_each_bad_input_to_a_400() {
        let cases = [
            ("", "INVALID_JSON"),
            ("{not json", "INVALID_JSON"),
            (r#"{"email":"a@b.c"}"#, "INVALID_REQUEST"),
            (r#"{"email":5,"password":"x"}"#, "INVALID_REQUEST"),
            ("[]", "INVALID_REQUEST"),
        ];
        for (body, code) in cases {
            let err = json_body::<Login>(&req(body), 1024).unwrap_err();
            assert_eq!((err.status(), err.code()), (400, code), "body {body:?}");
        }
    }

    #[test]
    fn json_body_never_echoes_values() {
        let err =
            json_body::<Login>(&req(r#"{"email":"a@b.c","password":12345678}"#), 1024).unwrap_err();
        assert!(
            !err.public_message().contains("12345678"),
            "{}",
            err.public_message()
        );
    }

    #[test]
    fn unknown_enum_values_are_not_echoed() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct WithEnum {
            audience: crate::domain::Audience,
        }
        let err =
            json_body::<WithEnum>(&req(r#"{"audience":"<script>x</script>"}"#), 1024).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            !err.public_message().contains("script"),
            "{}",
            err.public_message()
        );
    }

    #[test]
    fn oversize_body_is_413() {
        let big = format!(r#"{{"email":"{}","password":"x"}}"#, "a".repeat(2000));
        assert_eq!(
            json_body::<Login>(&req(&big), 1024).unwrap_err().status(),
            413
        );
    }

    #[test]
    fn request_id_is_echoed_only_when_safe() {
        assert!(is_valid_request_id("abc-123_x.y:z"));
        assert!(!is_valid_request_id(""));
        assert!(!is_valid_request_id("bad\r\nheader"));
        assert!(!is_valid_request_id(&"a".repeat(129)));
    }

    #[test]
    fn request_id_is_the_callers_or_else_api_gateways() {
        use crate::http::proxy_event::ProxyRequest;
        let mut event = ProxyRequest::new("GET", "/health/live").from_ip("203.0.113.9");
        event.request_id = "gw-req-1".into();
        let ctx = RequestContext::from_request(&event.clone().to_lambda_request());
        assert_eq!(ctx.request_id, "gw-req-1");
        assert_eq!(ctx.client_ip, "203.0.113.9");
        let ctx = RequestContext::from_request(
            &event
                .clone()
                .header("x-request-id", "mine-42")
                .to_lambda_request(),
        );
        assert_eq!(ctx.request_id, "mine-42");
        assert_eq!(ctx.gateway_request_id.as_deref(), Some("gw-req-1"));
        let ctx = RequestContext::from_request(
            &event
                .header("x-request-id", "not safe; drop")
                .to_lambda_request(),
        );
        assert_eq!(ctx.request_id, "gw-req-1");
    }

    #[test]
    fn routes_match_on_the_resource_template_not_the_raw_path() {
        use crate::http::proxy_event::ProxyRequest;
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum R {
            Get,
            Put,
        }
        let table = [("GET", "/t/{slug}", R::Get), ("PUT", "/t/{slug}", R::Put)];
        // Behind a custom domain with a base path, the raw path differs; the resource does not.
        let mut event = ProxyRequest::new("PUT", "/api/v1/t/acme");
        event.resource = "/t/{slug}".into();
        assert_eq!(
            matched(&event.clone().to_lambda_request(), &table).unwrap(),
            R::Put
        );
        event.method = "DELETE".into();
        let err = matched(&event.clone().to_lambda_request(), &table).unwrap_err();
        assert_eq!(err.status(), 405);
        assert!(
            matches!(&err, ApiError::MethodNotAllowed { allow } if allow == "GET, PUT"),
            "{err:?}"
        );
        event.resource = "/other".into();
        assert_eq!(
            matched(&event.to_lambda_request(), &table)
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        use crate::http::proxy_event::ProxyRequest;
        let mut event = ProxyRequest::new("GET", "/t/acme%2Dco");
        event.path_parameters = vec![
            ("slug".into(), "acme%2Dco".into()),
            ("bad".into(), "%FF%FE".into()),
        ];
        let req = event.to_lambda_request();
        assert_eq!(path_param(&req, "slug").as_deref(), Some("acme-co"));
        assert_eq!(path_param(&req, "bad"), None);
        assert_eq!(path_param(&req, "missing"), None);
    }

    #[test]
    fn bearer_token_is_parsed_case_insensitively() {
        let r = lambda_http::http::Request::builder()
            .header("authorization", "bearer abc.def")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(bearer_token(&r), Some("abc.def"));
        let r = lambda_http::http::Request::builder()
            .header("authorization", "Basic abc")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(bearer_token(&r), None);
    }
}
