#!/usr/bin/env bash
# One rate-limit bucket per token for all backends (src/ratelimit.c).
#
# The local API server allows 15 requests/s per token.  Three sessions scan
# 20 pages each at the same time with the same token:
#   1. on a server with the shared bucket (the default when the library is
#      preloaded, as scripts/test.sh does): together they keep to 15/s, so the
#      API sends no 429 at all, and the scans take at least 60/15 - burst s;
#   2. on a server with shared_rate_limit 'false' (a bucket per backend): each
#      session paces itself alone, together they go over the limit and the API
#      answers 429s (which are retried) - what the shared bucket prevents.
# Both runs must return every row in every session.
#
# Needs the environment of scripts/test.sh (a cluster with
# shared_preload_libraries = postscript_fdw, PS_MOCK_URL, PG_CONFIG).
. "$(dirname "$0")/../checklib.sh" shared_rate_limit
db=ps_shared_rl
need_preload
fresh_db $db
at_exit 'admin POST /__admin/config "{\"rate_limit\": 0}" >/dev/null'
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER shared FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', rate_burst '5', max_retries '20', max_retry_wait '120');
CREATE SERVER local FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', rate_burst '5', max_retries '20', max_retry_wait '120',
           shared_rate_limit 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER shared OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER local OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE shared_subscribers (id text) SERVER shared OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE local_subscribers (id text) SERVER local OPTIONS (resource 'subscribers');
SQL

# run: three sessions at once; prints "rows429 seconds" and each session's count
run() {
	local table=$1 i start end
	admin POST /__admin/reset >/dev/null
	admin POST /__admin/config '{"rate_limit": 15}' >/dev/null
	sleep 1.2   # the server's bucket full again
	start=$(date +%s.%N)
	for i in 1 2 3; do
		psqlc -c "SELECT count(*) FROM $table" >"$work/$table.$i" 2>&1 &
	done
	wait
	end=$(date +%s.%N)
	admin GET /__admin/requests \
		| python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(sum(1 for e in r if e["status"] == 429), len(r))' \
		>"$work/$table.log"
	echo "$(cat "$work/$table.log") $(python3 -c "print(round($end - $start, 2))")"
}

expected=$(admin GET /__admin/summary | python3 -c 'import json,sys; print({r["resource"]: r["count"] for r in json.load(sys.stdin)["summary"]}["subscribers"])')

read -r s429 sreq ssec <<<"$(run shared_subscribers)"
read -r l429 lreq lsec <<<"$(run local_subscribers)"
for table in shared_subscribers local_subscribers; do
	for i in 1 2 3; do
		[ "$(cat "$work/$table.$i")" = "$expected" ] || problem "$table session $i returned $(cat "$work/$table.$i"), not $expected rows"
	done
done
printf 'shared_rate_limit: shared bucket: %s requests, %s answered 429, %s s; per-backend buckets: %s requests, %s answered 429, %s s\n' \
	"$sreq" "$s429" "$ssec" "$lreq" "$l429" "$lsec"
[ "$s429" = 0 ] || problem "with the shared bucket the API still answered 429 $s429 times"
python3 -c "import sys; sys.exit(0 if $ssec >= ($sreq - 5) / 15.0 - 0.5 else 1)" \
	|| problem "the shared bucket let $sreq requests through in $ssec s, faster than 15/s"
[ "$l429" -gt 0 ] || problem "without sharing, three sessions at 15/s each drew no 429: the check proves nothing"
exit $status
