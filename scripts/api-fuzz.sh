#!/usr/bin/env bash
# HTTP fuzz of the whole API with Schemathesis, driven by upstream's OpenAPI contract
# (tests/fixtures/outpost-openapi.yaml): starts the release binary on a scratch data dir, creates
# the data tests/api_fuzz/schemathesis.toml names (tenants, destinations, an event and its
# attempt), runs every operation but the managed-only /config, and fails on any server error,
# any panic in the server log, or a response outside the contract (with the exceptions that
# follow upstream's server, tests/api_fuzz/hooks.py and docs/fuzzing.md).
#
#   scripts/api-fuzz.sh [MAX_EXAMPLES] [SEED]      default: 100 examples per operation, seed 1
#
# Schemathesis comes from .venv-sdk (tests/sdk/requirements.txt; scripts/test.sh installs it).
# Extra Schemathesis options can be given in ST_ARGS. Reports go to target/api-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-100}
seed=${2:-1}
st=.venv-sdk/bin/schemathesis
if [ ! -x "$st" ]; then
  echo "error: $st is missing: run scripts/test.sh (or pip install -r tests/sdk/requirements.txt into .venv-sdk)" >&2
  exit 1
fi
cargo build --release --quiet --bin outpost
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=api-fuzz-key
API_KEY=$key API_JWT_SECRET=api-fuzz-jwt API_HOST=127.0.0.1 API_PORT=$port DATA_DIR=$data \
  DATA_MIN_FREE_BYTES=0 TOPICS=user.created,user.updated target/release/outpost serve \
  >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT
base=http://127.0.0.1:$port/api/v1
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
auth="Authorization: Bearer $key"
for tenant in t1:d1 t1:d2 t2:d3; do
  curl -fs -X PUT -H "$auth" "$base/tenants/${tenant%:*}" >/dev/null
  curl -fs -X POST -H "$auth" -H 'Content-Type: application/json' \
    "$base/tenants/${tenant%:*}/destinations" \
    -d '{"id":"'"${tenant#*:}"'","type":"webhook","topics":"*","config":{"url":"https://example.com/hook"}}' \
    >/dev/null
done
curl -fs -X POST -H "$auth" -H 'Content-Type: application/json' "$base/publish" \
  -d '{"id":"e1","tenant_id":"t1","topic":"user.created","data":{"user_id":"u1"}}' >/dev/null
API_FUZZ_ATTEMPT_ID=
for _ in $(seq 100); do
  API_FUZZ_ATTEMPT_ID=$(curl -fs -H "$auth" "$base/attempts?tenant_id=t1" \
    | python3 -c 'import json, sys; m = json.load(sys.stdin)["models"]; print(m[0]["id"] if m else "")')
  [ -n "$API_FUZZ_ATTEMPT_ID" ] && break
  sleep 0.1
done
export API_FUZZ_ATTEMPT_ID

mkdir -p target/api-fuzz
status=0
# shellcheck disable=SC2086
PYTHONPATH=tests/api_fuzz SCHEMATHESIS_HOOKS=hooks "$st" \
  --config-file tests/api_fuzz/schemathesis.toml run tests/fixtures/outpost-openapi.yaml \
  --url "$base" -H "$auth" \
  --checks not_a_server_error,upstream_status_code_conformance,upstream_response_schema_conformance \
  --exclude-path /config \
  --max-examples "$examples" --seed "$seed" --workers 1 --generation-database none \
  --no-color --report junit --report-dir target/api-fuzz ${ST_ARGS:-} || status=$?
if grep -n "panicked" "$data/server.log"; then
  echo "error: the server panicked" >&2
  status=1
fi
exit $status
