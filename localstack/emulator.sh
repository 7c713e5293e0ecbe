# Sourced by the other scripts: starts the local AWS and deploys infra/template.yaml onto it.
# Callers set EMULATOR_PORT and STATE_DIR (and EMULATOR=localstack to use LocalStack with Docker).

free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# own_emulator PURPOSE: a state folder of its own, a free port (never the one `make dev` uses) and
# a throwaway PostgreSQL (postgres.sh), all stopped and removed on exit. For test.sh, bench.sh
# and fuzz.sh; a caller with more to stop defines `stop_more`.
own_emulator() {
  STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/saas-$1.XXXXXX")
  EMULATOR_PORT=$(free_port)
  . localstack/postgres.sh
  trap stop_own_emulator EXIT INT TERM
}

stop_own_emulator() {
  local rc=$?  # the script's exit status: stop_more gets it
  if declare -F stop_more >/dev/null; then stop_more "$rc"; fi
  stop_emulator
  stop_postgres
  rm -rf "$STATE_DIR"
}

# wait_for URL SECONDS: polls until the URL answers.
wait_for() {
  local url=$1 deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if (( SECONDS > deadline )); then echo "timed out waiting for $url" >&2; return 1; fi
    sleep 0.2
  done
}

start_emulator() {
  export AWS_ENDPOINT_URL="http://127.0.0.1:${EMULATOR_PORT}"
  if [[ "${EMULATOR:-ministack}" == localstack ]]; then
    command -v docker >/dev/null || { echo "EMULATOR=localstack needs Docker" >&2; return 1; }
    [[ "$EMULATOR_PORT" == 4566 ]] || { echo "LocalStack listens on 4566 only" >&2; return 1; }
    docker compose -f localstack/docker-compose.yml up -d --wait
    USING_COMPOSE=1
    echo "emulator: LocalStack on $AWS_ENDPOINT_URL"
    return
  fi
  mkdir -p "$STATE_DIR/tmp"
  # A clean environment: Lambda functions inherit the emulator's, and must see only what the
  # template gives them (plus the endpoint and credentials a real Lambda would have).
  # Its temporary files and any state stay in this run's own folder. MiniStack hands its own
  # AWS_ENDPOINT_URL to the functions: FUNCTIONS_ENDPOINT_URL (make test's outage proxy) puts
  # something between the functions and their dependencies.
  setsid env -i PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 \
    AWS_REGION="$AWS_REGION" AWS_DEFAULT_REGION="$AWS_DEFAULT_REGION" \
    AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    AWS_ENDPOINT_URL="${FUNCTIONS_ENDPOINT_URL:-$AWS_ENDPOINT_URL}" GATEWAY_PORT="$EMULATOR_PORT" BIND_HOST=127.0.0.1 \
    TMPDIR="$STATE_DIR/tmp" STATE_DIR="$STATE_DIR/ministack-state" PERSIST_STATE=0 \
    .venv/bin/python localstack/ministack_server.py >"$STATE_DIR/emulator.log" 2>&1 &
  EMULATOR_PID=$!
  wait_for "$AWS_ENDPOINT_URL/_localstack/health" 30
  echo "emulator: MiniStack on $AWS_ENDPOINT_URL (log: $STATE_DIR/emulator.log)"
}

# deploy_stack NAME BIN_DIR [--param Key=Value ...]: deploys and exports the stack's names.
deploy_stack() {
  local name=$1 bin_dir=$2; shift 2
  .venv/bin/python infra/deploy.py --stack "$name" --local --bin-dir "$bin_dir" \
    --param PlatformOrigin="$PLATFORM_ORIGIN" --param LocalMode="$LOCAL_MODE" \
    --param SenderEmail="$SENDER_EMAIL" --param JwtIssuer="$JWT_ISSUER" "$@" \
    --out "$STATE_DIR/stack.json"
  set -a; . "$STATE_DIR/stack.env"; set +a
  export STACK_FILE="$STATE_DIR/stack.json"
}

stop_emulator() {
  if [[ -n "${USING_COMPOSE:-}" ]]; then
    docker compose -f localstack/docker-compose.yml down
  fi
  if [[ -n "${EMULATOR_PID:-}" ]]; then
    # The whole process group: the emulator and every function process it started.
    kill -TERM -- "-$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=
  fi
}
