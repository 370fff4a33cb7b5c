#!/usr/bin/env bash
# dbt for real over the foreign tables: examples/dbt built twice with
# dbt-core and dbt-postgres (pinned in requirements/dbt.txt, in a virtual
# environment), `dbt source freshness` and `dbt docs generate`, each judged by
# the requests the local API server received.  The assertions are in
# dbt.py beside this file.
#
# Needs the test environment of scripts/test.sh: PGHOST/PGPORT/PGUSER of a
# running cluster (as a superuser), PS_MOCK_URL, PG_CONFIG.
set -u
: "${PS_MOCK_URL:?}" "${PG_CONFIG:?}"
. "$(dirname "$0")/../lib.sh"
# dbt 1.11 runs on Python up to 3.13 (Debian unstable's python3 is 3.14)
venv=$(ps_venv dbt "$(ps_python 3.13 3.12 3.11)") || exit 1
exec "$venv/bin/python" "$PS_ROOT/scripts/checks/dbt.py"
