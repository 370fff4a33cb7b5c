#!/usr/bin/env bash
# The pg_regress suite with every PostgreSQL process under valgrind memcheck:
#
#   bash scripts/memcheck.sh                    # all tests but pushdown_diff
#   bash scripts/memcheck.sh setup read writes  # some tests
#
# Installs what is missing (plus valgrind), builds and installs the
# extension, starts a throwaway cluster whose postmaster runs under
# `valgrind --trace-children=yes` (backends are forked, so each is checked),
# the local API server, and runs the tests.  pushdown_diff is left out by
# default: it runs thousands of queries and takes hours under valgrind.
#
# What counts: every valgrind error report whose stack passes through
# postscript_fdw.so, libcurl or json-c (the server's own reports, if any,
# are listed but do not fail the run).  Timing-sensitive expected output
# (cancel within a second, pacing) may differ under valgrind's slowdown;
# the test diffs are shown for information, the verdict is valgrind's.
# Ends with "memcheck: N errors in postscript_fdw"; exit status 1 if N > 0.
set -u
. "$(dirname "$0")/lib.sh"
tests=${*:-setup import options read pagination errors auth pushdown writes examples resilience security}

ps_setup_traps
ps_take_lock
ps_install_deps valgrind
ps_build_install
ps_start_cluster
# restart the postmaster under valgrind
bindir=$("$PG_CONFIG" --bindir)
ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -m fast -w stop >/dev/null
mkdir -p "$PS_WORK/vg" && chmod 777 "$PS_WORK/vg"
ps_log "starting the postmaster under valgrind (slow)"
ps_as_postgres valgrind --quiet --trace-children=yes --error-limit=no --num-callers=30 \
	--track-origins=no --leak-check=no --read-var-info=no \
	--log-file="$PS_WORK/vg/vg.%p.log" \
	"$bindir/postgres" -D "$PS_WORK/data" -p "$PGPORT" -k "$PS_WORK/sock" -c listen_addresses= \
	-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
	>"$PS_WORK/log/postgres.log" 2>&1 &
for i in $(seq 1 600); do
	"$bindir/pg_isready" -q -h "$PGHOST" -p "$PGPORT" && break
	sleep 0.5
done
"$bindir/pg_isready" -q -h "$PGHOST" -p "$PGPORT" || ps_die "PostgreSQL under valgrind did not start"
# no rate limit, as in scripts/test.sh: the same tests, the same requests
# (and valgrind's pace must not turn into 429s)
ps_start_mock --subscribers 2000 --page-size 100 --rate-limit 0

ps_log "pg_regress under valgrind: $tests"
make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" installcheck REGRESS="$tests" 2>&1 \
	| grep -E '^(test | +[a-z_]+ +\.\.\.)' >&2
ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -m fast -w stop >/dev/null 2>&1

# one block per error: from a line "==pid== <what>" up to the blank "==pid== " line
python3 - "$PS_WORK/vg" <<'PY'
import collections, glob, re, sys
# a frame in the extension (its file, or a function of its source files),
# libcurl or json-c
OURS = re.compile(r"postscript_fdw|libcurl|libjson-c|\b(ps_|postscript)[A-Za-z_]* \(|"
                  r"\((http|json_conv|deparse|modify|options|connection|resources|import|"
                  r"phone|querystring|ratelimit|stats)\.c:\d+\)")
ours, theirs = [], []
for f in sorted(glob.glob(sys.argv[1] + "/vg.*.log")):
    block = []
    for line in open(f, errors="replace"):
        body = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if body == "":
            if block:
                text = "\n".join(block)
                if OURS.search(text):
                    ours.append(text)
                else:
                    theirs.append(text)
            block = []
        else:
            block.append(body)
for b in ours:
    print("---- in postscript_fdw:\n" + b)
print("memcheck: %d other reports (PostgreSQL itself), by first frame in postgres:" % len(theirs))
kinds = collections.Counter()
for b in theirs:
    frames = [l for l in b.splitlines() if "/bin/postgres" in l or re.search(r"by 0x[0-9A-F]+: [A-Za-z]", l)]
    kinds[b.splitlines()[0] + " <- " + next((re.sub(r"^\s*(at|by) 0x[0-9A-F]+: ", "", f)
                                             for f in frames if "???" not in f and "/bin/postgres" in f), "?")] += 1
for k, n in kinds.most_common():
    print("  %4d  %s" % (n, k))
print("memcheck: %d errors in postscript_fdw" % len(ours))
sys.exit(1 if ours else 0)
PY
