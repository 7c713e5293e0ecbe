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
# The baseline for Argon2: the crate alone at opt-level 3, no LTO (Cargo.toml, `argon2-alone`).
cargo build --profile argon2-alone -p bench-argon2
# The release build is what gets deployed: it must not contain provision-step's fault switch.
if grep -q "FAULT#" target/release/provision-step; then
  echo "target/release/provision-step contains the test fault switch" >&2; exit 1
fi
start_emulator
start_postgres
deploy_stack saas-bench target/release --param AllowPrivateDatabaseHosts=true --param AllowPlaintextDatabases=true --param OperatorMfa=optional
unset RUST_BACKTRACE
# Argon2 in this build against the crate alone, in instructions (callgrind: the same count on
# every run, whatever else the machine does): one hash and three verifies each. A release
# profile that re-optimises Argon2 at opt-level "s" (thin LTO did) shows as 2.5x; over 1.5x fails.
if ! command -v valgrind >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null \
  | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
ours=$(count target/release/request-bench --argon2-only 3)
alone=$(count target/argon2-alone/bench-argon2 3)
echo "Argon2 instructions, one hash and 3 verifies: this build $ours, the crate alone $alone" \
  "($(awk -v a="$ours" -v b="$alone" 'BEGIN{printf "%.2fx", a/b}'))"
if awk -v a="$ours" -v b="$alone" 'BEGIN{exit !(a > 1.5*b)}'; then
  echo "bench: Argon2 in the release build runs over 1.5x the instructions of the crate alone:" \
    "a profile change slowed the password hash (see Cargo.toml, [profile.release])" >&2
  exit 1
fi
target/release/request-bench --bin-dir target/release \
  --argon2-alone target/argon2-alone/bench-argon2 \
  --cold "${BENCH_COLD_RUNS:-20}" --warm "${BENCH_WARM_RUNS:-50}"
target/release/http-bench --base "$API_URL" --requests "${BENCH_HTTP_REQUESTS:-50}"
target/release/forgot-timing-bench --functions-dir target/release --requests "${BENCH_FORGOT_REQUESTS:-200}"
target/release/query-bench --base "$API_URL" --requests "${BENCH_QUERY_REQUESTS:-100}"
target/release/provision-bench --base "$API_URL" --tenants "${BENCH_TENANTS:-20}"
