-- a view: creating it makes no request; a query on it sends its filters on
-- to the foreign table (and from there to the API)
select
    id as subscriber_id,
    lower(email) as email,
    phone_number,
    shopify_customer_id,
    tags,
    promotional_can_send,
    transactional_can_send,
    (properties ->> 'has_purchased')::boolean as has_purchased,
    created_at,
    updated_at
from {{ source('postscript', 'subscribers') }}
