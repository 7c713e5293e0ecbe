//! `make bench`: cold start of each function against a minimal `lambda_http` hello world built
//! with the same profile, through the same local Runtime API. For each binary: median and p95
//! from process spawn to its first response, peak RSS (the function process's own `VmHWM`),
//! and file size; each also as a ratio to the baseline, measured in the same run.
//!
//! Usage: coldstart-bench --runs N --baseline NAME=BINARY:EVENT [--function NAME=BINARY:EVENT ...]

use bytes::Bytes;
use local_gateway::runtime_api::{Instance, LaunchSpec, Outcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Target {
    name: String,
    binary: PathBuf,
    event: Bytes,
}

struct Figures {
    median_ms: f64,
    p95_ms: f64,
    max_rss_kib: u64,
    size_bytes: u64,
}

fn parse_target(arg: &str) -> Target {
    let (name, rest) = arg
        .split_once('=')
        .unwrap_or_else(|| panic!("expected NAME=BINARY:EVENT, got {arg}"));
    let (binary, event) = rest
        .split_once(':')
        .unwrap_or_else(|| panic!("expected NAME=BINARY:EVENT, got {arg}"));
    let event = std::fs::read(event).unwrap_or_else(|e| panic!("cannot read event {event}: {e}"));
    Target {
        name: name.to_string(),
        binary: binary.into(),
        event: Bytes::from(event),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn measure(target: &Target, runs: usize, env: &[(String, String)]) -> Figures {
    let spec = LaunchSpec {
        function_name: target.name.clone(),
        binary: target.binary.clone(),
        env: env.to_vec(),
        memory_mb: 256,
        timeout: Duration::from_secs(30),
        log_file: Some(std::env::temp_dir().join(format!("coldstart-{}.log", target.name))),
    };
    let mut times = Vec::with_capacity(runs);
    let mut max_rss = 0;
    for run in 0..runs {
        let started = Instant::now();
        let instance = Instance::launch(&spec)
            .await
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", target.binary.display()));
        let outcome = instance.invoke(target.event.clone()).await;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        if !matches!(outcome, Outcome::Response(_)) {
            panic!("{} run {run}: no response: {outcome:?}", target.name);
        }
        max_rss = max_rss.max(instance.peak_rss_kib().unwrap_or(0));
        instance.stop().await;
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    Figures {
        median_ms: percentile(&times, 50.0),
        p95_ms: percentile(&times, 95.0),
        max_rss_kib: max_rss,
        size_bytes: std::fs::metadata(&target.binary)
            .map(|m| m.len())
            .unwrap_or(0),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut runs = 30;
    let mut baseline = None;
    let mut functions = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("every flag takes a value");
        match arg.as_str() {
            "--runs" => runs = value.parse().expect("--runs takes a number"),
            "--baseline" => baseline = Some(parse_target(&value)),
            "--function" => functions.push(parse_target(&value)),
            other => panic!("unknown flag {other}"),
        }
    }
    let baseline = baseline.expect("--baseline is required");
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "RUST_BACKTRACE")
        .collect();

    // Warm the page cache so the first measured spawn is not a disk read.
    let _ = measure(&baseline, 2, &env).await;
    for f in &functions {
        let _ = measure(f, 2, &env).await;
    }
    let base = measure(&baseline, runs, &env).await;
    println!("cold start through a local Runtime API, {runs} runs each (spawn -> first response)");
    println!(
        "{:<16} {:>11} {:>11} {:>12} {:>12}",
        "binary", "median ms", "p95 ms", "max RSS MiB", "size MiB"
    );
    let row = |name: &str, f: &Figures| {
        println!(
            "{:<16} {:>11.2} {:>11.2} {:>12.2} {:>12.2}",
            name,
            f.median_ms,
            f.p95_ms,
            f.max_rss_kib as f64 / 1024.0,
            f.size_bytes as f64 / 1048576.0
        )
    };
    row(&baseline.name, &base);
    for target in &functions {
        let f = measure(target, runs, &env).await;
        row(&target.name, &f);
        println!(
            "{:<16} {:>10.2}x {:>10.2}x {:>11.2}x {:>11.2}x   (ratio to {})",
            "",
            f.median_ms / base.median_ms,
            f.p95_ms / base.p95_ms,
            f.max_rss_kib as f64 / base.max_rss_kib.max(1) as f64,
            f.size_bytes as f64 / base.size_bytes.max(1) as f64,
            baseline.name
        );
    }
}
