//! The Runtime API emulator's failure paths, with stand-in processes (no emulator needed):
//! a function that dies during init, and one that never asks for work.

use bytes::Bytes;
use local_harness::runtime_api::{FunctionPool, Instance, LaunchSpec, Outcome};
use std::time::Duration;

fn spec(binary: &str, args_timeout_ms: u64) -> LaunchSpec {
    LaunchSpec {
        function_name: "stand-in".into(),
        binary: binary.into(),
        env: vec![],
        memory_mb: 128,
        timeout: Duration::from_millis(args_timeout_ms),
        log_file: None,
    }
}

#[tokio::test]
async fn a_process_that_exits_fails_the_invocation_instead_of_hanging() {
    let instance = Instance::launch(&spec("/bin/false", 10_000)).await.unwrap();
    let started = std::time::Instant::now();
    let outcome = instance.invoke(Bytes::from_static(b"{}")).await;
    assert!(matches!(outcome, Outcome::Crashed(_)), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the crash must be noticed, not waited out"
    );
    assert!(!instance.is_alive());
}

/// A stand-in function that stays alive but never polls the Runtime API for work.
fn silent_function() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("runtime-api-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("silent");
    std::fs::write(&script, "#!/bin/sh\nexec /bin/sleep 30\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn a_function_that_never_answers_times_out_and_is_stopped() {
    let silent = silent_function();
    let spec = spec(silent.to_str().unwrap(), 300);
    let instance = Instance::launch(&spec).await.unwrap();
    let started = std::time::Instant::now();
    let outcome = instance.invoke(Bytes::from_static(b"{}")).await;
    assert!(matches!(outcome, Outcome::TimedOut), "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the timeout must be enforced"
    );
    assert!(
        !instance.is_alive(),
        "a timed-out instance is stopped, not reused"
    );

    // Through a pool: each invocation that times out is answered, and the next one gets a
    // fresh instance instead of waiting behind the stopped one.
    let pool = FunctionPool::new(spec, 1);
    for _ in 0..2 {
        let outcome = pool.invoke(Bytes::from_static(b"{}")).await;
        assert!(matches!(outcome, Outcome::TimedOut), "{outcome:?}");
    }
    let _ = std::fs::remove_dir_all(silent.parent().unwrap());
}

#[tokio::test]
async fn a_missing_binary_is_reported() {
    let pool = FunctionPool::new(spec("/nonexistent/function", 1000), 1);
    match pool.invoke(Bytes::from_static(b"{}")).await {
        Outcome::Crashed(why) => assert!(why.contains("cannot start"), "{why}"),
        other => panic!("{other:?}"),
    }
}
