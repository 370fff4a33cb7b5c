#!/usr/bin/env bash
# A backend's memory during a scan is bounded whatever the shape of the
# JSON (src/pagescan.c keeps only the values a query reads, per page).
#
# Each scenario runs in a fresh session: a small scan first (the extension,
# libcurl and the catalog caches loaded), then the peak resident size is
# reset (/proc/self/clear_refs), the scan under test runs, and the growth of
# the peak (VmHWM, from /proc/self/status, read by the backend itself) is
# compared with a bound.  The local API server's hostile modes make the
# shapes:
#   empty     5 pages of 4 MB, each ~1.3 million {} records
#   tiny      5 pages of 4 MB, each ~330,000 {"id": "s_123456"} records, ids read
#   endless   a chunked page that never ends, cut at max_response_size (16 MB)
#   deep      a record nesting 5,000 arrays in a jsonb column
#   flat      subscribers of ~600 bytes, 100 pages of 1,000 rows, then
#             1,000 pages (1 million rows): the peak may not grow with the rows
# Before the streaming scanner, two pages of {} took a backend to 1.1 GB.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, a
# superuser connection).
. "$(dirname "$0")/../checklib.sh" memory
db=ps_memory
fresh_db $db
at_exit 'admin POST /__admin/reset >/dev/null'
fault() { admin POST /__admin/faults "$1" >/dev/null; }

psqlc <<SQL || exit 1
CREATE EXTENSION postscript_fdw;
CREATE SERVER api FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0', max_json_depth '10000');
CREATE SERVER api16 FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0', max_response_size '16777216');
CREATE USER MAPPING FOR CURRENT_USER SERVER api OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER api16 OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript FROM SERVER api INTO ps;
CREATE FOREIGN TABLE endless_keywords (id text) SERVER api16 OPTIONS (resource 'keywords');
CREATE FOREIGN TABLE deep_keywords (id text, doc jsonb OPTIONS (field 'x'))
  SERVER api OPTIONS (resource 'keywords');
SQL

# peak growth in kB while running $1 (its errors are shown, not fatal)
peak() {
	psqlc -v ON_ERROR_STOP=0 <<SQL 2>&1 | tail -n 1
SELECT count(*) FROM ps.shop;
COPY (SELECT 5) TO '/proc/self/clear_refs';
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmRSS:\s*(\d+)') AS before \gset
$1;
SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s*(\d+)')::int - :before;
SQL
}

# bound NAME KB_USED KB_BOUND
bound() {
	case "$2" in
	'' | *[!0-9-]*) problem "$1: no measure ($2)"; return ;;
	esac
	printf 'memory: %-8s peak grew %6d kB (bound %d kB)\n' "$1" "$2" "$3"
	[ "$2" -le "$3" ] || problem "$1: the peak grew $2 kB, more than $3 kB"
}

curl -sS -o /dev/null -X POST "$PS_MOCK_URL/__admin/reset"
fault '{"kind": "huge_page", "path": "/api/v2/subscribers", "records": 1300000, "total_pages": 5, "count": 5}'
bound empty "$(peak 'SELECT count(*), count(id) FROM ps.subscribers')" 32768

rec=$(printf '{"id": "s_%06d"}' 1)
fault "{\"kind\": \"huge_page\", \"path\": \"/api/v2/subscribers\", \"records\": 330000, \"total_pages\": 5, \"count\": 5, \"record\": $(printf '%s' "$rec" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
bound tiny "$(peak 'SELECT count(DISTINCT id) FROM ps.subscribers')" 65536

fault '{"kind": "endless", "path": "/api/v2/keywords", "count": 1, "max_bytes": 1073741824}'
out=$(peak 'SELECT count(id) FROM endless_keywords')
bound endless "$out" 65536

deep=$(python3 -c 'print("{\"keywords\": [{\"id\": \"k\", \"x\": " + "[" * 5000 + "]" * 5000 + "}]}")')
fault "{\"kind\": \"body\", \"path\": \"/api/v2/keywords\", \"count\": 1, \"body\": $(printf '%s' "$deep" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
bound deep "$(peak 'SELECT jsonb_typeof(doc) FROM deep_keywords')" 16384

# a realistic subscriber, ~600 bytes
sub='{"id": "s_NVsTxUqLKdK3dSt3eOk5", "ps_id": 1000, "phone_number": "+16173234567", "email": "eve.garcia0@example.co.uk", "shopify_customer_id": 6000000000000, "tags": ["VIP", "tea"], "properties": {"has_purchased": false, "days_since_purchase": 8, "categories": ["Tea & Coffee"], "birthday": "1980-11-12", "first_name": "Eve", "last_name": "Garcia", "city": "S\u00e3o Paulo"}, "subscriptions": {"promotional": {"can_send": true}, "transactional": {"can_send": true}}, "data": {"source": "popup"}, "created_at": "2022-01-01T00:40:10Z", "updated_at": "2022-01-06T12:40:10Z"}'
subjs=$(printf '%s' "$sub" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
curl -sS -o /dev/null -X POST "$PS_MOCK_URL/__admin/reset"
fault "{\"kind\": \"huge_page\", \"path\": \"/api/v2/subscribers\", \"records\": 1000, \"total_pages\": 100, \"count\": 100, \"record\": $subjs}"
small=$(peak 'SELECT count(*), sum(length(email)), count(properties) FROM ps.subscribers')
bound flat100k "$small" 32768
fault "{\"kind\": \"huge_page\", \"path\": \"/api/v2/subscribers\", \"records\": 1000, \"total_pages\": 1000, \"count\": 1000, \"record\": $subjs}"
large=$(peak 'SELECT count(*), sum(length(email)), count(properties) FROM ps.subscribers')
bound flat1M "$large" 32768
case "$small$large" in
*[!0-9-]*) ;;
*) [ "$large" -le $((small + 8192)) ] || problem "1M rows took the peak $((large - small)) kB above 100k rows" ;;
esac
exit $status
