#!/usr/bin/env bash
# The operator console's browser tests (localstack/test_console.py): Debian's Chromium driven by
# Playwright (PyPI), axe-core in the same page, against a stack of their own, `saas-console`,
# deployed from infra/template.yaml with access tokens that expire in seconds (to prove the
# silent refresh) and a 2-second refresh grace window (so tabs that presented spent tokens would
# be caught). The console is served twice: by the forwarder at /console/ on the API's own
# origin (as `make dev` does), and by the emulator's CloudFront from its bucket, cross-origin,
# which is also PlatformOrigin (so CORS and the mailed links are tested across origins).
#
# It starts an emulator of its own (on a free port, so it runs beside `make dev` or, as
# `make test` runs it, beside the other tests' emulator), deploys, publishes and runs the
# browser tests. Environment: CONSOLE_BIN_DIR (default target/debug) the function binaries to deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . localstack/local.env; set +a
BIN_DIR=${CONSOLE_BIN_DIR:-target/debug}
PY=.venv/bin/python
. localstack/emulator.sh

# Debian's Chromium (Playwright cannot download a browser here); installed when missing and root.
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "console tests: installing Debian's chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  command -v chromium >/dev/null || { echo "console tests need Debian's chromium package" >&2; exit 1; }
fi
[[ -f console/dist/index.html ]] || { echo "console tests: console/dist is missing (make console)" >&2; exit 1; }

FORWARD_PID=
EMULATOR=ministack
stop_more() { [[ -n "$FORWARD_PID" ]] && kill "$FORWARD_PID" 2>/dev/null || true; }
own_emulator console
start_emulator
CSTATE=$STATE_DIR
export CONSOLE_STATE_DIR=$CSTATE
STACK=saas-console
TTL=${CONSOLE_TOKEN_TTL:-8}

deploy() {
  $PY infra/deploy.py --stack $STACK --local --bin-dir "$BIN_DIR" \
    --param PlatformOrigin="$1" --param LocalMode=true --param SenderEmail="$SENDER_EMAIL" \
    --param JwtIssuer="$JWT_ISSUER" --param AccessTokenTtlSeconds="$TTL" \
    --param RefreshReuseGraceSeconds=2 --param RecoveryWindowSeconds=900 --param OperatorMfa=optional \
    --out "$CSTATE/stack.json" >"$CSTATE/deploy.log" 2>&1 || { cat "$CSTATE/deploy.log"; return 1; }
}
FWD_PORT=$(free_port)
started=$SECONDS
# The distribution's address is known once it exists: deploy, publish, then make its origin the
# platform's (CORS, mailed links) with a stack update.
deploy "http://127.0.0.1:$FWD_PORT"
$PY console/publish.py --stack $STACK --out "$CSTATE/console.json"
ORIGIN=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["origin"])' "$CSTATE/console.json")
deploy "$ORIGIN"
# The update can give the REST API a new id on the emulator: config.json must name the live one.
$PY console/publish.py --stack $STACK --out "$CSTATE/console.json" >/dev/null
set -a; . "$CSTATE/stack.env"; set +a
$PY infra/first_operator.py invite --email console-operator@local.test --stack-file "$CSTATE/stack.json" \
  --accept-locally console-operator-password-1 >/dev/null
echo "console tests: stack $STACK deployed in $((SECONDS - started))s"
$PY localstack/forward.py "$FWD_PORT" "$API_URL" --console console/dist &
FORWARD_PID=$!
wait_for "http://127.0.0.1:$FWD_PORT/console/config.json" 20
echo "console tests: console at http://127.0.0.1:$FWD_PORT/console/ and $ORIGIN/console/"

export CONSOLE_BASE="http://127.0.0.1:$FWD_PORT" CONSOLE_CF="$ORIGIN" CONSOLE_API="$API_URL" \
  CONSOLE_TOKEN_TTL=$TTL OPERATOR_EMAIL=console-operator@local.test OPERATOR_PASSWORD=console-operator-password-1
tests_started=$SECONDS
TEST_PY=${CONSOLE_TEST_PY:-$PWD/.venv/bin/python}
rc=0; (cd localstack && "$TEST_PY" -m unittest -v test_console 2>&1) || rc=$?
echo "console tests: browser tests took $((SECONDS - tests_started))s; screenshots in $CSTATE/screenshots"
# The state folder goes with the run: keep the screenshots (and, after a failure, what each
# test's page last showed) where a person can look at them.
mkdir -p localstack/.state && rm -rf localstack/.state/console-screenshots localstack/.state/console-last-look
cp -r "$CSTATE/screenshots" localstack/.state/console-screenshots 2>/dev/null || true
((rc == 0)) || cp -r "$CSTATE/last-look" localstack/.state/console-last-look 2>/dev/null || true
exit "$rc"
