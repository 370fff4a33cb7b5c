--
-- Writes: INSERT into subscribers, opt_ins, opt_outs and events, UPDATE of
-- subscribers; validation before anything is sent; retries that never
-- duplicate a write; the server's state after each.
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();

-- the requests since the last look, with their bodies
CREATE FUNCTION mock.sent() RETURNS TABLE (method text, path text, query text, status int, body text)
LANGUAGE sql BEGIN ATOMIC
  SELECT method, path, query, status, body FROM mock.requests() ORDER BY seq;
END;

----------------------------------------------------------------- subscribers
-- one row: POST /subscribers; the subscriber is pending (double opt-in)
INSERT INTO ps.subscribers (phone_number, email, keyword, tags, properties)
VALUES ('(555) 555-0123', 'new.one@example.com', 'JOIN', '{VIP,new}',
        '{"tier": "gold", "visits": 3, "likes": ["tea", "jam"], "vip": true, "note": null}')
RETURNING id LIKE 's_pending_%' AS pending_id, phone_number, email, tags, properties,
          is_pending, keyword, created_at IS NOT NULL AS has_created_at;
SELECT * FROM mock.sent();
-- pending: listed by opt_ins, not yet by subscribers
SELECT status, phone_number, subscriber_id LIKE 's_pending_%' AS pending_id FROM ps.opt_ins WHERE phone_number = '+15555550123';
SELECT count(*) FROM ps.subscribers WHERE phone_number = '+15555550123';

-- several rows, national and international formats
INSERT INTO ps.subscribers (phone_number, shopify_customer_id)
VALUES ('555.555.0124', 1001), ('+1 555 555 0125', NULL), ('1-555-555-0126', 1003),
       ('+44 (0)20 7946 0958', NULL), ('0049 30 1234567', NULL)
RETURNING phone_number, shopify_customer_id, is_pending;
SELECT method, path, status, body FROM mock.sent();

-- COPY FROM works like INSERT
COPY ps.subscribers (phone_number, email) FROM stdin WITH (FORMAT csv);
555 555 0128,copy.one@example.com
(555) 555-0129,copy.two@example.com
\.
SELECT method, path, status, body FROM mock.sent();

EXPLAIN (COSTS OFF) INSERT INTO ps.subscribers (phone_number) VALUES ('5555550127');

-- default_country: a national number of another country
CREATE SERVER ps_gb FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', default_country 'GB');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_gb OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE gb_subscribers (id text, phone_number text, is_pending boolean)
  SERVER ps_gb OPTIONS (resource 'subscribers');
INSERT INTO gb_subscribers (phone_number) VALUES ('07700 900123') RETURNING phone_number, is_pending;
SELECT mock.reset();

----------------------------------------------------------------- validation
-- each bad row is an error naming the row and column; no request is sent for it
\set VERBOSITY verbose
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550130'), ('555-01x3');
INSERT INTO ps.subscribers (phone_number) VALUES ('555-0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('055 555 0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('555 155 0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('+999 1234 5678');
INSERT INTO ps.subscribers (phone_number) VALUES ('+1 555 555 0123 4567 89');
INSERT INTO ps.subscribers (phone_number) VALUES ('555#555#0123');
INSERT INTO gb_subscribers (phone_number) VALUES ('0770090');
INSERT INTO ps.subscribers (email) VALUES ('no.phone@example.com');
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'not-an-email');
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'a b@example.com');
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'a@example.c0m');
INSERT INTO ps.subscribers (phone_number, keyword, keyword_id) VALUES ('5555550131', 'JOIN', 'kw_1');
INSERT INTO ps.subscribers (phone_number, tags) VALUES ('5555550131', '{VIP,NULL}');
INSERT INTO ps.subscribers (phone_number, tags) VALUES ('5555550131', '{VIP,""}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '[1, 2]');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"address": {"city": "Paris"}}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"list": [1, [2]]}');
INSERT INTO ps.subscribers (phone_number, properties)
  VALUES ('5555550131', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 51) i));
INSERT INTO ps.subscribers (phone_number, shopify_customer_id) VALUES ('5555550131', -5);
INSERT INTO ps.opt_ins (phone_number) VALUES ('5555550131');
INSERT INTO ps.opt_outs (source) VALUES ('api');
INSERT INTO ps.opt_outs (phone_number) VALUES (NULL);
INSERT INTO ps.opt_outs (subscriber_id, phone_number) VALUES ('s_1', '5555550131');
INSERT INTO ps.events (type, email) VALUES ('order placed', 'a@example.com');
INSERT INTO ps.events (type, email) VALUES ('', 'a@example.com');
INSERT INTO ps.events (email) VALUES ('a@example.com');
INSERT INTO ps.events (type) VALUES ('order_placed');
INSERT INTO ps.events (type, email, phone) VALUES ('order_placed', 'a@example.com', '5555550131');
-- a bad row in the middle of INSERT ... SELECT: the rows before it were sent
INSERT INTO ps.subscribers (phone_number)
  SELECT p FROM (VALUES (1, '5555550140'), (2, '5555550141'), (3, 'call me'), (4, '5555550142')) v(i, p) ORDER BY i;
-- with batch_size, a batch is validated before any of it is sent
ALTER FOREIGN TABLE ps.subscribers OPTIONS (ADD batch_size '10');
INSERT INTO ps.subscribers (phone_number)
  SELECT p FROM (VALUES (1, '5555550143'), (2, '5555550144'), (3, 'call me'), (4, '5555550145')) v(i, p) ORDER BY i;
ALTER FOREIGN TABLE ps.subscribers OPTIONS (DROP batch_size);
-- COPY: a column Postscript sets is refused row by row
COPY ps.subscribers (phone_number, created_at) FROM stdin WITH (FORMAT csv);
555 555 0146,2020-01-01
\.
\set VERBOSITY default
-- only the two good rows before the bad one were sent
SELECT method, path, body FROM mock.sent();

-- what cannot be written at all: refused when planned
INSERT INTO ps.subscribers (id, phone_number) VALUES ('s_x', '5555550150');
INSERT INTO ps.keywords (keyword) VALUES ('NEW');
UPDATE ps.opt_ins SET phone_number = '5555550150';
UPDATE ps.subscribers SET phone_number = '5555550150';
DELETE FROM ps.subscribers WHERE email = 'nobody@example.com';
DELETE FROM ps.opt_outs;
SELECT * FROM ps.events;
SELECT count(*) AS requests FROM mock.requests();

----------------------------------------------------------------- opt_ins
INSERT INTO ps.opt_ins (phone_number, keyword) VALUES ('555 555 0160', 'JOIN')
RETURNING id LIKE 's_pending_%' AS pending_id, id = subscriber_id AS same_id, phone_number, keyword, status;
SELECT method, path, body FROM mock.sent();
SELECT status, phone_number FROM ps.opt_ins WHERE phone_number = '+15555550160';

----------------------------------------------------------------- 409
-- a number that is already an active subscriber
SELECT phone_number AS active_phone FROM ps.subscribers ORDER BY phone_number LIMIT 1 \gset
SELECT mock.reset();
INSERT INTO ps.subscribers (phone_number) VALUES (:'active_phone');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550170'), (:'active_phone'), ('5555550171')
  ON CONFLICT DO NOTHING RETURNING phone_number;
SELECT method, path, status FROM mock.sent();

----------------------------------------------------------------- opt_outs
SELECT id AS sub_id, phone_number AS sub_phone FROM ps.subscribers
  WHERE promotional_can_send ORDER BY id LIMIT 1 OFFSET 1 \gset
SELECT count(*) AS opt_outs_before FROM ps.opt_outs \gset
SELECT mock.reset();
INSERT INTO ps.opt_outs (subscriber_id) VALUES (:'sub_id') RETURNING id, subscriber_id, phone_number;
INSERT INTO ps.opt_outs (phone_number) VALUES ('555-555-0123') RETURNING phone_number;
SELECT method, path, status, body FROM mock.sent();
SELECT promotional_can_send FROM ps.subscribers WHERE id = :'sub_id';
SELECT count(*) - :opt_outs_before AS new_opt_outs FROM ps.opt_outs;

----------------------------------------------------------------- events
SELECT mock.reset();
INSERT INTO ps.events (type, subscriber_id, occurred_at, properties, external_id)
VALUES ('order_placed', :'sub_id', '2026-01-31 12:00:00+00', '{"total": 12.5, "items": ["tea"]}', 'ord-1')
RETURNING id IS NOT NULL AS has_id, type;
INSERT INTO ps.events (type, phone) VALUES ('viewed_page', '(555) 555-0123') RETURNING phone;
SELECT method, path, status, body FROM mock.sent();
SELECT jsonb_array_length(mock.admin('GET', '/__admin/events')::jsonb -> 'events') AS events_recorded;

----------------------------------------------------------------- UPDATE
SELECT mock.reset();
SELECT tags AS tags_before, properties AS props_before FROM ps.subscribers WHERE id = :'sub_id';
UPDATE ps.subscribers SET email = 'changed@example.com', tags = '{Gold}', properties = '{"tier": "gold"}'
  WHERE id = :'sub_id'
  RETURNING id, email, 'Gold' = ANY (tags) AS has_gold, properties -> 'tier' AS tier;
SELECT method, path, status, body FROM mock.sent();
-- read back: the tag was added, the properties merged
SELECT email, tags, properties FROM ps.subscribers WHERE id = :'sub_id';
UPDATE ps.subscribers SET tags = NULL WHERE id = :'sub_id';
UPDATE ps.subscribers SET email = 'bad email' WHERE id = :'sub_id';

----------------------------------------------------------------- faults
-- 429: retried, written once
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "count": 2}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550180') RETURNING is_pending;
SELECT method, path, status FROM mock.sent();

-- applied but answered 500: reconciled, not sent again; exactly one results
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550181')
  RETURNING id LIKE 's_pending_%' AS pending_id, phone_number, is_pending;
SELECT method, path, query, status FROM mock.sent();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550181';

-- the same for opt_ins
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.opt_ins (phone_number, keyword) VALUES ('5555550182', 'JOIN')
  RETURNING id = subscriber_id AS same_id, status;
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550182';

-- 500 not applied: the look-up finds nothing, so it is sent again
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 500, "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550183') RETURNING is_pending;
SELECT method, path, query, status FROM mock.sent();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550183';

-- 500 every time: after max_retries the statement fails, nothing was created
CREATE SERVER ps_once FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_retries '1', request_timeout '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_once OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE once_subscribers (id text, phone_number text, is_pending boolean)
  SERVER ps_once OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE once_events (id text, type text, email text)
  SERVER ps_once OPTIONS (resource 'events');
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 500, "method": "POST", "path": "/api/v2/subscribers", "count": 5}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550184');
SELECT method, path, status FROM mock.sent();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550184';

-- connection closed after the request was sent: reconciled
SELECT mock.reset();
SELECT mock.fault('{"kind": "close", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550185') RETURNING is_pending;
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550185';

-- applied, then the answer stalls past request_timeout: reconciled
SELECT mock.reset();
SELECT mock.fault('{"kind": "stall", "delay_ms": 3000, "method": "POST", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550186') RETURNING is_pending;
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550186';

-- an event whose outcome is unknown is never sent again
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 500, "path": "/api/v2/events", "count": 1}');
INSERT INTO once_events (type, email) VALUES ('order_placed', 'a@example.com');
SELECT method, path, status FROM mock.sent();

-- connection refused: nothing was sent, retried, then an error
CREATE SERVER ps_refused_w FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:1', max_retries '1', max_retry_wait '1', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_refused_w OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE refused_subscribers (phone_number text) SERVER ps_refused_w OPTIONS (resource 'subscribers');
SELECT mock.try($$INSERT INTO refused_subscribers VALUES ('5555550187')$$);

----------------------------------------------------------------- many rows
-- INSERT ... SELECT of a thousand rows, within the server's rate limit
CREATE SERVER ps_paced FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '200', rate_burst '5', batch_size '100');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_paced OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE paced_subscribers (id text, phone_number text) SERVER ps_paced OPTIONS (resource 'subscribers');
SELECT mock.reset();
SELECT mock.config('{"rate_limit": 220}');
SELECT * FROM mock.explain_analyze($$
INSERT INTO paced_subscribers (phone_number) SELECT '555556' || lpad(i::text, 4, '0') FROM generate_series(0, 999) i$$);
SELECT status, count(*) FROM mock.requests() GROUP BY status ORDER BY status;
SELECT count(*) AS pending_opt_ins FROM ps.opt_ins WHERE status = 'pending' AND phone_number LIKE '+1555556%';
SELECT mock.config('{"rate_limit": 15}');
SELECT mock.reset();
