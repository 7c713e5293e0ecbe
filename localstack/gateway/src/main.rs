//! `local-gateway`: serves every route of the SAM template on one port, running the real
//! function binaries. Usage: local-gateway [--listen ADDR] [--template PATH]
//! [--functions-dir DIR] [--max-instances N] [--log-file PATH] [--trust-forwarded-for]

use local_gateway::GatewayConfig;
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: local-gateway [--listen 127.0.0.1:3000] [--template infra/template.yaml] [--functions-dir target/debug] [--max-instances 4] [--log-file PATH] [--trust-forwarded-for] [--quiet]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut config = GatewayConfig {
        template: PathBuf::from("infra/template.yaml"),
        functions_dir: PathBuf::from("target/debug"),
        listen: "127.0.0.1:3000".parse().expect("static address"),
        max_instances: 4,
        trust_forwarded_for: false,
        log_file: None,
        quiet: false,
        env_overrides: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--listen" => config.listen = value().parse().unwrap_or_else(|_| usage()),
            "--template" => config.template = value().into(),
            "--functions-dir" => config.functions_dir = value().into(),
            "--max-instances" => config.max_instances = value().parse().unwrap_or_else(|_| usage()),
            "--log-file" => config.log_file = Some(value().into()),
            "--trust-forwarded-for" => config.trust_forwarded_for = true,
            "--quiet" => config.quiet = true,
            _ => usage(),
        }
    }
    let gateway = match local_gateway::start(config).await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("local-gateway: {e}");
            std::process::exit(1);
        }
    };
    println!("local-gateway: listening on http://{}", gateway.addr);
    let _ = tokio::signal::ctrl_c().await;
    println!("local-gateway: stopping");
    gateway.shutdown().await;
}
