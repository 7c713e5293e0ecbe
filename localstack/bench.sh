#!/usr/bin/env bash
# `make bench`: release builds, own emulator on a free port with the stack deployed from the
# template; each function measured on the real request a user makes (a sign-in with the right
# password, a reset request for a known email, a redirect-origins read), in isolation through a
# local Runtime API (cold start, warm latency, peak RSS) as ratios to a hello-world and an
# Argon2 verify from the same run; then the same requests end to end over HTTP through the
# emulator's API Gateway; then forgot-password's timing for known and unknown emails; then the
# query router's 100-row select against the same statement sent directly to PostgreSQL; then
# the time from POST /tenants to an active tenant (the state machine and its five tasks).
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
. localstack/emulator.sh
own_emulator bench

cargo build --release --workspace --bins
# The release build is what gets deployed: it must not contain provision-step's fault switch.
if grep -q "FAULT#" target/release/provision-step; then
  echo "target/release/provision-step contains the test fault switch" >&2; exit 1
fi
start_emulator
start_postgres
deploy_stack saas-bench target/release --param AllowPrivateDatabaseHosts=true
unset RUST_BACKTRACE
target/release/request-bench --bin-dir target/release \
  --cold "${BENCH_COLD_RUNS:-20}" --warm "${BENCH_WARM_RUNS:-50}"
target/release/http-bench --base "$API_URL" --requests "${BENCH_HTTP_REQUESTS:-50}"
target/release/forgot-timing-bench --functions-dir target/release --requests "${BENCH_FORGOT_REQUESTS:-200}"
target/release/query-bench --base "$API_URL" --requests "${BENCH_QUERY_REQUESTS:-100}"
target/release/provision-bench --base "$API_URL" --tenants "${BENCH_TENANTS:-20}"
