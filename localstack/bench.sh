#!/usr/bin/env bash
# `make bench`: release builds, own emulator on a free port, cold-start figures as ratios to
# a hello-world baseline built with the same profile.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
EMULATOR=moto
STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/saas-bench.XXXXXX")
. localstack/emulator.sh
EMULATOR_PORT=$(free_port)
cleanup() { stop_emulator; rm -rf "$STATE_DIR"; }
trap cleanup EXIT INT TERM

cargo build --release --workspace --bins
start_emulator
unset RUST_BACKTRACE
R=target/release
target/release/coldstart-bench --runs "${BENCH_RUNS:-30}" \
  --baseline "hello=$R/bench-hello:events/login/health-live.json" \
  --function "login=$R/login:events/login/health-live.json" \
  --function "forgot-password=$R/forgot-password:events/login/health-live.json" \
  --function "reset-password=$R/reset-password:events/login/health-live.json" \
  --function "tenants=$R/tenants:events/login/health-live.json"
target/release/forgot-timing-bench --requests "${BENCH_FORGOT_REQUESTS:-200}"
