-- A first look: who the credentials belong to, how much there is, and what
-- a filtered query asks the API for.
SELECT resource_name, resource_type FROM ps.shop;

SELECT 'subscribers' AS "table", count(*) AS rows FROM ps.subscribers
UNION ALL SELECT 'keywords', count(*) FROM ps.keywords
UNION ALL SELECT 'campaigns', count(*) FROM ps.campaigns
UNION ALL SELECT 'messages', count(*) FROM ps.messages
UNION ALL SELECT 'opt_ins', count(*) FROM ps.opt_ins
UNION ALL SELECT 'opt_outs', count(*) FROM ps.opt_outs;

-- the newest subscribers who may receive promotions
SELECT id, phone_number, email, tags, created_at
  FROM ps.subscribers
 WHERE promotional_can_send
 ORDER BY created_at DESC
 LIMIT 5;

-- the filter, the sort and the limit become the request
EXPLAIN (COSTS OFF)
SELECT id, email FROM ps.subscribers
 WHERE created_at >= '2024-01-01' AND email LIKE '%+%'
 ORDER BY created_at DESC LIMIT 10;
