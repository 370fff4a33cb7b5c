-- Campaign analytics in materialized views, and an incremental sync.
--
-- A materialized view keeps the API's answer locally: dashboards read it
-- without a single request, and a refresh is the only time the API is asked.
-- With a unique index the refresh can be CONCURRENTLY, so readers are never
-- blocked while it runs.

-- Per campaign: one scan of GET /api/v2/campaigns?status__eq=sent&page=N
CREATE MATERIALIZED VIEW campaign_analytics AS
SELECT id AS campaign_id,
       name,
       date_trunc('month', sent_at AT TIME ZONE 'UTC')::date AS month,
       sent_at,
       recipients, sent, delivered, clicks, conversions, revenue, opt_outs, credits_used,
       round(delivered::numeric / nullif(sent, 0), 4) AS delivery_rate,
       round(clicks::numeric / nullif(delivered, 0), 4) AS click_rate,
       round(revenue / nullif(sent, 0), 4) AS revenue_per_message,
       round(opt_outs::numeric / nullif(delivered, 0), 4) AS opt_out_rate
  FROM ps.campaigns
 WHERE status = 'sent';
CREATE UNIQUE INDEX campaign_analytics_campaign_id ON campaign_analytics (campaign_id);

-- Per month: built from the view above, so refreshing it makes no request.
CREATE MATERIALIZED VIEW campaign_analytics_monthly AS
SELECT month,
       count(*) AS campaigns,
       sum(sent) AS sent,
       sum(delivered) AS delivered,
       sum(clicks) AS clicks,
       sum(revenue) AS revenue,
       sum(opt_outs) AS opt_outs,
       round(sum(delivered)::numeric / nullif(sum(sent), 0), 4) AS delivery_rate,
       round(sum(clicks)::numeric / nullif(sum(delivered), 0), 4) AS click_rate,
       round(sum(revenue) / nullif(sum(sent), 0), 4) AS revenue_per_message,
       round(sum(opt_outs)::numeric / nullif(sum(delivered), 0), 4) AS opt_out_rate
  FROM campaign_analytics
 GROUP BY month;
CREATE UNIQUE INDEX campaign_analytics_monthly_month ON campaign_analytics_monthly (month);

SELECT name, sent_at::date AS sent_on, sent, delivery_rate, click_rate,
       revenue_per_message, opt_outs
  FROM campaign_analytics
 ORDER BY revenue DESC, campaign_id
 LIMIT 5;

SELECT to_char(month, 'YYYY-MM') AS month, campaigns, sent, delivery_rate, click_rate,
       revenue, revenue_per_message, opt_outs
  FROM campaign_analytics_monthly
 ORDER BY month;

-- Refresh without blocking readers (e.g. from cron or pg_cron, hourly).
-- Only the first makes requests; the second reads the first.
REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics;
REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics_monthly;


-- Incremental sync: a local copy of the subscribers that each run brings up
-- to date.  postscript_fdw_sync() creates the table like the foreign one
-- (primary key on id), copies everything once in created_at order, a page
-- a batch, each committed with its cursor (a stopped copy resumes where it
-- was), then fetches only the subscribers whose updated_at is newer than
-- its cursor, less an overlap for clock skew.  It is a procedure that
-- commits: CALL it on its own, outside a transaction block.

-- The first run copies everything ...
CALL postscript_fdw_sync('ps.subscribers', 'subscribers_local');
-- ... the second only what changed since: here nothing, in one request.
CALL postscript_fdw_sync('ps.subscribers', 'subscribers_local');

SELECT run_mode, rows_fetched, rows_inserted, rows_updated, requests, change_cursor
  FROM postscript_fdw_sync_status WHERE target = 'public.subscribers_local';
SELECT count(*) AS local_subscribers, max(updated_at) AS newest_change
  FROM subscribers_local;
