#!/usr/bin/env bash
# The local API server against Postscript's harvested OpenAPI file, checked
# mechanically: every documented operation it serves, with every documented
# parameter, answers a documented status with a body that validates against
# the documented schema.  The rules are in api_contract.py beside this file;
# the OpenAPI file is read at run time from ../shared/reference/ beside the
# checkout.
#
# Needs PS_MOCK_URL (the local API server of scripts/test.sh).
set -u
: "${PS_MOCK_URL:?}"
. "$(dirname "$0")/../lib.sh"
venv=$(ps_venv contract) || exit 1
exec "$venv/bin/python" "$PS_ROOT/scripts/checks/api_contract.py" \
	"$PS_ROOT/../shared/reference/postscript-partner-api-openapi.yml"
