# Entry points. `make dev` runs the platform locally; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum localstack/requirements.txt | cut -c1-12)

.PHONY: help dev test lint bench build fmt mail

help:
	@echo "make dev     run the platform locally (emulator on :4566, API on http://127.0.0.1:3000)"
	@echo "make test    run the whole test suite (own emulator on a free port)"
	@echo "make lint    rustfmt check, clippy with warnings denied, cfn-lint on the template"
	@echo "make bench   release builds; cold start, RSS and size against a hello-world baseline"
	@echo "make mail    messages the local emulator captured (recipient, subject, link)"

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
	$(VENV)/bin/python localstack/mail.py
