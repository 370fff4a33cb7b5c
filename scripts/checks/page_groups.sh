#!/usr/bin/env bash
# With read_in_groups, a scan held by the rate limit reads its pages in
# groups (src/http.c, run_multi; docs/design.md, "Pages in groups").
#
# Against the local API server at 15 requests/s (a sliding one-second
# window), a scan of 30 pages with read_in_groups 'true' (and the default
# rate_burst 5): every row comes, the server answers no 429, and the
# backend's DEBUG1 lines show at least one wake that read two or more
# connections together after waiting for a group of requests to go.  The
# same scan without the option (the default): every row, and no such wake.
#
# Why this does not depend on timing: 30 pages take at least two seconds at
# 15/s, and the one-second window holds only the scan's own requests (its
# first page carries the scan's mark too), so once the burst is spent it
# starts them three at a time and leaves the answers unread until the next
# three may go: whatever arrived meanwhile (the local server answers at
# once) is read in one wake.  A loaded machine only makes the groups later.
#
# Needs the environment of scripts/test.sh: PGHOST/PGPORT/PGUSER (a
# superuser), PS_MOCK_URL, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" page_groups
db=ps_page_groups
fresh_db $db
at_exit 'admin POST /__admin/reset >/dev/null; admin POST /__admin/config "{\"rate_limit\": 0}" >/dev/null'
psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER grouped FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', shared_rate_limit 'false', read_in_groups 'true');
CREATE SERVER single FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '15', shared_rate_limit 'false');
CREATE USER MAPPING FOR CURRENT_USER SERVER grouped OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER single OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE grouped_subscribers (id text) SERVER grouped OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE single_subscribers (id text) SERVER single OPTIONS (resource 'subscribers');
SQL

admin POST /__admin/reset >/dev/null
expected=$(admin GET /__admin/summary | python3 -c 'import json,sys; print({r["resource"]: r["count"] for r in json.load(sys.stdin)["summary"]}["subscribers"])')
page_size=$(( (expected + 29) / 30 ))
admin POST /__admin/config "{\"rate_limit\": 15, \"limiter\": \"sliding\", \"page_size\": $page_size}" >/dev/null

# scan TABLE: the row count on stdout, the DEBUG1 lines in $work/TABLE.log
scan() {
	psqlc -c "SET client_min_messages = debug1" -c "SELECT count(*) FROM $1" 2>"$work/$1.log"
}
# the largest number of connections one wake read together
most_together() {
	sed -n 's/.*postscript_fdw: \([0-9]*\) connections read together.*/\1/p' "$work/$1.log" | sort -n | tail -n 1
}

for table in grouped_subscribers single_subscribers; do
	admin POST /__admin/reset >/dev/null
	admin POST /__admin/config "{\"rate_limit\": 15, \"limiter\": \"sliding\", \"page_size\": $page_size}" >/dev/null
	got=$(scan $table)
	[ "$got" = "$expected" ] || problem "$table: the scan returned $(head -c 300 <<<"$got") $(grep -m1 ERROR "$work/$table.log"), not $expected rows"
	read -r n429 nall <<<"$(admin GET /__admin/requests \
		| python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(sum(1 for e in r if e["status"] == 429), len(r))')"
	most=$(most_together $table)
	printf 'page_groups: %s: %s requests, %s answered 429, at most %s connections read in one wake after a group wait\n' \
		"$table" "$nall" "$n429" "${most:-no}"
	[ "$n429" -eq 0 ] || problem "$table: $n429 of $nall requests answered 429"
	case $table in
	grouped_*) [ "${most:-0}" -ge 2 ] || problem "$table: no wake read two or more connections after a group wait" ;;
	single_*) [ -z "$most" ] || problem "$table: without read_in_groups it waited for a group ($most connections read together)" ;;
	esac
done
exit $status
