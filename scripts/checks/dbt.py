"""dbt for real over postscript_fdw (run by dbt.sh beside this file, with the
Python of the dbt virtual environment).

In a fresh database with the foreign tables in schema ps, examples/dbt is
built with `dbt build` twice against the local API server:
  1. the first build is full: every subscriber page, unfiltered;
  2. then subscribers change in the server (its admin interface, so no API
     request), and the second build is incremental: every subscriber request
     carries updated_at__gt=<newest updated_at of the first build> (or __gte,
     or a bound widened to whole seconds), and there are no more than
     changed rows / page size + 2 of them;
  3. the incrementally built tables equal a full recomputation
     (`dbt run --full-refresh` of the same models into another schema);
  4. `dbt source freshness` makes exactly one request per source, the newest
     row first (sort=<field>__desc&page=1), and reports the newest value that
     a full read of the table finds;
  5. `dbt docs generate` makes no request and catalogs the foreign tables.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from datetime import datetime

import psycopg2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(ROOT, "examples", "dbt")
MOCK = os.environ["PS_MOCK_URL"]
DB = "ps_dbt"
CHANGED = 150

problems = []
figures = []


def problem(msg):
    print("dbt: " + msg)
    problems.append(msg)


def admin(method, route, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(MOCK + "/__admin/" + route, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def log():
    return admin("GET", "requests")["requests"]


def since(mark):
    """The API requests received after the log position mark."""
    return [r for r in log() if r["seq"] > mark]


def position():
    return max((r["seq"] for r in log()), default=0)


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def query(sql, *args):
    with DBCONN.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def dbt(*args, schema="analytics"):
    env = dict(os.environ, PGDATABASE=DB, DBT_PROFILES_DIR=PROJECT, DBT_SCHEMA=schema,
               DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false")
    cmd = [os.path.join(os.path.dirname(sys.executable), "dbt"), *args,
           "--target-path", TARGET, "--log-path", os.path.join(WORK, "logs")]
    p = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-6000:] + p.stderr[-2000:])
        sys.exit("dbt: `dbt %s` failed (exit %d)" % (" ".join(args), p.returncode))
    return p.stdout


def requests_of(*args):
    """Runs dbt; returns the API requests it caused, and of them those for subscribers."""
    mark = position()
    dbt(*args)
    reqs = since(mark)
    return reqs, [r for r in reqs if r["path"] == "/api/v2/subscribers"]


def ts(text):
    """A timestamp from the request log's query string (percent-encoded)."""
    return datetime.fromisoformat(urllib.parse.unquote(text).replace("Z", "+00:00"))


def maintenance(*statements):
    conn = connect("postgres")
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def setup():
    maintenance("DROP DATABASE IF EXISTS %s" % DB, "CREATE DATABASE %s" % DB)
    conn = connect(DB)
    with conn.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION postscript_fdw")
        cur.execute("CREATE SERVER postscript FOREIGN DATA WRAPPER postscript_fdw"
                    " OPTIONS (api_url %s, rate_limit '0')", (MOCK,))
        cur.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER postscript"
                    " OPTIONS (api_key 'sk_test_shop_key')")
        cur.execute("CREATE SCHEMA ps")
        cur.execute("IMPORT FOREIGN SCHEMA postscript FROM SERVER postscript INTO ps")
    return conn


def first_build(page_size, subscribers):
    reqs, sub = requests_of("build")
    pages = math.ceil(subscribers / page_size)
    if sorted(r["query"] for r in sub) != sorted("page=%d" % p for p in range(1, pages + 1)):
        problem("the first build did not read every subscriber page once, unfiltered: %s"
                % [r["query"] for r in sub])
    figures.append("build 1: %d requests (%d subscriber pages)" % (len(reqs), len(sub)))


def change_subscribers():
    """Changes CHANGED subscribers spread over the whole list; returns the
    newest updated_at the table had before."""
    rows = query("SELECT subscriber_id, has_purchased FROM analytics.subscriber_activity"
                 " ORDER BY subscriber_id COLLATE \"C\"")
    step = len(rows) // CHANGED
    changes = []
    for k, (sid, purchased) in enumerate(rows[::step][:CHANGED]):
        changes.append({"id": sid, "email": "Changed.%d@Example.COM" % k,
                        "tags": ["dbt-%d" % j for j in range(k % 4)],
                        "properties": {"has_purchased": not purchased},
                        "subscriptions": {"promotional": {"can_send": k % 2 == 0},
                                          "transactional": {"can_send": True}}})
    watermark = query("SELECT max(updated_at) FROM analytics.subscriber_activity")[0][0]
    admin("POST", "subscribers", changes)
    return watermark


def second_build(page_size, watermark):
    reqs, sub = requests_of("build")
    most = math.ceil(CHANGED / page_size) + 2
    if not sub or len(sub) > most:
        problem("the incremental build made %d subscriber requests (at most %d allowed)" % (len(sub), most))
    for r in sub:
        # the bound is the watermark, or the watermark widened to whole seconds
        m = re.match(r"updated_at__gte?=([^&]*)&page=\d+$", r["query"])
        if not m or not 0 <= (watermark - ts(m.group(1))).total_seconds() < 1:
            problem("an incremental request asked for more than the changes since %s: %s"
                    % (watermark.isoformat(), r["query"]))
    figures.append("build 2: %d requests (%d subscriber requests for %d changed rows)"
                   % (len(reqs), len(sub), CHANGED))


def compare_with_full_refresh(subscribers):
    dbt("run", "--full-refresh", "--select", "+subscriber_activity", "+campaign_performance",
        schema="analytics_full")
    for table in ("subscriber_activity", "campaign_performance"):
        diff = query("SELECT (SELECT count(*) FROM (TABLE analytics.{0} EXCEPT ALL"
                     " TABLE analytics_full.{0}) a), (SELECT count(*) FROM (TABLE analytics_full.{0}"
                     " EXCEPT ALL TABLE analytics.{0}) b), (SELECT count(*) FROM analytics.{0})"
                     .format(table))[0]
        if diff[:2] != (0, 0) or diff[2] == 0:
            problem("analytics.%s differs from a full recomputation: %d rows only in it, %d only in"
                    " the full one, %d rows" % ((table,) + diff))
    got = query("SELECT count(*), count(*) FILTER (WHERE email LIKE 'changed.%%@example.com')"
                " FROM analytics.subscriber_activity")[0]
    if got != (subscribers, CHANGED):
        problem("subscriber_activity: %s rows, %s changed emails (expected %d, %d)"
                % (got + (subscribers, CHANGED)))


def sources():
    """The project's sources as dbt parsed them: name -> (loaded_at_field, freshness filter)."""
    with open(os.path.join(TARGET, "manifest.json")) as f:
        found = json.load(f)["sources"].values()
    return {s["name"]: (s["loaded_at_field"], (s.get("freshness") or {}).get("filter")) for s in found}


def freshness():
    reqs, _ = requests_of("source", "freshness")
    tables = sources()
    for table, (field, _) in tables.items():
        # one request: the newest row first and no page after it, or the one
        # response of an unpaginated list
        q = [r["query"] for r in reqs if r["path"] == "/api/v2/" + table]
        sorted_first = len(q) == 1 and re.search(r"(^|&)sort=%s__desc&page=1$" % field, q[0])
        if not (sorted_first or q == [""]):
            problem("freshness of %s: requests %s, expected one with sort=%s__desc&page=1" % (table, q, field))
    if len(reqs) != len(tables) or any(r["status"] != 200 for r in reqs):
        problem("freshness made %d requests for %d sources: %s"
                % (len(reqs), len(tables), [(r["path"], r["query"], r["status"]) for r in reqs]))
    with open(os.path.join(TARGET, "sources.json")) as f:
        results = {r["unique_id"].rsplit(".", 1)[1]: r for r in json.load(f)["results"]}
    for table, (field, filt) in tables.items():
        # the truth from a full read: OFFSET 0 keeps max() from becoming a sorted request
        newest = query("SELECT max(%s) FROM (SELECT %s FROM ps.%s WHERE %s OFFSET 0) t"
                       % (field, field, table, filt or "true"))[0][0]
        r = results.get(table)
        if r is None or r["status"] not in ("pass", "warn") or \
                datetime.fromisoformat(r["max_loaded_at"]) != newest:
            problem("freshness of %s: %s, expected max_loaded_at %s" % (table, r, newest))
    figures.append("source freshness: %d requests for %d sources" % (len(reqs), len(tables)))


def docs():
    reqs, _ = requests_of("docs", "generate")
    if reqs:
        problem("dbt docs generate made API requests: %s" % [(r["path"], r["query"]) for r in reqs])
    with open(os.path.join(TARGET, "catalog.json")) as f:
        catalog = json.load(f)
    for table, (field, _) in sources().items():
        entry = catalog["sources"].get("source.postscript_analytics.postscript." + table)
        # dbt-postgres lists a foreign table as a BASE TABLE, with its columns
        cols = {c: v["type"] for c, v in entry["columns"].items()} if entry else {}
        if cols.get("id") != "text" or cols.get("raw") != "jsonb" or \
                cols.get(field) != "timestamp with time zone":
            problem("catalog.json: source %s missing or incomplete: %s" % (table, entry))
    for model in ("stg_subscribers", "stg_campaigns", "subscriber_activity", "campaign_performance"):
        if "model.postscript_analytics." + model not in catalog["nodes"]:
            problem("catalog.json: no model %s" % model)
    figures.append("docs generate: %d requests" % len(reqs))


def main():
    global DBCONN, WORK, TARGET
    WORK = tempfile.mkdtemp(prefix="postscript_fdw.dbt.")
    TARGET = os.path.join(WORK, "target")
    admin("POST", "reset")
    page_size = admin("GET", "config")["page_size"]
    subscribers = {r["resource"]: r["count"] for r in admin("GET", "summary")["summary"]}["subscribers"]
    DBCONN = setup()
    try:
        first_build(page_size, subscribers)
        watermark = change_subscribers()
        second_build(page_size, watermark)
        compare_with_full_refresh(subscribers)
        freshness()
        docs()
    finally:
        DBCONN.close()
        maintenance("DROP DATABASE IF EXISTS %s" % DB)
        shutil.rmtree(WORK, ignore_errors=True)
        admin("POST", "reset")      # the next check finds the seeded data
    if problems:
        sys.exit(1)
    print("dbt: ok; " + "; ".join(figures))


if __name__ == "__main__":
    main()
