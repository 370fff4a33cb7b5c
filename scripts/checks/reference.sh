#!/usr/bin/env bash
# The documentation says what the code does:
#   1. docs/reference.md is what the compiled catalog renders now
#      (scripts/gen_reference.sh --stdout, in the test cluster); when it
#      differs, the diff is printed: run `make reference` and commit it;
#   2. every relative link of README.md and docs/*.md names a file that
#      exists and, after a #, a heading of that file (GitHub's anchors).
#
# Needs the test environment of scripts/test.sh: PGHOST/PGPORT/PGUSER of a
# running cluster (as a superuser) with the extension installed, PG_CONFIG.
set -u
: "${PG_CONFIG:?}"
status=0
out=$(mktemp /tmp/postscript_fdw.reference.XXXXXX)
trap 'rm -f "$out"' EXIT

if ! bash scripts/gen_reference.sh --stdout >"$out"; then
	echo "reference: rendering the reference failed"
	status=1
elif ! diff -u docs/reference.md "$out"; then
	echo "reference: docs/reference.md differs from the catalog: run make reference"
	status=1
fi

python3 - README.md docs/*.md <<'PY' || status=1
import os, re, sys

def anchors(path):
    """GitHub's anchors of a Markdown file's headings (outside code blocks)."""
    seen, out, fence = {}, set(), False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"#{1,6} +(.*?) *#*$", line.rstrip("\n"))
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.add(slug if n == 0 else "%s-%d" % (slug, n))
    return out

bad = 0
for path in sys.argv[1:]:
    text = re.sub(r"```.*?```", "", open(path, encoding="utf-8").read(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        if not os.path.exists(dest):
            print("reference: %s links to %s: no such file" % (path, target))
            bad = 1
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            print("reference: %s links to %s: no such heading" % (path, target))
            bad = 1
sys.exit(bad)
PY
exit $status
