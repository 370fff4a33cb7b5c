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
set -u
: "${PS_MOCK_URL:?}" "${PG_CONFIG:?}"
bindir=$("$PG_CONFIG" --bindir)
db=ps_limiter_shapes
sessions=8
t=$(mktemp -d /tmp/postscript_fdw.shapes.XXXXXX)
trap '"$bindir/dropdb" --if-exists $db 2>/dev/null; curl -s -o /dev/null -X POST "$PS_MOCK_URL/__admin/reset"; rm -rf "$t"' EXIT
status=0
problem() { printf 'shared_limiter_shapes: %s\n' "$*"; status=1; }
psqlc() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -At -d $db "$@"; }
admin() { curl -sS -o /dev/null -X POST ${2:+-H 'Content-Type: application/json' --data-binary "$2"} "$PS_MOCK_URL/__admin/$1"; }

case ",$("$bindir/psql" -X -At -d postgres -c 'SHOW shared_preload_libraries')," in
*,postscript_fdw,*) ;;
*) problem "the cluster does not preload postscript_fdw"; exit 1 ;;
esac

"$bindir/dropdb" --if-exists $db 2>/dev/null
"$bindir/createdb" $db || exit 1
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER shapes FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', max_retries '20', max_retry_wait '120');
CREATE USER MAPPING FOR CURRENT_USER SERVER shapes OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE subscribers (id text) SERVER shapes OPTIONS (resource 'subscribers');
SQL

admin reset
expected=$(curl -sS "$PS_MOCK_URL/__admin/summary" | python3 -c 'import json,sys; print({r["resource"]: r["count"] for r in json.load(sys.stdin)["summary"]}["subscribers"])')
page_size=$(( (expected + 39) / 40 ))

for shape in bucket fixed sliding; do
	admin reset
	admin config "{\"rate_limit\": 15, \"limiter\": \"$shape\", \"page_size\": $page_size}"
	for i in $(seq 1 $sessions); do
		psqlc -c "SELECT count(*) FROM subscribers" >"$t/$shape.$i" 2>&1 &
	done
	wait
	for i in $(seq 1 $sessions); do
		[ "$(cat "$t/$shape.$i")" = "$expected" ] || problem "$shape: session $i returned $(head -c 300 "$t/$shape.$i"), not $expected rows"
	done
	read -r n429 nall <<<"$(curl -sS "$PS_MOCK_URL/__admin/requests" \
		| python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(sum(1 for e in r if e["status"] == 429), len(r))')"
	printf 'shared_limiter_shapes: %s: %d sessions, %s requests, %s answered 429\n' "$shape" $sessions "$nall" "$n429"
	[ "$nall" -ge $((sessions * 40)) ] || problem "$shape: only $nall requests: the sessions did not scan 40 pages each"
	[ $((n429 * 100)) -le "$nall" ] || problem "$shape: $n429 of $nall requests answered 429, more than 1%"
done
exit $status
