--
-- Joins to local tables: a handful of outer rows use the parameterized scan,
-- one request per key; many use one full scan.  With use_remote_estimate the
-- size comes from page 1 at plan time.  Kept apart from pushdown.sql because
-- PostgreSQL prints these plans differently by version (a rechecked join
-- clause's operand order from 16 on, an InitPlan's parameter from 17 on):
-- expected/joins.out is 15's output, joins_1.out 17's and 18's, joins_2.out 16's.
--
SELECT mock.reset();
SET timezone = 'UTC';

-- two subscribers with an email (reading all of them: the log is reset after)
SELECT id AS sid, email AS semail, ps_id AS sps_id FROM ps.subscribers
 WHERE email IS NOT NULL AND shopify_customer_id IS NOT NULL
 ORDER BY id LIMIT 1 \gset
SELECT id AS sid2, email AS semail2 FROM ps.subscribers
 WHERE email IS NOT NULL AND id <> :'sid' ORDER BY id LIMIT 1 \gset
SELECT count(*) > 0 AS read_everything FROM mock.take_requests();

-- joins: a handful of local rows use the parameterized scan, one request per
-- distinct key (Memoize caches repeated keys)
CREATE TABLE pd_orders (id int PRIMARY KEY, email text);
INSERT INTO pd_orders VALUES (1, :'semail'), (2, :'semail2'), (3, :'semail'), (4, 'nobody@example.com');
ANALYZE pd_orders;
EXPLAIN (COSTS OFF)
SELECT o.id, s.id FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email;
SELECT o.id, s.id = :'sid' AS first FROM pd_orders o JOIN ps.subscribers s ON s.email = o.email
 ORDER BY o.id;
SELECT method, path, query FROM mock.take_requests() ORDER BY query;
-- joining on the id: GET {path}/{id} per outer row
EXPLAIN (COSTS OFF)
SELECT o.sid, s.email FROM (VALUES (:'sid'), (:'sid2')) o(sid) JOIN ps.subscribers s ON s.id = o.sid;
SELECT count(*) FROM (VALUES (:'sid'), (:'sid2')) o(sid) JOIN ps.subscribers s ON s.id = o.sid;
SELECT method, path, query FROM mock.take_requests() ORDER BY path;
-- the keys batched into one email__in request, written as = ANY (ARRAY(...))
EXPLAIN (COSTS OFF)
SELECT id FROM ps.subscribers WHERE email = ANY (ARRAY(SELECT email FROM pd_orders));
SELECT count(*) FROM ps.subscribers WHERE email = ANY (ARRAY(SELECT email FROM pd_orders));
SELECT * FROM mock.take_requests();
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
SELECT * FROM mock.take_requests();
SELECT pd_rows('SELECT * FROM ps.subscribers') = (SELECT count(*) FROM ps.subscribers) AS exact;
SELECT mock.reset();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE updated_at >= '2026-01-01' AND email LIKE '%e%';
SELECT * FROM mock.take_requests();
-- the filtered count is not reduced again by the filter's selectivity
SELECT pd_rows('SELECT * FROM ps.subscribers WHERE ps_id = ' || :sps_id) AS one_row;
SELECT * FROM mock.take_requests();
ALTER FOREIGN TABLE ps.subscribers OPTIONS (DROP use_remote_estimate);
DROP TABLE pd_orders;
DROP FUNCTION pd_rows(text);
