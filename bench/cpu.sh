#!/usr/bin/env bash
# The scan path's CPU and memory (issue 14, CPU part; issue 20, memory), one
# command, as root on a Debian 12 machine:
#
#   bash bench/cpu.sh            # 100k subscribers, 5 measured scans, memory 100k vs 1M
#   bash bench/cpu.sh --perf     # the same, plus a perf profile of one scan (top 25)
#
# It installs what is missing, builds and installs the extension, starts a
# throwaway cluster and the local API server with 100,000 subscribers
# (~520-byte records, 100 per page), no latency, no rate limit, then reports:
#   1. backend CPU per row of a full scan reading the 7 columns of
#      bench/run.sh's CPU scenario, then every column (SELECT s), from
#      /proc/self/schedstat before and after (nanoseconds): the best and the
#      median of 5 scans, each in a fresh backend after a warm-up scan; pages
#      gzip'd (as the server sends them when asked), then not compressed;
#   2. with --perf: `perf record -g` on the backend during one more scan,
#      and the 25 symbols with the most samples (self time);
#   3. peak backend memory (VmHWM growth) scanning 100 pages and then 1,000
#      pages of 1,000 copies of one ~600-byte subscriber (the server's
#      huge_page fault): 100k and 1M rows; the peak may not grow with rows;
#   4. the same pages from a static server (nginx, installed if missing):
#      the local server's pages written to files once, as it sends them,
#      gzip'd and not, then served by nginx (gzip_static).  The local server
#      is Python and takes ~4 ms a page; the backend is done with one in
#      ~0.3 ms and sleeps until the next, and every sleep and wake costs it
#      CPU and leaves its caches cold.  nginx keeps up, so this is the
#      backend's own cost per row (best and median of 5 scans, 7 columns,
#      every column, count(*)); then 10,000 rows at rate_limit 15, the pace
#      of a real scan, where every page starts cold (best and median of 3),
#      and the same with read_in_groups 'true' (a wake a group of pages);
#   5. the local server with 100 ms +-20 ms latency a request, as
#      bench/run.sh's limiter benchmark runs it: 20,000 rows with no limit
#      (max_concurrency pages in flight; best and median of 5), then 10,000
#      rows at 15 requests/s, a sliding window on both sides (of 3), then
#      with read_in_groups 'true';
#   0. and 6. (first and last) what a sleep costs on this machine at the
#      time (bench/coldprobe.c): the CPU time of touching 256 kB four times,
#      warm and right after a 20 ms sleep.  The figures that include the
#      backend's waits for pages (the local server's, the paced one) move
#      with it; nginx's unpaced ones, where the backend never waits, do not.
# Figures go to stdout and to bench/cpu-results.txt.  Not part of CI.
# bench/run.sh holds the rate-limited and PL/Python comparisons.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

N=100000
PERF=0
[ "${1:-}" = "--perf" ] && PERF=1
OUT="$PS_ROOT/bench/cpu-results.txt"

ps_setup_traps
ps_take_lock
[ $PERF = 1 ] && ps_install_deps linux-perf
ps_build_install
ps_start_cluster -c shared_buffers=128MB
# no rate limit: CPU per row is measured (section 5 turns it on)
ps_start_mock --subscribers "$N" --page-size 100 --rate-limit 0

# bench.sql's measuring functions, without its PL/Python peer (run.sh's)
sed '/^-- What a user would write/,$d' "$PS_ROOT/bench/bench.sql" >"$PS_WORK/bench_measure.sql"
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || ps_die "could not prepare the database"
DROP DATABASE IF EXISTS bench;
CREATE DATABASE bench;
\c bench
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
\i $PS_WORK/bench_measure.sql
CREATE SERVER ps FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers) FROM SERVER ps INTO ps;
SQL

# the columns of bench/run.sh's CPU scenario, and then every column
Q_SOME='SELECT count(ROW(ps_id, email, phone_number, updated_at, tags, properties, promotional_can_send)) FROM ps.subscribers'
Q_ALL='SELECT count(s) FROM ps.subscribers s'
report() { printf '%s\n' "$*" | tee -a "$OUT"; }
: >"$OUT"
report "postscript_fdw scan-path benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git -C "$PS_ROOT" rev-parse --short HEAD)"

# ---------------------------------------------------------------- 0. the machine
# what a sleep costs here (bench/coldprobe.c): the figures that include the
# backend's waits for pages move with it, so it is taken first and last
gcc -O2 -Wall -o "$PS_WORK/coldprobe" "$PS_ROOT/bench/coldprobe.c" || ps_die "could not build bench/coldprobe.c"
machine() {
	local out warm cold
	out=$("$PS_WORK/coldprobe" 256 20) || ps_die "bench/coldprobe.c failed"
	read -r warm cold <<<"$out"
	report "$1 the machine: touching 256 kB four times costs $warm us of CPU warm, $cold us after a 20 ms sleep"
}
machine "0."

# ---------------------------------------------------------------- 1. CPU per row
# cpu_per_row QUERY [SCANS]: SCANS measured scans (5, odd), each in a fresh
# backend after a warm-up scan of the same query in it (the first scan of a
# backend pays for loading the library, the connection and the caches);
# prints "rows best_us median_us", nothing and a failure if a scan failed.
# On this virtual machine one backend can stay slower or faster than the
# next for much of its life (why is not known), so one backend's scans
# are not counted as five.
cpu_per_row() {
	local k=${2:-5} i
	for i in $(seq 1 "$k"); do
		printf 'SELECT count(*) FROM bench_measure(%s, $q$%s$q$);\nSELECT rows, cpu_s FROM bench_measure(%s, $q$%s$q$);\n' \
			"'warm-up'" "$1" "'scan'" "$1" | psql -X -qAt -F ' ' -v ON_ERROR_STOP=1 -d bench | tail -n 1
	done | sort -n -k 2 | awk -v k="$k" '
		NF == 2 { r = $1; us[++n] = $2 * 1e6 / $1 }
		END { if (n != k) exit 1; printf "%d %.2f %.2f\n", r, us[1], us[(k + 1) / 2] }'
}
# measure LABEL QUERY [SCANS]: one line of the report
measure() {
	local out rows best median
	out=$(cpu_per_row "$2" "${3:-5}") || ps_die "a measured scan failed: $2"
	read -r rows best median <<<"$out"
	report "$(printf "$1" "$rows"): best $best us, median $median us"
}
report "1. backend CPU per row of a full scan, no latency, no limit (best and median of 5 scans, a backend each)"
measure "   %s rows, 7 columns (bench/run.sh's)" "$Q_SOME"
measure "   %s rows, every column (SELECT s)   " "$Q_ALL"
# the same pages, not compressed (the server's gzip switch)
ps_mock_admin config '{"gzip": 0}'
measure "   not compressed, 7 columns              " "$Q_SOME"
measure "   not compressed, every column           " "$Q_ALL"
ps_mock_admin reset

# ---------------------------------------------------------------- 2. profile
if [ $PERF = 1 ]; then
	data="$PS_WORK/perf.data"
	pidfile=/tmp/postscript_fdw.bench.$$.pid
	rm -f "$pidfile"
	psql -X -qAt -d bench -c "COPY (SELECT pg_backend_pid()) TO '$pidfile'" \
		-c "SELECT pg_sleep(1)" -c "$Q_SOME" -c "$Q_SOME" >/dev/null &
	psql_pid=$!
	for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
	perf record -q -g -o "$data" -p "$(cat "$pidfile")" 2>/dev/null &
	perf_pid=$!
	wait "$psql_pid"
	kill -INT "$perf_pid" 2>/dev/null
	wait "$perf_pid" 2>/dev/null
	rm -f "$pidfile"
	report "2. perf profile of two scans of the 7 columns (self time, top 25)"
	perf report -i "$data" --stdio --no-children --sort symbol,dso 2>/dev/null \
		| grep -E '^ +[0-9.]+%' | head -n 25 | sed 's/^/   /' | tee -a "$OUT"
fi

# ---------------------------------------------------------------- 3. memory
sub='{"id": "s_NVsTxUqLKdK3dSt3eOk5", "ps_id": 1000, "phone_number": "+16173234567", "email": "eve.garcia0@example.co.uk", "shopify_customer_id": 6000000000000, "tags": ["VIP", "tea"], "properties": {"has_purchased": false, "days_since_purchase": 8, "categories": ["Tea & Coffee"], "birthday": "1980-11-12", "first_name": "Eve", "last_name": "Garcia", "city": "S\u00e3o Paulo"}, "subscriptions": {"promotional": {"can_send": true}, "transactional": {"can_send": true}}, "data": {"source": "popup"}, "created_at": "2022-01-01T00:40:10Z", "updated_at": "2022-01-06T12:40:10Z"}'
subjs=$(printf '%s' "$sub" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
peak_kb() {
	ps_mock_admin reset
	ps_mock_admin faults \
		"{\"kind\": \"huge_page\", \"path\": \"/api/v2/subscribers\", \"records\": 1000, \"total_pages\": $1, \"count\": $1, \"record\": $subjs}"
	psql -X -qAt -d bench <<SQL | tail -n 1
SELECT count(*) FROM bench_measure('warm-up', 'SELECT 1::bigint');
COPY (SELECT 5) TO '/proc/self/clear_refs';
SELECT rows || ' ' || (hwm_after_kb - hwm_before_kb) FROM bench_measure('scan', \$q\$$Q_ALL\$q\$);
SQL
}
read -r r1 m1 <<<"$(peak_kb 100)"
read -r r2 m2 <<<"$(peak_kb 1000)"
report "3. backend peak memory growth (VmHWM), ~600-byte subscribers, 1,000 per page"
report "   $r1 rows: +$m1 kB; $r2 rows: +$m2 kB"

# ---------------------------------------------------------------- 4. a static server
ps_mock_admin reset
if ! command -v nginx >/dev/null; then
	# the package starts its own service on install: not on this machine
	made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	ps_install_deps nginx-light
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi
static="$PS_WORK/static"
mkdir -p "$static/p" "$static/tmp"
pages=$((N / 100 + 1))
ps_log "writing $pages pages of the local server to files"
for i in $(seq 1 "$pages"); do
	u="$PS_MOCK_URL/api/v2/subscribers?page=$i"
	curl -sS -f -H 'Authorization: Bearer sk_test_shop_key' -o "$static/p/$i.json" "$u" &&
		curl -sS -f -H 'Authorization: Bearer sk_test_shop_key' -H 'Accept-Encoding: gzip' \
			-o "$static/p/$i.json.gz" "$u" || ps_die "could not fetch page $i"
done
chmod -R a+rX "$static"
static_port=$(ps_free_port)
cat >"$static/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $static/nginx.pid;
error_log $static/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $static/tmp;
	proxy_temp_path $static/tmp;
	fastcgi_temp_path $static/tmp;
	uwsgi_temp_path $static/tmp;
	scgi_temp_path $static/tmp;
	keepalive_requests 1000000;
	default_type application/json;
	gzip_static on;
	server {
		listen 127.0.0.1:$static_port;
		root $static;
		location = /api/v2/subscribers { try_files /p/\$arg_page.json =404; }
	}
}
CONF
nginx -c "$static/nginx.conf" -e "$static/error.log" &
nginx_pid=$!
trap 'rc=$?; kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null; (exit $rc); ps_cleanup' EXIT
for _ in $(seq 1 50); do
	curl -s -o /dev/null "http://127.0.0.1:$static_port/api/v2/subscribers?page=1" && break
	sleep 0.1
done
psql -X -q -v ON_ERROR_STOP=1 -d bench <<SQL >/dev/null || ps_die "could not point a server at nginx"
CREATE SERVER ps_static FOREIGN DATA WRAPPER postscript_fdw
	OPTIONS (api_url 'http://127.0.0.1:$static_port', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_static OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps_static;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers) FROM SERVER ps_static INTO ps_static;
SQL
report "4. the same pages from nginx (gzip'd), backend CPU per row (best and median)"
measure "   %s rows, 7 columns, no limit    " "${Q_SOME/ps./ps_static.}"
measure "   %s rows, every column, no limit " "${Q_ALL/ps./ps_static.}"
measure "   %s rows, count(*), no limit     " "SELECT count(*) FROM ps_static.subscribers"
psql -X -q -d bench -c "ALTER SERVER ps_static OPTIONS (SET rate_limit '15')" >/dev/null
Q_PACED="SELECT count(ROW(ps_id, email, phone_number, updated_at, tags, properties, promotional_can_send)) FROM (SELECT * FROM ps_static.subscribers LIMIT 10000) s"
measure "   %s rows, 7 columns, rate_limit 15" "$Q_PACED" 3
psql -X -q -d bench -c "ALTER SERVER ps_static OPTIONS (ADD read_in_groups 'true')" >/dev/null
measure "   %s rows, 7 columns, rate_limit 15, read_in_groups" "$Q_PACED" 3

# ---------------------------------------------------------------- 5. latency
# the local server as bench/run.sh's limiter benchmark runs it: every
# request 100 ms +-20 ms, with no limit (max_concurrency pages in flight),
# then 15 requests/s counted in a sliding window on both sides
ps_mock_admin config '{"latency_ms": 100, "jitter_ms": 20}'
report "5. the local server with 100 ms +-20 ms latency, backend CPU per row (best and median)"
Q_LAT="SELECT count(ROW(ps_id, email, phone_number, updated_at, tags, properties, promotional_can_send)) FROM (SELECT * FROM ps.subscribers LIMIT %d) s"
measure "   %s rows, 7 columns, no limit     " "$(printf "$Q_LAT" 20000)"
ps_mock_admin config '{"rate_limit": 15, "limiter": "sliding"}'
psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (SET rate_limit '15')" >/dev/null
measure "   %s rows, 7 columns, rate_limit 15" "$(printf "$Q_LAT" 10000)" 3
psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (ADD read_in_groups 'true')" >/dev/null
measure "   %s rows, 7 columns, rate_limit 15, read_in_groups" "$(printf "$Q_LAT" 10000)" 3
machine "6."
ps_log "figures written to $OUT"
