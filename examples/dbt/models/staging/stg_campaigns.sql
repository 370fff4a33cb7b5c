select
    id as campaign_id,
    name as campaign_name,
    status,
    sent_at,
    recipients,
    sent,
    delivered,
    clicks,
    conversions,
    revenue,
    opt_outs,
    credits_used,
    updated_at
from {{ source('postscript', 'campaigns') }}
