#!/usr/bin/env bash
# A COMMIT that sends queued writes can be cancelled, and says afterwards
# exactly what reached Postscript (src/write_queue.c).
#
# One session queues three new subscribers and commits, one write after the
# other (max_concurrency 1); the local server holds the second POST for
# 30 s.  The check waits until the committing backend is seen in that
# request, reads its process title (the commit's progress: "sending
# Postscript writes, 1 of 3 done"), and cancels it with pg_cancel_backend
# (statement_timeout does not cover COMMIT: PostgreSQL disarms it before the
# commit work).  Expected:
#   - COMMIT fails with 57014 and the detail "At commit, write 2 of 3 failed.
#     Applied: 1. Outcome unknown (it may have been applied): 2. Not sent: 3.";
#   - postscript_fdw_last_commit() in the same session says applied, outcome
#     unknown (the request was sent: it may have been applied), not sent;
#   - the server, once its delay is over, did apply write 2 (so "unknown"
#     was the honest answer) and never received write 3 (its request log).
# Then with the three writes in flight together (max_concurrency 3), the
# server holding the second and third: both are "outcome unknown", nothing
# is "not sent", and the server applies all three.
# Then the same commit on a server paced at one request per 30 s: the
# cancel comes while write 2 waits for the rate limit, before its request
# left, so write 2 is "not sent" (not "outcome unknown"), and the server
# received write 1 alone.
# Last, a procedure that commits writes and goes on: its process title no
# longer shows the commit's progress.
# The check waits for what it looks for, never on a clock.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, a
# superuser connection).
. "$(dirname "$0")/../checklib.sh" commit_cancel
db=ps_commit_cancel
fresh_db $db
at_exit 'admin DELETE /__admin/faults >/dev/null; admin POST /__admin/reset >/dev/null'

psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER api FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0', request_timeout '300', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER api OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE subs (id text, phone_number text, keyword text)
  SERVER api OPTIONS (resource 'subscribers');
CREATE SERVER api3 FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0', request_timeout '300', max_concurrency '3');
CREATE USER MAPPING FOR CURRENT_USER SERVER api3 OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE subs3 (id text, phone_number text, keyword text)
  SERVER api3 OPTIONS (resource 'subscribers');
CREATE SERVER paced FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0.0333', rate_burst '1',
           shared_rate_limit 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER paced OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE paced_subs (id text, phone_number text, keyword text)
  SERVER paced OPTIONS (resource 'subscribers');
SQL
admin POST /__admin/reset >/dev/null
admin POST /__admin/faults '{"kind": "slow", "delay_ms": 30000, "method": "POST", "path": "/api/v2/subscribers", "after": 1, "count": 1}' >/dev/null

# seen WHERE [TEXT]: the pid of the backend pg_stat_activity shows WHERE,
# once its process title holds TEXT; waits up to 2 minutes, else prints
# nothing
seen() {
	local pid i
	for i in $(seq 1 1200); do
		pid=$(psqlc -c "SELECT pid FROM pg_stat_activity WHERE $1")
		[ -n "$pid" ] && grep -q "${2:-}" "/proc/$pid/cmdline" 2>/dev/null && { echo "$pid"; return; }
		sleep 0.1
	done
}
title_of() { tr "\0" " " <"/proc/$1/cmdline" | sed "s/ *$//"; }

# commit N writes (3, or 1) into TABLE (phones PREFIX1..N) in a session of
# its own, cancel it once it is seen waiting with 1 of 3 writes done (0 of
# 1); its output in $work/OUT
commit_and_cancel() {
	local table=$1 prefix=$2 out=$3 n=${4:-3} session pid="" title values
	values="('${prefix}1', 'JOIN')"
	[ "$n" = 3 ] && values="$values, ('${prefix}2', 'JOIN'), ('${prefix}3', 'JOIN')"
	# one write: a read first opens the connection it is sent on, as write 1
	# does for write 2 (so a backend seen in the request has sent it)
	warm=""
	[ "$n" = 1 ] && warm="SELECT count(*) AS warm FROM (SELECT 1 FROM $table LIMIT 1) s;"
	PGAPPNAME=ps_commit_cancel "$bindir/psql" -X -q -At -d $db >"$work/$out" 2>&1 <<SQL &
\\set VERBOSITY default
$warm
BEGIN;
INSERT INTO $table (phone_number, keyword) VALUES $values;
COMMIT;
\\echo sqlstate :LAST_ERROR_SQLSTATE
SELECT write || ' ' || status FROM postscript_fdw_last_commit() ORDER BY write;
SQL
	session=$!
	pid=$(seen "application_name = 'ps_commit_cancel' AND query LIKE 'COMMIT%'
	            AND wait_event_type = 'Extension'" "writes, $((n == 3 ? 1 : 0)) of $n done")
	if [ -z "$pid" ]; then
		problem "$table: the committing backend was never seen waiting with $((n == 3 ? 1 : 0)) of $n writes done"
	else
		title=$(title_of "$pid")
		printf 'commit_cancel: process title: %s\n' "${title#*: }"
		psqlc -c "SELECT pg_cancel_backend($pid)" >/dev/null
	fi
	wait $session
	cat "$work/$out"
}
commit_and_cancel subs +1415555090 session.out

grep -q '^ERROR:  canceling statement due to user request' "$work/session.out" \
	|| problem "COMMIT did not fail with the cancel's error"
grep -q '^DETAIL:  At commit, write 2 of 3 failed. Applied: 1. Outcome unknown (it may have been applied): 2. Not sent: 3.$' "$work/session.out" \
	|| problem "the error does not say what was applied"
grep -q '^sqlstate 57014$' "$work/session.out" || problem "the SQLSTATE is not 57014"
[ "$(grep -E '^[0-9]+ ' "$work/session.out" | tr '\n' ';')" = "1 applied;2 outcome unknown;3 not sent;" ] \
	|| problem "postscript_fdw_last_commit() does not say applied, outcome unknown, not sent"

# the held request is applied when the server's delay ends: "unknown" was
# right.  The server's log: "phone status" of each POST /api/v2/subscribers
posts() {
	admin GET /__admin/requests | python3 -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    if r["method"] == "POST" and r["path"] == "/api/v2/subscribers":
        print(json.loads(r["body"])["phone_number"], r["status"])'
}
for i in $(seq 1 600); do
	posts | grep -q '^+14155550902 20[01]$' && break
	sleep 0.1
done
[ "$(posts | tr '\n' ';')" = "+14155550901 201;+14155550902 201;" ] \
	|| problem "the server did not apply writes 1 and 2 alone: $(posts | tr '\n' ';')"

# three in flight, the second and third held: both of unknown outcome
admin DELETE /__admin/faults >/dev/null
admin POST /__admin/reset >/dev/null
for p in +14155550932 +14155550933; do
	admin POST /__admin/faults "{\"kind\": \"slow\", \"delay_ms\": 30000, \"method\": \"POST\", \"path\": \"/api/v2/subscribers\", \"body_contains\": \"$p\"}" >/dev/null
done
commit_and_cancel subs3 +1415555093 concurrent.out
grep -q '^DETAIL:  At commit, write 2 of 3 failed. Applied: 1. Outcome unknown (it may have been applied): 2-3. Not sent: none.$' "$work/concurrent.out" \
	|| problem "concurrent: the error does not say that writes 2 and 3 may have been applied"
[ "$(grep -E '^[0-9]+ ' "$work/concurrent.out" | tr '\n' ';')" = "1 applied;2 outcome unknown;3 outcome unknown;" ] \
	|| problem "concurrent: postscript_fdw_last_commit() does not say applied, outcome unknown, outcome unknown"
for i in $(seq 1 600); do
	[ "$(posts | grep -c ' 201$')" = 3 ] && break
	sleep 0.1
done
[ "$(posts | sort | tr '\n' ';')" = "+14155550931 201;+14155550932 201;+14155550933 201;" ] \
	|| problem "concurrent: the server did not apply the three writes: $(posts | tr '\n' ';')"

# cancelled in the rate limit's wait: write 2 never left
admin DELETE /__admin/faults >/dev/null
admin POST /__admin/reset >/dev/null
commit_and_cancel paced_subs +1415555091 paced.out
grep -q '^DETAIL:  At commit, write 2 of 3 failed. Applied: 1. Not sent: 2-3.$' "$work/paced.out" \
	|| problem "paced: the error does not say that write 2 was not sent"
[ "$(grep -E '^[0-9]+ ' "$work/paced.out" | tr '\n' ';')" = "1 applied;2 not sent;3 not sent;" ] \
	|| problem "paced: postscript_fdw_last_commit() does not say applied, not sent, not sent"
[ "$(posts | tr '\n' ';')" = "+14155550911 201;" ] \
	|| problem "paced: the server received more than write 1: $(posts | tr '\n' ';')"

# one write (the commit of a one-row INSERT), cancelled while the server
# holds it: the error says that its request had been sent
admin POST /__admin/reset >/dev/null
admin POST /__admin/faults '{"kind": "slow", "delay_ms": 30000, "method": "POST", "path": "/api/v2/subscribers", "count": 1}' >/dev/null
commit_and_cancel subs +1415555092 single.out 1
grep -q '^DETAIL:  Its request had been sent: Postscript may or may not have applied it.$' "$work/single.out" \
	|| problem "one write: the error does not say that its request had been sent"
grep -q '^sqlstate 57014$' "$work/single.out" || problem "one write: the SQLSTATE is not 57014"
[ "$(grep -E '^[0-9]+ ' "$work/single.out" | tr '\n' ';')" = "1 outcome unknown;" ] \
	|| problem "one write: postscript_fdw_last_commit() does not say outcome unknown"
# a procedure that commits its writes and goes on: the process title no
# longer says the commit is sending
admin DELETE /__admin/faults >/dev/null
admin POST /__admin/reset >/dev/null
psqlc >/dev/null <<'SQL' || exit 1
CREATE PROCEDURE commit_then_sleep() LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO subs3 (phone_number, keyword) VALUES ('+14155550941', 'JOIN'), ('+14155550942', 'JOIN');
  COMMIT;
  PERFORM pg_sleep(300);
END $$;
SQL
PGAPPNAME=ps_commit_title "$bindir/psql" -X -q -At -d $db -c "CALL commit_then_sleep()" >/dev/null 2>&1 &
session=$!
pid=$(seen "application_name = 'ps_commit_title' AND wait_event = 'PgSleep'")
if [ -z "$pid" ]; then
	problem "the procedure was never seen sleeping after its COMMIT"
else
	title=$(title_of "$pid")
	case "$title" in
	*"sending Postscript"*) problem "after the COMMIT the process title still says: ${title#*: }" ;;
	esac
	psqlc -c "SELECT pg_cancel_backend($pid)" >/dev/null
fi
wait $session
exit $status
