#!/usr/bin/env bash
# A short libFuzzer run (10 s per target) of the plain-C parts: the phone
# normalizer and the query-string pieces, under ASan + UBSan, after replaying
# every input in fuzz/regressions/.  The long run: bash fuzz/run.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
bash fuzz/run.sh 10
