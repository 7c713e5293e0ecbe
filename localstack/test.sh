#!/usr/bin/env bash
# `make test`: the whole suite. Starts its own emulator on a free port (never the one `make dev`
# uses), bootstraps it, runs every test including those that need it, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
EMULATOR=moto  # tests always run on their own moto, never on a shared emulator
STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/saas-test.XXXXXX")
. localstack/emulator.sh
EMULATOR_PORT=$(free_port)
cleanup() { stop_emulator; rm -rf "$STATE_DIR"; }
trap cleanup EXIT INT TERM

cargo build --workspace --bins --quiet
start_emulator
export FUNCTION_LOG_DIR="$STATE_DIR"  # each test platform logs to its own file there
cargo test --workspace --quiet -- --include-ignored
.venv/bin/cfn-lint infra/template.yaml
echo "template: cfn-lint clean"
.venv/bin/openapi-spec-validator infra/openapi.yaml
