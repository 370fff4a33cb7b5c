#!/usr/bin/env bash
# The mirror benchmark of issue 16, one command, as root on a fresh Debian 12
# machine:
#
#   bash bench/sync.sh                      # 1,000,000 subscribers (about 20 minutes)
#   bash bench/sync.sh --subscribers 20000  # a smaller run
#
# It installs what is missing, builds and installs the extension, starts a
# throwaway cluster and the local Postscript API server (pages of 100,
# limited to 15 requests/s), then measures postscript_fdw_sync():
#   1. the first sync, a full pass: wall time against the ideal (pages / 15 s),
#      requests, 429s, and the backend's memory (RssAnon and VmHWM, from
#      /proc) when 100,000 rows are stored and at the end: flat means equal;
#   2. 1% of the subscribers change (the server's /__admin/subscribers): the next
#      sync's requests against the goal (changed / page size + 3);
#   3. the mirror against a fresh full copy, row for row (EXCEPT ALL both ways;
#      the copy is read with the server's limit lifted, to save 11 minutes);
#   4. another mirror's first sync cancelled half-way, then resumed: the
#      result against the fresh copy, and the pages fetched more than once
#      (this part runs without the rate limit too: it counts, it does not time).
# Figures go to stdout and to bench/sync-results.txt.  Not part of CI.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

N=1000000
PAGE=100
RATE=15
while [ $# -gt 0 ]; do
	case "$1" in
	--subscribers) N=$2; shift 2 ;;
	*) ps_die "usage: bash bench/sync.sh [--subscribers N]" ;;
	esac
done
OUT="$PS_ROOT/bench/sync-results.txt"

ps_setup_traps
ps_take_lock
ps_install_deps
ps_build_install
exec 9>&-       # installed: the lock that queues installations is not needed for the run
ps_start_cluster -c shared_preload_libraries=postscript_fdw -c shared_buffers=256MB
ps_start_mock --subscribers "$N" --page-size "$PAGE" --rate-limit "$RATE"

q() { psql -X -qAt -v ON_ERROR_STOP=1 -d bench "$@" || ps_die "query failed: $*"; }
admin() { curl -sS --fail -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$PS_MOCK_URL/__admin/$2"; }
mock_log_count() {      # requests in the server's log; $1: a status to count (default all)
	admin GET requests | python3 -c "import json,sys; print(sum(1 for r in json.load(sys.stdin)['requests'] if '${1:-}' in ('', str(r['status']))))"
}
report() { printf '%s\n' "$*" | tee -a "$OUT"; }
# subscribers change upstream, as the server's admin API does it ($1: which)
touch_subscribers() { admin POST subscribers "$1"; }

psql -X -q -v ON_ERROR_STOP=1 -d postgres <<-SQL >/dev/null || ps_die "could not prepare the database"
	DROP DATABASE IF EXISTS bench;
	CREATE DATABASE bench;
	\c bench
	SET client_min_messages = warning;
	CREATE EXTENSION postscript_fdw;
	CREATE SERVER ps FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL');
	CREATE USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (api_key 'sk_test_shop_key');
	CREATE SCHEMA ps;
	IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers) FROM SERVER ps INTO ps;
SQL

# the server builds its sorted indexes at their first use (about 11 s per
# million): build them before anything is timed
ps_log "warming the server's keyset indexes"
for f in created_at updated_at; do
	curl -sS --fail -o /dev/null -H 'Authorization: Bearer sk_test_shop_key' \
		"$PS_MOCK_URL/api/v2/subscribers?${f}__gte=2000-01-01T00:00:00Z&sort=${f}__asc" \
		|| ps_die "warming failed"
	sleep 1
done

# sync TARGET: one CALL in a fresh backend
sync() {
	q -c "CALL postscript_fdw_sync('ps.subscribers', '$1')" || ps_die "sync of $1 failed"
}
# mem_watch TARGET FILE: while a sync of TARGET runs, one line every 0.5 s:
# rows stored, the backend's private memory (RssAnon, kB) and VmHWM (kB,
# which also counts the shared buffers the backend touched)
mem_watch() {
	local pid rows
	while :; do
		read -r pid rows <<<"$(q -F ' ' -c "SELECT pid, rows_inserted FROM postscript_fdw_sync_status WHERE target = 'public.$1' AND pid IS NOT NULL")"
		if [ -n "$pid" ]; then
			echo "$rows $(awk '/RssAnon|VmHWM/ {printf "%s ", $2}' /proc/$pid/status 2>/dev/null)" >>"$2"
		elif [ -s "$2" ]; then
			break
		fi
		sleep 0.5
	done
}
status() {      # status COLUMNS TARGET
	q -F ' ' -c "SELECT $1 FROM postscript_fdw_sync_status WHERE target = 'public.$2'"
}

: >"$OUT"
report "postscript_fdw mirror benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
report "local API server: $N subscribers, pages of $PAGE, $RATE requests/s"
report ""

# ---------------------------------------------------------------- 1. first sync
pages=$(( (N + PAGE - 1) / PAGE ))
ideal=$(python3 -c "print(round($pages / $RATE, 1))")
admin DELETE requests >/dev/null
ps_log "1. first sync of $N subscribers ($pages pages; the limit allows it in $ideal s)"
mem_watch mirror "$PS_WORK/mem" &
watcher=$!
sync mirror
wait "$watcher"
# memory (VmHWM RssAnon) at the first sample, once 100,000 rows are stored, at the end
read -r rows0 hwm0 anon0 <<<"$(awk 'NF == 3 {print; exit}' "$PS_WORK/mem")"
read -r hwm1 anon1 <<<"$(awk 'NF == 3 && $1 >= 100000 {print $2, $3; exit}' "$PS_WORK/mem")"
read -r hwm2 anon2 <<<"$(awk 'NF == 3 {l = $2 " " $3} END {print l}' "$PS_WORK/mem")"
peak=$(awk 'NF == 3 && $3 > m {m = $3} END {print m}' "$PS_WORK/mem")
read -r wall req r429 batches rows <<<"$(status "round(extract(epoch FROM run_ended - run_started)::numeric, 1), requests, status_429, batches, rows_inserted" mirror)"
served=$(mock_log_count)
first_req=$req
report "1. first sync (full pass): $rows rows in $batches batches, $req requests ($served in the server's log), $r429 answered 429"
report "   ${wall} s against the ideal $pages pages / $RATE = ${ideal} s: $(python3 -c "print(round($wall / $ideal, 3))") x"
report "   backend private memory (RssAnon): ${anon0} kB at the first sample ($rows0 rows), ${anon1:-?} kB at 100,000 rows, ${anon2} kB at the end (+$((anon2 - anon0)) kB), peak ${peak} kB"
report "   backend VmHWM, shared buffers it touched included: ${hwm0} kB at the first sample, ${hwm1:-?} kB at 100,000 rows, ${hwm2} kB at the end"
report ""

# ---------------------------------------------------------------- 2. 1% changed
changed=$(touch_subscribers '{"every": 100}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["changed"])')
goal=$(( (changed + PAGE - 1) / PAGE + 3 ))
admin DELETE requests >/dev/null
ps_log "2. $changed subscribers changed; the next sync"
sync mirror
read -r wall req r429 mode upd ins <<<"$(status "round(extract(epoch FROM run_ended - run_started)::numeric, 1), requests, status_429, run_mode, rows_updated, rows_inserted" mirror)"
report "2. $changed subscribers changed (1%); the next sync ($mode): $req requests ($(mock_log_count) in the server's log), goal <= $changed / $PAGE + 3 = $goal"
report "   $upd rows updated, $ins inserted, ${wall} s, $r429 answered 429"
report ""

# ---------------------------------------------------------------- 3. = a fresh copy
admin POST config '{"rate_limit": 0}' >/dev/null
q -c "ALTER SERVER ps OPTIONS (ADD rate_limit '0')"
ps_log "3. a fresh full copy, compared row for row"
q -c "CREATE TABLE fresh AS SELECT * FROM ps.subscribers"
read -r n_fresh missing extra <<<"$(q -F ' ' -c "SELECT (SELECT count(*) FROM fresh),
	(SELECT count(*) FROM (TABLE fresh EXCEPT ALL TABLE mirror) a), (SELECT count(*) FROM (TABLE mirror EXCEPT ALL TABLE fresh) b)")"
report "3. mirror vs a fresh full copy of $n_fresh rows: $missing rows missing from the mirror, $extra rows only in it"
report ""

# ---------------------------------------------------------------- 4. cancelled, resumed
ps_log "4. a first sync cancelled half-way, then resumed"
admin DELETE requests >/dev/null
( sync mirror2 >/dev/null 2>&1 ) &
spid=$!
half=$(( N / 2 ))
while :; do
	got=$(q -c "SELECT coalesce((SELECT rows_inserted FROM postscript_fdw_sync_status WHERE target = 'public.mirror2'), 0)")
	[ "$got" -ge "$half" ] && break
	kill -0 "$spid" 2>/dev/null || ps_die "the sync ended before half-way"
	sleep 0.2
done
q -c "SELECT pg_cancel_backend(pid) FROM postscript_fdw_sync_status WHERE target = 'public.mirror2'" >/dev/null
wait "$spid"
read -r st stored <<<"$(status "status, rows_inserted" mirror2)"
sync mirror2
read -r st2 <<<"$(status "status" mirror2)"
read -r total twice <<<"$(admin GET requests | python3 -c '
import json, sys
from collections import Counter
log = [r for r in json.load(sys.stdin)["requests"] if r["status"] == 200]
c = Counter((r["path"], r["query"]) for r in log)
print(len(log), sum(n - 1 for n in c.values() if n > 1))')"
read -r missing extra <<<"$(q -F ' ' -c "SELECT (SELECT count(*) FROM (TABLE fresh EXCEPT ALL TABLE mirror2) a), (SELECT count(*) FROM (TABLE mirror2 EXCEPT ALL TABLE fresh) b)")"
report "4. first sync of a second mirror cancelled after $stored rows ($st), then resumed ($st2):"
report "   $total pages in all, against $first_req for the uninterrupted first sync in 1.; the same page fetched again: $twice times"
report "   (a batch is one page: a cancel loses at most the page in flight)"
report "   mirror vs the fresh copy: $missing missing, $extra extra"
ps_log "figures written to $OUT"
