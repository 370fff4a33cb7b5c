#!/usr/bin/env bash
# examples/30_dbt_compiled.sql holds the SQL `dbt run` would send for the
# project in examples/dbt (dbt cannot be installed here).  This check renders
# the models' Jinja again -- the few constructs the project uses: config(),
# source(), ref(), this, and `if is_incremental()` -- and verifies that every
# model body in the compiled file is exactly that rendering (whitespace
# aside), in dbt's order: staging view, first incremental run, then the
# second run's view and incremental temp table, and that the second run
# deletes and inserts by the model's unique_key.  Any other Jinja in a model
# is an error, so a model change the renderer cannot follow fails here.
set -u
cd "$(dirname "$0")/../.." || exit 1
exec python3 - <<'EOF'
import re
import sys

ROOT = "examples/dbt"
COMPILED = "examples/30_dbt_compiled.sql"
errors = []


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def yaml_value(text, key):
    """The first `key: value` of a simple YAML file (no YAML module here)."""
    m = re.search(r"^\s*%s:\s*['\"]?([A-Za-z0-9_]+)" % re.escape(key), text, re.M)
    if not m:
        sys.exit("no %s: in the dbt files" % key)
    return m.group(1)


def sources(text):
    """{source name: schema} from models/sources.yml."""
    result, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^  - name:\s*(\w+)", line)
        if m:
            current = m.group(1)
        m = re.match(r"^    schema:\s*(\w+)", line)
        if m and current:
            result[current] = m.group(1)
    return result


target_schema = yaml_value(read(ROOT + "/profiles.yml"), "schema")
source_schemas = sources(read(ROOT + "/models/sources.yml"))


def q(*parts):
    return ".".join('"%s"' % p for p in parts)


def render(model, incremental):
    text = read("%s/models/%s.sql" % (ROOT, model))
    name = model.rsplit("/", 1)[-1]

    def block(m):
        return m.group(1) if incremental else ""

    text = re.sub(r"\{%-?\s*if is_incremental\(\)\s*-?%\}(.*?)\{%-?\s*endif\s*-?%\}",
                  block, text, flags=re.S)
    text = re.sub(r"\{\{-?\s*config\((.*?)\)\s*-?\}\}", "", text, flags=re.S)

    def src(m):
        if m.group(1) not in source_schemas:
            errors.append("%s: unknown source %s" % (model, m.group(1)))
            return m.group(0)
        return q(source_schemas[m.group(1)], m.group(2))

    text = re.sub(r"\{\{\s*source\('(\w+)',\s*'(\w+)'\)\s*\}\}", src, text)
    text = re.sub(r"\{\{\s*ref\('(\w+)'\)\s*\}\}", lambda m: q(target_schema, m.group(1)), text)
    text = re.sub(r"\{\{\s*this\s*\}\}", q(target_schema, name), text)
    left = re.findall(r"\{[{%#].*?[}%#]\}", text, flags=re.S)
    if left:
        errors.append("%s: Jinja this check cannot render: %s" % (model, left))
    return text


def norm(s):
    return " ".join(s.split())


def config_value(model, key):
    m = re.search(r"%s\s*=\s*'(\w+)'" % key, read("%s/models/%s.sql" % (ROOT, model)))
    return m.group(1) if m else None


compiled = read(COMPILED)
bodies = [(m.group(1), norm(m.group(2))) for m in
          re.finditer(r"^create\s+(?:temporary\s+)?(?:view|table)\s+(\S+)\s+as\s*\((.*?)^  \);",
                      compiled, flags=re.S | re.M)]
stg, act = "staging/stg_subscribers", "marts/subscriber_activity"
tmp = [r for r, _ in bodies if r.startswith('"subscriber_activity__dbt_tmp')]
expected = [
    (q(target_schema, "stg_subscribers__dbt_tmp"), norm(render(stg, False))),
    (q(target_schema, "subscriber_activity"), norm(render(act, False))),
    (q(target_schema, "stg_subscribers__dbt_tmp"), norm(render(stg, True))),
    (tmp[0] if tmp else '"subscriber_activity__dbt_tmp..."', norm(render(act, True))),
]
if len(bodies) != len(expected):
    errors.append("%s has %d create statements, expected %d" % (COMPILED, len(bodies), len(expected)))
for i, ((rel, body), (erel, ebody)) in enumerate(zip(bodies, expected), 1):
    if rel != erel:
        errors.append("statement %d creates %s, expected %s" % (i, rel, erel))
    if body != ebody:
        errors.append("statement %d (%s) differs from the rendered model:\n  compiled: %s\n  rendered: %s"
                      % (i, rel, body, ebody))

key = config_value(act, "unique_key")
if config_value(act, "materialized") != "incremental" or not key or not tmp:
    errors.append("%s: expected an incremental model with a unique_key" % act)
else:
    delete = norm('delete from %s where ( %s) in ( select (%s) from %s );'
                  % (q(target_schema, "subscriber_activity"), key, key, tmp[0]))
    # the columns dbt lists: the model's output columns, in order
    items = re.search(r"^select(.*?)^from", render(act, False), flags=re.S | re.M).group(1)
    cols = [re.split(r"\s+as\s+|\s+", item.strip())[-1] for item in items.split(",\n")]
    csv = ", ".join('"%s"' % c for c in cols)
    insert = norm('insert into %s (%s) ( select %s from %s )'
                  % (q(target_schema, "subscriber_activity"), csv, csv, tmp[0]))
    if delete not in norm(compiled):
        errors.append("no delete by unique_key %s from the temp table: %s" % (key, delete))
    if insert not in norm(compiled):
        errors.append("no insert of the model's columns into the target: %s" % insert)

for e in errors:
    print("dbt_compiled: " + e)
if errors:
    sys.exit(1)
print("dbt_compiled: %d model bodies match the models' rendering" % len(bodies))
EOF
