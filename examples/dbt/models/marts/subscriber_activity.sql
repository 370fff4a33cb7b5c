{{
    config(
        materialized='incremental',
        unique_key='subscriber_id'
    )
}}

select
    subscriber_id,
    email,
    phone_number,
    promotional_can_send,
    coalesce(has_purchased, false) as has_purchased,
    cardinality(tags) as tag_count,
    (date_trunc('month', created_at at time zone 'UTC'))::date as cohort_month,
    created_at,
    updated_at
from {{ ref('stg_subscribers') }}

{% if is_incremental() %}
-- only the subscribers changed since the last run: the subquery is computed
-- first, and the comparison reaches the API as updated_at__gte=<newest>.
-- >=, not >: Postscript's times are whole seconds, so a change made later in
-- the second of the newest row loaded has that same updated_at
where updated_at >= (select max(updated_at) from {{ this }})
{% endif %}
