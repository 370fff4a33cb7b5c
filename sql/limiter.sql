--
-- The rate limiter, pages fetched ahead, and the transport under writes.
-- The servers here use the partner credentials, so that what the limiter
-- learns (a Retry-After) stays away from the other tests' token.
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();
CREATE FUNCTION lim_server(name text, opts text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url %L, %s)',
                 name, (SELECT url FROM mock.settings), opts);
  EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS '
                 '(api_key ''sk_partner_test_key'', shop_token ''sk_test_shop_key'')', name);
END $$;

-------------------------------------------------------------- pages fetched ahead
-- four pages in flight, each page requested once, rows in page order
SELECT lim_server('lim_pipe', 'rate_limit ''0'', max_concurrency ''4''');
CREATE FOREIGN TABLE lim_subscribers (ps_id bigint) SERVER lim_pipe OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT count(*) AS rows FROM lim_subscribers;
SELECT count(*) AS requests, count(DISTINCT query) AS pages, min(status), max(status)
  FROM mock.requests();
-- a LIMIT caps the pages fetched ahead: 150 rows need pages 1 and 2 only
SELECT mock.reset();
SELECT count(*) FROM (SELECT * FROM lim_subscribers LIMIT 150) s;
SELECT query, status FROM mock.requests() ORDER BY query;
-- the same rows in the same order as a scan one page at a time
SELECT (SELECT array_agg(ps_id) FROM lim_subscribers) = (SELECT array_agg(ps_id) FROM ps.subscribers)
  AS same_order;
-- sixteen pages in flight, on more sockets than the first list of watched
-- ones holds (8): the same rows in the same order, each page asked for once
SELECT lim_server('lim_pipe16', 'rate_limit ''0'', max_concurrency ''16''');
CREATE FOREIGN TABLE lim16_subscribers (ps_id bigint) SERVER lim_pipe16
  OPTIONS (resource 'subscribers');
SELECT mock.reset();
CREATE TEMP TABLE lim16_ids AS SELECT array_agg(ps_id) AS ids FROM lim16_subscribers;
SELECT count(*) AS requests, count(DISTINCT query) AS pages, min(status), max(status)
  FROM mock.requests();
SELECT (SELECT ids FROM lim16_ids) = (SELECT array_agg(ps_id) FROM ps.subscribers) AS same_order;

-- a page fetched ahead that fails is retried in the pipeline as any request
-- is: max_retries holds for it too (0: a 429 is the answer, the page is not
-- asked for again), and a 2xx body that is not JSON is an error at once
SELECT lim_server('lim_pipe_once', 'rate_limit ''0'', max_concurrency ''4'', max_retries ''0''');
CREATE FOREIGN TABLE lim_once_subscribers (ps_id bigint) SERVER lim_pipe_once
  OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "after": 3, "count": 1}');
SELECT mock.try('SELECT count(*) FROM lim_once_subscribers');
SELECT count(*) FILTER (WHERE status = 429) AS answered_429,
       count(*) - count(DISTINCT query) AS pages_asked_again
  FROM mock.requests();
SELECT mock.reset();
SELECT mock.fault('{"kind": "malformed", "path": "/api/v2/subscribers", "after": 3, "count": 1}');
SELECT mock.try('SELECT count(*) FROM lim_subscribers');
SELECT count(*) - count(DISTINCT query) AS pages_asked_again FROM mock.requests();
-- with retries, each failed page is asked for again and the rows are exact,
-- in page order
CREATE TEMP TABLE lim_clean AS SELECT array_agg(ps_id) AS ids FROM lim_subscribers;
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "after": 2, "count": 1}');
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/subscribers", "after": 5, "count": 2}');
SELECT (SELECT array_agg(ps_id) FROM lim_subscribers) = (SELECT ids FROM lim_clean)
  AS same_rows_same_order;
SELECT count(*) FILTER (WHERE status <> 200) AS failed_answers,
       count(*) FILTER (WHERE status = 200) AS pages,
       count(DISTINCT query) AS distinct_pages
  FROM mock.requests();

-------------------------------------------------------------- the window
-- a server that counts 15 requests in any sliding second, a client at 15/s:
-- the client keeps under the limit (the old token bucket with its burst of
-- 5 put up to 20 requests into the first second)
SELECT lim_server('lim_paced', 'rate_limit ''15'', rate_burst ''5''');
CREATE FOREIGN TABLE lim_paced_subscribers (id text) SERVER lim_paced OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.config('{"rate_limit": 15, "limiter": "sliding"}');
SELECT count(*) FROM lim_paced_subscribers;
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 429) <= 1 AS at_most_one_429
  FROM mock.requests();
SELECT mock.reset();

-------------------------------------------------------------- cancelled waits
-- one request per 10 s: the first goes at once, the next three are cancelled
-- while they wait and send nothing; a cancelled wait keeps no place in the
-- window, so the last query waits for the first request's window only
SELECT lim_server('lim_slow', 'rate_limit ''0.1''');
CREATE FOREIGN TABLE lim_slow_keywords (id text) SERVER lim_slow OPTIONS (resource 'keywords');
SELECT count(*) > 0 AS some FROM lim_slow_keywords;
SET statement_timeout = '300ms';
SELECT count(*) FROM lim_slow_keywords;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM lim_slow_keywords;
SELECT count(*) FROM lim_slow_keywords;
SET statement_timeout = '30s';
SELECT count(*) > 0 AS some FROM lim_slow_keywords;
RESET statement_timeout;
SELECT count(*) AS requests FROM mock.requests();

-------------------------------------------------------------- Retry-After
-- a 429 that says "Retry-After: 10" stops every request of the token for
-- 10 s, also those of another server and session with the same credentials
SELECT lim_server('lim_once', 'rate_limit ''15'', max_retries ''0''');
CREATE FOREIGN TABLE lim_once_keywords (id text) SERVER lim_once OPTIONS (resource 'keywords');
SELECT mock.reset();
SELECT mock.fault('{"kind": "rate_limit", "retry_after": 10, "path": "/api/v2/keywords"}');
SELECT count(*) FROM lim_once_keywords;
SELECT lim_server('lim_other', 'rate_limit ''15''');
CREATE FOREIGN TABLE lim_other_keywords (id text) SERVER lim_other OPTIONS (resource 'keywords');
SET statement_timeout = '1s';
SELECT count(*) FROM lim_other_keywords;
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT method, path, status FROM mock.requests();

-------------------------------------------------------------- writes go out exactly once
-- a keep-alive connection that dies after reading a POST: libcurl would send
-- the POST again by itself on a new connection; a write always gets a fresh
-- connection, so the server sees exactly the one POST the FDW sent
SELECT lim_server('lim_write', 'rate_limit ''0''');
CREATE FOREIGN TABLE lim_keywords (id text) SERVER lim_write OPTIONS (resource 'keywords');
CREATE FOREIGN TABLE lim_events (type text, email text) SERVER lim_write OPTIONS (resource 'events');
SELECT mock.reset();
SELECT count(*) > 0 AS some FROM lim_keywords;
SELECT mock.fault('{"kind": "close", "reused": true, "method": "POST", "path": "/api/v2/events"}');
INSERT INTO lim_events VALUES ('order_placed', 'a@example.com');
SELECT method, path, status FROM mock.requests() ORDER BY seq;
-- a PATCH (and a DELETE) too: libcurl's resend would hide that the first
-- may have been applied; on a fresh connection the fault, which closes
-- only a reused one, never fires
CREATE FOREIGN TABLE lim_write_subscribers (id text, tags text[]) SERVER lim_write OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT count(*) > 0 AS some FROM lim_keywords;
SELECT mock.fault('{"kind": "close", "reused": true, "method": "PATCH"}');
UPDATE lim_write_subscribers SET tags = '{Fresh}'
 WHERE id = (SELECT min(id) FROM lim_write_subscribers);
SELECT method, regexp_replace(path, '/[^/]+$', '/{id}') AS path, status
  FROM mock.requests() WHERE method <> 'GET' ORDER BY seq;
-- a POST whose connection dies without an answer: outcome unknown, never resent
SELECT mock.reset();
SELECT mock.fault('{"kind": "close", "method": "POST", "path": "/api/v2/events"}');
INSERT INTO lim_events VALUES ('order_placed', 'a@example.com');
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status FROM mock.requests() ORDER BY seq;

-------------------------------------------------------------- reads libcurl sends again
-- a read whose reused keep-alive connection dies before any answer: libcurl
-- sends it again on a new connection by itself.  That second request passes
-- the rate limiter too, and is counted: 21 requests for 20 pages, as the
-- server saw them
SELECT lim_server('lim_resend', 'rate_limit ''1000'', max_concurrency ''1''');
CREATE FOREIGN TABLE lim_resend_subscribers (id text) SERVER lim_resend OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.fault('{"kind": "close", "reused": true, "method": "GET", "path": "/api/v2/subscribers", "after": 2, "count": 1}');
SELECT count(*) FROM lim_resend_subscribers;
SELECT requests, retries, transport_errors FROM postscript_fdw_stats() WHERE server_name = 'lim_resend';
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 0) AS closed FROM mock.requests();
-- one request per 2 s: the request after the first dies on the reused
-- connection 2 s after it, and its resend waits 2 s more for the window
-- (before, libcurl sent it at once): the query is cancelled while it
-- waits, and the server never sees it
SELECT lim_server('lim_resend_slow', 'rate_limit ''0.5''');
CREATE FOREIGN TABLE lim_resend_keywords (id text) SERVER lim_resend_slow OPTIONS (resource 'keywords');
SELECT count(*) > 0 AS some FROM lim_resend_keywords;
SELECT mock.reset();
SELECT mock.fault('{"kind": "close", "reused": true, "method": "GET", "path": "/api/v2/keywords", "count": 1}');
SET statement_timeout = '3s';
SELECT count(*) FROM lim_resend_keywords;
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT method, path, status FROM mock.requests();

-------------------------------------------------------------- transport failures
-- a body that does not match its Content-Encoding: a protocol violation,
-- not a lost connection
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "body": "not gzip at all", "headers": {"Content-Encoding": "gzip"}}');
SELECT count(*) FROM lim_keywords;
\echo :LAST_ERROR_SQLSTATE
-- a gzip body cut short: the same error
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "body_b64": "H4sIAAAAAAACA6tWyk6tLM8vSilWslKIrlbKTAHSStnl8YlKtToKSPwkpdrYWgBK9g==", "headers": {"Content-Encoding": "gzip"}}');
SELECT count(*) FROM lim_keywords;
\echo :LAST_ERROR_SQLSTATE
-- a compression the request did not accept (it sends Accept-Encoding: gzip)
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "body": "...", "headers": {"Content-Encoding": "br"}}');
SELECT count(*) FROM lim_keywords;
\echo :LAST_ERROR_SQLSTATE
-- two gzip members, one after the other (RFC 1952): one body, both read
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "body_b64": "H4sIAAAAAAACA6tWyk6tLM8vSilWslKIrlbKTAHSStnl8YlKtToKAHZqvPQeAAAAH4sIAAAAAAACA6tWykxRslJQyi6PT1Kqja0FADwdxrUQAAAA", "headers": {"Content-Encoding": "gzip"}}');
SELECT id FROM lim_keywords ORDER BY id;
SELECT mock.reset();
