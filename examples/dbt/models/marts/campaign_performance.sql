-- Campaign analytics: one row per sent campaign, one request
-- (GET /api/v2/campaigns?status__eq=sent&page=N).  Stats keep changing for
-- days after a send, so the whole table is rebuilt on every run.
select
    campaign.*,
    (date_trunc('month', sent_at at time zone 'UTC'))::date as sent_month,
    round(delivered::numeric / nullif(sent, 0), 4) as delivery_rate,
    round(clicks::numeric / nullif(delivered, 0), 4) as click_rate,
    round(revenue / nullif(sent, 0), 4) as revenue_per_message,
    round(opt_outs::numeric / nullif(delivered, 0), 4) as opt_out_rate
from {{ ref('stg_campaigns') }} as campaign
where status = 'sent'
