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
-- to date by fetching only what changed since the last run.  The watermark
-- is the newest updated_at already copied (the API's clock, not ours); the
-- filter `updated_at > watermark` becomes ?updated_at__gt=... so the API
-- sends only the changed rows.

CREATE TABLE subscribers_local (
  id                   text PRIMARY KEY,
  email                text,
  phone_number         text NOT NULL,
  shopify_customer_id  bigint,
  tags                 text[],
  properties           jsonb,
  promotional_can_send boolean,
  created_at           timestamptz,
  updated_at           timestamptz NOT NULL
);

CREATE TABLE sync_state (
  table_name     text PRIMARY KEY,
  synced_through timestamptz NOT NULL,
  last_fetched   bigint,
  last_run_at    timestamptz
);
INSERT INTO sync_state (table_name, synced_through)
VALUES ('subscribers', '1970-01-01 00:00+00');

-- One statement, so the copy and the watermark move together.
CREATE FUNCTION sync_subscribers(OUT fetched bigint, OUT synced_through timestamptz)
LANGUAGE sql AS $$
  WITH changed AS (
    INSERT INTO subscribers_local AS l
           (id, email, phone_number, shopify_customer_id, tags, properties,
            promotional_can_send, created_at, updated_at)
    SELECT id, email, phone_number, shopify_customer_id, tags, properties,
           promotional_can_send, created_at, updated_at
      FROM ps.subscribers
     WHERE updated_at > (SELECT synced_through FROM sync_state
                          WHERE table_name = 'subscribers')
    ON CONFLICT (id) DO UPDATE
       SET email = excluded.email,
           phone_number = excluded.phone_number,
           shopify_customer_id = excluded.shopify_customer_id,
           tags = excluded.tags,
           properties = excluded.properties,
           promotional_can_send = excluded.promotional_can_send,
           updated_at = excluded.updated_at
    RETURNING l.updated_at
  )
  UPDATE sync_state
     SET synced_through = greatest(sync_state.synced_through,
                                   (SELECT max(updated_at) FROM changed)),
         last_fetched = (SELECT count(*) FROM changed),
         last_run_at = now()
   WHERE table_name = 'subscribers'
  RETURNING last_fetched, sync_state.synced_through
$$;

-- The first run copies everything (updated_at__gt=1970-01-01T00:00:00Z) ...
SELECT * FROM sync_subscribers();
-- ... the second only what changed since: here nothing, in one request.
SELECT * FROM sync_subscribers();

SELECT count(*) AS local_subscribers, max(updated_at) AS newest_change
  FROM subscribers_local;
