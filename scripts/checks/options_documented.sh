#!/usr/bin/env bash
# README.md's option tables are generated, not copied: under "## Options",
# the first table of each subsection "### Server", "### Foreign table",
# "### User mapping" and "### Column" must be exactly what the option
# declarations make of them (src/options.c's ps_options[], read through
# postscript_fdw_options()): every option where it may be given, with its
# values, its default and its doc line.  The prose around the tables is free.
#
#   bash scripts/checks/options_documented.sh           check README.md
#   bash scripts/checks/options_documented.sh --print   print the tables to paste
#
# Needs the test environment of scripts/test.sh: PGHOST/PGPORT/PGUSER of a
# running cluster (as a superuser) on which the extension is installed,
# PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" options_documented
cd "$(dirname "$0")/../.." || exit 1
db=ps_options_doc
fresh_db $db
# one table per catalog: option, values, default, meaning
psqlc >"$work/generated" <<'SQL' || exit 1
CREATE EXTENSION postscript_fdw;
WITH section(ord, context, heading) AS (
  VALUES (1, 'server', 'Server'), (2, 'foreign table', 'Foreign table'),
         (3, 'user mapping', 'User mapping'), (4, 'column', 'Column')
), opt AS (
  SELECT o.*, row_number() OVER () AS ord FROM postscript_fdw_options() o
), line AS (
  SELECT s.ord, 0 AS pos, '### ' || s.heading AS text FROM section s
  UNION ALL
  SELECT s.ord, 1, '| option | values | default | meaning |' FROM section s
  UNION ALL
  SELECT s.ord, 2, '|---|---|---|---|' FROM section s
  UNION ALL
  SELECT s.ord, 2 + o.ord,
         format('| `%s` | %s | %s | %s |', o.name,
                CASE o.kind
                  WHEN 'url' THEN 'URL'
                  WHEN 'boolean' THEN '`true`, `false`'
                  WHEN 'integer' THEN format('integer, %s to %s', o.min, o.max)
                  WHEN 'bytes' THEN format('bytes, %s to %s', o.min, o.max)
                  WHEN 'seconds' THEN format('seconds, %s to %s', o.min, o.max)
                  WHEN 'number' THEN format('number, %s to %s', o.min, o.max)
                  WHEN 'resource' THEN 'a resource''s name'
                  WHEN 'path' THEN 'a path, `/…`'
                  WHEN 'country' THEN 'two-letter ISO 3166 code'
                  WHEN 'file' THEN 'absolute path of a server file'
                  WHEN 'secret' THEN 'text, not `pk_…`'
                  ELSE 'text' END,
                CASE WHEN s.context = 'foreign table' AND 'server' = ANY (o.contexts)
                       THEN 'the server''s'
                     ELSE coalesce('`' || o.default_value || '`', o.default_doc) END,
                o.doc
                || CASE WHEN s.context = 'server' AND 'foreign table' = ANY (o.contexts)
                          THEN ' (also a table option)' ELSE '' END
                || coalesce(' (needs `' || o.requires || '`)', '')
                || coalesce('. **' || o.superuser || '**', ''))
    FROM section s JOIN opt o ON s.context = ANY (o.contexts)
)
SELECT text FROM line ORDER BY ord, pos;
SQL

if [ "${1:-}" = --print ]; then
	cat "$work/generated"
	exit 0
fi

# the same out of README.md: each subsection's heading (up to its first
# parenthesis-free words) and its first table
awk '
	/^## / { inopt = ($0 == "## Options"); next }
	!inopt { next }
	/^### / {
		heading = ""
		if ($0 ~ /^### Server/) heading = "Server"
		else if ($0 ~ /^### Foreign table/) heading = "Foreign table"
		else if ($0 ~ /^### User mapping/) heading = "User mapping"
		else if ($0 ~ /^### Column/) heading = "Column"
		if (heading != "") print "### " heading
		state = (heading != "") ? 1 : 0
		next
	}
	state == 1 && /^\|/ { state = 2 }
	state == 2 && !/^\|/ { state = 0 }
	state == 2 { print }
' README.md >"$work/readme"

if diff -u --label "README.md (## Options)" --label "generated from postscript_fdw_options()" \
	"$work/readme" "$work/generated"; then
	echo "options_documented: README.md's option tables match the declarations ($(grep -c '^| `' "$work/generated") rows)"
else
	echo "options_documented: README.md's option tables differ from the declarations (- README, + generated);"
	echo "options_documented: paste the output of: bash scripts/checks/options_documented.sh --print"
	exit 1
fi
