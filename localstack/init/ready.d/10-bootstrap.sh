#!/bin/bash
# LocalStack ready hook: create the platform's resources with the shared bootstrap.
set -euo pipefail
export AWS_ENDPOINT_URL=http://localhost:4566
PY=/opt/code/localstack/.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" /opt/platform/localstack/bootstrap.py
