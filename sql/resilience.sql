--
-- Resilience: rate limits, retries, timeouts, cancellation, size limits and
-- the statistics that show them.  Faults come from the local server; where
-- they are survivable the result must be complete and exact.
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();
SELECT postscript_fdw_stats_reset();

-- the rows of a full subscriber read, to compare faulty reads with
CREATE TEMP TABLE clean AS SELECT id FROM ps.subscribers;
CREATE FUNCTION same_as_clean() RETURNS boolean LANGUAGE sql AS $$
  SELECT NOT EXISTS (SELECT id FROM ps.subscribers EXCEPT ALL SELECT id FROM clean)
     AND NOT EXISTS (SELECT id FROM clean EXCEPT ALL SELECT id FROM ps.subscribers)
$$;

-------------------------------------------------------------- 429 and 5xx
-- a burst of 429s in the middle of a scan: retried, the result exact
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "after": 3, "count": 3}');
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids FROM ps.subscribers;
SELECT query, status FROM mock.requests() WHERE query IN ('page=3', 'page=4', 'page=5') ORDER BY seq;

-- Retry-After is honoured (the 429 says when; the retry follows it)
SELECT mock.reset();
SELECT mock.fault('{"kind": "rate_limit", "retry_after": 1, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT method, path, status FROM mock.requests();
-- a Retry-After that is no number of seconds is not taken (the usual
-- backoff, not an endless wait); an HTTP date is (one past: at once)
SELECT mock.reset();
SELECT mock.fault('{"kind": "rate_limit", "retry_after": "inf", "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "rate_limit", "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT", "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT method, path, status FROM mock.requests();

-- 502, 503 and 504 on reads are retried
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 502, "path": "/api/v2/subscribers", "after": 1, "count": 1}');
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/subscribers", "after": 4, "count": 1}');
SELECT mock.fault('{"kind": "status", "status": 504, "path": "/api/v2/subscribers", "after": 8, "count": 1}');
SELECT same_as_clean() AS complete;
SELECT status, count(*) FROM mock.requests() WHERE path = '/api/v2/subscribers'
 GROUP BY status ORDER BY status;

-- other 4xx are never retried: one request, one error
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 400, "path": "/api/v2/keywords", "count": 1}');
SELECT mock.try('SELECT * FROM ps.keywords');
SELECT mock.fault('{"kind": "status", "status": 404, "path": "/api/v2/campaigns", "count": 1}');
SELECT mock.try('SELECT * FROM ps.campaigns');
SELECT method, path, status FROM mock.requests();

-- max_retries bounds the retries, then the error says what happened
CREATE SERVER ps_two FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_two OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE two_keywords (id text) SERVER ps_two OPTIONS (resource 'keywords');
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/keywords", "count": -1}');
SELECT mock.try('SELECT * FROM two_keywords');
SELECT count(*) AS requests FROM mock.requests();
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/keywords", "count": -1}');
SELECT mock.try('SELECT * FROM two_keywords');
SELECT count(*) AS requests FROM mock.requests();

-------------------------------------------------------------- transport faults
-- a body cut off and a connection closed without an answer,
-- mid-scan: reads are retried and the result is exact (malformed JSON is
-- an error: see errors.sql)
SELECT mock.reset();
SELECT mock.fault('{"kind": "truncate", "path": "/api/v2/subscribers", "after": 2, "count": 1}');
SELECT mock.fault('{"kind": "close", "path": "/api/v2/subscribers", "after": 6, "count": 1}');
SELECT same_as_clean() AS complete;
-- (two reads: each page twice, the two faulty pages once more)
SELECT query, count(*) FILTER (WHERE status = 0) AS closed, count(*) AS requests
  FROM mock.requests() WHERE path = '/api/v2/subscribers'
 GROUP BY query HAVING count(*) <> 2 ORDER BY query;

-- slow answers within the request timeout are just slow
SELECT mock.reset();
SELECT mock.fault('{"kind": "slow", "delay_ms": 300, "path": "/api/v2/subscribers", "after": 1, "count": 2}');
SELECT same_as_clean() AS complete;

-- a body that stalls past low_speed_time is cut off (and retried once here)
CREATE SERVER ps_lowspeed FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', low_speed_time '1', max_retries '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_lowspeed OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE lowspeed_keywords (id text) SERVER ps_lowspeed OPTIONS (resource 'keywords');
SELECT mock.reset();
SELECT mock.fault('{"kind": "stall", "delay_ms": 4000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM lowspeed_keywords;

-------------------------------------------------------------- cancellation
-- statement_timeout stops a query whose answer stalls for 30 s; the same
-- session goes on working, five times over (no handle or memory is left
-- behind by a cancel)
SET statement_timeout = '500ms';
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
RESET statement_timeout;
SELECT count(*) FROM ps.keywords;
SELECT mock.reset();
SET statement_timeout = '2s';
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) FROM ps.keywords;
RESET statement_timeout;
SELECT count(*) FROM ps.keywords;
-- and during a backoff sleep (a 429 asking for 30 s)
SELECT mock.fault('{"kind": "rate_limit", "retry_after": 30, "path": "/api/v2/keywords", "count": 1}');
SET statement_timeout = '1s';
SELECT count(*) FROM ps.keywords;
RESET statement_timeout;
SELECT count(*) FROM ps.keywords;

-------------------------------------------------------------- client rate limit
-- the FDW paces itself under the server's limit: 20 pages at 15 requests/s
-- against a server that allows 15/s, and no 429 happens
CREATE SERVER ps_res_paced FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '15', rate_burst '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_res_paced OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE res_paced_subscribers (id text) SERVER ps_res_paced OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.config('{"rate_limit": 15}');
SELECT count(*) = (SELECT count(*) FROM clean) AS complete FROM res_paced_subscribers;
SELECT status, count(*) FROM mock.requests() WHERE path = '/api/v2/subscribers'
 GROUP BY status ORDER BY status;
SELECT server_name, requests, status_429, rate_limit_wait_ms > 0 AS waited
  FROM postscript_fdw_stats() WHERE server_name = 'ps_res_paced';
SELECT mock.config('{"rate_limit": 0}');

-------------------------------------------------------------- size limits
CREATE SERVER ps_small FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_response_size '2048', max_json_depth '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_small OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE small_subscribers (id text) SERVER ps_small OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE small_keywords (id text) SERVER ps_small OPTIONS (resource 'keywords');
SELECT mock.reset();
SELECT * FROM small_subscribers;
\echo :LAST_ERROR_SQLSTATE
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/keywords', 'count', 1,
  'body', '{"keywords": [{"id": "k", "x": ' || repeat('[', 20) || repeat(']', 20) || '}]}'));
SELECT * FROM small_keywords;
\echo :LAST_ERROR_SQLSTATE
-- a write whose 201 arrives with a body too large to read was applied, as
-- its status says: a WARNING, counted as applied, not sent again
CREATE FOREIGN TABLE small_events (type text, email text) SERVER ps_small OPTIONS (resource 'events');
SELECT mock.reset();
SELECT mock.fault(jsonb_build_object('kind', 'body', 'status', 201, 'method', 'POST', 'path', '/api/v2/events',
  'count', 1, 'body', '{"ok": "' || repeat('x', 3000) || '"}'));
INSERT INTO small_events VALUES ('order_placed', 'a@example.com');
SELECT write, status FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.requests();

-------------------------------------------------------------- progress
CREATE SERVER ps_progress FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', progress_pages '5');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_progress OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE progress_subscribers (id text) SERVER ps_progress OPTIONS (resource 'subscribers');
SELECT count(*) FROM progress_subscribers;

-------------------------------------------------------------- statistics
SELECT postscript_fdw_stats_reset();
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/campaigns", "count": 1}');
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/campaigns", "count": 1}');
SELECT count(*) FROM ps.campaigns;
SELECT mock.try('SELECT * FROM ps.campaigns WHERE id = ''cmp_none''');
SELECT server_name, requests, status_2xx, status_4xx, status_5xx, status_429, transport_errors,
       retries, backoff_wait_ms > 0 AS backed_off, bytes_received > 0 AS bytes, rows_received
  FROM postscript_fdw_stats() WHERE server_name = 'ps';
SELECT count(*) AS requests_logged FROM mock.requests() WHERE path LIKE '/api/v2/campaigns%';

DROP SERVER ps_two, ps_lowspeed, ps_res_paced, ps_small, ps_progress CASCADE;
DROP FUNCTION same_as_clean();

-------------------------------------------------------------- concurrent pages
-- after page 1, pages are fetched max_concurrency at a time; rows arrive in
-- page order, each page is asked for once
CREATE SERVER ps_conc FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_concurrency '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_conc OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE conc_subscribers (id text, ps_id bigint) SERVER ps_conc
  OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.config('{"latency_ms": 50}');
SELECT count(*) AS rows,
       bool_and(ps_id > prev) AS in_page_order
  FROM (SELECT ps_id, lag(ps_id, 1, -1::bigint) OVER () AS prev FROM conc_subscribers) s;
SELECT count(*) AS requests, count(DISTINCT query) AS distinct_pages,
       min(substring(query FROM 'page=(\d+)')::int) AS first_page,
       max(substring(query FROM 'page=(\d+)')::int) AS last_page
  FROM mock.requests();
SELECT mock.config('{"latency_ms": 0}');
SELECT * FROM mock.explain_analyze('SELECT * FROM conc_subscribers');
-- a LIMIT bounds the pages fetched ahead: 250 rows are 3 pages
SELECT mock.reset();
SELECT count(*) FROM (SELECT * FROM conc_subscribers LIMIT 250) s;
SELECT query FROM mock.requests() ORDER BY substring(query FROM 'page=(\d+)')::int;
-- faults in pages fetched together: each page is retried in its place in the
-- pipeline, the result is exact
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "after": 2, "count": 1}');
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/subscribers", "after": 6, "count": 1}');
SELECT mock.fault('{"kind": "close", "path": "/api/v2/subscribers", "after": 10, "count": 1}');
SELECT mock.fault('{"kind": "truncate", "path": "/api/v2/subscribers", "after": 14, "count": 1}');
SELECT count(*) AS rows, count(DISTINCT id) AS distinct_ids,
       (SELECT count(*) FROM clean) AS expected FROM conc_subscribers;
SELECT count(*) FILTER (WHERE status <> 200 OR status IS NULL) AS failed_answers,
       count(DISTINCT query) AS distinct_pages
  FROM mock.requests();
-- a cancel while pages are in flight together; the session goes on
SELECT mock.reset();
SELECT mock.fault('{"kind": "stall", "delay_ms": 30000, "path": "/api/v2/subscribers", "after": 3, "count": 1}');
SET statement_timeout = '1s';
SELECT count(*) FROM conc_subscribers;
RESET statement_timeout;
SELECT count(*) = (SELECT count(*) FROM clean) AS complete FROM conc_subscribers;
DROP SERVER ps_conc CASCADE;
