//! API Gateway's own answers, black box: a path no route names is answered by the gateway
//! itself, in the platform's envelope, with the request id in the body and in X-Request-ID
//! (the template's GatewayResponse resources, made live by deploy.py's stage deployment).

mod support;

use support::Platform;

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn an_unknown_route_gets_the_envelope_and_a_request_id_from_the_gateway() {
    let platform = Platform::start().await;
    for (method, path) in [
        ("GET", "/no/such/route"),
        ("POST", "/tenants/acme/nothing-here"),
    ] {
        let r = platform.send(method, path, &[], None).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.json);
        assert_eq!(r.json["success"], false);
        assert_eq!(r.json["error"]["code"], "ROUTE_NOT_FOUND", "{}", r.json);
        let id = r.headers["x-request-id"].to_str().unwrap();
        assert!(!id.is_empty());
        assert_eq!(r.json["error"]["request_id"], id);
    }
    // A route that exists is still the function's.
    let live = platform.send("GET", "/health/live", &[], None).await;
    assert_eq!(live.status, 200, "{}", live.json);
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn a_method_a_route_does_not_have_is_405_with_allow_from_its_function() {
    let platform = Platform::start().await;
    for (method, path, allow) in [
        ("PUT", "/auth/login", "POST"),
        ("DELETE", "/tenants", "POST, GET"),
        ("POST", "/tenants/acme", "GET, PATCH, DELETE"),
        ("PATCH", "/query/v1/x/tables", "GET"),
        ("GET", "/tenants/acme/reconcile", "POST"),
    ] {
        let r = platform.send(method, path, &[], None).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "METHOD_NOT_ALLOWED", "{}", r.json);
        let mut got: Vec<&str> = r.headers["allow"].to_str().unwrap().split(", ").collect();
        let mut want: Vec<&str> = allow.split(", ").collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[tokio::test]
#[ignore = "needs the deployed stack: run `make test`"]
async fn the_frontend_origin_gets_cors_and_its_preflight_any_other_origin_gets_neither() {
    let platform = Platform::start().await;
    let origin = std::env::var("PLATFORM_ORIGIN").expect("PLATFORM_ORIGIN: run `make test`");
    // The preflight, answered by API Gateway.
    let preflight = platform
        .send(
            "OPTIONS",
            "/tenants",
            &[
                ("origin", origin.as_str()),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            None,
        )
        .await;
    assert!(
        (200..300).contains(&preflight.status),
        "preflight: {} {:?}",
        preflight.status,
        preflight.headers
    );
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        origin.as_str()
    );
    let methods = preflight.headers["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let allowed = preflight.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("idempotency-key"));
    // The answer itself, from the function.
    let ok = platform
        .send("GET", "/health/live", &[("origin", origin.as_str())], None)
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers["access-control-allow-origin"], origin.as_str());
    assert!(ok.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
    for other in [
        "https://evil.example.com",
        &format!("{origin}.evil.example.com"),
    ] {
        let r = platform
            .send("GET", "/health/live", &[("origin", other)], None)
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.headers.get("access-control-allow-origin").is_none(),
            "{other} was allowed"
        );
    }
}
