#!/usr/bin/env bash
# Set everything up and run the demo, on a fresh Debian 12 machine as root:
#   bash scripts/demo.sh [--pg N] [--keep]
# Installs what is missing, builds and installs the extension, starts a
# throwaway PostgreSQL cluster and the local Postscript API server, creates
# the extension, a server, a user mapping and every foreign table (schema ps),
# and runs the examples in examples/*.sql, printing their results.
#
#   --pg N              against PostgreSQL N (as in scripts/test.sh)
#   --keep              leave PostgreSQL and the API server running afterwards
#   PS_DEMO_URL         use this API instead of the local server (e.g.
#                       https://api.postscript.io; then the local server is
#                       not started)
#   PS_DEMO_API_KEY     the key for it (default: the local server's shop key)
#   PS_DEMO_SUBSCRIBERS size of the local server's data set (default 5000)
set -u
. "$(dirname "$0")/lib.sh"

ps_pg_select "$@"
for arg in "${PS_ARGS[@]}"; do
	case "$arg" in
	--keep) export PS_KEEP=1 ;;
	*) ps_die "usage: bash scripts/demo.sh [--pg N] [--keep]" ;;
	esac
done
ps_pg_enter

ps_setup_traps
ps_take_lock
ps_install_deps
ps_build_install
ps_start_cluster
if [ -n "${PS_DEMO_URL:-}" ]; then
	api_url=$PS_DEMO_URL
	api_key=${PS_DEMO_API_KEY:?set PS_DEMO_API_KEY to your Postscript API key}
else
	# Postscript's limit, as a real shop gets it: the server's default
	# rate_limit (15) keeps the demo within it
	ps_start_mock --subscribers "${PS_DEMO_SUBSCRIBERS:-5000}" --rate-limit 15
	api_url=$PS_MOCK_URL
	api_key=${PS_DEMO_API_KEY:-sk_test_shop_key}
fi
# the lock only guards make install; a kept demo must not hold it
exec 9>&-

psql_demo() { psql -X -q -v ON_ERROR_STOP=1 -d postscript_demo "$@"; }

createdb postscript_demo || ps_die "createdb failed"
ps_log "creating the extension, server, user mapping and foreign tables (schema ps)"
psql_demo -v api_url="$api_url" -v api_key="$api_key" <<'SQL' || ps_die "set-up failed"
CREATE EXTENSION postscript_fdw;
CREATE SERVER postscript FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'api_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER postscript OPTIONS (api_key :'api_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript FROM SERVER postscript INTO ps;
SQL

status=0
for f in "$PS_ROOT"/examples/*.sql; do
	[ -e "$f" ] || continue
	printf '\n======== %s ========\n' "${f#$PS_ROOT/}"
	psql_demo -e -f "$f" || { status=1; ps_log "example $f failed"; }
done
if [ "${PS_KEEP:-0}" = 1 ]; then
	ps_log "the demo database is postscript_demo"
fi
exit $status
