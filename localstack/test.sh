#!/usr/bin/env bash
# `make test`: the whole suite. Starts its own emulator on a free port (never the one `make dev`
# uses), deploys infra/template.yaml onto it, runs every test against that stack, and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
EMULATOR=ministack  # tests always run on their own emulator, never on a shared one
. localstack/emulator.sh
own_emulator test
# The functions reach their dependencies through a pass-through the outage test can cut.
PROXY_PORT=$(free_port); while [[ $PROXY_PORT == "$EMULATOR_PORT" ]]; do PROXY_PORT=$(free_port); done
.venv/bin/python localstack/outage_proxy.py "$PROXY_PORT" "$EMULATOR_PORT" >"$STATE_DIR/outage.log" 2>&1 &
export OUTAGE_PROXY_PID=$! FUNCTIONS_ENDPOINT_URL="http://127.0.0.1:$PROXY_PORT"
# Each phase's wall time, printed when the run ends (passed or not), so a slow or failed run
# says where its minutes went. A failed run keeps the emulator's and PostgreSQL's logs.
PHASES=() PHASE_AT=$SECONDS PHASE_NAME=setup
phase() {
  PHASES+=("$(printf '%5ds  %s' $((SECONDS - PHASE_AT)) "$PHASE_NAME")")
  PHASE_NAME=$1 PHASE_AT=$SECONDS
}
stop_more() {
  local rc=${1:-0}
  kill "$OUTAGE_PROXY_PID" ${CONSOLE_PID:-} ${SAM_PATH_PID:-} ${TEMPLATE_LINT_PID:-} ${PROVISIONING_PID:-} 2>/dev/null || true
  [[ $PHASE_NAME == done ]] || phase "(stopped)"
  echo "make test: ${SECONDS}s in all, by phase:"; printf '%s\n' "${PHASES[@]}"
  if ((rc != 0)); then
    local keep="${TMPDIR:-/tmp}/saas-test-failed-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$keep"
    find "$STATE_DIR" -name '*.log' -exec cp --parents {} "$keep" \; 2>/dev/null || true
    [[ -n "${PG_LOG:-}" ]] && cp "$PG_LOG" "$keep/" 2>/dev/null || true
    echo "make test failed (exit $rc); its logs are kept in $keep"
  fi
}

# `make deploy`'s own path, on the emulator: infra/deploy.sh runs sam deploy (SAM CLI's
# packaging, upload, change set) of the same template as a second stack, from this build. Its
# origin is a domain name (passkeys refuse an IP address): the black-box passkey test runs there.
SAM_PLATFORM_ORIGIN=http://localhost:3000
sam_path() {
  .venv/bin/python infra/deploy.py --zips "$STATE_DIR/sam" --bin-dir target/debug
  DEPLOY_ZIPS="$STATE_DIR/sam" DEPLOY_DIR="$STATE_DIR/sam" STACK=saas-sam OPERATOR_EMAIL=sam-operator@local.test \
    DEPLOY_PARAMS="PlatformOrigin=$SAM_PLATFORM_ORIGIN LocalMode=$LOCAL_MODE SenderEmail=$SENDER_EMAIL" \
    infra/deploy.sh </dev/null >"$STATE_DIR/sam-deploy.log" 2>&1 \
    || { cat "$STATE_DIR/sam-deploy.log"; exit 1; }
  ( set -a; . "$STATE_DIR/sam/stack.env"
    curl -fsS "$API_URL/health/live" | grep -q '"live"'
    code=$(curl -s -o /dev/null -w '%{http_code}' "$API_URL/auth/login" -H 'content-type: application/json' \
      -d '{"email":"nobody@example.com","password":"wrong password"}')
    [[ $code == 401 ]] || { echo "sam-deployed stack: sign-in answered $code"; exit 1; }
    # The deploy invited its first operator: accepted as the mail's recipient would, they sign in.
    .venv/bin/python infra/first_operator.py accept --email sam-operator@local.test \
      --accept-locally local-dev-only-sam-operator-1 --stack-file "$STATE_DIR/sam/stack.json"
    code=$(curl -s -o /dev/null -w '%{http_code}' "$API_URL/auth/login" -H 'content-type: application/json' \
      -d '{"email":"sam-operator@local.test","password":"local-dev-only-sam-operator-1","audience":"operator"}')
    [[ $code == 200 ]] || { echo "sam-deployed stack: the first operator's sign-in answered $code"; exit 1; }
    # A second run of the same step changes nothing, and another address is refused.
    .venv/bin/python infra/first_operator.py invite --email sam-operator@local.test --stack-file "$STATE_DIR/sam/stack.json" \
      | grep -q ': exists'
    rc=0; .venv/bin/python infra/first_operator.py invite --email someone-else@local.test \
      --stack-file "$STATE_DIR/sam/stack.json" 2>/dev/null || rc=$?
    [[ $rc == 3 ]] || { echo "sam-deployed stack: a second first operator was not refused ($rc)"; exit 1; } )
}

phase "cargo build (debug)"
cargo build --workspace --bins --quiet
# The provisioning tests inject failures: only this build of provision-step has the switch.
cargo build -p provision-step --features faults --quiet
phase "emulator, PostgreSQL, stack deploy (and make deploy's path beside it)"
start_emulator
# The operator console in a real browser (Chromium, Playwright, axe), on a stack and an emulator
# of its own (console_test.sh alone starts one), beside everything below: an emulator is one
# Python process, so a second one is a second core's worth of AWS, and the browser tests wait
# on nothing the other tests do. The outage cut does not reach it. Started once this run's
# emulator holds its port, so the other cannot pick the same.
env -u AWS_ENDPOINT_URL -u FUNCTIONS_ENDPOINT_URL -u OUTAGE_PROXY_PID CONSOLE_BIN_DIR=target/debug \
  localstack/console_test.sh >"$STATE_DIR/console.log" 2>&1 &
CONSOLE_PID=$!
# `make deploy`'s own path runs beside the main stack's deploy (its own stack, zips and log):
# both mostly wait on the emulator. Waited for before the tests.
sam_path >"$STATE_DIR/sam-path.log" 2>&1 &
SAM_PATH_PID=$!
start_postgres
# Short grace window and key refresh, so the tests that wait them out are quick; a small
# free-plan upload limit, so the oversize-upload test sends kilobytes, not megabytes.
export REFRESH_REUSE_GRACE_SECONDS=2 KEYS_REFRESH_SECONDS=2 UPLOAD_MAX_BYTES_FREE=4096
deploy_stack saas-test target/debug \
  --param RefreshReuseGraceSeconds=$REFRESH_REUSE_GRACE_SECONDS \
  --param KeysRefreshSeconds=$KEYS_REFRESH_SECONDS \
  --param UploadMaxBytesFree=$UPLOAD_MAX_BYTES_FREE \
  --param AllowPrivateDatabaseHosts=true --param AllowPlaintextDatabases=true --param QueryTimeoutMs=2000 --param OperatorMfa=optional \
  --param RecoveryWindowSeconds=20 --param ProvisioningStaleSeconds=5 --param ImpersonationTtlSeconds=30 \
  --param "ReconcileSchedule=rate(1 minute)" --param AwsCallLog=true
phase "make deploy path (sam deploy, waited for)"
wait "$SAM_PATH_PID" || { cat "$STATE_DIR/sam-path.log"; exit 1; }
SAM_PATH_PID=
cat "$STATE_DIR/sam-path.log"
echo "make deploy path: sam deploy of the template onto the emulator, stack saas-sam answers, its first operator signs in"
# Its API, for the black-box test of what its defaults enforce (operators must have a second
# factor: tests/tests/mfa.rs).
export SAM_API_URL=$(set -a; . "$STATE_DIR/sam/stack.env"; echo "$API_URL") SAM_PLATFORM_ORIGIN
phase "Python checks"
# The template's and the OpenAPI document's linters run beside the tests (a few seconds of CPU
# while the tests mostly wait on the emulator); their result is read at the end.
( .venv-tools/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- infra/template.yaml
  SAM_CLI_TELEMETRY=0 .venv-tools/bin/sam validate --lint --template infra/template.yaml --region us-east-1
  .venv/bin/openapi-spec-validator infra/openapi.yaml ) >"$STATE_DIR/template-lint.log" 2>&1 &
TEMPLATE_LINT_PID=$!
(cd localstack && ../.venv/bin/python -m unittest -q test_ministack_patches test_logs test_local_platform)
(cd infra/checks && ../../.venv/bin/python -m unittest -q test_deploy test_asl test_openapi test_keys test_template)
phase "cargo test (build and run)"
cargo test --workspace --no-run --quiet
# The provisioning tests run later, beside the short fuzz: they mostly wait on timers (the
# minute schedule, the recovery window, tokens running out). Beside the other tests they made
# those wait on the state machine instead (every tenant they create is provisioned first).
mapfile -t PROVISIONING_TESTS < <(cargo test --workspace --test provisioning --quiet -- --include-ignored --list 2>/dev/null \
  | sed -n 's/: test$//p')
((${#PROVISIONING_TESTS[@]} > 0)) || { echo "no provisioning tests listed" >&2; exit 1; }
cargo test --workspace --quiet --no-fail-fast -- --include-ignored --skip a_key_rotation_reaches_every_function \
  --skip during_an_outage "${PROVISIONING_TESTS[@]/#/--skip=}"
phase "key rotation test"
# Alone: it rotates and retires the stack's signing keys.
# --workspace, not -p blackbox: the same feature set as the run above, so nothing is rebuilt
# (with -p, shared was compiled again without the features other members turn on: 2.5
# minutes on a fresh machine).
cargo test --workspace --test keys --quiet -- --include-ignored a_key_rotation_reaches_every_function
phase "fuzz (short), the provisioning tests beside it"
cargo test --workspace --test provisioning --quiet -- --include-ignored >"$STATE_DIR/provisioning-tests.log" 2>&1 &
PROVISIONING_PID=$!
# A short Schemathesis pass (make fuzz runs the long one). The browser tests, beside it too,
# have an emulator of their own: on this one, the fuzz slowed them into timeouts.
rc=0; localstack/fuzz.sh --short || rc=$?
prc=0; wait "$PROVISIONING_PID" || prc=$?
PROVISIONING_PID=
echo "provisioning tests (run beside the fuzz):"; cat "$STATE_DIR/provisioning-tests.log"
((rc == 0 && prc == 0)) || exit 1
phase "outage test"
# Alone: it cuts every function's dependencies (every stack of this emulator's) for 3 seconds.
cargo test --workspace --test outage --quiet -- --include-ignored --nocapture
phase "console browser tests (the rest of their run, waited for)"
crc=0; wait "$CONSOLE_PID" || crc=$?
CONSOLE_PID=
cat "$STATE_DIR/console.log"
((crc == 0)) || exit 1
phase "IAM check, template lint"
# After every other test: each AWS call they caused, checked against its function's policy.
(cd infra/checks && ../../.venv/bin/python -m unittest -v test_iam 2>&1)
wait "$TEMPLATE_LINT_PID" || { cat "$STATE_DIR/template-lint.log"; exit 1; }
TEMPLATE_LINT_PID=
cat "$STATE_DIR/template-lint.log"
echo "template: cfn-lint (with the serverless rules) and sam validate --lint clean"
phase done
