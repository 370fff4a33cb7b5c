#!/usr/bin/env bash
# Eight sessions sharing one token stay inside the server's rate limit,
# whatever shape it counts in (src/ratelimit.c).
#
# For each limiter shape of the local API server (token bucket, fixed
# one-second windows, sliding one-second window), at 15 requests/s, eight
# sessions scan 40 pages each at the same time with the same token, through
# the shared limiter at 15 requests/s: every session gets every row, and at
# most 1% of the server's answers are 429 (read from its request log).
#
# Why this does not depend on timing: the client lets a request go only
# when fewer than 15 of its requests may still be in the server's one-second
# window - each counted for a second after it was written plus how much
# later than the quickest it may have reached the server (40 ms until its
# answer, then what its round trip tells) - and records the moment libcurl
# writes it; a loaded machine only delays requests after that moment, which
# spreads them out.  Only a server that counts a request later than its
# round trip shows (a busy server reading it late, beyond the margin on a
# connection already in use) can compress a window, and a 429 that follows
# is retried and widens the shared window (the 1% allowance).
#
# Needs the environment of scripts/test.sh (a cluster with
# shared_preload_libraries = postscript_fdw, PS_MOCK_URL, PG_CONFIG).
. "$(dirname "$0")/../checklib.sh" shared_limiter_shapes
db=ps_limiter_shapes
sessions=8
need_preload
fresh_db $db
at_exit 'admin POST /__admin/reset >/dev/null'
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER shapes FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', max_retries '20', max_retry_wait '120');
CREATE USER MAPPING FOR CURRENT_USER SERVER shapes OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE subscribers (id text) SERVER shapes OPTIONS (resource 'subscribers');
SQL

admin POST /__admin/reset >/dev/null
expected=$(admin GET /__admin/summary | python3 -c 'import json,sys; print({r["resource"]: r["count"] for r in json.load(sys.stdin)["summary"]}["subscribers"])')
page_size=$(( (expected + 39) / 40 ))

for shape in bucket fixed sliding; do
	admin POST /__admin/reset >/dev/null
	admin POST /__admin/config "{\"rate_limit\": 15, \"limiter\": \"$shape\", \"page_size\": $page_size}" >/dev/null
	for i in $(seq 1 $sessions); do
		psqlc -c "SELECT count(*) FROM subscribers" >"$work/$shape.$i" 2>&1 &
	done
	wait
	for i in $(seq 1 $sessions); do
		[ "$(cat "$work/$shape.$i")" = "$expected" ] || problem "$shape: session $i returned $(head -c 300 "$work/$shape.$i"), not $expected rows"
	done
	read -r n429 nall <<<"$(admin GET /__admin/requests \
		| python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(sum(1 for e in r if e["status"] == 429), len(r))')"
	printf 'shared_limiter_shapes: %s: %d sessions, %s requests, %s answered 429\n' "$shape" $sessions "$nall" "$n429"
	[ "$nall" -ge $((sessions * 40)) ] || problem "$shape: only $nall requests: the sessions did not scan 40 pages each"
	[ $((n429 * 100)) -le "$nall" ] || problem "$shape: $n429 of $nall requests answered 429, more than 1%"
done
exit $status
