#!/usr/bin/env bash
# postscript_fdw_sync() as other clients and other sessions meet it
# (postscript_fdw--1.1--1.2.sql):
#   1. a driver that speaks the extended query protocol (psycopg 3, JDBC,
#      asyncpg, node-postgres with parameters; here pgbench -M extended)
#      can CALL it: the mirror is filled and its run succeeded;
#   2. while another session holds a mirror's lock, as a running sync does,
#      a CALL is refused with 55P03 and sends no request, and a mirror not
#      yet created is not created (the lock comes first, so two first runs
#      cannot both create it); once that session is gone, the CALL runs.
#      The refusal is not recorded as the mirror's last run: the state's
#      row is the running sync's (mirror_ext keeps its run and no error).
# The check waits for what it looks for, never on a clock.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, a
# superuser connection).
. "$(dirname "$0")/../checklib.sh" sync_sessions
db=ps_sync_sessions
fresh_db $db

psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER api FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER api OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
-- what a mirror needs: the id, and the cursors' columns
CREATE FOREIGN TABLE ps.subscribers (id text, email text, created_at timestamptz, updated_at timestamptz)
  SERVER api OPTIONS (resource 'subscribers');
SQL
upstream=$(psqlc -c "SELECT count(*) FROM ps.subscribers") || exit 1

# 1. the extended query protocol
printf "CALL postscript_fdw_sync('ps.subscribers', 'mirror_ext');\n" >"$work/call.sql"
if ! "$bindir/pgbench" -n -M extended -t 1 -f "$work/call.sql" $db >"$work/pgbench.out" 2>&1; then
	problem "CALL under the extended protocol failed: $(grep -m1 -i error "$work/pgbench.out")"
fi
got=$(psqlc -c "SELECT status || ' ' || (SELECT count(*) FROM mirror_ext) FROM postscript_fdw_sync_status WHERE target = 'public.mirror_ext'")
[ "$got" = "succeeded $upstream" ] || problem "after the extended-protocol CALL: expected 'succeeded $upstream', got '$got'"

# 2. another session holds the lock of mirror_new, which does not exist yet,
# and of mirror_ext, which has its state (taken first: once held() sees
# mirror_new's, both are held)
key=$(psqlc -c "SELECT postscript_fdw_sync_lock_key('public.mirror_new')") || exit 1
key_ext=$(psqlc -c "SELECT postscript_fdw_sync_lock_key('public.mirror_ext')") || exit 1
PGAPPNAME=ps_sync_holder "$bindir/psql" -X -q -At -d $db \
	-c "SELECT pg_advisory_lock($key_ext), pg_advisory_lock($key)" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
at_exit "kill $holder 2>/dev/null"
held() { [ "$(psqlc -c "SELECT postscript_fdw_sync_holder($key) IS NOT NULL")" = t ]; }
wait_for "the other session's lock" 400 held || exit 1
admin DELETE /__admin/requests >/dev/null
got=$(psqlc -v ON_ERROR_STOP=0 -c "\\set VERBOSITY sqlstate" -c "CALL postscript_fdw_sync('ps.subscribers', 'mirror_new')" 2>&1)
[ "$got" = "ERROR:  55P03" ] || problem "while another session holds the lock: expected 'ERROR:  55P03', got '$got'"
got=$(psqlc -c "SELECT to_regclass('public.mirror_new') IS NULL")
[ "$got" = t ] || problem "the refused CALL created the mirror"
got=$(admin GET /__admin/requests | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))')
[ "$got" = 0 ] || problem "the refused CALL sent $got requests"
got=$(psqlc -v ON_ERROR_STOP=0 -c "\\set VERBOSITY sqlstate" -c "CALL postscript_fdw_sync('ps.subscribers', 'mirror_ext')" 2>&1)
[ "$got" = "ERROR:  55P03" ] || problem "while another session holds mirror_ext's lock: expected 'ERROR:  55P03', got '$got'"
got=$(psqlc -c "SELECT run_status || ' ' || coalesce(last_error_sqlstate, 'no error') FROM postscript_fdw_sync_state WHERE target = 'public.mirror_ext'")
[ "$got" = "succeeded no error" ] || problem "the refused CALL was recorded as mirror_ext's run: expected 'succeeded no error', got '$got'"

psqlc -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ps_sync_holder'" >/dev/null
not_held() { ! held; }
wait_for "the other session's end" 400 not_held || exit 1
psqlc -c "CALL postscript_fdw_sync('ps.subscribers', 'mirror_new')" || problem "the CALL after the other session ended failed"
got=$(psqlc -c "SELECT status || ' ' || (SELECT count(*) FROM mirror_new) FROM postscript_fdw_sync_status WHERE target = 'public.mirror_new'")
[ "$got" = "succeeded $upstream" ] || problem "after the other session ended: expected 'succeeded $upstream', got '$got'"
exit $status
