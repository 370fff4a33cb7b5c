-- Joining Postscript subscribers to your own orders.
--
-- A shop's orders live in its own database; Postscript knows who is
-- subscribed.  This example makes a small local `orders` table (sample orders
-- of some real subscribers, derived from ps.subscribers, plus a few guests
-- who never subscribed), then answers two questions:
--   1. who bought but is not subscribed (people to invite to the SMS list);
--   2. which subscribers bought within a week after a campaign was sent.
--
-- The join shape matters.  `s.email = ANY (ARRAY(SELECT ... FROM orders))`
-- is computed before the scan starts, so the API is asked only for those
-- emails (one request: ?email__in=a%40x&email__in=b%40y..., or one per few
-- hundred emails when they are more than one URL holds), where a plain
-- `JOIN ... ON s.email = o.email` may read every subscriber page by page.

CREATE TABLE orders (
  order_id   integer PRIMARY KEY,
  email      text NOT NULL,
  created_at timestamptz NOT NULL,
  total      numeric(10, 2) NOT NULL
);

-- 40 subscribers picked by a hash of their id get 1 to 3 orders each, spread
-- over the weeks in which campaigns were sent; 8 guests get one order each.
INSERT INTO orders (order_id, email, created_at, total)
WITH period AS (
  SELECT coalesce(min(sent_at), '2024-01-01 00:00+00') AS first_sent,
         coalesce(max(sent_at) - min(sent_at), interval '0') + interval '14 days' AS span
    FROM ps.campaigns
   WHERE status = 'sent'
), buyers AS (
  SELECT email, row_number() OVER (ORDER BY md5(id)) AS n
    FROM ps.subscribers
   WHERE email IS NOT NULL
   ORDER BY md5(id)
   LIMIT 40
), guests AS (
  SELECT format('guest%s@example.net', lpad(g::text, 2, '0')) AS email, 100 + g AS n
    FROM generate_series(1, 8) AS g
), customers AS (
  SELECT email, n, 1 + n % 3 AS orders FROM buyers
  UNION ALL
  SELECT email, n, 1 FROM guests
)
SELECT row_number() OVER (ORDER BY c.n, k) AS order_id,
       c.email,
       p.first_sent + p.span * (((c.n * 7 + k * 13) % 100) / 100.0)::float8,
       10 + (c.n * 37 + k * 11) % 190 + 0.99
  FROM customers c
 CROSS JOIN period p
 CROSS JOIN LATERAL generate_series(1, c.orders) AS k;

SELECT count(*) AS orders, count(DISTINCT email) AS customers,
       min(created_at)::date AS first_order, max(created_at)::date AS last_order
  FROM orders;

-- 1. Bought, but not subscribed.  The subscribers scan gets every order
--    email at once (email__in); the anti-join runs locally on the few rows
--    that come back.
CREATE VIEW customers_not_subscribed AS
WITH subscribed AS MATERIALIZED (
  SELECT email
    FROM ps.subscribers
   WHERE email = ANY (ARRAY(SELECT DISTINCT email FROM orders))
)
SELECT o.email, count(*) AS orders, sum(o.total) AS spent, max(o.created_at) AS last_order
  FROM orders o
 WHERE NOT EXISTS (SELECT 1 FROM subscribed s WHERE s.email = o.email)
 GROUP BY o.email;

SELECT * FROM customers_not_subscribed ORDER BY spent DESC, email;

-- the request it makes: one filtered scan of /api/v2/subscribers
EXPLAIN (COSTS OFF) SELECT * FROM customers_not_subscribed;

-- 2. Subscribers who bought within 7 days after a campaign was sent, and
--    were subscribed when it went out.  Two filtered scans: campaigns with
--    status__eq=sent, subscribers with email__in=(the order emails).
CREATE VIEW campaign_buyers AS
WITH buyers AS MATERIALIZED (
  SELECT id, email, created_at AS subscribed_at
    FROM ps.subscribers
   WHERE email = ANY (ARRAY(SELECT DISTINCT email FROM orders))
)
SELECT c.id AS campaign_id, c.name AS campaign, c.sent_at,
       b.id AS subscriber_id, o.order_id, o.created_at AS ordered_at, o.total
  FROM ps.campaigns c
  JOIN orders o ON o.created_at >= c.sent_at
               AND o.created_at < c.sent_at + interval '7 days'
  JOIN buyers b ON b.email = o.email AND b.subscribed_at <= c.sent_at
 WHERE c.status = 'sent';

SELECT campaign, sent_at::date AS sent, count(DISTINCT subscriber_id) AS buyers,
       count(*) AS orders, sum(total) AS revenue
  FROM campaign_buyers
 GROUP BY campaign_id, campaign, sent_at
 ORDER BY sent_at, campaign_id
 LIMIT 10;

-- One customer by email: a single email__eq request.
SELECT id, phone_number, promotional_can_send, tags
  FROM ps.subscribers
 WHERE email = (SELECT email FROM orders ORDER BY order_id LIMIT 1);
