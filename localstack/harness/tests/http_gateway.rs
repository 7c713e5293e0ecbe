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
