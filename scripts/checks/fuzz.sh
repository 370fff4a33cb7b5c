#!/usr/bin/env bash
# A short libFuzzer run (10 s per target) of every fuzz target: the phone
# normalizer, the query-string pieces and the written-value checks (plain C,
# ASan + UBSan), the
# JSON-to-row conversion and the query-string builder (inside a single-user
# postgres, UBSan), after replaying every input in fuzz/regressions/.
# The long run: bash fuzz/run.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
bash fuzz/run.sh 10
