#!/usr/bin/env bash
# The scan path's user-space instructions per row (issue 14, CPU part), one
# command, as root on a Debian 12 machine:
#
#   bash bench/instructions.sh          # 20,000 subscribers
#   bash bench/instructions.sh 50000    # more rows: the same figures, slower
#
# bench/cpu.sh measures time, which on a shared virtual machine drifts by a
# third between hours; an instruction count does not, so it is what tells
# two builds apart.  This installs valgrind if missing, builds and installs
# the extension, starts the local API server with N subscribers (100 per
# page, no latency, no limit), prepares a database, stops the cluster, and
# runs one query per single-user backend (`postgres --single`) under
# cachegrind: a one-page scan, then the full scan.  Per row is
#   (instructions of the full scan - those of the one-page scan) / (N - 100)
# so start-up, planning and the first page are left out.  Reported for the
# 7 columns of bench/run.sh's CPU scenario and for every column (SELECT s,
# raw as jsonb), pages gzip'd and then not compressed.  Beside each count,
# the branches cachegrind's simple predictor mispredicts per row: a model,
# not this CPU's predictor, but the one lead on time the count leaves out
# (this virtual machine exposes no hardware counters).  Figures go to
# stdout and to bench/instructions-results.txt.  Not part of CI.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

N=${1:-20000}
OUT="$PS_ROOT/bench/instructions-results.txt"
[ "$N" -gt 100 ] 2>/dev/null || ps_die "the number of subscribers must be above 100"

ps_setup_traps
ps_take_lock
ps_install_deps valgrind
ps_build_install
BIN=$("$PG_CONFIG" --bindir)
ps_start_cluster
# no rate limit: instructions per row are counted, not pacing
ps_start_mock --subscribers "$N" --page-size 100 --rate-limit 0
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL >/dev/null || ps_die "could not prepare the database"
CREATE DATABASE bench;
\c bench
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
CREATE SERVER ps FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers) FROM SERVER ps INTO ps;
SQL
# a single-user backend needs the cluster stopped
ps_as_postgres "$BIN/pg_ctl" -D "$PS_WORK/data" -w -m fast stop >/dev/null
chmod 755 "$PS_WORK"

# counts QUERY: "instructions mispredicted-branches" of one single-user
# backend running it (user space)
counts() {
	printf '%s;\n' "$1" >"$PS_WORK/q.sql"
	chmod 644 "$PS_WORK/q.sql"
	ps_as_postgres valgrind --tool=cachegrind --cache-sim=no --branch-sim=yes \
		--cachegrind-out-file=/dev/null \
		"$BIN/postgres" --single -D "$PS_WORK/data" bench <"$PS_WORK/q.sql" >"$PS_WORK/vg.log" 2>&1
	tr -d ',' <"$PS_WORK/vg.log" | awk '/I +refs:/ { i = $NF } /Mispredicts:/ { m = $3 }
		END { if (i ~ /^[0-9]+$/ && m ~ /^[0-9]+$/) print i, m; else exit 1 }' \
		|| { tail -n 20 "$PS_WORK/vg.log" >&2; ps_die "cachegrind gave no count"; }
}
ONE_PAGE='SELECT count(*) FROM (SELECT 1 FROM ps.subscribers LIMIT 1) s'
Q_SOME='SELECT count(ROW(ps_id, email, phone_number, updated_at, tags, properties, promotional_can_send)) FROM ps.subscribers'
Q_ALL='SELECT count(s) FROM ps.subscribers s'
per_row() {
	local bi bm fi fm
	read -r bi bm <<<"$(counts "$ONE_PAGE")" && read -r fi fm <<<"$(counts "$1")" || exit 1
	[ -n "$bi" ] && [ -n "$fi" ] || exit 1
	printf '%6d instructions, %4d mispredicted branches (simulated)\n' \
		$(((fi - bi) / (N - 100))) $(((fm - bm) / (N - 100)))
}
gzip_pages() {
	ps_mock_admin config "{\"gzip\": $1}"
}

report() { printf '%s\n' "$*" | tee -a "$OUT"; }
: >"$OUT"
report "postscript_fdw scan-path instructions, $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$PS_ROOT" rev-parse --short HEAD), $($PG_CONFIG --version)"
report "per row, user space (cachegrind, single-user backend, $N subscribers, the one-page scan subtracted)"
gzip_pages 1
report "   gzip'd pages,         7 columns:    $(per_row "$Q_SOME")"
report "   gzip'd pages,         every column: $(per_row "$Q_ALL")"
gzip_pages 0
report "   pages not compressed, 7 columns:    $(per_row "$Q_SOME")"
report "   pages not compressed, every column: $(per_row "$Q_ALL")"
ps_log "figures written to $OUT"
