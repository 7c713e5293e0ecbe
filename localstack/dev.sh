#!/usr/bin/env bash
# `make dev`: emulator + bootstrap + first operator + local gateway, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
EMULATOR_PORT=${EMULATOR_PORT:-4566}
GATEWAY_LISTEN=${GATEWAY_LISTEN:-127.0.0.1:3000}
STATE_DIR=localstack/.state; mkdir -p "$STATE_DIR"
. localstack/emulator.sh

GATEWAY_PID=
cleanup() {
  trap - EXIT INT TERM
  [[ -n "$GATEWAY_PID" ]] && kill "$GATEWAY_PID" 2>/dev/null && wait "$GATEWAY_PID" 2>/dev/null
  stop_emulator
  echo "dev: stopped"
}
trap cleanup EXIT INT TERM

start_emulator
export OPERATOR_EMAIL=${OPERATOR_EMAIL:-operator@local.test}
export OPERATOR_PASSWORD=${OPERATOR_PASSWORD:-local-dev-only-change-me}
target/debug/seed-operator

target/debug/local-gateway --listen "$GATEWAY_LISTEN" --log-file "$STATE_DIR/functions.log" &
GATEWAY_PID=$!
wait_for "http://$GATEWAY_LISTEN/health/live" 60

cat <<MSG

  Platform running at http://$GATEWAY_LISTEN   (function logs: $STATE_DIR/functions.log)
  Operator: $OPERATOR_EMAIL / $OPERATOR_PASSWORD   (local only; set OPERATOR_EMAIL/OPERATOR_PASSWORD to change)

  Try:
    curl -s http://$GATEWAY_LISTEN/auth/login -H 'content-type: application/json' \\
      -d '{"email":"$OPERATOR_EMAIL","password":"$OPERATOR_PASSWORD","audience":"operator"}'

  Ctrl-C stops everything.
MSG
wait "$GATEWAY_PID"
