--
-- Pushdown: which requests each query sends (read from the local server's
-- request log), what EXPLAIN shows, and that joins to local tables ask the
-- API per key while few outer rows are involved.
--
SELECT mock.reset();
SET timezone = 'UTC';

-- the requests since the last call, then a fresh log
CREATE FUNCTION pd_sent() RETURNS TABLE (method text, path text, query text)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT r.method, r.path, r.query FROM mock.requests() r;
  PERFORM mock.reset();
END $$;

-- values drawn from the data (reading all of it: the log is reset after)
SELECT id AS sid, email AS semail, phone_number AS sphone, ps_id AS sps_id,
       shopify_customer_id AS sshop, updated_at AS supdated
  FROM ps.subscribers
 WHERE email IS NOT NULL AND shopify_customer_id IS NOT NULL
 ORDER BY id LIMIT 1 \gset
SELECT id AS sid2, email AS semail2 FROM ps.subscribers
 WHERE email IS NOT NULL AND id <> :'sid' ORDER BY id LIMIT 1 \gset
SELECT count(*) > 0 AS read_everything FROM pd_sent();

-- = on text: one request, the value percent-encoded (+ is %2B, @ is %40)
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email = 'a+b@x.com';
SELECT id FROM ps.subscribers WHERE email = 'a+b@x.com';
SELECT * FROM pd_sent();
SELECT id = :'sid' AS same FROM ps.subscribers WHERE email = :'semail';
SELECT count(*) FROM pd_sent();

-- timestamps: sent in UTC with Z whatever the session's TimeZone
SET timezone = 'Asia/Tokyo';
SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE updated_at >= '2026-01-01';
SELECT * FROM pd_sent();
SET timezone = 'America/New_York';
SELECT count(*) >= 0 AS ran FROM ps.subscribers
 WHERE created_at < '2025-07-01'::date AND updated_at > '2025-01-01 10:00:00.25'::timestamp;
SELECT * FROM pd_sent();
SELECT count(*) = 1 AS found FROM ps.subscribers WHERE updated_at = :'supdated';
SELECT count(*) FROM pd_sent();
SET timezone = 'UTC';
-- infinite values are not sent (the local filter answers)
SELECT count(*) FROM ps.subscribers WHERE created_at > 'infinity';
SELECT count(*) > 0 AS all_pages FROM pd_sent() WHERE query NOT LIKE '%created_at%';
-- stable expressions are computed when the scan starts
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE created_at > now() - interval '1 day';
SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE created_at > now() - interval '1 day';
SELECT bool_and(query ~ '^created_at__gt=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d(\.\d{1,6})?Z&page=\d+$')
       AS utc_value, count(*) > 0 AS sent
  FROM pd_sent();

-- integers, also compared with an int4 constant; IN is a repeated parameter,
-- each value once
SELECT id = :'sid' AS same FROM ps.subscribers WHERE ps_id = :sps_id;
SELECT id = :'sid' AS same FROM ps.subscribers WHERE shopify_customer_id = :sshop::int8;
SELECT * FROM pd_sent();
SELECT count(*) FROM ps.subscribers
 WHERE email IN (:'semail', :'semail2', :'semail', NULL, 'nobody@example.com');
SELECT * FROM pd_sent();
SELECT count(*) FROM ps.subscribers WHERE email IN (NULL, NULL);
SELECT count(*) FROM pd_sent();

-- LIKE '%x%' is __contains (case-sensitive, as LIKE); other patterns stay local
SELECT count(*) > 0 AS found FROM ps.subscribers
 WHERE phone_number LIKE '%' || substr(:'sphone', 3, 4) || '%';
SELECT * FROM pd_sent();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email LIKE '%a\%b\_c%';
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email LIKE 'a%';
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email LIKE '%a_b%';
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email ILIKE '%a%';

-- not pushed: text order, <>, OR, NULL tests (and case-insensitive
-- collations: sql/collation.sql)
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email > 'm';
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email <> 'm' OR ps_id = 1;
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email IS NULL;

-- id = x and id IN (...): GET {path}/{id}; an unknown id (404) is no row
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE id = :'sid';
SELECT id = :'sid' AS same FROM ps.subscribers WHERE id = :'sid' AND email = :'semail';
SELECT id FROM ps.subscribers WHERE id = 's_no_such_subscriber';
-- ids that would name another path are no row, without a request
SELECT id FROM ps.subscribers WHERE id IN ('', '.', '..');
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE id = '';
SELECT * FROM pd_sent();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers
 WHERE id IN (:'sid2', :'sid', :'sid2', NULL, 's_no_such_subscriber');
SELECT count(*) FROM ps.subscribers WHERE id IN (:'sid2', :'sid', :'sid2', NULL, 's_no_such_subscriber');
SELECT * FROM pd_sent();

-- parameters: PREPARE with a generic plan; a NULL value sends nothing
PREPARE by_email(text) AS SELECT id FROM ps.subscribers WHERE email = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_email('a+b@x.com');
EXECUTE by_email('a+b@x.com');
EXECUTE by_email(NULL);
SELECT * FROM pd_sent();
PREPARE since(timestamptz, int) AS
  SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE updated_at >= $1 AND ps_id = $2;
EXECUTE since('2026-01-01 00:00:00+02', 7);
SELECT * FROM pd_sent();
RESET plan_cache_mode;

-- ORDER BY a sortable field is sort=; LIMIT stops paging early
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY created_at DESC LIMIT 5;
SELECT count(*) FROM (SELECT id FROM ps.subscribers LIMIT 5) s;
SELECT * FROM pd_sent();
SELECT count(*) FROM (SELECT id FROM ps.subscribers ORDER BY created_at DESC LIMIT 5) s;
SELECT * FROM pd_sent();
SELECT count(*) FROM (SELECT id FROM ps.subscribers LIMIT 5 OFFSET 100) s;
SELECT * FROM pd_sent();
SELECT * FROM mock.explain_analyze('SELECT id FROM ps.subscribers LIMIT 150');
-- NULLS FIRST ascending: sorted here; text only under the C collation
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY created_at NULLS FIRST LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY phone_number COLLATE "C" LIMIT 5;
-- a field that may be null (shopify_customer_id): sorted by the API only when
-- the WHERE clause excludes NULLs, whose place in the API's order is unknown
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY shopify_customer_id LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE shopify_customer_id IS NOT NULL
 ORDER BY shopify_customer_id DESC NULLS LAST LIMIT 5;
SELECT mock.reset();

-- other tables: their filter fields from the contract
EXPLAIN (COSTS OFF) SELECT id FROM ps.campaigns WHERE status IN ('sent', 'draft') AND sent_at >= '2026-01-01';
EXPLAIN (COSTS OFF) SELECT id FROM ps.messages
 WHERE direction = 'inbound' AND category = 'promotional' AND created_at < '2026-02-01'
   AND subscriber_id = ANY (ARRAY['s_1', 's_2']) ORDER BY created_at;
EXPLAIN (COSTS OFF) SELECT id FROM ps.opt_ins WHERE subscriber_id = 's_1' AND phone_number = '+15555550123';
EXPLAIN (COSTS OFF) SELECT id FROM ps.opt_outs WHERE created_at > '2026-01-01' AND source = 'reply_stop';
EXPLAIN (COSTS OFF) SELECT id FROM ps.keywords WHERE keyword = 'YOUROCK';
EXPLAIN (COSTS OFF) SELECT id FROM ps.keywords WHERE id = 'kw_1';
EXPLAIN (COSTS OFF) SELECT id FROM ps.campaigns WHERE id IN ('cmp_1', 'cmp_2');
-- the contract has no GET opt_outs/{id}: the list is read
EXPLAIN (COSTS OFF) SELECT id FROM ps.opt_outs WHERE id = 'oo_1';

-- a column declared otherwise than the API's type is not pushed
CREATE FOREIGN TABLE pd_subs_ts (id text, created_at timestamp, ps_id numeric)
  SERVER ps OPTIONS (resource 'subscribers');
EXPLAIN (COSTS OFF) SELECT id FROM pd_subs_ts WHERE created_at >= '2026-01-01' AND ps_id = 1;
DROP FOREIGN TABLE pd_subs_ts;

-- pushdown 'false' sends no filter and no sort
ALTER FOREIGN TABLE ps.subscribers OPTIONS (ADD pushdown 'false');
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email = 'a+b@x.com' ORDER BY created_at;
ALTER FOREIGN TABLE ps.subscribers OPTIONS (DROP pushdown);

-- joins: a handful of local rows use the parameterized scan, one request per
-- distinct key (Memoize caches repeated keys)
CREATE TABLE pd_orders (id int PRIMARY KEY, email text);
INSERT INTO pd_orders VALUES (1, :'semail'), (2, :'semail2'), (3, :'semail'), (4, 'nobody@example.com');
ANALYZE pd_orders;
EXPLAIN (COSTS OFF)
SELECT o.id, s.id FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email;
SELECT o.id, s.id = :'sid' AS first FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email
 ORDER BY o.id;
SELECT method, path, query FROM pd_sent() ORDER BY query;
-- joining on the id: GET {path}/{id} per outer row
EXPLAIN (COSTS OFF)
SELECT o.sid, s.email FROM (VALUES (:'sid'), (:'sid2')) o(sid) JOIN ps.subscribers s ON s.id = o.sid;
SELECT count(*) FROM (VALUES (:'sid'), (:'sid2')) o(sid) JOIN ps.subscribers s ON s.id = o.sid;
SELECT method, path, query FROM pd_sent() ORDER BY path;
-- the keys batched into one email__in request, written as = ANY (ARRAY(...))
EXPLAIN (COSTS OFF)
SELECT id FROM ps.subscribers WHERE email = ANY (ARRAY(SELECT email FROM pd_orders));
SELECT count(*) FROM ps.subscribers WHERE email = ANY (ARRAY(SELECT email FROM pd_orders));
SELECT * FROM pd_sent();
-- many local rows: one full scan and a hash join
INSERT INTO pd_orders SELECT g, 'buyer' || g || '@example.com' FROM generate_series(5, 500) g;
ANALYZE pd_orders;
EXPLAIN (COSTS OFF)
SELECT o.id, s.id FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email;

-- use_remote_estimate: one request of page 1 at plan time gives the size
-- (total_pages x rows on the page), and so the choice of plan
CREATE FUNCTION pd_rows(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;
SELECT pd_rows('SELECT * FROM ps.subscribers') AS assumed,
       pd_rows('SELECT * FROM ps.subscribers WHERE ps_id = ' || :sps_id) AS by_selectivity;
DELETE FROM pd_orders WHERE id > 15;
ANALYZE pd_orders;
SELECT mock.reset();
EXPLAIN (COSTS OFF)
SELECT o.id, s.id FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email;
ALTER FOREIGN TABLE ps.subscribers OPTIONS (ADD use_remote_estimate 'true');
EXPLAIN (COSTS OFF)
SELECT o.id, s.id FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email;
SELECT * FROM pd_sent();
SELECT pd_rows('SELECT * FROM ps.subscribers') = (SELECT count(*) FROM ps.subscribers) AS exact;
SELECT mock.reset();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE updated_at >= '2026-01-01' AND email LIKE '%e%';
SELECT * FROM pd_sent();
-- the filtered count is not reduced again by the filter's selectivity
SELECT pd_rows('SELECT * FROM ps.subscribers WHERE ps_id = ' || :sps_id) AS one_row;
SELECT * FROM pd_sent();
ALTER FOREIGN TABLE ps.subscribers OPTIONS (DROP use_remote_estimate);
DROP TABLE pd_orders;
DROP FUNCTION pd_sent();
DROP FUNCTION pd_rows(text);
