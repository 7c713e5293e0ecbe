//! The smallest useful `lambda_http` function, built with the same profile as the real ones,
//! so `make bench` can report each function's cost as a ratio against it.
use lambda_http::{service_fn, Body, Error, Request, Response};

async fn hello(_req: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"success":true,"data":"hello"}"#))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}
