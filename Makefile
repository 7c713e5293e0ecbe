# Entry points. `make dev` runs the platform locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum localstack/requirements.txt | cut -c1-12)

.PHONY: help dev test lint bench build fmt mail logs reconcile deploy deploy-local

help:
	@echo "make dev     run the platform locally (emulator on :4566, API on http://127.0.0.1:3000)"
	@echo "make test    run the whole test suite (own emulator on a free port)"
	@echo "make lint    rustfmt check, clippy with warnings denied, cfn-lint on the template"
	@echo "make bench   release builds; cold start, RSS and size against a hello-world baseline"
	@echo "make mail    messages the local emulator captured (recipient, subject, link)"
	@echo "make logs    the functions' log lines on the local emulator (during make dev)"
	@echo "make reconcile  run the reconcile job once on the local stack and print its report"
	@echo "make deploy  build for Lambda (arm64) and deploy the template to AWS (see README)"
	@echo "make deploy-local  with Docker: LocalStack instead of MiniStack, the same deploy path as make dev"

$(STAMP): localstack/requirements.txt
	@command -v python3 >/dev/null || { echo "python3 is required"; exit 1; }
	@command -v cargo >/dev/null || { echo "cargo (Rust) is required: https://rustup.rs"; exit 1; }
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r localstack/requirements.txt
	touch $@

build:
	cargo build --workspace --bins

dev: $(STAMP) build
	localstack/dev.sh

test: $(STAMP)
	localstack/test.sh

lint: $(STAMP)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(VENV)/bin/openapi-spec-validator infra/openapi.yaml

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
deploy-local: $(STAMP) build
	EMULATOR=localstack localstack/dev.sh

reconcile: $(STAMP)
	set -a; . localstack/local.env; set +a; \
	AWS_ENDPOINT_URL=$${AWS_ENDPOINT_URL:-http://127.0.0.1:4566} \
	$(VENV)/bin/python localstack/reconcile.py localstack/.state/stack.json

# AWS: the same deploy script, with AWS's endpoint (none) and your credentials. Needs
# PLATFORM_ORIGIN (https) and SENDER_EMAIL (a verified SES identity); STACK defaults to saas-platform.
deploy: $(STAMP)
	@test -n "$(PLATFORM_ORIGIN)" || { echo "set PLATFORM_ORIGIN=https://..."; exit 1; }
	@test -n "$(SENDER_EMAIL)" || { echo "set SENDER_EMAIL=..."; exit 1; }
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==1.9.2
	PATH=$$PWD/$(VENV)/bin:$$PATH cargo lambda build --release --arm64 --workspace
	env -u AWS_ENDPOINT_URL $(VENV)/bin/python localstack/deploy.py --stack $${STACK:-saas-platform} \
	  --bin-dir target/lambda --param PlatformOrigin=$(PLATFORM_ORIGIN) \
	  --param SenderEmail=$(SENDER_EMAIL) --out target/lambda/stack.json
