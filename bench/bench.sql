-- Objects the benchmark uses (bench/run.sh loads this into a fresh database).
--
-- bench_measure(label, query) runs one query in this backend and reports
-- wall time, the backend's own CPU time (user + system, the scheduler's
-- on-CPU nanoseconds from /proc/self/schedstat; /proc/self/stat counts 10 ms
-- ticks, 2 % of a 100k-row scan), the query's single bigint result and the backend's
-- peak resident memory (VmHWM) before and after.

CREATE FUNCTION bench_cpu_ns() RETURNS bigint LANGUAGE sql AS $$
  SELECT split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint
$$;

CREATE FUNCTION bench_hwm_kb() RETURNS bigint LANGUAGE sql AS $$
  SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::bigint
$$;

CREATE FUNCTION bench_measure(label text, query text,
  OUT label_ text, OUT rows bigint, OUT wall_s numeric, OUT cpu_s numeric,
  OUT hwm_before_kb bigint, OUT hwm_after_kb bigint)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  c0 bigint;
BEGIN
  label_ := label;
  hwm_before_kb := bench_hwm_kb();
  c0 := bench_cpu_ns();
  t0 := clock_timestamp();
  EXECUTE query INTO rows;
  wall_s := round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
  cpu_s := round((bench_cpu_ns() - c0) / 1e9, 4);
  hwm_after_kb := bench_hwm_kb();
END
$$;

-- bench_span(query) runs one query and reports when it started and ended
-- (epoch seconds) and its single bigint result: concurrent sessions are
-- timed from the first start to the last end, without process start-up.
CREATE FUNCTION bench_span(query text, OUT t0 float8, OUT t1 float8, OUT rows bigint)
LANGUAGE plpgsql AS $$
BEGIN
  t0 := extract(epoch FROM clock_timestamp());
  EXECUTE query INTO rows;
  t1 := extract(epoch FROM clock_timestamp());
END
$$;

-- What a user would write without this FDW: a PL/Python set-returning
-- function that pages the API with urllib and returns each subscriber as
-- jsonb (sequential pages; a 429 is waited out and retried).
CREATE FUNCTION py_subscribers(base_url text, api_key text) RETURNS SETOF jsonb
LANGUAGE plpython3u AS $$
import json, time, urllib.error, urllib.request
page = 1
while True:
    req = urllib.request.Request("%s/api/v2/subscribers?page=%d" % (base_url, page),
                                 headers={"Authorization": "Bearer " + api_key,
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            doc = json.load(r)
    except urllib.error.HTTPError as e:
        if e.code == 429:
            time.sleep(float(e.headers.get("Retry-After") or 1))
            continue
        raise
    rows = doc["subscribers"]
    for s in rows:
        yield json.dumps(s)
    total = doc.get("page_info", {}).get("total_pages")
    if not rows or (total is not None and page >= total):
        break
    page += 1
$$;
