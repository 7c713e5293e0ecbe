# Sourced by dev.sh and fuzz.sh (after deploy_stack): the first operator, a tenant `demo` owned
# by the operator, and the sample database registered through the API.
# Sets OP_TOKEN (operator audience), PORTAL_TOKEN (the same person as the demo tenant's owner)
# and DB_ID.

api() { curl -fsS "$API_URL$1" -H 'content-type: application/json' "${@:2}"; }
json_field() { .venv/bin/python -c "import json,sys; d=json.load(sys.stdin)['data']; print(d$1)"; }
token() {
  api /auth/login -d "{\"email\":\"$OPERATOR_EMAIL\",\"password\":\"$OPERATOR_PASSWORD\",\"audience\":\"$1\"}" \
    | json_field '["access_token"]'
}

seed_demo() {
  export OPERATOR_EMAIL=${OPERATOR_EMAIL:-operator@local.test}
  export OPERATOR_PASSWORD=${OPERATOR_PASSWORD:-local-dev-only-change-me}
  # The same path as `make deploy` (the users function, invoked directly), then the invitation
  # is accepted here with the local password, so the printed credentials work at once.
  # SEED_FORCE: a stack with operators already (make test's, which fuzz.sh --short reuses).
  .venv/bin/python infra/first_operator.py invite --email "$OPERATOR_EMAIL" --stack-file "$STACK_FILE" \
    --accept-locally "$OPERATOR_PASSWORD" ${SEED_FORCE:+--force}
  OP_TOKEN=$(token operator)
  api /tenants -H "authorization: Bearer $OP_TOKEN" \
    -d "{\"slug\":\"demo\",\"name\":\"Demo\",\"owner_email\":\"$OPERATOR_EMAIL\"}" >/dev/null
  # The operator's account already exists: named owner, it accepts the invitation.
  api /tenants/demo/join -X POST -H "authorization: Bearer $OP_TOKEN" >/dev/null
  DB_ID=$(api /tenants/demo/databases -H "authorization: Bearer $OP_TOKEN" \
    -d "$(sample_registration sample)" \
    | json_field '["id"]')
  PORTAL_TOKEN=$(token portal)
  echo "seed: operator $OPERATOR_EMAIL, tenant demo with the sample database registered"
}
