#!/usr/bin/env bash
# The local API server against Postscript's harvested OpenAPI file, checked
# mechanically, read at run time from ../shared/reference/ beside the
# checkout:
#   1. api_contract.py (beside this file): every documented operation the
#      server serves, with every documented parameter, answers a documented
#      status with a body that validates against the documented schema;
#   2. schemathesis, property-based: requests generated from the file (valid
#      and invalid, every method) never get a 5xx, and every answer with a
#      documented status has the documented content type and schema.
#      Deterministic generation, so every run sends the same requests.
#
# Needs PS_MOCK_URL (the local API server of scripts/test.sh).
set -u
: "${PS_MOCK_URL:?}"
. "$(dirname "$0")/../lib.sh"
spec="$PS_ROOT/../shared/reference/postscript-partner-api-openapi.yml"
[ -f "$spec" ] || { echo "api_contract: no $spec"; exit 1; }
venv=$(ps_venv contract) || exit 1
"$venv/bin/python" "$PS_ROOT/scripts/checks/api_contract.py" "$spec" || exit 1

work=$(mktemp -d /tmp/postscript_fdw.contract.XXXXXX)
trap 'rm -rf "$work"; curl -sS -o /dev/null -X POST "$PS_MOCK_URL/__admin/reset"' EXIT
curl -sS -o /dev/null -X POST "$PS_MOCK_URL/__admin/reset" || exit 1
# every operation, the webhook ones too (their callbacks beyond loopback are never called)
if (cd "$work" && "$venv/bin/schemathesis" run "$spec" --url "$PS_MOCK_URL" \
	-H 'Authorization: Bearer sk_test_shop_key' \
	-c not_a_server_error,response_schema_conformance,content_type_conformance \
	--generation-deterministic -n 30 --no-color >"$work/schemathesis.out" 2>&1); then
	echo "api_contract: schemathesis ok; $(grep -m1 -E '[0-9]+ generated' "$work/schemathesis.out" | sed 's/^ *//')"
else
	tail -n 80 "$work/schemathesis.out"
	echo "api_contract: schemathesis found failures"
	exit 1
fi
