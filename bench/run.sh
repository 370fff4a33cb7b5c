#!/usr/bin/env bash
# The benchmark of issue 6, one command, as root on a fresh Debian 12 machine:
#
#   bash bench/run.sh            # the full run (about 15 minutes)
#   bash bench/run.sh --quick    # a smoke run with small data sets (a few minutes)
#   options: --limiter bucket|fixed|sliding (default: each in turn),
#            --jitter-ms N (default 20), --rate-only (scenario 1 alone),
#            --writes-only (scenario 5 alone)
#
# It installs what is missing (plus postgresql-plpython3-15), builds and
# installs the extension, starts a throwaway cluster (the library preloaded:
# one rate-limit state per token for all backends) and, per scenario, the
# local Postscript API server, then reports:
#   1. rate limit, per limiter shape of the server (token bucket, fixed
#      one-second windows, sliding one-second window), 15 requests/s, 100 ms
#      latency with +-jitter: a 200-page scan against the ideal 200/15 s (then
#      with read_in_groups 'true', and the PL/Python peer's), four sessions sharing one token (50 pages each)
#      against 200/15 s, eight sessions sharing one token (25 pages each);
#      every time the share of requests the server answered 429;
#   2. CPU-bound scan: 1M subscribers, no latency, no limit: backend CPU time
#      per row and rows/s;
#   3. peak backend memory (VmHWM) during the 1M scan;
#   4. each scan done with a PL/Python function paging the API with urllib,
#      in the same run, and the ratios;
#   5. writes at commit: WRITES events (distinct subscribers) committed at
#      once, the server 15/s (sliding window) 100 ms and 300 ms away, with
#      max_concurrency 1 (one write after the other) and the default 8,
#      against the ideal WRITES/15 s.
# Figures go to stdout and to bench/results.txt.  Not part of CI.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

CPU_N=1000000
PAGE=100
RATE_PAGES=200
LIMITERS="bucket fixed sliding"
JITTER=20
RATE_ONLY=0
WRITES_ONLY=0
WRITES=150
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) CPU_N=20000 RATE_PAGES=40 ;;
	--limiter) LIMITERS=$2; shift ;;
	--jitter-ms) JITTER=$2; shift ;;
	--rate-only) RATE_ONLY=1 ;;
	--writes-only) WRITES_ONLY=1 ;;
	*) ps_die "unknown option $1" ;;
	esac
	shift
done
OUT="$PS_ROOT/bench/results.txt"

ps_setup_traps
ps_take_lock
ps_install_deps postgresql-plpython3-15
ps_build_install
ps_start_cluster -c shared_buffers=128MB -c shared_preload_libraries=postscript_fdw -c max_connections=30

# FDW query and the PL/Python one read the same columns, typed
FDW_Q="SELECT count(ps_id) + 0 * (count(email) + count(phone_number) + count(updated_at)
        + count(tags) + count(properties) + count(promotional_can_send)) FROM ps.subscribers"
PY_Q="SELECT count((j->>'ps_id')::bigint) + 0 * (count(j->>'email') + count(j->>'phone_number')
        + count((j->>'updated_at')::timestamptz) + count(j->'tags') + count(j->'properties')
        + count((j#>>'{subscriptions,promotional,can_send}')::boolean))
        FROM py_subscribers(current_setting('bench.url'), 'sk_test_shop_key') j"

# prepare a database against the current local API server; $1: the FDW's
# client-side rate_limit (15, the default, or 0 where the server has none)
prepare_db() {
	psql -X -q -v ON_ERROR_STOP=1 -d postgres <<-SQL >/dev/null || ps_die "could not prepare the database"
		DROP DATABASE IF EXISTS bench;
		CREATE DATABASE bench;
		\c bench
		SET client_min_messages = warning;
		CREATE EXTENSION postscript_fdw;
		CREATE EXTENSION plpython3u;
		\i $PS_ROOT/bench/bench.sql
		CREATE SERVER ps FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '$1');
		CREATE USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (api_key 'sk_test_shop_key');
		CREATE SCHEMA ps;
		IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers, events) FROM SERVER ps INTO ps;
		ALTER DATABASE bench SET bench.url = '$PS_MOCK_URL';
	SQL
}

# measure LABEL QUERY: one fresh backend per measurement, so that its peak
# memory is the query's own; prints "rows wall_s cpu_s hwm_before hwm_after"
measure() {
	psql -X -qAt -F ' ' -v ON_ERROR_STOP=1 -d bench \
		-c "SELECT rows, wall_s, cpu_s, hwm_before_kb, hwm_after_kb FROM bench_measure('$1', \$q\$$2\$q\$)" \
		|| ps_die "$1 failed"
}

# "answered-429 all" of the server's log since the last reset
requests_429() {
	curl -s "$PS_MOCK_URL/__admin/requests" \
		| python3 -c 'import json,sys; r=json.load(sys.stdin)["requests"]; print(sum(1 for e in r if e["status"] == 429), len(r))'
}
# every limiter of the server empty, its request log too
fresh() { sleep 1.2; ps_mock_admin reset; }
ratio() { python3 -c "print(round($1 / $2, 3))"; }
pct() { python3 -c "print(round(100.0 * $1 / max($2, 1), 1))"; }

# sessions N: on a server emptied of requests, N sessions scan
# ps.subscribers at once (RATE_PAGES / N pages each), sharing one token;
# prints "wall_s rows_of_each answered_429 all_requests", wall from the
# first query's start to the last one's end
sessions() {
	local n=$1 i
	ps_log "scenario 1, $mode: $n sessions of $((RATE_PAGES / n)) pages"
	fresh
	ps_mock_admin config "{\"page_size\": $((PAGE * n))}"
	for i in $(seq 1 "$n"); do
		psql -X -qAt -F ' ' -d bench -c "SELECT t0, t1, rows FROM bench_span('SELECT count(*) FROM ps.subscribers')" \
			>"$PS_WORK/session.$i" 2>&1 &
	done
	wait
	for i in $(seq 1 "$n"); do cat "$PS_WORK/session.$i"; done | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
try:
    spans = [(float(a), float(b), c) for a, b, c in rows]
    print(round(max(s[1] for s in spans) - min(s[0] for s in spans), 2), ",".join(s[2] for s in spans), end=" ")
except ValueError:
    print("0 failed:" + "|".join(" ".join(r) for r in rows)[:200].replace(" ", "_"), end=" ")
'
	requests_429
}

report() { printf '%s\n' "$*" | tee -a "$OUT"; }
: >"$OUT"
report "postscript_fdw benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
report ""

# commit_writes LATENCY_MS MAX_CONCURRENCY: on a server emptied of requests,
# one autocommit INSERT of WRITES events; prints "wall_s answered_429 all"
commit_writes() {
	local t0 t1
	fresh
	ps_mock_admin config "{\"latency_ms\": $1}"
	psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (SET max_concurrency '$2')" || ps_die "ALTER SERVER failed"
	t0=$(date +%s.%N)
	psql -X -q -v ON_ERROR_STOP=1 -d bench \
		-c "INSERT INTO ps.events (type, email) SELECT 'bench', 'w' || i || '@example.com' FROM generate_series(1, $WRITES) i" \
		|| ps_die "the writes failed"
	t1=$(date +%s.%N)
	printf '%s ' "$(python3 -c "print(round($t1 - $t0, 2))")"
	requests_429
}

if [ "$WRITES_ONLY" = 0 ]; then
# ---------------------------------------------------------------- 1. rate limit
ideal=$(python3 -c "print(round($RATE_PAGES / 15, 2))")
report "1. rate limit: server 15 requests/s per token, 100 ms latency +-${JITTER} ms jitter; the client's rate_limit 15"
report "   ideal: $RATE_PAGES pages / 15 = ${ideal} s"
report "   | server's limiter | FDW scan / ideal | FDW 429s | the same, read_in_groups | 429s | PL/Python scan / ideal | PL/Python 429s | 4 sessions / ideal | 4 sessions 429s | 8 sessions 429s |"
report "   |---|---|---|---|---|---|---|---|---|---|"
for mode in $LIMITERS; do
	ps_start_mock --subscribers $((RATE_PAGES * PAGE)) --page-size "$PAGE" --rate-limit 15 \
		--latency-ms 100 --jitter-ms "$JITTER" --limiter "$mode"
	prepare_db 15
	ps_log "scenario 1, $mode: one scan of $RATE_PAGES pages"
	fresh
	read -r f_rows f_wall _ <<<"$(measure fdw_rate "$FDW_Q")"
	read -r f429 fall <<<"$(requests_429)"
	fresh
	psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (ADD read_in_groups 'true')" || ps_die "ALTER SERVER failed"
	read -r g_rows g_wall _ <<<"$(measure fdw_groups "$FDW_Q")"
	read -r g429 gall <<<"$(requests_429)"
	psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (DROP read_in_groups)" || ps_die "ALTER SERVER failed"
	[ "$f_rows" = "$g_rows" ] || ps_die "$mode: the FDW counted $f_rows rows, $g_rows in groups"
	fresh
	read -r p_rows p_wall _ <<<"$(measure py_rate "$PY_Q")"
	read -r p429 pall <<<"$(requests_429)"
	[ "$f_rows" = "$p_rows" ] || ps_die "$mode: the FDW counted $f_rows rows, PL/Python $p_rows"

	read -r s4_wall s4_rows s4_429 s4_all <<<"$(sessions 4)"
	read -r s8_wall s8_rows s8_429 s8_all <<<"$(sessions 8)"
	ps_stop_mock
	ps_log "$mode: 4 sessions counted $s4_rows, 8 sessions $s8_rows rows"
	report "   | $mode | $(ratio "$f_wall" "$ideal")x ($f_wall s) | $f429 of $fall ($(pct "$f429" "$fall") %) | $(ratio "$g_wall" "$ideal")x ($g_wall s) | $g429 of $gall | $(ratio "$p_wall" "$ideal")x ($p_wall s) | $p429 of $pall | $(ratio "$s4_wall" "$(python3 -c "print(round(($s4_all - $s4_429) / 15, 2))")")x ($s4_wall s for $((s4_all - s4_429)) pages) | $s4_429 of $s4_all ($(pct "$s4_429" "$s4_all") %) | $s8_429 of $s8_all ($(pct "$s8_429" "$s8_all") %), $s8_wall s |"
done
report ""
[ "$RATE_ONLY" = 1 ] && { ps_log "figures written to $OUT"; exit 0; }

# ---------------------------------------------------------------- 2+3. CPU and memory
# no rate limit: these scenarios measure CPU and memory, not pacing
ps_start_mock --subscribers "$CPU_N" --page-size "$PAGE" --rate-limit 0
prepare_db 0
ps_log "scenario 2: $CPU_N subscribers, no latency, no limit"
read -r f_rows f_wall f_cpu f_h0 f_h1 <<<"$(measure fdw_cpu "$FDW_Q")"
read -r p_rows p_wall p_cpu p_h0 p_h1 <<<"$(measure py_cpu "$PY_Q")"
ps_stop_mock
per_row() { python3 -c "print(round($1 * 1e6 / max($2, 1), 2))"; }
rps() { python3 -c "print(int($1 / max($2, 0.001)))"; }
report "2. CPU-bound full scan, $CPU_N subscribers ($PAGE per page), no latency, no limit"
report "   postscript_fdw : rows $f_rows, ${f_wall} s wall, $(rps "$f_rows" "$f_wall") rows/s, backend CPU ${f_cpu} s = $(per_row "$f_cpu" "$f_rows") us/row"
report "   PL/Python      : rows $p_rows, ${p_wall} s wall, $(rps "$p_rows" "$p_wall") rows/s, backend CPU ${p_cpu} s = $(per_row "$p_cpu" "$p_rows") us/row"
report "   PL/Python / postscript_fdw: wall $(python3 -c "print(round($p_wall / max($f_wall, 0.01), 2))"), backend CPU per row $(python3 -c "print(round($p_cpu / max($f_cpu, 0.01), 2))")"
report "   (the local API server runs on the same 2 cores: rows/s is bounded by how fast it renders pages)"
report ""
report "3. backend peak memory (VmHWM) during the $CPU_N-row scan"
report "   postscript_fdw : ${f_h0} kB before, ${f_h1} kB peak (+$((f_h1 - f_h0)) kB)"
report "   PL/Python      : ${p_h0} kB before, ${p_h1} kB peak (+$((p_h1 - p_h0)) kB)"
report ""
fi

# ---------------------------------------------------------------- 5. writes at commit
ps_start_mock --subscribers 1000 --page-size "$PAGE" --rate-limit 15 --jitter-ms "$JITTER" --limiter sliding
prepare_db 15
psql -X -q -d bench -c "ALTER SERVER ps OPTIONS (ADD max_concurrency '8')" || ps_die "ALTER SERVER failed"
ideal=$(python3 -c "print(round($WRITES / 15, 2))")
report "5. writes at commit: $WRITES events committed at once, server 15 requests/s (sliding window) +-${JITTER} ms jitter; the client's rate_limit 15"
report "   ideal: $WRITES / 15 = ${ideal} s"
report "   | latency | max_concurrency 1 / ideal | 429s | max_concurrency 8 / ideal | 429s |"
report "   |---|---|---|---|---|"
for latency in 100 300; do
	ps_log "scenario 5: $WRITES events, $latency ms away"
	read -r w1 w1_429 w1_all <<<"$(commit_writes "$latency" 1)"
	read -r w8 w8_429 w8_all <<<"$(commit_writes "$latency" 8)"
	report "   | $latency ms | $(ratio "$w1" "$ideal")x ($w1 s) | $w1_429 of $w1_all | $(ratio "$w8" "$ideal")x ($w8 s) | $w8_429 of $w8_all |"
done
ps_stop_mock
ps_log "figures written to $OUT"
