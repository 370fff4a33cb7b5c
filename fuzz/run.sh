#!/usr/bin/env bash
# libFuzzer runs of the FDW's input handling, one command:
#
#   bash fuzz/run.sh           # 300 s per target
#   bash fuzz/run.sh 10        # 10 s per target (what the test suite runs)
#
# Targets:
#   phone        fuzz_phone.c: src/phone.c, the E.164 normalizer (plain C,
#                ASan + UBSan)
#   querystring  fuzz_querystring.c: src/querystring.c, percent-encoding and
#                the LIKE '%...%' literal (plain C, ASan + UBSan)
#   validate     fuzz_validate.c: src/validate.c, the checks of written
#                values (email, event type, origin, customer id, subscriber
#                and event properties, tags; plain C with json-c, ASan + UBSan)
#   pagescan     fuzz_pagescan.c: src/pagescan.c, the streaming page scanner
#                (plain C, ASan + UBSan); a body cut into chunks anywhere must
#                give the same records, field for field, as the body whole
#   gunzip       fuzz_gunzip.c: src/gunzip.c, gzip bodies decoded whole with
#                libdeflate (plain C, ASan + UBSan): data gzip'd as one or more
#                members decodes back exactly, within its bound and not one
#                byte under it; any other body, cut or corrupted, is refused
#                or decodes to the same data, nothing leaks
#   json_rows    fuzz_json_rows.c: a response body through the page scanner and
#                the page-to-row conversion of src/json_conv.c into a foreign
#                table with columns of many types.  That code calls
#                PostgreSQL's type input functions, so it runs inside a
#                single-user postgres process of a throwaway cluster: the
#                extension's sources are built with coverage instrumentation
#                (and UBSan in trap mode) into a test-only library with
#                libFuzzer's no-main runtime, and a SQL function hands control
#                to LLVMFuzzerRunDriver.  (No ASan there: the postgres
#                executable is not instrumented.)  Every jsonb column must be
#                jsonb_in's reading of its text, byte for byte, every
#                timestamptz timestamptz_in's, and every text[] laid out as
#                construct_md_array lays out its elements.
#   query        the same library's second entry point: ps_append_param, the
#                query-string builder, with text values, LIKE patterns, text
#                arrays and timestamps; the query string must decode back to
#                the values (fuzz_json_rows.c, postscript_fdw_fuzz_query)
# Every input in regressions/<target>/ (inputs that once failed) is replayed
# first; the seed corpus is corpus/<target>/ and is not modified.  A failure
# leaves the input in the work directory printed at the end: copy it to
# regressions/<target>/ with the fix.
set -u
. "$(dirname "$0")/../scripts/lib.sh"
cd "$PS_ROOT/fuzz"
secs=${1:-300}
ps_install_deps clang libclang-rt-dev
work=$(mktemp -d /tmp/postscript_fdw.fuzz.XXXXXX)
chmod 755 "$work"
rc=0
for t in phone querystring validate pagescan gunzip; do
	ps_log "fuzz_$t: building"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$PS_ROOT/src" "fuzz_$t.c" "$PS_ROOT/src/$t.c" -ljson-c -ldeflate -o "$work/fuzz_$t" \
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
# ---------------------------------------------------------------- json_rows
json_rows() {
	local bindir inc rt port f out
	bindir=$("$PG_CONFIG" --bindir)
	inc=$("$PG_CONFIG" --includedir-server)
	[ -e "$("$PG_CONFIG" --sharedir)/extension/postscript_fdw.control" ] || ps_build_install
	ps_log "fuzz_json_rows: building"
	mkdir -p "$work/jr/obj" "$work/jr/corpus"
	for f in "$PS_ROOT"/src/*.c fuzz_json_rows.c; do
		clang -fsanitize=fuzzer-no-link -fsanitize=undefined -fsanitize-trap=undefined \
			-fno-sanitize=alignment,function -fPIC -g -O1 -D_GNU_SOURCE -Wno-ignored-attributes \
			-I"$inc" -I"$PS_ROOT/src" -c "$f" -o "$work/jr/obj/$(basename "$f" .c).o" || return 1
	done
	rt=$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a
	clang -shared -Wl,-Bsymbolic -o "$work/jr/postscript_fdw_fuzz.so" "$work"/jr/obj/*.o "$rt" \
		-lcurl -ljson-c -lmicrohttpd -ldeflate -lstdc++ || return 1

	# a throwaway cluster holding the table the rows are converted into
	mkdir -p "$work/jr/sock"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$work/jr"
	ps_as_postgres "$bindir/initdb" -D "$work/jr/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 >"$work/jr/initdb.log" 2>&1 || { cat "$work/jr/initdb.log"; return 1; }
	port=$(ps_free_port)
	ps_as_postgres "$bindir/pg_ctl" -D "$work/jr/data" -l "$work/jr/pg.log" -w \
		-o "-p $port -k $work/jr/sock -c listen_addresses=" start >/dev/null 9>&- || return 1
	"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/jr/sock" -p "$port" -U postgres -d postgres <<-SQL
		CREATE EXTENSION postscript_fdw;
		CREATE SERVER s FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'http://127.0.0.1:1');
		CREATE SCHEMA fuzz;
		CREATE FOREIGN TABLE fuzz.t (
		  id text, ps_id bigint, n int, small smallint, price numeric, ratio float8, ok boolean,
		  created_at timestamptz, local_ts timestamp, day date, props jsonb, doc json, tags text[],
		  ids bigint[], flags boolean[], u uuid, ip inet,
		  can_send boolean OPTIONS (field 'subscriptions.promotional.can_send'),
		  deep text OPTIONS (field 'a.b.c.d'), raw jsonb OPTIONS (field '\$'))
		  SERVER s OPTIONS (resource 'subscribers');
		CREATE FUNCTION postscript_fdw_fuzz_rows(regclass, text) RETURNS void
		  AS '$work/jr/postscript_fdw_fuzz.so', 'postscript_fdw_fuzz_rows' LANGUAGE C STRICT;
		CREATE FUNCTION postscript_fdw_fuzz_query(text) RETURNS void
		  AS '$work/jr/postscript_fdw_fuzz.so', 'postscript_fdw_fuzz_query' LANGUAGE C STRICT;
	SQL
	[ $? = 0 ] || return 1
	ps_as_postgres "$bindir/pg_ctl" -D "$work/jr/data" -m fast -w stop >/dev/null || return 1

	# single FUNCTION LIBFUZZER_ARGS LOG: one single-user backend that fuzzes
	single() {
		local call="$1('fuzz.t', '$2')"
		[ "$1" = postscript_fdw_fuzz_query ] && call="$1('$2')"
		shift
		echo "SELECT $call;" \
			| ps_as_postgres "$bindir/postgres" --single -D "$work/jr/data" postgres >"$2" 2>&1
		grep -q '^Done [0-9]* runs\|^\*\*\* NOTE: fuzzing was not performed\|Executed .* in ' "$2" \
			&& ! grep -q 'ERROR: libFuzzer\|deadly signal\|SUMMARY: ' "$2"
	}
	if compgen -G "regressions/json_rows/*" >/dev/null; then
		ps_log "fuzz_json_rows: replaying regressions/json_rows"
		# copies the postgres user can read (libFuzzer writes its findings 0600)
		mkdir -p "$work/jr/regressions"
		cp regressions/json_rows/* "$work/jr/regressions/" && chmod -R a+rX "$work/jr/regressions"
		single postscript_fdw_fuzz_rows "-artifact_prefix=$work/jr/ $(ls -d "$work"/jr/regressions/* | tr '\n' ' ')" \
			"$work/jr/replay.log" || { tail -n 30 "$work/jr/replay.log"; return 1; }
	fi
	ps_log "fuzz_json_rows: ${secs} s"
	if single postscript_fdw_fuzz_rows "-max_total_time=$secs -max_len=4096 -timeout=10 -dict=$PS_ROOT/fuzz/json_rows.dict -artifact_prefix=$work/jr/ $work/jr/corpus $PS_ROOT/fuzz/corpus/json_rows" "$work/jr/fuzz.log"; then
		ps_log "fuzz_json_rows: $(grep -E '^Done' "$work/jr/fuzz.log" | tail -n 1)"
	else
		tail -n 40 "$work/jr/fuzz.log"
		return 1
	fi
	ps_log "fuzz_query: ${secs} s (ps_append_param)"
	mkdir -p "$work/jr/corpus_query"
	[ "$(id -u)" = 0 ] && chown postgres: "$work/jr/corpus_query"
	if single postscript_fdw_fuzz_query "-max_total_time=$secs -max_len=512 -timeout=10 -artifact_prefix=$work/jr/query- $work/jr/corpus_query $PS_ROOT/fuzz/corpus/query" "$work/jr/query.log"; then
		ps_log "fuzz_query: $(grep -E '^Done' "$work/jr/query.log" | tail -n 1)"
	else
		tail -n 40 "$work/jr/query.log"
		return 1
	fi
}
json_rows || { ps_log "fuzz_json_rows / fuzz_query: FAILED; see $work/jr"; rc=1; }

[ "$rc" = 0 ] && rm -rf "$work"
exit $rc
