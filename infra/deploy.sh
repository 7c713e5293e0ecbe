#!/usr/bin/env bash
# `make deploy`: the whole platform onto a real AWS account with SAM CLI.
#   1. make package: every function for arm64 (cargo-lambda), zipped;
#   2. the template with those zips as code (infra/deploy.py --sam-template);
#   3. sam deploy: guided the first time at a terminal (it asks for the stack name, region and
#      parameters, and saves the answers in .sam/samconfig.toml, beside the template it
#      deploys); later runs reuse them;
#   4. the access-token keys and data key written into the stack's secrets, and its names
#      printed (deploy.py --after-sam): the same step `make dev` runs after its deploy;
#   5. the operator console: built (npm ci when node_modules is missing, then vite),
#      uploaded to the stack's console bucket with its config.json (the API's URL), the
#      distribution invalidated, and its URL printed (console/publish.py);
#   6. the first operator: OPERATOR_EMAIL (asked at a terminal when unset) is invited as a
#      platform operator through the users function, invoked directly (infra/first_operator.py):
#      an invitation mail to the console's accept page, where they choose their password.
#      Idempotent; refused while an operator exists unless OPERATOR_FORCE=1.
# Credentials come from the usual AWS places (AWS_PROFILE, ~/.aws, environment).
# Environment: OPERATOR_EMAIL (step 6); PLATFORM_ORIGIN, SENDER_EMAIL, STACK fill sam's answers; DEPLOY_PARAMS adds
# Key=Value overrides. DEPLOY_ZIPS=DIR deploys zips made elsewhere instead of packaging, and
# DEPLOY_DIR another folder than .sam (make test deploys its x86 build this way onto the
# emulator, AWS_ENDPOINT_URL set, to prove the path).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
zips=${DEPLOY_ZIPS:-target/lambda}
dir=${DEPLOY_DIR:-.sam}
mkdir -p "$dir"
[[ -n "${DEPLOY_ZIPS:-}" ]] || infra/package.sh
.venv/bin/python infra/deploy.py --sam-template "$dir/template.json" --bin-dir "$zips"

# SAM keeps its answers in samconfig.toml beside the template.
config=$dir/samconfig.toml
args=(--template-file "$dir/template.json"
      --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --resolve-s3)
overrides=()
[[ -n "${PLATFORM_ORIGIN:-}" ]] && overrides+=("PlatformOrigin=$PLATFORM_ORIGIN")
[[ -n "${SENDER_EMAIL:-}" ]] && overrides+=("SenderEmail=$SENDER_EMAIL")
read -r -a extra <<<"${DEPLOY_PARAMS:-}"
overrides+=("${extra[@]}")
((${#overrides[@]})) && args+=(--parameter-overrides "${overrides[@]}")
[[ -n "${STACK:-}" ]] && args+=(--stack-name "$STACK")
if [[ ! -f $config && -t 0 ]]; then
  .venv-tools/bin/sam deploy --guided "${args[@]}"
else
  [[ -t 0 ]] || args+=(--no-confirm-changeset)
  [[ -n "${STACK:-}" || -f $config ]] || { echo "deploy: set STACK (no terminal to ask)"; exit 1; }
  .venv-tools/bin/sam deploy "${args[@]}" --no-fail-on-empty-changeset
fi

stack=${STACK:-$(.venv/bin/python -c 'import sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); print(c["default"]["deploy"]["parameters"]["stack_name"])' "$config")}
local_flag=(); [[ -n "${AWS_ENDPOINT_URL:-}" ]] && local_flag=(--local)
.venv/bin/python infra/deploy.py --stack "$stack" --after-sam "${local_flag[@]}" --out "$dir/stack.json"
echo "API: $(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_url"])' "$dir/stack.json")"
# The console: built (a build takes under a second; npm ci only when node_modules is missing), then
# published (exit 2: the stack was deployed with ConsoleHosting=none and has no console).
(cd console && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error; } && npm run build --silent >/dev/null)
rc=0; .venv/bin/python console/publish.py --stack "$stack" --out "$dir/console.json" || rc=$?
((rc == 0 || rc == 2)) || exit "$rc"

# The first operator (step 6), once the console that their invitation links to is up.
email=${OPERATOR_EMAIL:-}
if [[ -z $email && -t 0 ]]; then
  read -r -p "The first operator's email address (empty: invite nobody now): " email
fi
if [[ -n $email ]]; then
  force=(); [[ -n "${OPERATOR_FORCE:-}" ]] && force=(--force)
  rc=0; .venv/bin/python infra/first_operator.py invite --email "$email" --stack-file "$dir/stack.json" ${force[@]+"${force[@]}"} || rc=$?
  # 3: refused (an operator exists already): said above; the deployment itself stands.
  ((rc == 0 || rc == 3)) || exit "$rc"
else
  echo "deploy: no first operator invited (make deploy OPERATOR_EMAIL=you@example.com invites one)"
fi
