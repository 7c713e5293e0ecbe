#!/usr/bin/env bash
# `make deploy`: the whole platform onto a real AWS account with SAM CLI.
#   1. make package: every function for arm64 (cargo-lambda), zipped;
#   2. the template with those zips as code (localstack/deploy.py --sam-template);
#   3. sam deploy: guided the first time (it asks for the stack name, region and parameters,
#      and saves the answers in samconfig.toml); later runs reuse samconfig.toml;
#   4. the access-token keys and data key written into the new stack's secrets, and its names
#      printed (deploy.py --after-sam): the same step `make dev` runs after its deploy.
# Credentials come from the usual AWS places (AWS_PROFILE, ~/.aws, environment).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
infra/package.sh
.venv/bin/python localstack/deploy.py --sam-template target/lambda/template.json --bin-dir target/lambda

args=(--template-file target/lambda/template.json --config-file "$PWD/samconfig.toml"
      --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --resolve-s3)
overrides=()
[[ -n "${PLATFORM_ORIGIN:-}" ]] && overrides+=("PlatformOrigin=$PLATFORM_ORIGIN")
[[ -n "${SENDER_EMAIL:-}" ]] && overrides+=("SenderEmail=$SENDER_EMAIL")
((${#overrides[@]})) && args+=(--parameter-overrides "${overrides[@]}")
[[ -n "${STACK:-}" ]] && args+=(--stack-name "$STACK")
if [[ -f samconfig.toml ]]; then
  .venv-tools/bin/sam deploy "${args[@]}" --no-fail-on-empty-changeset
else
  .venv-tools/bin/sam deploy --guided "${args[@]}"
fi

stack=${STACK:-$(.venv/bin/python -c 'import tomllib; c = tomllib.load(open("samconfig.toml", "rb")); print(c["default"]["deploy"]["parameters"]["stack_name"])')}
.venv/bin/python localstack/deploy.py --stack "$stack" --after-sam --out target/lambda/stack.json
echo "API: $(.venv/bin/python -c 'import json; print(json.load(open("target/lambda/stack.json"))["api_url"])')"
