//! Runs the platform on one machine: the routes of `infra/template.yaml` served over HTTP,
//! each request handed to the real function binary through a local Lambda Runtime API.

pub mod routes;
pub mod runtime_api;
pub mod server;
pub mod template;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use routes::{Route, RouteTable};
use runtime_api::{FunctionPool, LaunchSpec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use template::EnvValue;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub template: PathBuf,
    /// Directory holding the function binaries (e.g. `target/debug`).
    pub functions_dir: PathBuf,
    pub listen: SocketAddr,
    /// Instances per function that may run at once (Lambda's concurrency, scaled down).
    pub max_instances: usize,
    pub trust_forwarded_for: bool,
    /// Function output goes here instead of the gateway's stdout.
    pub log_file: Option<PathBuf>,
    pub quiet: bool,
    /// Function environment values that win over the gateway's own environment.
    pub env_overrides: Vec<(String, String)>,
}

/// AWS settings every function receives, taken from the gateway's own environment.
const PASSED_THROUGH: &[&str] = &[
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "RUST_BACKTRACE",
];

/// The environment a function gets: the template's variables (intrinsics resolved from the
/// gateway's environment by name; any variable may be overridden there) plus AWS basics.
pub fn function_env(
    declared: &[(String, EnvValue)],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (name, value) in declared {
        match (lookup(name), value) {
            (Some(v), _) => env.push((name.clone(), v)),
            (None, EnvValue::Literal(v)) => env.push((name.clone(), v.clone())),
            // Set by CloudFormation when deployed; locally, unset unless the environment has it
            // (e.g. an optional origin). Required ones are reported by the function's config.
            (None, EnvValue::Intrinsic) => {}
        }
    }
    for name in PASSED_THROUGH {
        if let Some(v) = lookup(name) {
            env.push((name.to_string(), v));
        }
    }
    env
}

pub struct RunningGateway {
    pub addr: SocketAddr,
    pools: Vec<Arc<FunctionPool>>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    pub async fn shutdown(self) {
        self.server.abort();
        for p in &self.pools {
            p.shutdown().await;
        }
    }
}

/// Loads the template, binds the listener and starts serving in the background.
pub async fn start(config: GatewayConfig) -> Result<RunningGateway, String> {
    let functions = template::load(&config.template).map_err(|e| e.to_string())?;
    let mut pools = Vec::new();
    let mut routes = Vec::new();
    for (i, f) in functions.iter().enumerate() {
        let binary = config.functions_dir.join(&f.binary);
        if !binary.exists() {
            return Err(format!(
                "function binary {} not found (build it first)",
                binary.display()
            ));
        }
        let overrides = &config.env_overrides;
        let env = function_env(&f.environment, |n| {
            overrides
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(n).ok())
        });
        let spec = LaunchSpec {
            function_name: f.binary.clone(),
            binary,
            env,
            memory_mb: f.memory_mb,
            timeout: Duration::from_secs(f.timeout_secs),
            log_file: config.log_file.clone(),
        };
        pools.push(Arc::new(FunctionPool::new(spec, config.max_instances)));
        for r in &f.routes {
            routes.push(Route::new(&r.method, &r.path, i));
        }
    }
    let front = Arc::new(server::Front {
        routes: RouteTable::new(routes),
        pools: pools.clone(),
        trust_forwarded_for: config.trust_forwarded_for,
        quiet: config.quiet,
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let front = front.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let front = front.clone();
                    async move { Ok::<_, std::convert::Infallible>(front.handle(req, peer).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(RunningGateway {
        addr,
        pools,
        server,
    })
}
