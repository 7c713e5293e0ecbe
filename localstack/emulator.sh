# Sourced by the other scripts: starts the Docker-free emulator (moto server, pinned in
# localstack/requirements.txt) and bootstraps it. Callers set EMULATOR_PORT and STATE_DIR.

free_port() {
  .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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
  if [[ "${EMULATOR:-moto}" == localstack ]]; then
    command -v docker >/dev/null || { echo "EMULATOR=localstack needs Docker" >&2; return 1; }
    [[ "$EMULATOR_PORT" == 4566 ]] || { echo "LocalStack listens on 4566 only" >&2; return 1; }
    docker compose -f localstack/docker-compose.yml up -d --wait
    USING_COMPOSE=1
    echo "emulator: LocalStack on $AWS_ENDPOINT_URL"
  elif curl -fsS -o /dev/null "$AWS_ENDPOINT_URL/moto-api/" 2>/dev/null; then
    echo "emulator: reusing the one already on $AWS_ENDPOINT_URL"
  else
    .venv/bin/python localstack/emulator.py 127.0.0.1 "$EMULATOR_PORT" >"$STATE_DIR/emulator.log" 2>&1 &
    EMULATOR_PID=$!
    wait_for "$AWS_ENDPOINT_URL/moto-api/" 30
    echo "emulator: moto on $AWS_ENDPOINT_URL (log: $STATE_DIR/emulator.log)"
  fi
  .venv/bin/python localstack/bootstrap.py | sed 's/^/bootstrap: /'
}

stop_emulator() {
  if [[ -n "${USING_COMPOSE:-}" ]]; then
    docker compose -f localstack/docker-compose.yml down
  fi
  if [[ -n "${EMULATOR_PID:-}" ]]; then
    kill "$EMULATOR_PID" 2>/dev/null || true
    wait "$EMULATOR_PID" 2>/dev/null || true
  fi
}
