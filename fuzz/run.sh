#!/usr/bin/env bash
# libFuzzer runs of the plain-C parts of the FDW, under AddressSanitizer and
# UndefinedBehaviorSanitizer:
#
#   bash fuzz/run.sh           # 300 s per target
#   bash fuzz/run.sh 10        # 10 s per target (what the test suite runs)
#
# Targets: fuzz_phone.c (src/phone.c, the E.164 normalizer) and
# fuzz_querystring.c (src/querystring.c, percent-encoding and the
# LIKE '%...%' literal).  Every input in regressions/<target>/ (inputs that
# once failed) is replayed first; the seed corpus is corpus/<target>/ and is
# not modified.  A failure leaves the input in the work directory printed at
# the end: copy it to regressions/<target>/ with the fix.
#
# JSON-to-row conversion calls PostgreSQL's type input functions, which exist
# only inside a backend; it is fuzzed through a running server instead, by
# fuzz/json_rows.py (see README, "Security").
set -u
. "$(dirname "$0")/../scripts/lib.sh"
cd "$PS_ROOT/fuzz"
secs=${1:-300}
ps_install_deps clang libclang-rt-14-dev
work=$(mktemp -d /tmp/postscript_fdw.fuzz.XXXXXX)
rc=0
for t in phone querystring; do
	ps_log "fuzz_$t: building"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$PS_ROOT/src" "fuzz_$t.c" "$PS_ROOT/src/$t.c" -o "$work/fuzz_$t" \
		|| { rc=1; continue; }
	if compgen -G "regressions/$t/*" >/dev/null; then
		ps_log "fuzz_$t: replaying regressions/$t"
		"$work/fuzz_$t" -artifact_prefix="$work/$t-" regressions/$t/* >"$work/$t.replay.log" 2>&1 \
			|| { tail -n 30 "$work/$t.replay.log"; rc=1; continue; }
	fi
	ps_log "fuzz_$t: ${secs} s"
	mkdir -p "$work/corpus_$t"
	if "$work/fuzz_$t" -max_total_time="$secs" -max_len=256 -timeout=5 \
		-artifact_prefix="$work/$t-" "$work/corpus_$t" "corpus/$t" >"$work/$t.log" 2>&1; then
		ps_log "fuzz_$t: $(grep -E '^Done|#[0-9]+ *DONE' "$work/$t.log" | tail -n 1)"
	else
		tail -n 40 "$work/$t.log"
		ps_log "fuzz_$t: FAILED; the input is in $work"
		rc=1
	fi
done
[ "$rc" = 0 ] && rm -rf "$work"
exit $rc
