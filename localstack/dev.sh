#!/usr/bin/env bash
# `make dev`: the emulator, infra/template.yaml deployed onto it, a first operator, and the API
# forwarded to http://127.0.0.1:3000 with the operator console beside it at /console/ (and the
# mailed-link pages /reset-password and /accept-invitation), until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
EMULATOR_PORT=${EMULATOR_PORT:-4566}
DEV_PORT=${DEV_PORT:-3000}
STATE_DIR=$PWD/localstack/.state; mkdir -p "$STATE_DIR"
. localstack/emulator.sh
. localstack/postgres.sh
. localstack/seed.sh

FORWARD_PID=
cleanup() {
  trap - EXIT INT TERM
  # `|| true`: under `set -e` the forwarder's exit status (killed) must not end the cleanup
  # before the emulator is stopped.
  if [[ -n "$FORWARD_PID" ]]; then
    kill "$FORWARD_PID" 2>/dev/null || true
    wait "$FORWARD_PID" 2>/dev/null || true
  fi
  stop_emulator
  stop_postgres
  echo "dev: stopped"
}
trap cleanup EXIT INT TERM

start_emulator
start_postgres
# LocalStack's community image has no CloudFront: the forwarder below serves the console there.
console_param=(); [[ "${EMULATOR:-ministack}" == localstack ]] && console_param=(--param ConsoleHosting=none)
deploy_stack saas-dev target/debug --param AllowPrivateDatabaseHosts=true --param AllowPlaintextDatabases=true --param OperatorMfa=optional "${console_param[@]}"
# A first tenant, `demo`, owned by the operator, with the sample database registered through
# the API (so the README's query example works as printed).
seed_demo

[[ -f console/dist/index.html ]] || { echo "dev: console/dist is missing: make console builds it" >&2; exit 1; }
.venv/bin/python localstack/forward.py "$DEV_PORT" "$API_URL" --console console/dist &
FORWARD_PID=$!
wait_for "http://127.0.0.1:$DEV_PORT/health/live" 30

cat <<MSG

  Console:  http://127.0.0.1:$DEV_PORT/console/   (sign in with the operator below)
  Platform running at http://127.0.0.1:$DEV_PORT   (stack saas-dev, deployed from infra/template.yaml)
  Operator: $OPERATOR_EMAIL / $OPERATOR_PASSWORD   (local only; set OPERATOR_EMAIL/OPERATOR_PASSWORD to change)
  Mail: make mail (its reset and invitation links open in the console)      Function logs: make logs      Reconcile once: make reconcile
  Tenant demo provisions itself: GET /tenants/demo shows each step (storage, secrets, invitation)

  Try:
    curl -s http://127.0.0.1:$DEV_PORT/auth/login -H 'content-type: application/json' \\
      -d '{"email":"$OPERATOR_EMAIL","password":"$OPERATOR_PASSWORD","audience":"operator"}'

  Ctrl-C stops everything.
MSG
wait "$FORWARD_PID"
