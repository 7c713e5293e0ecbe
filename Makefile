# Entry points. `make dev` runs the platform locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum localstack/requirements.txt | cut -c1-12)
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-$(shell sha256sum localstack/requirements-tools.txt | cut -c1-12)
export SAM_CLI_TELEMETRY := 0

.PHONY: help deps dev test lint bench build fmt mail logs reconcile keys keys-rotate keys-retire deploy deploy-local package package-check fuzz template-lint console console-lint

help:
	@echo "make dev     run the platform locally (emulator on :4566, API on http://127.0.0.1:3000)"
	@echo "make test    run the whole test suite (own emulator on a free port)"
	@echo "make lint    rustfmt check, clippy -D warnings, cfn-lint (serverless rules), sam validate --lint, the console's generated API types (no diff) and tsc"
	@echo "make console build the operator console (npm ci + Vite) into console/dist"
	@echo "make bench   release builds; cold start, RSS and size against a hello-world baseline"
	@echo "make package build every function for Lambda (arm64, release) and print each zip's size"
	@echo "make fuzz    Schemathesis against a local stack of its own (every check, both roles)"
	@echo "make mail    messages the local emulator captured (recipient, subject, link)"
	@echo "make logs    the functions' log lines on the local emulator (during make dev)"
	@echo "make reconcile  run the reconcile job once on the local stack and print its report"
	@echo "make keys / keys-rotate / keys-retire  list, rotate or retire the access-token keys (local stack; AWS=1: the stack make deploy made)"
	@echo "make deploy  make package, then sam deploy to AWS (guided the first time; see README)"
	@echo "make deploy-local  with Docker: LocalStack instead of MiniStack, the same deploy path as make dev"

$(STAMP): localstack/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
	@command -v cargo >/dev/null || { echo "cargo (Rust) is required: https://rustup.rs"; exit 1; }
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r localstack/requirements.txt
	touch $@

# Tools with pins of their own (SAM CLI, cfn-lint, Schemathesis, cargo-lambda and zig).
$(TOOLS_STAMP): localstack/requirements-tools.txt
	@command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
	rm -rf $(TOOLS)
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r localstack/requirements-tools.txt
	touch $@

build:
	cargo build --workspace --bins

# The operator console (console/): npm ci when the lock file changes, then the Vite build.
CONSOLE_STAMP := console/node_modules/.installed-$(shell sha256sum console/package-lock.json | cut -c1-12)
$(CONSOLE_STAMP): console/package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 20.19+) is required for the console"; exit 1; }
	cd console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console: $(CONSOLE_STAMP)
	cd console && npm run build --silent

# The API types must be what infra/openapi.yaml generates, and the console must type-check.
# Generated beside the committed file, never over it: make lint may run while make test builds.
console-lint: $(CONSOLE_STAMP)
	cd console && tmp=$$(mktemp --suffix=.d.ts) \
	  && ./node_modules/.bin/openapi-typescript ../infra/openapi.yaml -o "$$tmp" >/dev/null \
	  && { diff -u src/api/schema.d.ts "$$tmp" || { echo "console/src/api/schema.d.ts is stale: npm run gen"; rm -f "$$tmp"; exit 1; }; } \
	  && rm -f "$$tmp"
	cd console && npm run check --silent

dev: $(STAMP) build console
	localstack/dev.sh

test: $(STAMP) $(TOOLS_STAMP) console
	localstack/test.sh

# cfn-lint with the serverless rules, and SAM's own validation with its lint (both offline);
# then what the template promises that nothing local runs (WAF, throttles, reserved concurrency,
# IAM key conditions, bucket policy, alarms: infra/checks/test_template.py) and the log reader.
template-lint: $(STAMP) $(TOOLS_STAMP)
	$(TOOLS)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- infra/template.yaml
	$(TOOLS)/bin/sam validate --lint --template infra/template.yaml --region us-east-1
	cd infra/checks && ../../$(VENV)/bin/python -m unittest -q test_template
	cd localstack && ../$(VENV)/bin/python -m unittest -q test_logs

package: $(TOOLS_STAMP)
	infra/package.sh

# One function, debug, for arm64: proves the cross toolchain still works (CI runs it).
package-check: $(TOOLS_STAMP)
	infra/package.sh --check

fuzz: $(STAMP) $(TOOLS_STAMP)
	localstack/fuzz.sh

# Clippy keeps its own target directory (target/lint), so `make lint` can run while `make test`
# builds and runs (CI overlaps them) without either waiting for the other's lock.
lint: $(STAMP) template-lint console-lint
	cargo fmt --all -- --check
	CARGO_TARGET_DIR=target/lint cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/openapi-spec-validator infra/openapi.yaml

# Everything make test and make lint install (the two virtualenvs, the console's packages), so
# both can then run side by side without installing the same thing twice at once.
deps: $(STAMP) $(TOOLS_STAMP) $(CONSOLE_STAMP)

fmt:
	cargo fmt --all

bench: $(STAMP)
	localstack/bench.sh

mail: $(STAMP)
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} $(VENV)/bin/python localstack/mail.py

logs: $(STAMP)
	set -a; . localstack/local.env; set +a; \
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} \
	$(VENV)/bin/python localstack/logs.py localstack/.state/stack.json

# With Docker: LocalStack (localstack/docker-compose.yml) instead of MiniStack; the same
# script, deploy path and seed data as `make dev`.
deploy-local: $(STAMP) build console
	EMULATOR=localstack localstack/dev.sh

reconcile: $(STAMP)
	set -a; . localstack/local.env; set +a; \
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} \
	$(VENV)/bin/python localstack/reconcile.py localstack/.state/stack.json

# The stack's access-token keys (README, "Access-token keys"): `make keys` lists them,
# `make keys-rotate` puts a new signing key first, `make keys-retire` keeps only the newest. On
# the local stack of `make dev` (STACK_FILE: another local stack's stack.json, as make test
# uses); with AWS=1 on the stack `make deploy` made (STACK, or the name in
# $(DEPLOY_DIR)/samconfig.toml), with your usual AWS credentials.
DEPLOY_DIR ?= .sam
keys keys-rotate keys-retire: $(STAMP)
ifdef AWS
	$(VENV)/bin/python infra/keys.py $(or $(patsubst keys-%,%,$(filter keys-%,$@)),list) \
	  $(if $(STACK),--stack $(STACK),--sam-config $(DEPLOY_DIR)/samconfig.toml)
else
	set -a; . localstack/local.env; set +a; \
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} \
	$(VENV)/bin/python infra/keys.py $(or $(patsubst keys-%,%,$(filter keys-%,$@)),list) \
	  --stack-file $${STACK_FILE:-localstack/.state/stack.json}
endif

# AWS: make package, then sam deploy (guided the first time; answers kept in samconfig.toml),
# then the stack's keys. PLATFORM_ORIGIN, SENDER_EMAIL and STACK, when set, fill the answers.
deploy: $(STAMP) $(TOOLS_STAMP)
	infra/deploy.sh
