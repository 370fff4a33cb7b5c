--
-- The examples (examples/*.sql, which the demo runs too) in the test
-- database: each runs without an error (its own output is not shown here,
-- an error is), and what it built agrees with the server's data read in
-- full, and it made the requests it says it makes.
--
-- requests are counted below as answered ones (status 200), in pages of 100
SELECT mock.reset();
SELECT mock.config('{"page_size": 100}');
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;

\set ECHO none
\o /dev/null
\set example :abs_srcdir '/examples/00_tour.sql'
\i :example
\set example :abs_srcdir '/examples/10_orders.sql'
\i :example
\o
\set ECHO all

-- the server's data read in full, to check the examples against
SELECT mock.reset();
CREATE TEMP TABLE all_subscribers AS SELECT * FROM ps.subscribers;
CREATE TEMP TABLE all_campaigns AS SELECT * FROM ps.campaigns;
SELECT s.resource, s.count = t.n AS complete
  FROM mock.summary() s
  JOIN (VALUES ('subscribers', (SELECT count(*) FROM all_subscribers)),
               ('campaigns', (SELECT count(*) FROM all_campaigns))) t(resource, n) USING (resource)
 ORDER BY 1;
SELECT method, path, query FROM mock.requests() WHERE status = 200 AND query !~ '^page=\d+$';

--
-- 10_orders: 40 subscribers with 1 to 3 orders each, 8 guests with one
--
SELECT count(DISTINCT email) AS customers,
       count(DISTINCT email) FILTER (WHERE email IN (SELECT email FROM all_subscribers)) AS subscribed,
       count(*) FILTER (WHERE email LIKE 'guest%@example.net') AS guest_orders,
       bool_and(created_at >= (SELECT min(sent_at) FROM all_campaigns WHERE status = 'sent')) AS after_first_campaign
  FROM orders;

-- bought but not subscribed: the guests, from one request that names every
-- order email
SELECT mock.reset();
SELECT email, orders FROM customers_not_subscribed ORDER BY email;
SELECT method, path, (SELECT count(*) FROM regexp_matches(query, 'email__in=', 'g')) AS emails_asked,
       (SELECT count(DISTINCT email) FROM orders) AS order_emails,
       query ~ '(^|&)page=1$' AS first_page
  FROM mock.requests() WHERE status = 200;
SELECT array(SELECT email FROM customers_not_subscribed ORDER BY email)
       = array(SELECT DISTINCT email FROM orders o
                WHERE NOT EXISTS (SELECT 1 FROM all_subscribers s WHERE s.email = o.email)
                ORDER BY email) AS same_as_full_scan;

-- bought within a week after a campaign: the same rows as from the full
-- data; campaigns filtered by status, subscribers by the order emails
SELECT mock.reset();
CREATE TEMP TABLE buyers_seen AS SELECT * FROM campaign_buyers;
SELECT DISTINCT method, path,
       regexp_replace(regexp_replace(query, '(email__in=[^&]*&)+', 'email__in=...&'),
                      'page=\d+', 'page=N') AS query
  FROM mock.requests() WHERE status = 200 ORDER BY 2, 3;
CREATE TEMP TABLE buyers_expected AS
SELECT c.id AS campaign_id, c.name AS campaign, c.sent_at,
       s.id AS subscriber_id, o.order_id, o.created_at AS ordered_at, o.total
  FROM all_campaigns c
  JOIN orders o ON o.created_at >= c.sent_at AND o.created_at < c.sent_at + interval '7 days'
  JOIN all_subscribers s ON s.email = o.email AND s.created_at <= c.sent_at
 WHERE c.status = 'sent';
SELECT (SELECT count(*) FROM buyers_seen) > 0 AS has_rows,
       NOT EXISTS (TABLE buyers_seen EXCEPT ALL TABLE buyers_expected)
       AND NOT EXISTS (TABLE buyers_expected EXCEPT ALL TABLE buyers_seen) AS same_as_full_scan;

--
-- 20_campaign_analytics
--
SELECT mock.reset();
\set ECHO none
\o /dev/null
\set example :abs_srcdir '/examples/20_campaign_analytics.sql'
\i :example
\o
\set ECHO all

-- the sent campaigns: a scan for the view, another for REFRESH ...
-- CONCURRENTLY (the monthly view reads the first); the sync: run 1 reads
-- every subscriber page, each page 1 of a query from the last created_at
-- stored (one row read twice per page), run 2 only the changes since the
-- pass began, less the overlap: nothing, one request
SELECT method, path,
       CASE WHEN query ~ '^(created_at__gte=[^&]*&)?sort=created_at__asc&page=1$' THEN 'sync run 1'
            WHEN query ~ '^updated_at__gte=[^&]*&sort=updated_at__asc&page=1$' THEN 'sync run 2'
            ELSE regexp_replace(query, 'page=\d+', 'page=N') END AS request,
       count(*) AS requests
  FROM mock.requests() WHERE status = 200 GROUP BY 1, 2, 3 ORDER BY 2, 3;

-- one row per sent campaign, every figure as computed from the full data
SELECT count(*) AS campaigns,
       count(*) = (SELECT count(*) FROM all_campaigns WHERE status = 'sent') AS all_sent_campaigns
  FROM campaign_analytics;
SELECT count(*) AS mismatched
  FROM campaign_analytics a FULL JOIN (SELECT * FROM all_campaigns WHERE status = 'sent') c
       ON c.id = a.campaign_id
 WHERE a.campaign_id IS NULL OR c.id IS NULL
    OR a.month IS DISTINCT FROM date_trunc('month', c.sent_at AT TIME ZONE 'UTC')::date
    OR a.revenue IS DISTINCT FROM c.revenue
    OR a.delivery_rate IS DISTINCT FROM round(c.delivered::numeric / nullif(c.sent, 0), 4)
    OR a.click_rate IS DISTINCT FROM round(c.clicks::numeric / nullif(c.delivered, 0), 4)
    OR a.revenue_per_message IS DISTINCT FROM round(c.revenue / nullif(c.sent, 0), 4)
    OR a.opt_out_rate IS DISTINCT FROM round(c.opt_outs::numeric / nullif(c.delivered, 0), 4);
SELECT count(*) AS months,
       count(*) FILTER (WHERE m.campaigns IS DISTINCT FROM c.n OR m.sent IS DISTINCT FROM c.sent
                          OR m.revenue IS DISTINCT FROM c.revenue
                          OR m.opt_outs IS DISTINCT FROM c.opt_outs) AS mismatched
  FROM campaign_analytics_monthly m
  FULL JOIN (SELECT date_trunc('month', sent_at AT TIME ZONE 'UTC')::date AS month, count(*) AS n,
                    sum(sent) AS sent, sum(revenue) AS revenue, sum(opt_outs) AS opt_outs
               FROM all_campaigns WHERE status = 'sent' GROUP BY 1) c USING (month);

-- a concurrent refresh asks for the sent campaigns again, and only for them
SELECT mock.reset();
REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics;
REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics_monthly;
SELECT DISTINCT method, path, regexp_replace(query, 'page=\d+', 'page=N') AS query
  FROM mock.requests() WHERE status = 200;

-- the sync copied every subscriber; its second run fetched nothing
SELECT status, run_mode, rows_fetched, rows_inserted, rows_updated, requests, last_full_at IS NOT NULL AS full_pass_done
  FROM postscript_fdw_sync_status WHERE target = 'public.subscribers_local';
SELECT count(*) AS mismatched
  FROM subscribers_local l FULL JOIN all_subscribers s USING (id)
 WHERE l.id IS NULL OR s.id IS NULL
    OR (l.email, l.phone_number, l.shopify_customer_id, l.tags, l.properties,
        l.promotional_can_send, l.created_at, l.updated_at)
       IS DISTINCT FROM
       (s.email, s.phone_number, s.shopify_customer_id, s.tags, s.properties,
        s.promotional_can_send, s.created_at, s.updated_at);

-- with the cursor set back to the 151st newest change (and no overlap), a
-- run fetches just those: its first request carries updated_at__gte=<cursor>
-- at the second precision the API documents (rounded down: the local
-- filter drops the few extra rows), each next one the last updated_at
-- stored, so each batch after the first reads one row again
UPDATE postscript_fdw_sync_state
   SET change_cursor = (SELECT updated_at FROM all_subscribers
                         ORDER BY updated_at DESC OFFSET 150 LIMIT 1)
 WHERE target = 'public.subscribers_local'
 RETURNING change_cursor AS watermark \gset
SELECT mock.reset();
CALL postscript_fdw_sync('ps.subscribers', 'subscribers_local', overlap => '0');
SELECT rows_fetched - (batches - 1) = (SELECT count(*) FROM all_subscribers WHERE updated_at >= :'watermark') AS fetched_only_newer,
       rows_updated, change_cursor = (SELECT max(updated_at) FROM all_subscribers) AS at_newest_change
  FROM postscript_fdw_sync_status WHERE target = 'public.subscribers_local';
SELECT count(*) AS requests,
       bool_and(path = '/api/v2/subscribers') AS subscribers_only,
       min(substring(replace(query, '%3A', ':') FROM 'updated_at__gte=([^&]*)')::timestamptz)
         = date_trunc('second', :'watermark'::timestamptz) AS from_watermark
  FROM mock.requests() WHERE status = 200;

-- clean up
DROP TABLE subscribers_local;
DELETE FROM postscript_fdw_sync_state WHERE target = 'public.subscribers_local';
DROP MATERIALIZED VIEW campaign_analytics CASCADE;
DROP TABLE orders CASCADE;
RESET client_min_messages;
