#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root:
#   bash scripts/test.sh [--pg N]
# --pg N: against PostgreSQL N (15, 16, 17, 18; without it, PG_CONFIG, by default
# the host's 15); a version the host lacks runs in a cached Debian chroot, or (16)
# comes from a pinned wheel (scripts/lib.sh, ps_pg_select).
# Installs what is missing, builds and installs the extension, starts a
# throwaway PostgreSQL cluster (as the postgres OS user, private port and
# socket directory) and the local Postscript API server, then runs
#   1. the local server's own unit tests (mock/test_mock.py),
#   2. the pg_regress suite (make installcheck),
#   3. every scripts/checks/*.sh (whole-system checks: one test each),
# and ends with the line "N passed, N failed".  PS_KEEP=1 keeps the cluster,
# the server and the work directory after the run.
set -u
. "$(dirname "$0")/lib.sh"
ps_pg_select "$@"
[ ${#PS_ARGS[@]} = 0 ] || ps_die "usage: bash scripts/test.sh [--pg N]"
ps_pg_enter

passed=0
failed=0
failures=""
pass() { passed=$((passed + 1)); printf 'ok     %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures="$failures $1"; printf 'FAILED %s\n' "$1"; }

ps_setup_traps
ps_take_lock
ps_install_deps
# the extension's Assert()s are checked in every test (Makefile: ASSERTS=1)
PS_ASSERTS=1 ps_build_install
# preloaded: one rate-limit bucket per token for all backends (src/ratelimit.c)
ps_start_cluster -c shared_preload_libraries=postscript_fdw -c postscript_fdw.webhook_port="$(ps_free_port)" -c postscript_fdw.webhook_server=ps_webhooks
# no rate limit: the tests assert exactly which requests a query made, and
# a 429 they did not ask for would add retries; limiter.sql and the checks
# turn the limit on where they test it (mock.config, /__admin/config)
ps_start_mock --subscribers 2000 --page-size 100 --rate-limit 0

# 1. the local API server's unit tests: one result per test method
ps_log "local API server unit tests"
out=$(cd "$PS_ROOT/mock" && python3 -m unittest discover -v -p 'test_*.py' 2>&1)
while IFS= read -r line; do
	case "$line" in
	*" ... ok" | *" ... skipped"*) pass "mock: ${line%% (*}" ;;
	*" ... FAIL" | *" ... ERROR") fail "mock: ${line%% (*}" ;;
	esac
done <<<"$out"
if ! grep -q '^OK' <<<"$out"; then
	printf '%s\n' "$out" | tail -n 60
	grep -q ' \.\.\. \(FAIL\|ERROR\)$' <<<"$out" || fail "mock: unit test run"
fi
# a test whose result line was broken (a warning printed inside it) would
# otherwise drop out of the count unseen
ran=$(sed -nE 's/^Ran ([0-9]+) tests? in .*/\1/p' <<<"$out")
counted=$(grep -cE ' \.\.\. (ok|skipped.*|FAIL|ERROR)$' <<<"$out")
if [ "${ran:-0}" != "$counted" ]; then
	printf '%s\n' "$out" | grep -vE ' \.\.\. (ok|skipped.*|FAIL|ERROR)$' | head -n 20
	fail "mock: $ran tests ran but $counted result lines were read"
fi

# 2. pg_regress: one result per test file.  Its lines: up to 15
# "test NAME ... ok" (or "     NAME ... FAILED" in a parallel group), since
# 16 "ok N - NAME" / "not ok N + NAME" (TAP)
ps_log "pg_regress"
rm -f "$PS_ROOT/regression.diffs"
out=$(make -s -C "$PS_ROOT" PG_CONFIG="$PG_CONFIG" installcheck 2>&1)
result_lines='^(test +)?[A-Za-z0-9_]+ +\.\.\. |^(not )?ok +[0-9]+ +[-+] +[A-Za-z0-9_]+'
printf '%s\n' "$out" | grep -E "$result_lines" >&2
while IFS= read -r line; do
	name=$(sed -E 's/^(test +)?([A-Za-z0-9_]+) +\.\.\..*/\2/; s/^(not )?ok +[0-9]+ +[-+] +([A-Za-z0-9_]+).*/\2/' <<<"$line")
	case "$line" in
	*"... ok"* | "ok "*) pass "pg_regress: $name" ;;
	*"... FAILED"* | *"... failed"* | "not ok "*) fail "pg_regress: $name" ;;
	esac
done < <(printf '%s\n' "$out" | grep -E "$result_lines")
if [ -s "$PS_ROOT/regression.diffs" ]; then
	ps_log "regression.diffs:"
	cat "$PS_ROOT/regression.diffs"
fi
grep -qE "$result_lines" <<<"$out" || { printf '%s\n' "$out" | tail -n 30; fail "pg_regress: run"; }

# 3. whole-system checks
for check in "$PS_ROOT"/scripts/checks/*.sh; do
	[ -e "$check" ] || continue
	name=$(basename "$check" .sh)
	ps_log "check $name"
	if (cd "$PS_ROOT" && bash "$check"); then
		pass "check: $name"
	else
		fail "check: $name"
	fi
done

[ -n "$failures" ] && printf 'failed:%s\n' "$failures"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
