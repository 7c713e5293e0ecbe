#!/usr/bin/env bash
# `make bench`: release builds, own emulator on a free port; each function measured on the real
# request a user makes, as ratios to a hello-world baseline and an Argon2 verify from the same run.
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
target/release/request-bench --bin-dir target/release \
  --cold "${BENCH_COLD_RUNS:-20}" --warm "${BENCH_WARM_RUNS:-50}"
target/release/forgot-timing-bench --requests "${BENCH_FORGOT_REQUESTS:-200}"
