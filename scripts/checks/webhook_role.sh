#!/usr/bin/env bash
# The webhook receiver as the README sets it up: a cluster of its own whose
# receiver listens on IPv6 loopback ([::1]) and connects as a role that is not
# a superuser, prepared exactly as "### Set-up" says (CREATE ROLE ... LOGIN,
# USAGE on the server, SELECT/INSERT/UPDATE on the events table, its own user
# mapping, postscript_fdw_webhook_fetch_token(server, role)).
#   - before the role exists the receiver cannot start; once it does, the
#     postmaster's restart brings it up as that role (waited for, not timed);
#   - a signed delivery to http://[::1]:PORT/postscript is stored once;
#   - nothing listens on 127.0.0.1:PORT;
#   - the role has no superuser right it could lend to a delivery.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, root or
# the postgres OS user); starts and stops its own cluster.
. "$(dirname "$0")/../checklib.sh" webhook_role
. "$(dirname "$0")/../lib.sh"
chmod 755 "$work"
PS_WORK=$work/cluster
mkdir -p "$PS_WORK"
port=$(ps_free_port)
at_exit 'ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -m immediate stop >/dev/null 2>&1'
ps_start_cluster -c shared_preload_libraries=postscript_fdw -c postscript_fdw.webhook_port=$port \
	-c "postscript_fdw.webhook_listen_address='::1'" -c postscript_fdw.webhook_role=postscript_hooks \
	-c postscript_fdw.webhook_server=postscript
db=postgres
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
receiver_role() {
	psqlc -c "SELECT usename FROM pg_stat_activity WHERE backend_type = 'postscript_fdw webhook receiver'"
}

psqlc >/dev/null <<SQL || exit 1
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
CREATE SERVER postscript FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER postscript OPTIONS (api_key 'sk_test_shop_key');
CREATE ROLE postscript_hooks LOGIN;
GRANT USAGE ON FOREIGN SERVER postscript TO postscript_hooks;
GRANT SELECT, INSERT, UPDATE ON postscript_fdw_webhook_events TO postscript_hooks;
CREATE USER MAPPING FOR postscript_hooks SERVER postscript;
SELECT postscript_fdw_webhook_fetch_token('postscript', 'postscript_hooks');
SQL

# the receiver comes up (the postmaster restarts it every 5 s) as the role
wait_for "the receiver to run as postscript_hooks" 480 \
	eval '[ "$(receiver_role)" = postscript_hooks ]'
[ "$(psqlc -c "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls
                FROM pg_roles WHERE rolname = 'postscript_hooks'")" = f ] \
	|| problem "postscript_hooks has more rights than the README gives it"

token=$(curl -sS -H 'Authorization: Bearer sk_test_shop_key' "$PS_MOCK_URL/api/v2/webhooks/token" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
event='{"event": "shop.subscriber.opt_in", "event_data": {"id": "s_v6", "phone_number": "+15555550177"}}'
wait_for "the receiver to listen on [::1]:$port" 480 \
	eval '[ "$(code -g -X POST -d "{}" "http://[::1]:$port/postscript")" = 401 ]'
got=$(code -g -H "Postscript-Signature: $token" --data-binary "$event" "http://[::1]:$port/postscript")
[ "$got" = 200 ] || problem "a signed delivery over IPv6 was answered $got, not 200"
[ "$(code -g -H "Postscript-Signature: $token" --data-binary "$event" "http://[::1]:$port/postscript")" = 200 ] \
	|| problem "the same delivery again was not acknowledged"
[ "$(psqlc -c "SELECT count(*) FROM postscript_fdw_webhook_events")" = 1 ] \
	|| problem "the delivery was not stored exactly once"
[ "$(code --max-time 10 -X POST -d '{}' "http://127.0.0.1:$port/postscript")" = 000 ] \
	|| problem "something answers on 127.0.0.1:$port: the receiver should listen on [::1] only"
printf 'webhook_role: receiver as %s on [::1]:%s, %s event(s) stored\n' "$(receiver_role)" "$port" \
	"$(psqlc -c "SELECT count(*) FROM postscript_fdw_webhook_events")"
exit $status
