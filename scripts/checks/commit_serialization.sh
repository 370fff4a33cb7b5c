#!/usr/bin/env bash
# PostgreSQL can still refuse a COMMIT after the queued writes were sent:
# the pre-commit callback that sends them is the last place an error can
# abort the commit, and a few checks come after it.  One of them is
# SERIALIZABLE's: the transaction that is a pivot of a read/write cycle
# fails at commit (40001).  Then Postscript keeps what it applied, and the
# session is told so (src/write_queue.c).
#
# Session A (SERIALIZABLE) reads the rows with k = 1 of a local table and
# inserts k = 2; session B (SERIALIZABLE) reads k = 2, inserts k = 1 and
# commits; A queues an event and commits.  Expected:
#   - A's COMMIT fails with 40001, after the event was POSTed (the local
#     server received it once);
#   - a WARNING says the commit failed after its Postscript write was sent,
#     with the hint to look at postscript_fdw_last_commit(), which lists
#     the event as applied.
# The check waits for what it looks for, never on a clock.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, a
# superuser connection).
. "$(dirname "$0")/../checklib.sh" commit_serialization
db=ps_commit_serialization
fresh_db $db
at_exit 'admin POST /__admin/reset >/dev/null'

psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER api FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER api OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE events (type text, email text) SERVER api OPTIONS (resource 'events');
CREATE TABLE ssi (k int);
SQL
admin POST /__admin/reset >/dev/null

# session A reads its statements from a pipe, one step at a time
mkfifo "$work/a.in"
PGAPPNAME=ps_ssi_a "$bindir/psql" -X -q -At -d $db <"$work/a.in" >"$work/a.out" 2>&1 &
session=$!
exec 7>"$work/a.in"
at_exit 'exec 7>&-'
cat >&7 <<'SQL'
\set VERBOSITY default
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM ssi WHERE k = 1;
INSERT INTO ssi VALUES (2);
SQL
a_in_transaction() {
	[ "$(psqlc -c "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'ps_ssi_a' AND state = 'idle in transaction'
		  AND query LIKE 'INSERT INTO ssi%'")" = 1 ]
}
wait_for "session A in its transaction" 400 a_in_transaction || exit 1
psqlc <<'SQL' >/dev/null || problem "session B did not commit"
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM ssi WHERE k = 2;
INSERT INTO ssi VALUES (1);
COMMIT;
SQL
cat >&7 <<'SQL'
INSERT INTO events (type, email) VALUES ('order_placed', 'ssi@example.com');
COMMIT;
\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT write || ' ' || status FROM postscript_fdw_last_commit() ORDER BY write;
SQL
exec 7>&-
wait $session
cat "$work/a.out"

grep -q '^ERROR:  could not serialize access' "$work/a.out" \
	|| problem "A's COMMIT did not fail with a serialization failure"
grep -q '^sqlstate 40001$' "$work/a.out" || problem "the SQLSTATE is not 40001"
grep -q '^WARNING:  COMMIT failed after its Postscript writes were sent$' "$work/a.out" \
	|| problem "no WARNING that the writes were sent"
grep -q '^HINT:  SELECT \* FROM postscript_fdw_last_commit() lists them' "$work/a.out" \
	|| problem "the WARNING has no hint to postscript_fdw_last_commit()"
[ "$(grep -E '^[0-9]+ ' "$work/a.out" | tr '\n' ';')" = "1 applied;" ] \
	|| problem "postscript_fdw_last_commit() does not list the event as applied"
posts=$(admin GET /__admin/requests | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin)["requests"]
          if r["method"] == "POST" and r["path"] == "/api/v2/events"))')
[ "$posts" = 1 ] || problem "the event was POSTed $posts times, not once"
exit $status
