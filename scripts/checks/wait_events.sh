#!/usr/bin/env bash
# What pg_stat_activity shows while a backend waits on Postscript.  From
# PostgreSQL 17 on the extension names its waits (wait_event_type
# Extension):
#   PostscriptHttp           a request is in flight (the server answers slowly)
#   PostscriptRateLimit      waiting for a rate-limit token (one request per 30 s)
#   PostscriptRetryBackoff   waiting before a retry (a 429 with Retry-After: 30)
#   PostscriptWebhookMain    the webhook receiver waits for deliveries
# On 15 and 16 each of them is the generic Extension/Extension.  Each wait is
# made long and the check polls until it sees it (or gives up after two
# minutes), then cancels the query: it waits for what it looks for, never on
# a clock.  The cancelled query must end with the cancel's error.  On 18 and
# later, pg_get_loaded_modules() must show the library with the extension's
# version.
#
# Needs the environment of scripts/test.sh: PGHOST/PGPORT/PGUSER (a
# superuser), PS_MOCK_URL, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" wait_events
db=ps_wait_events
fresh_db $db
at_exit 'admin DELETE /__admin/faults >/dev/null'
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER plain FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', request_timeout '300', rate_limit '0');
CREATE SERVER slow_rate FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0.0333', rate_burst '1',
           shared_rate_limit 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER plain OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER slow_rate OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE plain_subscribers (id text) SERVER plain OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE rated_subscribers (id text) SERVER slow_rate OPTIONS (resource 'subscribers');
SQL
version=$(psqlc -c 'SHOW server_version_num')

# expect NAME TABLE EVENT: runs a scan of TABLE in the background, waits
# until its backend shows EVENT, cancels it
expect() {
	local name=$1 table=$2 want=$3 got="" i
	psqlc -c "SELECT count(*) FROM $table /* wait_$name */" >"$work/$name.out" 2>&1 &
	for i in $(seq 1 1200); do
		got=$(psqlc -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity
		                 WHERE query LIKE '%wait_$name%' AND pid <> pg_backend_pid()")
		[ "$got" = "$want" ] && break
		sleep 0.1
	done
	psqlc -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	           WHERE query LIKE '%wait_$name%' AND pid <> pg_backend_pid()" >/dev/null
	wait
	admin DELETE /__admin/faults >/dev/null
	printf 'wait_events: %s: %s\n' "$name" "${got:-nothing}"
	[ "$got" = "$want" ] || problem "$name: the backend showed ${got:-no wait event}, not $want"
	grep -q 'canceling statement due to user request' "$work/$name.out" \
		|| problem "$name: the cancelled scan ended with: $(cat "$work/$name.out")"
}

if [ "$version" -ge 170000 ]; then
	http=Extension/PostscriptHttp rate=Extension/PostscriptRateLimit retry=Extension/PostscriptRetryBackoff
	webhook=Extension/PostscriptWebhookMain
else
	http=Extension/Extension rate=Extension/Extension retry=Extension/Extension
	webhook=Extension/Extension
fi
admin POST /__admin/reset >/dev/null
admin POST /__admin/faults '{"kind": "slow", "delay_ms": 20000, "path": "/api/v2/subscribers", "count": 1}' >/dev/null
expect http plain_subscribers "$http"
admin POST /__admin/faults '{"kind": "rate_limit", "retry_after": 30, "path": "/api/v2/subscribers", "count": 1}' >/dev/null
expect retry plain_subscribers "$retry"
expect rate rated_subscribers "$rate"

# the webhook receiver (started by scripts/test.sh) waits for deliveries;
# between two it may be handling one, so look until it is seen waiting
if [ "$(psqlc -c "SHOW postscript_fdw.webhook_port")" != 0 ]; then
	for i in $(seq 1 600); do
		got=$(psqlc -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity
		                 WHERE backend_type = 'postscript_fdw webhook receiver'")
		[ "$got" = "$webhook" ] && break
		sleep 0.1
	done
	printf 'wait_events: webhook receiver: %s\n' "${got:-nothing}"
	[ "$got" = "$webhook" ] || problem "the webhook receiver showed ${got:-no wait event}, not $webhook"
fi

if [ "$version" -ge 180000 ]; then
	loaded=$(psqlc -c "SELECT version FROM pg_get_loaded_modules() WHERE module_name = 'postscript_fdw'")
	default=$(psqlc -c "SELECT default_version FROM pg_available_extensions WHERE name = 'postscript_fdw'")
	printf 'wait_events: pg_get_loaded_modules: postscript_fdw %s\n' "${loaded:-not listed}"
	[ -n "$loaded" ] && [ "$loaded" = "$default" ] \
		|| problem "pg_get_loaded_modules() shows version '${loaded}', the extension's is $default"
fi
exit $status
