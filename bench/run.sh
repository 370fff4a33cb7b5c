#!/usr/bin/env bash
# The benchmark of issue 6, one command, as root on a fresh Debian 12 machine:
#
#   bash bench/run.sh            # the full run (about 10 minutes)
#   bash bench/run.sh --quick    # a smoke run with small data sets (under a minute)
#
# It installs what is missing (plus postgresql-plpython3-15), builds and
# installs the extension, starts a throwaway cluster and, per scenario, the
# local Postscript API server, then reports:
#   1. rate-limited scan: 100k subscribers, server limited to 15 requests/s
#      with 100 ms latency: wall time against the limit (pages / 15 s);
#   2. CPU-bound scan: 1M subscribers, no latency, no limit: backend CPU time
#      per row and rows/s;
#   3. peak backend memory (VmHWM) during the 1M scan;
#   4. each scan done with a PL/Python function paging the API with urllib,
#      in the same run, and the ratios.
# Figures go to stdout and to bench/results.txt.  Not part of CI.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

RATE_N=100000
CPU_N=1000000
PAGE=100
if [ "${1:-}" = "--quick" ]; then
	RATE_N=3000
	CPU_N=20000
fi
OUT="$PS_ROOT/bench/results.txt"

ps_setup_traps
ps_take_lock
ps_install_deps postgresql-plpython3-15
ps_build_install
ps_start_cluster -c shared_buffers=128MB

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
		IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers) FROM SERVER ps INTO ps;
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

requests_429() {
	curl -s "$PS_MOCK_URL/__admin/requests" \
		| python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["requests"] if r["status"] == 429))'
}

report() { printf '%s\n' "$*" | tee -a "$OUT"; }
: >"$OUT"
report "postscript_fdw benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
report ""

# ---------------------------------------------------------------- 1. rate limit
ps_start_mock --subscribers "$RATE_N" --page-size "$PAGE" --rate-limit 15 --latency-ms 100
prepare_db 15
pages=$(( (RATE_N + PAGE - 1) / PAGE ))
limit_s=$(python3 -c "print(round($pages / 15, 1))")
ps_log "scenario 1: $RATE_N subscribers, $pages pages, 15 requests/s, 100 ms latency"
read -r f_rows f_wall f_cpu _ _ <<<"$(measure fdw_rate "$FDW_Q")"
read -r p_rows p_wall p_cpu _ _ <<<"$(measure py_rate "$PY_Q")"
sum429=$(requests_429)
ps_stop_mock
report "1. full scan, $RATE_N subscribers = $pages pages; server: 15 requests/s, 100 ms latency"
report "   the limit allows it in $pages / 15 = ${limit_s} s"
report "   postscript_fdw : rows $f_rows, ${f_wall} s = $(python3 -c "print(round($f_wall / $limit_s, 3))") x the limit"
report "   PL/Python      : rows $p_rows, ${p_wall} s = $(python3 -c "print(round($p_wall / $limit_s, 3))") x the limit"
report "   PL/Python / postscript_fdw wall time: $(python3 -c "print(round($p_wall / $f_wall, 2))")"
report "   429 answers the server sent during both scans: $sum429 (none reached the user)"
report ""

# ---------------------------------------------------------------- 2+3. CPU and memory
ps_start_mock --subscribers "$CPU_N" --page-size "$PAGE"
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
ps_log "figures written to $OUT"
