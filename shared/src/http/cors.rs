//! CORS for the configured frontend origins (`CORS_ALLOWED_ORIGINS`, comma-separated; the
//! template sets the platform's own origin). A response to a request whose `Origin` is one of
//! them says so (`Access-Control-Allow-Origin` with that origin, `Vary: Origin`) and exposes
//! the headers a browser client reads. Any other origin gets no CORS header, so a browser
//! refuses to hand it the answer. Preflights (`OPTIONS`) are answered by API Gateway itself
//! (the template's `Cors`), except on the two mailed-link routes, where `reset-password` also
//! allows a live tenant's registered redirect origins and answers the preflight itself
//! ([`preflight`]).

use lambda_http::http::{HeaderMap, HeaderValue};
use std::sync::OnceLock;

/// Response headers a browser client may read.
pub const EXPOSED: &str = "x-request-id, etag, retry-after, idempotent-replayed";

fn allowed() -> &'static Vec<String> {
    static ALLOWED: OnceLock<Vec<String>> = OnceLock::new();
    ALLOWED.get_or_init(|| parse(&std::env::var("CORS_ALLOWED_ORIGINS").unwrap_or_default()))
}

/// The origins in a comma-separated list, trimmed, without a trailing slash.
pub fn parse(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|o| o.trim().trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty())
        .collect()
}

/// Adds the CORS headers for `origin` when it is allowed by `allowed`.
pub fn apply_with(allowed: &[String], origin: Option<&str>, headers: &mut HeaderMap) {
    headers.append("vary", HeaderValue::from_static("origin"));
    let Some(origin) = origin.filter(|o| allowed.iter().any(|a| a == o)) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert("access-control-allow-origin", value);
        headers.insert(
            "access-control-expose-headers",
            HeaderValue::from_static(EXPOSED),
        );
    }
}

/// `apply_with` the configured origins.
pub fn apply(origin: Option<&str>, headers: &mut HeaderMap) {
    apply_with(allowed(), origin, headers);
}

/// Whether `origin` is one of the configured origins.
pub fn configured(origin: &str) -> bool {
    allowed().iter().any(|a| a == origin)
}

/// Allows `origin` (already decided to be allowed) on a response.
pub fn allow(origin: &str, headers: &mut HeaderMap) {
    apply_with(&[origin.to_string()], Some(origin), headers);
}

/// Request headers a browser client may send (as the gateway's own preflights say).
pub const ALLOWED_HEADERS: &str =
    "authorization,content-type,idempotency-key,if-match,x-request-id";

/// The answer to a preflight (`OPTIONS`): 204, with the CORS grant for `origin` when
/// `allowed`, and none otherwise (the browser then refuses the request it was asking about).
pub fn preflight(
    origin: Option<&str>,
    allowed: bool,
    methods: &str,
) -> lambda_http::Response<lambda_http::Body> {
    let mut response = lambda_http::Response::new(lambda_http::Body::Empty);
    *response.status_mut() = lambda_http::http::StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert("vary", HeaderValue::from_static("origin"));
    if let (Some(origin), true) = (origin, allowed) {
        if let (Ok(o), Ok(m)) = (
            HeaderValue::from_str(origin),
            HeaderValue::from_str(methods),
        ) {
            headers.insert("access-control-allow-origin", o);
            headers.insert("access-control-allow-methods", m);
            headers.insert(
                "access-control-allow-headers",
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert("access-control-max-age", HeaderValue::from_static("600"));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_origin_is_allowed_and_echoed_exactly() {
        let allowed = parse(" https://console.example.com/ , http://127.0.0.1:3000");
        assert_eq!(
            allowed,
            vec!["https://console.example.com", "http://127.0.0.1:3000"]
        );
        let mut h = HeaderMap::new();
        apply_with(&allowed, Some("https://console.example.com"), &mut h);
        assert_eq!(
            h["access-control-allow-origin"],
            "https://console.example.com"
        );
        assert_eq!(h["vary"], "origin");
        for other in [
            Some("https://evil.example.com"),
            Some("https://console.example.com.evil.com"),
            Some("null"),
            None,
        ] {
            let mut h = HeaderMap::new();
            apply_with(&allowed, other, &mut h);
            assert!(h.get("access-control-allow-origin").is_none(), "{other:?}");
            assert_eq!(h["vary"], "origin");
        }
    }
}
