#!/usr/bin/env bash
# The webhook receiver, end to end: the background worker over HTTP, the
# local API server as Postscript.
#   1. the worker runs (started by the postmaster) and listens on loopback;
#      without the extension in its database a delivery is answered 503
#   2. refusals: no signature 401, wrong signature 403, GET 405, too large
#      413 (announced and chunked; a chunked body past 16 times the cap is
#      cut off, and the receiver goes on), not JSON / not an event / too deep /
#      bytes that are no UTF-8 400;
#      nothing stored, the signed refusals (400) logged, the unsigned not,
#      and the token is in no log line; a failure to store is 503 and
#      logged even when its SQLSTATE is 54000; an event_data.id of 8 kB is
#      stored once
#   3. register callbacks through the webhooks foreign table (INSERT), read
#      them back through it, opt a subscriber in and out and send a test message
#      through the API server: the views show them
#   4. duplicates and out-of-order deliveries: each event stored once; the
#      worker's table statistics reach pg_stat_user_tables
#   5. the rate cap: 429 (an unsigned request is 401 all the same: it
#      costs none of the cap), then back to normal
#   6. the database cannot store (a table lock held by a migration): 503,
#      retried by the sender, stored once when the lock goes
#   7. a cancel of the idle worker (pg_cancel_backend): the same worker
#      goes on answering
#   8. the worker terminated with deliveries in flight: the postmaster
#      restarts it, the sender retries, every event stored once
#
# Needs the environment of scripts/test.sh: PGHOST/PGPORT/PGUSER (a
# superuser), PS_MOCK_URL, PS_PG_LOG, PG_CONFIG, and a cluster started with
# shared_preload_libraries=postscript_fdw, postscript_fdw.webhook_port and
# postscript_fdw.webhook_server set (the worker's database is the default,
# postgres, where this check makes and drops its objects).
. "$(dirname "$0")/../checklib.sh" webhooks
: "${PS_PG_LOG:?}"
db=postgres
api() { curl -sS -X "$1" -H 'Authorization: Bearer sk_test_shop_key' \
	-H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$PS_MOCK_URL$2"; }
# a JSON value out of stdin: python expression over j
jq_() { python3 -c "import json, sys; j = json.load(sys.stdin); print($1)"; }
expect() { [ "$2" = "$3" ] || problem "$1: expected '$3', got '$2'"; }

TOKEN=$(api GET /api/v2/webhooks/token | jq_ 'j["token"]')
server=$(psqlc -c "SHOW postscript_fdw.webhook_server")
port=$(psqlc -c "SHOW postscript_fdw.webhook_port")
[ "$port" != 0 ] && [ -n "$server" ] || { problem "the cluster was started without postscript_fdw.webhook_port/webhook_server"; exit 1; }
recv=http://127.0.0.1:$port/postscript
logstart=$(($(stat -c %s "$PS_PG_LOG") + 1))
worker_pid() { psqlc -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'postscript_fdw webhook receiver'"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
listening() { [ "$(code -X POST -d '{}' "$recv")" = 401 ]; }

cleanup() { psqlc -c "DROP SCHEMA IF EXISTS hooks CASCADE" -c "DROP EXTENSION IF EXISTS postscript_fdw CASCADE" 2>/dev/null; }
at_exit cleanup

# 1. the worker
wait_for "the receiver to listen on port $port" 240 listening || exit 1
[ -n "$(worker_pid)" ] || problem "no webhook receiver in pg_stat_activity"

admin POST /__admin/reset >/dev/null
admin POST /__admin/config '{"webhook_retry_s": 1}' >/dev/null
# without the extension in its database, nothing can be stored: 503, retried
cleanup
expect "no extension" "$(code -H "Postscript-Signature: $TOKEN" -d '{"event": "shop.test", "event_data": {}}' "$recv")" 503
psqlc >/dev/null <<SQL || exit 1
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
CREATE SERVER "$server" FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER "$server" OPTIONS (api_key 'sk_test_shop_key');
SELECT postscript_fdw_webhook_fetch_token('$server');
CREATE SCHEMA hooks;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (webhooks) FROM SERVER "$server" INTO hooks;
SQL
stored() { psqlc -c "SELECT count(*) FROM postscript_fdw_webhook_events"; }

# 2. refusals
example=$(api GET '/api/v2/webhooks/example?event=shop.incoming_message')
expect "unsigned" "$(code -X POST --data-binary "$example" "$recv")" 401
expect "wrong signature" "$(code -H 'Postscript-Signature: whsec_guess' --data-binary "$example" "$recv")" 403
expect "GET" "$(code -H "Postscript-Signature: $TOKEN" "$recv")" 405
big=$(head -c 300000 /dev/zero | tr '\0' x)
expect "too large" "$(printf '{"event": "shop.test", "event_data": {"pad": "%s"}}' "$big" |
	code -H "Postscript-Signature: $TOKEN" --data-binary @- "$recv")" 413
expect "too large, chunked" "$(printf '{"event": "shop.test", "event_data": {"pad": "%s"}}' "$big" |
	code -H "Postscript-Signature: $TOKEN" -H 'Transfer-Encoding: chunked' --data-binary @- "$recv")" 413
# chunked and past 16 times the cap: cut off (libmicrohttpd can queue no
# answer while it reads a body: no status, or a 413 from a library that
# can), and the receiver goes on
cap=$(psqlc -c "SELECT setting FROM pg_settings WHERE name = 'postscript_fdw.webhook_max_body'")
got=$(head -c $((17 * cap)) /dev/zero | tr '\0' x |
	code -H "Postscript-Signature: $TOKEN" -H 'Transfer-Encoding: chunked' -H 'Expect:' --data-binary @- "$recv")
case "$got" in 000 | 413) ;; *) problem "a chunked body past 16 times the cap was answered $got" ;; esac
listening || problem "the receiver does not answer after a chunked body was cut off"
expect "not JSON" "$(code -H "Postscript-Signature: $TOKEN" --data-binary '{"event": ' "$recv")" 400
expect "not an event" "$(code -H "Postscript-Signature: $TOKEN" --data-binary '{"event": "shop.test"}' "$recv")" 400
expect "too deep" "$(head -c 200000 /dev/zero | tr '\0' '[' |
	code -H "Postscript-Signature: $TOKEN" --data-binary @- "$recv")" 400
expect "not UTF-8" "$(printf '{"event": "shop.test", "event_data": {"id": "bad", "s": "\xc3\x28"}}' |
	code -H "Postscript-Signature: $TOKEN" --data-binary @- "$recv")" 400
expect "stored after refusals" "$(stored)" 0
# a signed delivery that can never be stored is logged (Postscript gives up
# on it after an hour of retries); an unsigned one is not
logged() { tail -c +"$logstart" "$PS_PG_LOG" | grep -c "webhook delivery answered $1" ; }
[ "$(logged 400)" -ge 1 ] || problem "a refused signed delivery (400) is not in the server log"
expect "unsigned refusals logged" "$(logged 401)" 0

# a failure to store is answered 503 (Postscript retries) and logged, whatever
# its SQLSTATE: 54000 (a trigger stands in for an index entry too large) from
# a body within the cap is no 413, after which Postscript would give up
psqlc >/dev/null <<'SQL' || exit 1
CREATE FUNCTION hooks.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a limit of the database' USING ERRCODE = 'program_limit_exceeded'; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON postscript_fdw_webhook_events
  FOR EACH ROW EXECUTE FUNCTION hooks.refuse();
SQL
expect "54000 within the cap" "$(code -H "Postscript-Signature: $TOKEN" \
	--data-binary '{"event": "shop.test", "event_data": {"id": "limit"}}' "$recv")" 503
psqlc -c "DROP TRIGGER refuse ON postscript_fdw_webhook_events" -c "DROP FUNCTION hooks.refuse()" >/dev/null
expect "a 503 for 54000 logged" "$(logged '503: a limit of the database')" 1
expect "its SQLSTATE logged" "$(tail -c +"$logstart" "$PS_PG_LOG" | grep -A1 "answered 503: a limit of the database" | grep -c "DETAIL:  SQLSTATE 54000")" 1
# an event_data.id of 8 kB (random hex: no compression makes it fit a btree)
# is stored, and its retry counted
long=$(python3 -c 'import hashlib; print("".join(hashlib.md5(b"%d" % i).hexdigest() for i in range(250)))')
for attempt in first retry; do
	expect "an id of 8 kB, $attempt" "$(printf '{"event": "shop.incoming_message", "event_time": "2026-03-04T14:00:00", "event_data": {"id": "%s"}}' "$long" |
		code -H "Postscript-Signature: $TOKEN" --data-binary @- "$recv")" 200
done
expect "an id of 8 kB stored once" "$(psqlc -c "SELECT string_agg(deliveries::text, ',') FROM postscript_fdw_webhook_events WHERE event_id = '$long'")" 2
psqlc -c "TRUNCATE postscript_fdw_webhook_events"

# 3. end to end: callbacks registered through the webhooks table (POST
# /api/v2/webhooks at commit), events from the API server
psqlc -c "INSERT INTO hooks.webhooks (callback_url, event)
          SELECT '$recv', e FROM unnest(ARRAY['shop.subscriber.opt_in', 'shop.subscriber.opt_out',
                                              'shop.incoming_message']) AS e" >/dev/null || exit 1
expect "webhooks table" "$(psqlc -c "SELECT string_agg(event || ' ' || (callback_url = '$recv'), ',' ORDER BY event) FROM hooks.webhooks")" \
	"shop.incoming_message true,shop.subscriber.opt_in true,shop.subscriber.opt_out true"
pending=$(api POST /api/v2/subscribers '{"phone_number": "+15555550142", "keyword": "JOIN"}' | jq_ 'j["id"]')
active=$(admin POST /__admin/confirm "{\"id\": \"$pending\"}" | jq_ 'j["id"]')
api PATCH /api/v2/compliance/unsubscribe "{\"postscript_subscriber_id\": \"$active\"}" >/dev/null
api POST /api/v2/webhooks/test '{"event": "shop.incoming_message"}' >/dev/null
all_delivered() {
	admin GET /__admin/webhooks/deliveries | jq_ 'len(j["deliveries"]) == '"$1"' and all(d["state"] == "delivered" for d in j["deliveries"])' | grep -qx True
}
wait_for "3 deliveries" 240 all_delivered 3
expect "opt-in view" "$(psqlc -c "SELECT subscriber_id || ' ' || phone_number FROM postscript_fdw_webhook_opt_ins")" "$active +15555550142"
expect "opt-out view" "$(psqlc -c "SELECT subscriber_id || ' ' || phone_number FROM postscript_fdw_webhook_opt_outs")" "$active +15555550142"
expect "incoming view" "$(psqlc -c "SELECT id || ' ' || from_number || ' ' || body || ' ' || is_opt_out FROM postscript_fdw_webhook_incoming_messages")" \
	"im_1b2a005a386281c9 +15555555555 Hello, world false"

# 4. duplicates, out of order: nine deliveries, three events, each delivered three times
psqlc -c "TRUNCATE postscript_fdw_webhook_events"
admin POST /__admin/reset >/dev/null
admin POST /__admin/config '{"webhook_retry_s": 1}' >/dev/null
admin POST /__admin/webhooks/deliver "{\"callback_url\": \"$recv\", \"duplicates\": 2, \"out_of_order\": true, \"events\": [
  {\"event\": \"shop.subscriber.opt_in\", \"event_time\": \"2026-03-04T12:00:00\", \"event_data\": {\"id\": \"s_A\", \"phone_number\": \"+15555550001\"}},
  {\"event\": \"shop.subscriber.opt_out\", \"event_time\": \"2026-03-04T12:01:00\", \"event_data\": {\"id\": \"s_A\", \"phone_number\": \"+15555550001\"}},
  {\"event\": \"shop.email_collected\", \"event_time\": \"2026-03-04T12:02:00\", \"event_data\": {\"subscriber_id\": \"s_A\", \"email\": \"a@example.com\"}}]}" >/dev/null
wait_for "9 deliveries" 240 all_delivered 9
expect "duplicates" "$(psqlc -c "SELECT string_agg(event || ' ' || deliveries, ',' ORDER BY event_time) FROM postscript_fdw_webhook_events")" \
	"shop.subscriber.opt_in 3,shop.subscriber.opt_out 3,shop.email_collected 3"
# the worker flushes its table statistics (autovacuum reads them): 3 + 3
# inserts so far, 6 duplicates counted by an update
expect "table statistics" "$(psqlc -c "SELECT n_tup_ins >= 6 AND n_tup_upd >= 6 FROM pg_stat_user_tables WHERE relname = 'postscript_fdw_webhook_events'")" t
expect "arrival order" "$(admin GET /__admin/webhooks/deliveries | jq_ '",".join(d["event"] for d in j["deliveries"][::3])')" \
	"shop.email_collected,shop.subscriber.opt_out,shop.subscriber.opt_in"

# 5. the rate cap: one delivery per 1000 s, then the default again
psqlc -c "ALTER SYSTEM SET postscript_fdw.webhook_rate_limit = 0.001" -c "SELECT pg_reload_conf()" >/dev/null
# (a request with a signature header; one without is refused before the cap)
guess() { code -H 'Postscript-Signature: whsec_guess' -X POST -d '{}' "$recv"; }
limited() { [ "$(guess)" = 429 ]; }
wait_for "a 429" 240 limited
expect "unsigned while capped" "$(code -X POST -d '{}' "$recv")" 401
psqlc -c "ALTER SYSTEM RESET postscript_fdw.webhook_rate_limit" -c "SELECT pg_reload_conf()" >/dev/null
lifted() { [ "$(guess)" = 403 ]; }
wait_for "the rate cap lifted" 240 lifted

# 6. the database cannot store: a migration holds the table; the worker
# gives up after its lock_timeout and answers 503; the sender retries
psqlc -c "TRUNCATE postscript_fdw_webhook_events"
admin POST /__admin/reset >/dev/null
admin POST /__admin/config '{"webhook_retry_s": 1}' >/dev/null
"$bindir/psql" -X -q -d postgres -c "BEGIN" -c "LOCK TABLE postscript_fdw_webhook_events" \
	-c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
locker=$!
locked() { [ -n "$(psqlc -c "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'postscript_fdw_webhook_events' AND l.mode = 'AccessExclusiveLock' AND l.granted")" ]; }
wait_for "the lock" 240 locked
admin POST /__admin/webhooks/deliver "{\"callback_url\": \"$recv\", \"event\": \"shop.incoming_message\"}" >/dev/null
refused() { admin GET /__admin/webhooks/deliveries | jq_ 'any(a["status"] == 503 for a in j["deliveries"][0]["attempts"])' | grep -qx True; }
wait_for "a 503" 240 refused
psqlc -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null
wait "$locker" 2>/dev/null
wait_for "the retried delivery" 240 all_delivered 1
expect "stored after 503" "$(psqlc -c "SELECT count(*) || ' ' || sum(deliveries) FROM postscript_fdw_webhook_events")" "1 1"
expect "first answer" "$(admin GET /__admin/webhooks/deliveries | jq_ 'j["deliveries"][0]["attempts"][0]["status"]')" 503

# 7. a cancel of the idle worker cancels nothing: the same worker answers
old=$(worker_pid)
expect "cancel sent" "$(psqlc -c "SELECT pg_cancel_backend($old)")" t
listening || problem "the worker did not answer right after a cancel"
expect "the worker after a cancel" "$(worker_pid)" "$old"

# 8. the worker terminated while deliveries arrive
psqlc -c "TRUNCATE postscript_fdw_webhook_events"
admin POST /__admin/reset >/dev/null
admin POST /__admin/config '{"webhook_retry_s": 1}' >/dev/null
old=$(worker_pid)
events=$(python3 -c 'import json; print(json.dumps([{"event": "shop.incoming_message", "event_data": {"id": "im_R%02d" % i, "body": "hi %d" % i}} for i in range(20)]))')
admin POST /__admin/webhooks/deliver "{\"callback_url\": \"$recv\", \"delay_ms\": 100, \"events\": $events}" >/dev/null
psqlc -c "SELECT pg_terminate_backend($old)" >/dev/null
restarted() { local p; p=$(worker_pid); [ -n "$p" ] && [ "$p" != "$old" ]; }
wait_for "the worker's restart" 240 restarted
wait_for "20 deliveries after the restart" 480 all_delivered 20
expect "stored after restart" "$(psqlc -c "SELECT count(*) || ' ' || count(DISTINCT id) FROM postscript_fdw_webhook_incoming_messages")" "20 20"
printf 'webhooks: %s of 20 deliveries were retried across the restart\n' \
	"$(admin GET /__admin/webhooks/deliveries | jq_ 'sum(len(d["attempts"]) > 1 for d in j["deliveries"])')"

# the token in no log line
tail -c +"$logstart" "$PS_PG_LOG" | grep -qF "$TOKEN" && problem "the webhook token is in the server log"

exit $status
