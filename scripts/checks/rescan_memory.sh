#!/usr/bin/env bash
# A backend's memory stays flat while a parameterized foreign scan is
# rescanned: what a rescan rebuilds (the query string, the ids to fetch)
# lives in a context that the next rescan resets, not in the query's memory.
#
# Two queries, each a nested loop over 10,000 local rows whose inner side is
# a foreign scan parameterized by the outer row:
#   filter  opt_outs by phone number: every tenth outer row has one (a
#           request, page 1 of ?phone_number__eq=...)
#   id      subscribers by id: every hundredth outer row has one (a
#           GET /api/v2/subscribers/{id})
# The other outer rows have NULL, which rules out every row before any
# request but still runs the query builder.  At outer rows 1,000 and 10,000
# the backend logs its own memory contexts (pg_log_backend_memory_contexts,
# handled at the scan's next CHECK_FOR_INTERRUPTS, while the query runs);
# the growth of its grand total between the two is compared with a bound
# far below what 9,000 leaked query strings take (14 MB).  Sizes of memory
# contexts, not resident set sizes: the measure does not depend on malloc
# or on the machine's load.  The rows joined and the requests the local API
# server received are checked too (one per non-NULL outer row, none per
# NULL one).
#
# Needs the environment of scripts/test.sh: PGHOST/PGPORT/PGUSER (a
# superuser), PS_MOCK_URL, PS_PG_LOG, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" rescan_memory
: "${PS_PG_LOG:?}"
db=ps_rescan_memory
bound_kb=1024
fresh_db $db
admin POST /__admin/reset >/dev/null
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER api FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER api OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE opt_outs (id text, phone_number text)
  SERVER api OPTIONS (resource 'opt_outs');
CREATE FOREIGN TABLE subscribers (id text) SERVER api OPTIONS (resource 'subscribers');
CREATE TABLE keys AS
  SELECT k.n, k.phone, s.id AS sid
    FROM (SELECT row_number() OVER (ORDER BY phone_number) AS n, phone_number AS phone
            FROM opt_outs) k
    JOIN (SELECT row_number() OVER (ORDER BY id) AS n, id FROM subscribers) s USING (n);
-- in g order, which a sequential scan of a fresh small table keeps
CREATE TABLE outer_rows AS
  SELECT g,
         CASE WHEN g % 10 = 0 THEN (SELECT phone FROM keys WHERE n = (g / 10) % (SELECT count(*) FROM keys) + 1) END AS phone,
         CASE WHEN g % 100 = 0 THEN (SELECT sid FROM keys WHERE n = (g / 100) % (SELECT count(*) FROM keys) + 1) END AS sid
    FROM generate_series(1, 10000) g;
ANALYZE outer_rows;
SQL
settings="SET enable_hashjoin = off; SET enable_mergejoin = off;
SET enable_memoize = off; SET enable_material = off;"

# measure NAME OUTER_COLUMN JOIN REQUEST_RE: runs the nested loop of outer
# rows LEFT JOIN s ON JOIN, whose scan EXPLAIN must show as REQUEST_RE
measure() {
	local name=$1 col=$2 join=$3 request=$4 query plan want got out pid nonnull requests totals grown
	query="SELECT count(s.id) AS joined, count(o.logged) AS dumps
	  FROM (SELECT g, $col,
	               CASE WHEN g IN (1000, 10000)
	                    THEN pg_log_backend_memory_contexts(pg_backend_pid()) END AS logged
	          FROM outer_rows) o
	  LEFT JOIN $join"
	plan=$(psqlc -c "$settings EXPLAIN (COSTS OFF) $query")
	if ! grep -q 'Nested Loop Left Join' <<<"$plan" || ! grep -qE "Postscript Request: $request\$" <<<"$plan"; then
		problem "$name: not a nested loop over a parameterized scan:"
		printf '%s\n' "$plan"
		return
	fi
	want=$(psqlc -c "SELECT count(k.n) || '|2' FROM outer_rows o LEFT JOIN keys k ON k.$col = o.$col")
	nonnull=$(psqlc -c "SELECT count($col) FROM outer_rows")

	admin DELETE /__admin/requests >/dev/null
	logstart=$(($(stat -c %s "$PS_PG_LOG") + 1))
	out=$(psqlc -c "$settings" -c 'SELECT pg_backend_pid()' -c "$query")
	pid=$(head -n 1 <<<"$out")
	got=$(tail -n 1 <<<"$out")
	[ "$got" = "$want" ] || problem "$name: the join gave $got (rows joined|memory dumps), not $want"
	requests=$(admin GET "/__admin/requests?format=copy" | grep -c $'\tGET\t')
	[ "$requests" = "$nonnull" ] ||
		problem "$name: $requests requests for $nonnull outer rows with a key (one each, none for NULL)"

	# the dumps of this backend: after each "logging memory contexts of
	# PID", its ExecutorState line and its grand total
	totals=$(tail -c +"$logstart" "$PS_PG_LOG" | awk -v pid="$pid" '
		/logging memory contexts of PID / { mine = ($NF == pid); next }
		mine && /ExecutorState: / { sub(/.*ExecutorState: /, ""); executor = $1 }
		mine && /Grand total: / { sub(/.*Grand total: /, ""); print $1, executor; mine = 0 }')
	set -- $totals
	if [ $# != 4 ]; then
		problem "$name: expected two memory context dumps of PID $pid in the server log, found: ${totals:-none}"
		return
	fi
	grown=$((($3 - $1) / 1024))
	printf 'rescan_memory: %-6s backend memory %d kB after 1,000 rescans, %d kB after 10,000 (ExecutorState %d -> %d kB): grew %d kB (bound %d kB)\n' \
		"$name" $(($1 / 1024)) $(($3 / 1024)) $(($2 / 1024)) $(($4 / 1024)) "$grown" "$bound_kb"
	[ "$grown" -le "$bound_kb" ] ||
		problem "$name: 9,000 rescans grew the backend's memory by $grown kB, more than $bound_kb kB"
}

measure filter phone 'opt_outs s ON s.phone_number = o.phone' \
	'GET /api/v2/opt_outs\?phone_number__eq=[a-z_]+\.phone&page=1\.\.'
measure id sid 'subscribers s ON s.id = o.sid' \
	'GET /api/v2/subscribers/\{id\} for id = [a-z_]+\.sid'
exit $status
