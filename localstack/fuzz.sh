#!/usr/bin/env bash
# `make fuzz`: Schemathesis against the API, from infra/openapi.yaml, with every check, once with
# an operator token and once with a tenant member's token (the demo tenant's owner, portal
# audience). Path parameters are the seeded data's real ids (schemathesis.toml), so requests
# reach real records, not only 404s. Fails on any 5xx, any answer outside the document, and a
# 405 without `Allow`.
#   localstack/fuzz.sh           its own emulator and stack, FUZZ_EXAMPLES per operation (100)
#   localstack/fuzz.sh --short   the bounded pass `make test` runs on its stack (API_URL set):
#                                3 examples, and the coverage phase as the operator only
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${FUZZ_EXAMPLES:-100}
phases=examples,coverage,fuzzing,stateful
short=false
if [[ "${1:-}" == "--short" ]]; then short=true; examples=3; phases=examples,coverage,fuzzing; fi

if [[ -z "${API_URL:-}" ]]; then
  set -a; . localstack/local.env; set +a
  EMULATOR=ministack
  . localstack/emulator.sh
  own_emulator fuzz
  cargo build --workspace --bins --quiet
  start_emulator
  start_postgres
  deploy_stack saas-fuzz target/debug --param AllowPrivateDatabaseHosts=true --param AllowPlaintextDatabases=true --param OperatorMfa=optional
fi
. localstack/seed.sh
# On make test's stack other operators exist already: the seeded one is invited on purpose.
SEED_FORCE=1 seed_demo
api /partners -H "authorization: Bearer $OP_TOKEN" -d '{"slug":"demo-partner","name":"Demo partner","domain":"partner.example.com"}' >/dev/null
export FUZZ_DB_ID=$DB_ID
export FUZZ_USER_ID=$(api /auth/me -H "authorization: Bearer $PORTAL_TOKEN" | json_field '["user"]["id"]')
# Throwaway records for the destructive operations (schemathesis.toml), so that deleting or
# suspending does not take the demo tenant, its member or its database away from the rest.
auth=(-H "authorization: Bearer $OP_TOKEN")
api /tenants "${auth[@]}" -d "{\"slug\":\"doomed\",\"name\":\"Doomed\",\"owner_email\":\"$OPERATOR_EMAIL\"}" >/dev/null
api /partners "${auth[@]}" -d '{"slug":"doomed-partner","name":"Doomed partner","domain":"doomed.example.com"}' >/dev/null
export FUZZ_SPARE_USER_ID=$(api /tenants/demo/users "${auth[@]}" \
  -d '{"email":"spare-member@local.test","role":"member"}' | json_field '["user_id"]')
export FUZZ_SPARE_DB_ID=$(api /tenants/demo/databases "${auth[@]}" \
  -d "$(sample_registration spare)" \
  | json_field '["id"]')

report=$(mktemp -d "${TMPDIR:-/tmp}/saas-fuzz-report.XXXXXX")
status=0
# The tenant first: the operator run may delete or suspend the demo tenant.
for role in tenant operator; do
  [[ $role == operator ]] && bearer=$OP_TOKEN || bearer=$PORTAL_TOKEN
  role_phases=$phases
  # The short pass runs the coverage phase (its boundary cases are most of the requests) as
  # the operator only, who reaches every handler; the member gets the examples and fuzzing.
  [[ $short == true && $role == tenant ]] && role_phases=examples,fuzzing
  echo "fuzz: as $role ($examples examples per operation; phases $role_phases)"
  # One worker: with two, CPython 3.11's compile() in parallel threads crashed Schemathesis
  # once ("AST constructor recursion depth mismatch"). Under the gateway's per-method ceiling
  # (100 requests/s, infra/template.yaml): a fast route (a warm query answers in about 5 ms)
  # would otherwise meet the throttle, and its 429 would hide what the check looked for.
  .venv-tools/bin/schemathesis --config-file localstack/schemathesis.toml run infra/openapi.yaml \
    --url "$API_URL" -H "Authorization: Bearer $bearer" --checks all \
    --max-examples "$examples" --phases "$role_phases" --seed 1 --workers 1 --rate-limit 90/s \
    --report junit --report-dir "$report/$role" || status=1
done
rm -rf "$report"
exit $status
