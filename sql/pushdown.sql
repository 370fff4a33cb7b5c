--
-- Pushdown: which requests each query sends (read from the local server's
-- request log) and what EXPLAIN shows.  Joins to local tables are in
-- joins.sql.
--
SELECT mock.reset();
SET timezone = 'UTC';

-- values drawn from the data (reading all of it: the log is reset after)
SELECT id AS sid, email AS semail, phone_number AS sphone, ps_id AS sps_id,
       shopify_customer_id AS sshop, updated_at AS supdated
  FROM ps.subscribers
 WHERE email IS NOT NULL AND shopify_customer_id IS NOT NULL
 ORDER BY id LIMIT 1 \gset
SELECT id AS sid2, email AS semail2 FROM ps.subscribers
 WHERE email IS NOT NULL AND id <> :'sid' ORDER BY id LIMIT 1 \gset
SELECT count(*) > 0 AS read_everything FROM mock.take_requests();

-- = on text: one request, the value percent-encoded (+ is %2B, @ is %40)
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email = 'a+b@x.com';
SELECT id FROM ps.subscribers WHERE email = 'a+b@x.com';
SELECT * FROM mock.take_requests();
SELECT id = :'sid' AS same FROM ps.subscribers WHERE email = :'semail';
SELECT count(*) FROM mock.take_requests();

-- timestamps: sent in UTC with Z whatever the session's TimeZone
SET timezone = 'Asia/Tokyo';
SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE updated_at >= '2026-01-01';
SELECT * FROM mock.take_requests();
SET timezone = 'America/New_York';
SELECT count(*) >= 0 AS ran FROM ps.subscribers
 WHERE created_at < '2025-07-01'::date AND updated_at > '2025-01-01 10:00:00.25'::timestamp;
SELECT * FROM mock.take_requests();
SELECT count(*) = 1 AS found FROM ps.subscribers WHERE updated_at = :'supdated';
SELECT count(*) FROM mock.take_requests();
SET timezone = 'UTC';
-- infinite values are not sent (the local filter answers)
SELECT count(*) FROM ps.subscribers WHERE created_at > 'infinity';
SELECT count(*) > 0 AS all_pages FROM mock.take_requests() WHERE query NOT LIKE '%created_at%';
-- stable expressions are computed when the scan starts
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE created_at > now() - interval '1 day';
SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE created_at > now() - interval '1 day';
SELECT bool_and(query ~ '^created_at__gt=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d(\.\d{1,6})?Z&page=\d+$')
       AS utc_value, count(*) > 0 AS sent
  FROM mock.take_requests();

-- integers, also compared with an int4 constant; IN is a repeated parameter,
-- each value once
SELECT id = :'sid' AS same FROM ps.subscribers WHERE ps_id = :sps_id;
SELECT id = :'sid' AS same FROM ps.subscribers WHERE shopify_customer_id = :sshop::int8;
SELECT * FROM mock.take_requests();
SELECT count(*) FROM ps.subscribers
 WHERE email IN (:'semail', :'semail2', :'semail', NULL, 'nobody@example.com');
SELECT * FROM mock.take_requests();
SELECT count(*) FROM ps.subscribers WHERE email IN (NULL, NULL);
SELECT count(*) FROM mock.take_requests();

-- a long IN list is split across requests, each URL within max_url_length
-- (8000): the list's values in disjoint shares, the other filters in each.
-- 2,000 emails would make a URL of about 75 kB, which the local server, as
-- most servers and proxies, refuses (414)
\getenv mock_url PS_MOCK_URL
CREATE TEMP TABLE many_emails AS
  SELECT email FROM ps.subscribers WHERE email IS NOT NULL ORDER BY id LIMIT 300;
INSERT INTO many_emails SELECT format('nobody-%s@example.com', i) FROM generate_series(1, 1700) i;
SELECT count(*) > 0 AS read_everything FROM mock.take_requests();
SELECT count(*) AS found, count(DISTINCT id) AS distinct_ids FROM ps.subscribers
 WHERE email = ANY (ARRAY(SELECT email FROM many_emails)) AND created_at > '2000-01-01';
CREATE TEMP TABLE split_requests AS
  SELECT row_number() OVER () AS n, query FROM mock.take_requests();
SELECT count(*) > 1 AS split,
       max(length(:'mock_url' || '/api/v2/subscribers?' || query)) <= 8000 AS each_within,
       bool_and(query ~ '^created_at__gt=2000-01-01T00%3A00%3A00Z&email__in=[^&]+(&email__in=[^&]+)*&page=\d+$')
         AS each_has_the_rest
  FROM split_requests;
-- on the parts' first pages, each of the 2,000 values once
SELECT count(*) AS values_sent, count(DISTINCT p) AS distinct_values
  FROM split_requests, regexp_split_to_table(query, '&') p
 WHERE query LIKE '%&page=1' AND p LIKE 'email__in=%';
-- the API cannot sort the parts as one: the sort is local (the plan's lines
-- are read, not shown: versions print an InitPlan differently)
CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
SELECT bool_or(l ~ '^Sort$') AS local_sort, bool_or(l ~ 'sort=') AS api_sort
  FROM pg_temp.plan_lines($$SELECT id FROM ps.subscribers
 WHERE email = ANY (ARRAY(SELECT email FROM many_emails)) ORDER BY created_at$$) l;
SELECT count(*) FROM (SELECT id FROM ps.subscribers
 WHERE email = ANY (ARRAY(SELECT email FROM many_emails)) ORDER BY created_at) s;
SELECT count(*) > 1 AS split, bool_and(query NOT LIKE '%sort=%') AS unsorted
  FROM mock.take_requests();
-- a list from a stable expression is not sorted by the API either: a cached
-- plan outlives its value, which may be long when the scan starts
SELECT set_config('app.emails', :'semail' || ',' || :'semail2', false) IS NOT NULL AS set;
PREPARE stable_list AS SELECT count(*) FROM (SELECT id FROM ps.subscribers
 WHERE email = ANY (string_to_array(current_setting('app.emails'), ',')) ORDER BY created_at) s;
EXECUTE stable_list;
SELECT query FROM mock.take_requests();
SELECT set_config('app.emails', string_agg(email, ','), false) IS NOT NULL AS set FROM many_emails;
EXECUTE stable_list;
SELECT count(*) > 1 AS split, bool_and(query NOT LIKE '%sort=%') AS unsorted
  FROM mock.take_requests();
DEALLOCATE stable_list;
-- a short list of known values is sorted by the API
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers
 WHERE email IN ('a@x.com', 'b@x.com') ORDER BY created_at;
-- values known at plan time: EXPLAIN shows each part, and a sort is local
ALTER SERVER ps OPTIONS (ADD max_url_length '256');
SELECT format('ARRAY[%s]', string_agg(quote_literal(e), ', ')) AS long_list
  FROM (SELECT format('a-long-local-part-for-the-split-test-%s@example.com', i)
          FROM generate_series(1, 6) i
        UNION ALL SELECT :'semail') l(e) \gset
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers
 WHERE email = ANY (:long_list)
 ORDER BY created_at;
SELECT id = :'sid' AS same FROM ps.subscribers
 WHERE email = ANY (:long_list)
 ORDER BY created_at;
SELECT * FROM mock.take_requests();
-- use_remote_estimate asks for the first part only
ALTER FOREIGN TABLE ps.subscribers OPTIONS (ADD use_remote_estimate 'true');
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers
 WHERE email = ANY ((:long_list)[1:4]);
SELECT query FROM mock.take_requests();
ALTER FOREIGN TABLE ps.subscribers OPTIONS (DROP use_remote_estimate);
ALTER SERVER ps OPTIONS (DROP max_url_length);
-- one URL as long as the list: the local server refuses it
ALTER SERVER ps OPTIONS (ADD max_url_length '1048576');
SELECT count(*) FROM ps.subscribers WHERE email = ANY (ARRAY(SELECT email FROM many_emails));
ALTER SERVER ps OPTIONS (DROP max_url_length);
-- one value longer than any URL may be: nothing can be split
SELECT count(*) FROM ps.subscribers WHERE email = repeat('x', 70000);
-- both were sent once, and refused; the local server logs a request line
-- over 64 KiB as far as its first 64 KiB go
SELECT method, path, status, length(query) > 60000 AS long_query FROM mock.requests();
SELECT mock.reset();
-- ps_id is a 32-bit integer to the API, which refuses a larger filter
-- value: no subscriber has one, and no request is made
SELECT count(*) FROM ps.subscribers WHERE ps_id = 3000000000;
SELECT count(*) FROM ps.subscribers WHERE ps_id = -2147483649;
SELECT count(*) FROM mock.take_requests();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE ps_id = 3000000000;

-- LIKE '%x%' is __contains (case-sensitive, as LIKE); other patterns stay local
SELECT count(*) > 0 AS found FROM ps.subscribers
 WHERE phone_number LIKE '%' || substr(:'sphone', 3, 4) || '%';
SELECT * FROM mock.take_requests();
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
SELECT * FROM mock.take_requests();
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers
 WHERE id IN (:'sid2', :'sid', :'sid2', NULL, 's_no_such_subscriber');
SELECT count(*) FROM ps.subscribers WHERE id IN (:'sid2', :'sid', :'sid2', NULL, 's_no_such_subscriber');
SELECT * FROM mock.take_requests();

-- parameters: PREPARE with a generic plan; a NULL value sends nothing
PREPARE by_email(text) AS SELECT id FROM ps.subscribers WHERE email = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE by_email('a+b@x.com');
EXECUTE by_email('a+b@x.com');
EXECUTE by_email(NULL);
SELECT * FROM mock.take_requests();
PREPARE since(timestamptz, int) AS
  SELECT count(*) >= 0 AS ran FROM ps.subscribers WHERE updated_at >= $1 AND ps_id = $2;
EXECUTE since('2026-01-01 00:00:00+02', 7);
SELECT * FROM mock.take_requests();
PREPARE by_ps_id(bigint) AS SELECT count(*) FROM ps.subscribers WHERE ps_id = $1;
EXECUTE by_ps_id(2147483648);
EXECUTE by_ps_id(2147483647);
SELECT * FROM mock.take_requests();
RESET plan_cache_mode;

-- ORDER BY a sortable field is sort=; LIMIT stops paging early
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY created_at DESC LIMIT 5;
SELECT count(*) FROM (SELECT id FROM ps.subscribers LIMIT 5) s;
SELECT * FROM mock.take_requests();
SELECT count(*) FROM (SELECT id FROM ps.subscribers ORDER BY created_at DESC LIMIT 5) s;
SELECT * FROM mock.take_requests();
SELECT count(*) FROM (SELECT id FROM ps.subscribers LIMIT 5 OFFSET 100) s;
SELECT * FROM mock.take_requests();
SELECT * FROM mock.explain_analyze('SELECT id FROM ps.subscribers LIMIT 150');
-- NULLS FIRST ascending: sorted here; text only under the C collation
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY created_at NULLS FIRST LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers ORDER BY phone_number COLLATE "C" LIMIT 5;
-- a field that may be null (a campaign's sent_at): sorted by the API only
-- when the WHERE clause excludes NULLs, whose place in the API's order is
-- unknown
EXPLAIN (COSTS OFF) SELECT id FROM ps.campaigns ORDER BY sent_at LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM ps.campaigns WHERE sent_at IS NOT NULL
 ORDER BY sent_at DESC NULLS LAST LIMIT 5;
-- shopify_customer_id is a documented sort field, but not whether the API
-- sorts it as numbers or as text: sorted here
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE shopify_customer_id IS NOT NULL
 ORDER BY shopify_customer_id LIMIT 5;
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
