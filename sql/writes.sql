--
-- Writes: INSERT into subscribers, opt_ins, opt_outs and events, UPDATE of
-- subscribers; validation before anything is sent; writes sent at COMMIT
-- (nothing for ROLLBACK, an error or a rolled-back savepoint); conflicts;
-- retries that never duplicate a write; the server's state after each.
-- Errors are shown at the default verbosity, with their SQLSTATE.
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();

-- the requests since the last look, with their bodies
CREATE FUNCTION mock.sent() RETURNS TABLE (method text, path text, query text, status int, body text)
LANGUAGE sql BEGIN ATOMIC
  SELECT method, path, query, status, body FROM mock.requests() ORDER BY seq;
END;

-- a table that sends each row as the statement runs (RETURNING of what
-- only Postscript knows)
CREATE FOREIGN TABLE now_subscribers (id text, phone_number text, email text,
    keyword text, is_pending boolean, created_at timestamptz)
  SERVER ps OPTIONS (resource 'subscribers', send_at_commit 'false');

----------------------------------------------------------------- subscribers
-- one row: POST /subscribers at commit; the subscriber is pending (double opt-in)
INSERT INTO ps.subscribers (phone_number, email, keyword, tags, properties, origin)
VALUES ('(555) 555-0123', 'new.one@example.com', 'JOIN', '{VIP,new}',
        '{"tier": "gold", "visits": 3, "likes": ["tea", "jam"], "birthday": "1991-01-01"}', 'website')
RETURNING phone_number, email, tags, properties, keyword, origin;
SELECT * FROM mock.sent();
-- pending: listed by opt_ins, not yet by subscribers
SELECT status, phone_number, subscriber_id LIKE 's_pending_%' AS pending_id FROM ps.opt_ins WHERE phone_number = '+15555550123';
SELECT count(*) FROM ps.subscribers WHERE phone_number = '+15555550123';

-- what only Postscript knows does not exist before COMMIT
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550127') RETURNING id;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550127') RETURNING *;
\echo :LAST_ERROR_SQLSTATE
UPDATE ps.subscribers SET tags = '{x}' WHERE id = 's_nosuch' RETURNING tags;
\echo :LAST_ERROR_SQLSTATE
-- the same for a row routed to a foreign partition (planned for the parent,
-- checked when the partition takes its first row); a written column may be
-- returned
CREATE TABLE routed_subscribers (phone_number text, email text, id text) PARTITION BY LIST (email);
CREATE FOREIGN TABLE routed_subscribers_ps PARTITION OF routed_subscribers DEFAULT
  SERVER ps OPTIONS (resource 'subscribers');
SELECT mock.reset();
INSERT INTO routed_subscribers (phone_number) VALUES ('5555550128') RETURNING id;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
INSERT INTO routed_subscribers (phone_number) VALUES ('5555550128') RETURNING phone_number;
ROLLBACK;
SELECT count(*) AS requests FROM mock.sent();
DROP TABLE routed_subscribers;
-- send_at_commit 'false': sent as the statement runs, RETURNING shows the answer
SELECT mock.reset();
INSERT INTO now_subscribers (phone_number, keyword) VALUES ('5555550127', 'JOIN')
RETURNING id LIKE 's_pending_%' AS pending_id, phone_number, is_pending, created_at IS NOT NULL AS has_created_at;
SELECT method, path, status, body FROM mock.sent();

-- several rows, national and international formats
SELECT mock.reset();
INSERT INTO ps.subscribers (phone_number, shopify_customer_id)
VALUES ('555.555.0124', 1001), ('+1 555 555 0125', NULL), ('1-555-555-0126', 1003),
       ('+44 (0)20 7946 0958', NULL), ('0049 30 1234567', NULL)
RETURNING phone_number, shopify_customer_id;
SELECT method, path, status, body FROM mock.sent();

-- COPY FROM works like INSERT
SELECT mock.reset();
COPY ps.subscribers (phone_number, email) FROM stdin WITH (FORMAT csv);
555 555 0128,copy.one@example.com
(555) 555-0129,copy.two@example.com
\.
SELECT method, path, status, body FROM mock.sent();

EXPLAIN (COSTS OFF) INSERT INTO ps.subscribers (phone_number) VALUES ('5555550127');
EXPLAIN (COSTS OFF) INSERT INTO now_subscribers (phone_number) VALUES ('5555550127');

-- default_country: a national number of another country
CREATE SERVER ps_gb FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', default_country 'GB');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_gb OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE gb_subscribers (id text, phone_number text, is_pending boolean)
  SERVER ps_gb OPTIONS (resource 'subscribers');
SELECT mock.reset();
INSERT INTO gb_subscribers (phone_number) VALUES ('07700 900123') RETURNING phone_number;
SELECT method, path, body FROM mock.sent();
SELECT mock.reset();

----------------------------------------------------------------- validation
-- each bad row is an error naming the row and column; nothing is sent
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550130'), ('555-01x3');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number) VALUES ('555-0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('055 555 0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('555 155 0123');
INSERT INTO ps.subscribers (phone_number) VALUES ('+999 1234 5678');
INSERT INTO ps.subscribers (phone_number) VALUES ('+1 555 555 0123 4567 89');
INSERT INTO ps.subscribers (phone_number) VALUES ('555#555#0123');
INSERT INTO gb_subscribers (phone_number) VALUES ('0770090');
INSERT INTO ps.subscribers (email) VALUES ('no.phone@example.com');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'not-an-email');
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'a b@example.com');
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', 'a@example.123');
-- lengths are of the UTF-8 bytes sent (RFC 5321 counts octets): 33 é are 66
INSERT INTO ps.subscribers (phone_number, email) VALUES ('5555550131', repeat('é', 33) || '@example.com');
INSERT INTO ps.subscribers (phone_number, keyword, keyword_id) VALUES ('5555550131', 'JOIN', 'kw_1');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number, origin) VALUES ('5555550131', 'tv');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number, tags) VALUES ('5555550131', '{VIP,NULL}');
INSERT INTO ps.subscribers (phone_number, tags) VALUES ('5555550131', '{VIP,""}');
-- properties: strings, integers, arrays of strings, ISO dates; nothing else
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '[1, 2]');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"address": {"city": "Paris"}}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"vip": true}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"total": 12.5}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"note": null}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('5555550131', '{"list": ["a", 2]}');
INSERT INTO ps.subscribers (phone_number, properties)
  VALUES ('5555550131', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 51) i));
INSERT INTO ps.subscribers (phone_number, shopify_customer_id) VALUES ('5555550131', -5);
INSERT INTO ps.opt_ins (phone_number) VALUES ('5555550131');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.opt_outs (source) VALUES ('api');
INSERT INTO ps.opt_outs (phone_number) VALUES (NULL);
INSERT INTO ps.opt_outs (subscriber_id, phone_number) VALUES ('s_1', '5555550131');
INSERT INTO ps.events (type, email) VALUES ('order placed', 'a@example.com');
INSERT INTO ps.events (type, email) VALUES ('', 'a@example.com');
INSERT INTO ps.events (email) VALUES ('a@example.com');
INSERT INTO ps.events (type, phone) VALUES ('order_placed', '5555550');
INSERT INTO ps.events (type, occurred_at) VALUES ('order_placed', '10000-01-01 00:00:00+00');
\echo :LAST_ERROR_SQLSTATE
-- a bad row in the middle of INSERT ... SELECT: nothing is sent, not even the rows before it
INSERT INTO ps.subscribers (phone_number)
  SELECT p FROM (VALUES (1, '5555550140'), (2, '5555550141'), (3, 'call me'), (4, '5555550142')) v(i, p) ORDER BY i;
-- the same when each row is sent as the statement runs: the rows before it were sent
INSERT INTO now_subscribers (phone_number)
  SELECT p FROM (VALUES (1, '5555550140'), (2, '5555550141'), (3, 'call me'), (4, '5555550142')) v(i, p) ORDER BY i;
-- with batch_size, a batch is validated before any of it is sent
ALTER FOREIGN TABLE now_subscribers OPTIONS (ADD batch_size '10');
INSERT INTO now_subscribers (phone_number)
  SELECT p FROM (VALUES (1, '5555550143'), (2, '5555550144'), (3, 'call me'), (4, '5555550145')) v(i, p) ORDER BY i;
ALTER FOREIGN TABLE now_subscribers OPTIONS (DROP batch_size);
-- COPY: a column Postscript sets is refused row by row
COPY ps.subscribers (phone_number, created_at) FROM stdin WITH (FORMAT csv);
555 555 0146,2020-01-01
\.
-- its SQLSTATE (psql before 17 leaves LAST_ERROR_SQLSTATE as it was when COPY FROM STDIN fails)
SELECT mock.try($$COPY ps.subscribers (phone_number, created_at) FROM PROGRAM 'echo 555 555 0146,2020-01-01' WITH (FORMAT csv)$$);
-- only the two rows sent as the statement ran, before the bad one
SELECT method, path, body FROM mock.sent();

-- what cannot be written at all: refused when planned
INSERT INTO ps.subscribers (id, phone_number) VALUES ('s_x', '5555550150');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.keywords (keyword) VALUES ('NEW');
UPDATE ps.opt_ins SET phone_number = '5555550150';
UPDATE ps.subscribers SET phone_number = '5555550150';
DELETE FROM ps.subscribers WHERE email = 'nobody@example.com';
DELETE FROM ps.opt_outs;
SELECT * FROM ps.events;
SELECT count(*) AS requests FROM mock.requests();

----------------------------------------------------------------- opt_ins
INSERT INTO ps.opt_ins (phone_number, keyword) VALUES ('555 555 0160', 'JOIN')
RETURNING phone_number, keyword;
SELECT method, path, body FROM mock.sent();
SELECT status, phone_number FROM ps.opt_ins WHERE phone_number = '+15555550160';
CREATE FOREIGN TABLE now_opt_ins (id text, subscriber_id text, phone_number text, keyword text, status text)
  SERVER ps OPTIONS (resource 'opt_ins', send_at_commit 'false');
INSERT INTO now_opt_ins (phone_number, keyword) VALUES ('555 555 0161', 'JOIN')
RETURNING id LIKE 's_pending_%' AS pending_id, id = subscriber_id AS same_id, phone_number, status;

----------------------------------------------------------------- conflicts
-- Postscript answers an existing subscriber, active or pending, with a
-- v2.entity_conflict error body: SQLSTATE 23505
SELECT phone_number AS active_phone FROM ps.subscribers ORDER BY phone_number LIMIT 1 \gset
SELECT mock.reset();
INSERT INTO ps.subscribers (phone_number) VALUES (:'active_phone');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550160');
SELECT status FROM ps.opt_ins WHERE phone_number = '+15555550160';
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550160');
\echo :LAST_ERROR_SQLSTATE
-- ON CONFLICT DO NOTHING skips them
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550170'), (:'active_phone'), ('5555550160'), ('5555550171')
  ON CONFLICT DO NOTHING RETURNING phone_number;
SELECT write, description, method, path, body, status, id LIKE 's_pending_%' AS pending_id, error
  FROM postscript_fdw_last_commit();
INSERT INTO now_subscribers (phone_number) VALUES ('5555550172'), (:'active_phone'), ('5555550173')
  ON CONFLICT DO NOTHING RETURNING phone_number;
SELECT method, path, status FROM mock.sent();
-- in batches: a skipped row leaves the executor's slots as they were, and
-- every row of the next batches is sent once (a skip once crashed the server)
ALTER FOREIGN TABLE now_subscribers OPTIONS (ADD batch_size '3');
EXPLAIN (COSTS OFF) INSERT INTO now_subscribers (phone_number) VALUES ('5555550230') ON CONFLICT DO NOTHING;
SELECT mock.reset();
INSERT INTO now_subscribers (phone_number)
  SELECT p FROM (VALUES (1, :'active_phone'), (2, '5555550230'), (3, '5555550231'), (4, '5555550232'),
                        (5, '5555550233'), (6, '5555550234'), (7, '5555550235')) v(i, p) ORDER BY i
  ON CONFLICT DO NOTHING;
SELECT method, path, status, body FROM mock.sent();
ALTER FOREIGN TABLE now_subscribers OPTIONS (DROP batch_size);
-- the withdrawn 409 / error_code 3009 form is still a conflict
SELECT mock.fault('{"kind": "body", "status": 409, "method": "POST", "path": "/api/v2/subscribers", "body": "{\"error_code\": 3009, \"error_message\": \"Subscriber already exists\", \"success\": false}"}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550174') ON CONFLICT DO NOTHING;
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550174';
-- another 400 is no conflict
SELECT mock.fault('{"kind": "status", "status": 400, "method": "POST", "path": "/api/v2/subscribers"}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550175') ON CONFLICT DO NOTHING;
\echo :LAST_ERROR_SQLSTATE

----------------------------------------------------------------- opt_outs
SELECT id AS sub_id, phone_number AS sub_phone FROM ps.subscribers
  WHERE promotional_can_send ORDER BY id LIMIT 1 OFFSET 1 \gset
SELECT count(*) AS opt_outs_before FROM ps.opt_outs \gset
SELECT mock.reset();
INSERT INTO ps.opt_outs (subscriber_id) VALUES (:'sub_id') RETURNING subscriber_id;
INSERT INTO ps.opt_outs (phone_number) VALUES ('555-555-0123') RETURNING phone_number;
SELECT method, path, status, body FROM mock.sent();
SELECT promotional_can_send FROM ps.subscribers WHERE id = :'sub_id';
SELECT count(*) - :opt_outs_before AS new_opt_outs FROM ps.opt_outs;
-- a subscriber_id Postscript does not know: its "could not find" 404 (the
-- local server's answer is assumed: the reference lists none for it)
INSERT INTO ps.opt_outs (subscriber_id) VALUES ('s_nosuch');
\echo :LAST_ERROR_SQLSTATE
-- the same answer without its error_message
SELECT mock.fault('{"kind": "body", "status": 404, "path": "/api/v2/compliance/unsubscribe", "count": 1, "body": "{\"error_code\": 3001}"}');
INSERT INTO ps.opt_outs (subscriber_id) VALUES ('s_nosuch');
\echo :LAST_ERROR_SQLSTATE
-- applied but answered 500: an opt-out is harmless to send again, but a 500
-- is not retried (as for a read), so its outcome is unknown, not "failed"
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/compliance/unsubscribe", "count": 1}');
INSERT INTO ps.opt_outs (subscriber_id) VALUES (:'sub_id');
\echo :LAST_ERROR_SQLSTATE
SELECT status, error FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();

----------------------------------------------------------------- events
-- occurred_at in UTC as %Y-%m-%d %H:%M:%S.%f; identifiers optional, several
-- together; an unknown subscriber is accepted; no limit on property keys
SELECT mock.reset();
SET timezone = 'America/New_York';
INSERT INTO ps.events (type, subscriber_id, occurred_at, properties, external_id)
VALUES ('order_placed', :'sub_id', '2026-01-31 12:00:00.25+01', '{"total": 12.5, "items": 2, "gift": true, "at": "2026-01-31T11:00:00Z"}', 'ord-1')
RETURNING type, occurred_at;
RESET timezone;
INSERT INTO ps.events (type, phone, email, subscriber_id)
  VALUES ('viewed_page', '(555) 555-0123', 'a@example.com', 's_no_such_subscriber') RETURNING phone;
INSERT INTO ps.events (type) VALUES ('app_opened');
INSERT INTO ps.events (type, email, properties)
  VALUES ('big_event', 'a@example.com', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 60) i));
SELECT method, path, status, left(body, 120) AS body FROM mock.sent();
SELECT jsonb_array_length(mock.admin('GET', '/__admin/events')::jsonb -> 'events') AS events_recorded;
-- property values: strings, booleans, integers, floats, datetime strings;
-- an array, an object or null is refused before anything is sent
SELECT mock.reset();
INSERT INTO ps.events (type, properties) VALUES ('order_placed', '{"total": 1, "items": ["tea"]}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.events (type, properties) VALUES ('order_placed', '{"note": null}');
-- an integer beyond 64 bits is refused, not clamped (1e400 is one too);
-- the largest that fit, and a long number with a fraction, go as written
INSERT INTO ps.events (type, properties) VALUES ('order_placed', '{"n": 18446744073709551616}');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO ps.events (type, properties) VALUES ('order_placed', '{"n": -9223372036854775809}');
INSERT INTO ps.events (type, properties) VALUES ('order_placed', '{"n": 1e400}');
INSERT INTO ps.subscribers (phone_number, properties) VALUES ('+15555550131', '{"n": 99999999999999999999999}');
SELECT count(*) AS requests FROM mock.sent();
INSERT INTO ps.events (type, properties)
  VALUES ('order_placed', '{"a": 18446744073709551615, "b": -9223372036854775808, "c": 12345678901234567890.5}');
SELECT body FROM mock.sent();
SELECT mock.reset();
CREATE FOREIGN TABLE now_events (id text, type text, email text)
  SERVER ps OPTIONS (resource 'events', send_at_commit 'false');
INSERT INTO now_events (type, email) VALUES ('order_placed', 'a@example.com') RETURNING id LIKE 'ev_%' AS event_id;
-- a column of a domain is written as the type under it: an object, a time
CREATE DOMAIN event_props AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN event_at AS timestamptz;
CREATE FOREIGN TABLE dom_events (type text, email text, properties event_props, occurred_at event_at)
  SERVER ps OPTIONS (resource 'events', send_at_commit 'false');
SELECT mock.reset();
INSERT INTO dom_events VALUES ('order_placed', 'a@example.com', '{"total": 1}', '2026-03-04 05:06:07.5+00');
SELECT method, path, status, body FROM mock.sent();
DROP FOREIGN TABLE dom_events;
DROP DOMAIN event_props, event_at;
-- writes sent as the statement runs cannot go with a scan of the same
-- statement that pages a list: each write (here: an event changes nothing,
-- but an opt-out or a PATCH moves its subscriber) would shift the pages
-- still to come.  Refused before any request; an id lookup is no list.
SELECT mock.reset();
INSERT INTO now_events (type, email) SELECT 'order_placed', email FROM ps.subscribers WHERE updated_at < '2100-01-01';
\echo :LAST_ERROR_SQLSTATE
WITH s AS (SELECT email FROM ps.subscribers LIMIT 2)
INSERT INTO now_events (type, email) SELECT 'order_placed', email FROM s;
\echo :LAST_ERROR_SQLSTATE
UPDATE now_subscribers SET email = 'x@example.com' WHERE created_at < '2000-01-01';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS requests FROM mock.sent();
INSERT INTO now_events (type, email) SELECT 'order_placed', email FROM ps.subscribers WHERE id = :'sub_id';
SELECT method, path, status FROM mock.sent();

----------------------------------------------------------------- UPDATE
SELECT id AS linked_id, email AS linked_email FROM ps.subscribers
  WHERE email IS NOT NULL AND shopify_customer_id IS NOT NULL ORDER BY id LIMIT 1 \gset
SELECT id AS free_id FROM ps.subscribers
  WHERE email IS NOT NULL AND shopify_customer_id IS NULL ORDER BY id LIMIT 1 \gset
SELECT mock.reset();
SELECT tags AS tags_before, properties AS props_before FROM ps.subscribers WHERE id = :'sub_id';
UPDATE ps.subscribers SET tags = '{Gold}', properties = '{"tier": "gold"}' WHERE id = :'sub_id';
SELECT method, path, status, body FROM mock.sent();
-- read back: the tag was added, the properties merged
SELECT tags, properties FROM ps.subscribers WHERE id = :'sub_id';
-- email is set only where the subscriber has none or no Shopify customer is linked
UPDATE ps.subscribers SET email = 'changed@example.com' WHERE id IN (:'linked_id', :'free_id');
SELECT id = :'linked_id' AS linked, email = :'linked_email' AS unchanged, email FROM ps.subscribers
  WHERE id IN (:'linked_id', :'free_id') ORDER BY 1;
UPDATE ps.subscribers SET tags = NULL WHERE id = :'sub_id';
\echo :LAST_ERROR_SQLSTATE
UPDATE ps.subscribers SET email = 'bad email' WHERE id = :'sub_id';
UPDATE ps.subscribers SET properties = '{"score": 1.5}' WHERE id = :'sub_id';
\echo :LAST_ERROR_SQLSTATE
-- sent as the statement runs, RETURNING shows what Postscript made of it
CREATE FOREIGN TABLE now_subscribers_upd (id text, tags text[]) SERVER ps
  OPTIONS (resource 'subscribers', send_at_commit 'false');
UPDATE now_subscribers_upd SET tags = '{Silver}' WHERE id = :'sub_id'
  RETURNING 'Gold' = ANY (tags) AS has_gold, 'Silver' = ANY (tags) AS has_silver;
-- a join that matches one subscriber twice changes it once, as PostgreSQL
-- changes a row once per statement: UPDATE 1 and one PATCH (at commit, and
-- as the statement runs)
SELECT mock.reset();
WITH u AS (UPDATE ps.subscribers s SET tags = '{Twice}' FROM (VALUES (1), (2)) v(n)
           WHERE s.id = :'sub_id' RETURNING 1)
SELECT count(*) AS updated FROM u;
UPDATE now_subscribers_upd s SET tags = '{Twice}' FROM (VALUES (1), (2)) v(n) WHERE s.id = :'sub_id'
  RETURNING 'Twice' = ANY (tags) AS twice;
SELECT method, path, body FROM mock.sent();
-- a DELETE too: a second request would find the webhook subscription gone
SELECT mock.reset();
INSERT INTO ps.webhooks (callback_url, event) VALUES ('https://hooks.example.com/twice', 'shop.test');
WITH d AS (DELETE FROM ps.webhooks w USING (VALUES (1), (2)) v(n)
           WHERE w.callback_url = 'https://hooks.example.com/twice' RETURNING 1)
SELECT count(*) AS deleted FROM d;
SELECT method, regexp_replace(path, '[0-9a-f-]{36}$', '{id}') AS path, status
  FROM mock.sent() WHERE method = 'DELETE';
-- ids "." and ".." from a hostile answer name no object: refused, nothing sent
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "method": "GET", "path": "/api/v2/subscribers", "body": "{\"page_info\": {\"page\": 1, \"total_pages\": 1}, \"subscribers\": [{\"id\": \".\", \"email\": \"dot@example.com\"}, {\"id\": \"..\", \"email\": \"dot@example.com\"}]}"}');
UPDATE ps.subscribers SET tags = '{x}' WHERE email = 'dot@example.com';
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, query FROM mock.sent();
-- a subscriber deleted in Postscript after the UPDATE read it: PATCH
-- /subscribers/{id} answers 400 with {}, the only error the reference lists
-- for it (an unknown id), at commit
SELECT mock.reset();
BEGIN;
UPDATE ps.subscribers SET tags = '{Gone}' WHERE id = :'sub_id';
SELECT mock.admin('POST', '/__admin/remove', jsonb_build_object('id', :'sub_id')::text);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status, body FROM mock.sent();
-- among other writes, the commit's error says which were applied; an update
-- applied again changes nothing, so the transaction may run again: 40001
SELECT mock.reset();
BEGIN;
UPDATE ps.subscribers SET tags = '{Kept}' WHERE id IN (:'linked_id', :'free_id');
SELECT mock.admin('POST', '/__admin/remove', jsonb_build_object('id', :'free_id')::text);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, method, status FROM postscript_fdw_last_commit();
-- the same with nothing applied before the failed write: 40001, the whole
-- transaction may run again (two statements, the first one's row gone)
SELECT mock.reset();
BEGIN;
UPDATE ps.subscribers SET tags = '{First}' WHERE id = :'linked_id';
UPDATE ps.subscribers SET tags = '{Second}' WHERE id = :'free_id';
SELECT mock.admin('POST', '/__admin/remove', jsonb_build_object('id', :'linked_id')::text);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, method, status FROM postscript_fdw_last_commit();
-- with an event applied before it, it is no longer 40001, whose retry by a
-- client would record the event again: HV000, and the row's own hint (run
-- the statement again) is left out
SELECT mock.reset();
BEGIN;
INSERT INTO ps.events (type, email) VALUES ('before_gone', 'a@example.com');
UPDATE ps.subscribers SET tags = '{Third}' WHERE id = :'linked_id';
SELECT mock.admin('POST', '/__admin/remove', jsonb_build_object('id', :'linked_id')::text);
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, method, status FROM postscript_fdw_last_commit();
-- a 404 (error_code 3001) means the same; sent as the statement runs
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 404, "method": "PATCH", "path": "/api/v2/subscribers/"}');
UPDATE now_subscribers_upd SET tags = '{Gone}' WHERE id = :'sub_id' RETURNING tags;
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status FROM mock.sent();
-- a 2xx whose answer is cut off was applied all the same: a WARNING, and
-- the write counts as applied, not as of unknown outcome (sent once)
SELECT mock.reset();
SELECT mock.fault('{"kind": "truncate", "path": "/api/v2/events", "count": 1}');
INSERT INTO ps.events (type, email) VALUES ('cut_off', 'a@example.com');
SELECT write, method, status, error FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();
-- once a write sent as its statement ran was applied, 40001 (which clients
-- retry on their own, sending that write again) is an FDW error, HV000:
-- in a later statement sent at once, and at COMMIT
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 404, "method": "PATCH", "path": "/api/v2/subscribers/", "count": 2}');
BEGIN;
INSERT INTO now_events (type, email) VALUES ('order_placed', 'a@example.com');
UPDATE now_subscribers_upd SET tags = '{Gone}' WHERE id = :'sub_id';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
INSERT INTO now_events (type, email) VALUES ('order_placed', 'a@example.com');
UPDATE ps.subscribers SET tags = '{Gone}' WHERE id = :'sub_id';
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status FROM mock.sent();
SELECT mock.reset();

----------------------------------------------------------------- sent at commit
-- ROLLBACK sends nothing
SELECT mock.reset();
BEGIN;
INSERT INTO ps.subscribers (phone_number, keyword) VALUES ('+14155550333', 'JOIN');
INSERT INTO ps.opt_outs (subscriber_id) VALUES (:'sub_id');
INSERT INTO ps.events (type, email) VALUES ('rolled_back', 'a@example.com');
UPDATE ps.subscribers SET tags = '{RolledBack}' WHERE id = :'sub_id';
-- nothing but the UPDATE's read reached Postscript yet
SELECT method, path FROM mock.sent();
ROLLBACK;
SELECT count(*) AS requests FROM mock.requests();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+14155550333';

-- an error in a later statement: nothing is sent
SELECT mock.reset();
BEGIN;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550334');
SELECT 1 / 0;
COMMIT;
SELECT count(*) AS requests FROM mock.requests();

-- ROLLBACK TO SAVEPOINT drops the rows queued since the savepoint
BEGIN;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550335');
SAVEPOINT a;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550336');
SAVEPOINT b;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550337');
RELEASE SAVEPOINT b;
ROLLBACK TO SAVEPOINT a;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550338');
SAVEPOINT c;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550339');
RELEASE SAVEPOINT c;
SELECT count(*) AS requests_before_commit FROM mock.requests();
COMMIT;
SELECT method, path, body FROM mock.sent();

-- COMMIT sends every write, in order, across tables
BEGIN;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550340');
INSERT INTO ps.events (type, phone) VALUES ('joined', '+14155550340');
UPDATE ps.subscribers SET tags = '{Committed}' WHERE id = :'sub_id';
INSERT INTO ps.opt_outs (phone_number) VALUES ('+14155550335');
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550341');
COMMIT;
SELECT method, path, status, body FROM mock.sent();
SELECT write, description, method, path, status, id LIKE 's_pending_%' AS pending_id, error
  FROM postscript_fdw_last_commit();

-- a failure at COMMIT: the error says exactly what was applied; the outcome stays
-- readable; a re-run with ON CONFLICT DO NOTHING completes without duplicates
BEGIN;
INSERT INTO ps.subscribers (phone_number)
  VALUES ('+14155550350'), ('+14155550351'), (:'active_phone'), ('+14155550352'), ('+14155550353');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, description, body, status, error FROM postscript_fdw_last_commit();
SELECT method, path, status, body FROM mock.sent();
INSERT INTO ps.subscribers (phone_number)
  VALUES ('+14155550350'), ('+14155550351'), (:'active_phone'), ('+14155550352'), ('+14155550353')
  ON CONFLICT DO NOTHING;
SELECT write, status FROM postscript_fdw_last_commit();
SELECT phone_number, count(*) FROM ps.opt_ins WHERE phone_number LIKE '+1415555035_'
  GROUP BY phone_number ORDER BY phone_number;

----------------------------------------------------------------- concurrent writes at commit
-- up to max_concurrency writes in flight at once: writes of one statement
-- that change different subscribers go together.  A gate holds the first
-- three POSTs until all three are in flight: sent one after another, each
-- would wait out its timeout and arrive with nothing else in flight.
CREATE SERVER ps_many FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_concurrency '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_many OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE many_subscribers (id text, phone_number text)
  SERVER ps_many OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE many_events (type text, email text) SERVER ps_many OPTIONS (resource 'events');
SELECT mock.reset();
SELECT mock.fault('{"kind": "gate", "count": 3, "method": "POST", "path": "/api/v2/subscribers"}');
INSERT INTO many_subscribers (phone_number) VALUES ('5555550401'), ('5555550402'), ('5555550403');
SELECT count(*) AS requests, max(in_flight) AS most_in_flight_besides FROM mock.requests();
SELECT write, status FROM postscript_fdw_last_commit();
-- a failure among them: the writes in flight are answered first, and the
-- error lists each write's fate (here the third was in flight with the
-- second, and applied)
SELECT mock.reset();
SELECT mock.fault('{"kind": "gate", "count": 3, "method": "POST", "path": "/api/v2/subscribers"}');
BEGIN;
INSERT INTO many_subscribers (phone_number) VALUES ('5555550404'), (:'active_phone'), ('5555550405');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, status, error FROM postscript_fdw_last_commit();
-- (they arrive in any order)
SELECT method, path, status, body FROM mock.requests() ORDER BY body;
-- a create whose answer is lost (applied, then 500) is sent again while the
-- others go on; the conflict in answer proves the first attempt landed
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "method": "POST", "path": "/api/v2/subscribers", "body_contains": "5555550407"}');
INSERT INTO many_subscribers (phone_number) VALUES ('5555550406'), ('5555550407'), ('5555550408');
SELECT write, status FROM postscript_fdw_last_commit();
SELECT method, status, body FROM mock.requests() ORDER BY body, seq;
-- answers are taken as they come, not in queue order: a refusal stops new
-- starts at once, while earlier writes are still unanswered.  Four in
-- flight, write 2 refused at once, 1, 3 and 4 held 5 s: 5 and 6 are never
-- sent (in queue order, write 1's answer would first have freed a slot for 5)
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 422, "method": "POST", "path": "/api/v2/events", "body_contains": "\"f2\""}');
SELECT mock.fault('{"kind": "slow", "delay_ms": 5000, "method": "POST", "path": "/api/v2/events", "body_contains": "\"f1\""}');
SELECT mock.fault('{"kind": "slow", "delay_ms": 5000, "method": "POST", "path": "/api/v2/events", "body_contains": "\"f3\""}');
SELECT mock.fault('{"kind": "slow", "delay_ms": 5000, "method": "POST", "path": "/api/v2/events", "body_contains": "\"f4\""}');
INSERT INTO many_events (type, email) SELECT 'f' || i, 'f' || i || '@example.com' FROM generate_series(1, 6) i;
SELECT write, status FROM postscript_fdw_last_commit();
SELECT count(*) AS requests FROM mock.requests();
-- and a 429's Retry-After runs for every write it answered at once: the
-- four retries leave together (a gate holds them until all four are in
-- flight; retried one after another, each would wait out its timeout)
SELECT mock.reset();
SELECT mock.fault('{"kind": "rate_limit", "retry_after": "1", "method": "POST", "path": "/api/v2/events", "count": 4}');
SELECT mock.fault('{"kind": "gate", "count": 4, "method": "POST", "path": "/api/v2/events"}');
INSERT INTO many_events (type, email) SELECT 'r' || i, 'r' || i || '@example.com' FROM generate_series(1, 4) i;
SELECT count(*) FILTER (WHERE status = 429) AS refused, count(*) FILTER (WHERE status = 202) AS applied,
       max(in_flight) FILTER (WHERE status = 202) AS retries_in_flight_besides
  FROM mock.requests();
-- writes that change the same subscriber (the same email, phone or id) keep
-- their order: the second leaves once the first is answered
SELECT mock.reset();
INSERT INTO many_events (type, email) VALUES ('first', 'same@example.com'), ('second', 'same@example.com');
SELECT body::json->>'type' AS type, in_flight FROM mock.requests() ORDER BY seq;
DROP FOREIGN TABLE many_subscribers, many_events;
DROP USER MAPPING FOR CURRENT_USER SERVER ps_many;
DROP SERVER ps_many;

-- a row refused upstream (HTTP 400) at write 2 of 3
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 400, "method": "POST", "path": "/api/v2/events", "after": 1}');
BEGIN;
INSERT INTO ps.events (type, email) VALUES ('one', 'a@example.com'), ('two', 'a@example.com');
INSERT INTO ps.opt_outs (phone_number) VALUES ('+14155550336');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, description, status FROM postscript_fdw_last_commit();

-- sent as the statement runs: an API 400 on row 3 says rows 1-2 were applied
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 400, "method": "POST", "path": "/api/v2/subscribers", "after": 2}');
INSERT INTO now_subscribers (phone_number)
  VALUES ('+14155550360'), ('+14155550361'), ('+14155550362'), ('+14155550363');
\echo :LAST_ERROR_SQLSTATE

-- PREPARE TRANSACTION with queued writes is refused
SELECT mock.reset();
BEGIN;
INSERT INTO ps.subscribers (phone_number) VALUES ('+14155550370');
PREPARE TRANSACTION 'ps_writes';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS requests FROM mock.requests() WHERE method = 'POST';

-- the queue's memory is capped
SET postscript_fdw.max_queued_size = '64kB';
BEGIN;
-- terse: the detail counts the rows that fit, which depends on the server
-- version's memory chunk sizes
\set VERBOSITY terse
INSERT INTO ps.subscribers (phone_number)
  SELECT '+1415556' || lpad(i::text, 4, '0') FROM generate_series(0, 999) i;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
ROLLBACK;
RESET postscript_fdw.max_queued_size;
SELECT count(*) AS requests FROM mock.requests() WHERE method = 'POST';

----------------------------------------------------------------- faults
-- 429: retried, written once
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 429, "path": "/api/v2/subscribers", "count": 2}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550180');
SELECT method, path, status FROM mock.sent();

-- applied but answered 500: sent again, and the conflict proves the first
-- was applied; exactly one results
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550181');
SELECT method, path, query, status FROM mock.sent();
SELECT status, id FROM postscript_fdw_last_commit();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550181';
-- sent as the statement runs: the row shows it pending, its id unknown
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO now_subscribers (phone_number) VALUES ('5555550182') RETURNING id, is_pending;

-- 500 not applied: sent again after a backoff, created by the second attempt
SELECT mock.reset();
SELECT postscript_fdw_stats_reset();
SELECT mock.fault('{"kind": "status", "status": 500, "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550183');
SELECT method, path, query, status FROM mock.sent();
SELECT retries, backoff_wait_ms > 0 AS backed_off FROM postscript_fdw_stats() WHERE server_name = 'ps';
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550183';

-- 500 every time: after max_retries the commit fails, nothing was created
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
\echo :LAST_ERROR_SQLSTATE
SELECT status, error FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550184';
-- an opt-out answered 503 every time: retried as a read, then its outcome
-- is unknown (it may have been applied)
CREATE FOREIGN TABLE once_opt_outs (subscriber_id text)
  SERVER ps_once OPTIONS (resource 'opt_outs');
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/compliance/unsubscribe", "count": 5}');
INSERT INTO once_opt_outs (subscriber_id) VALUES (:'sub_id');
\echo :LAST_ERROR_SQLSTATE
SELECT status, error FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();

-- connection closed before an answer (here: not applied): sent again, created once
SELECT mock.reset();
SELECT mock.fault('{"kind": "close", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550185');
SELECT status FROM postscript_fdw_last_commit();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550185';

-- applied, then the answer stalls past request_timeout: reconciled
SELECT mock.reset();
SELECT mock.fault('{"kind": "stall", "delay_ms": 3000, "method": "POST", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550186');
SELECT status FROM postscript_fdw_last_commit();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550186';

-- a slow write: its status line arrives, the rest of its answer not
-- within request_timeout.  The status says it was applied: a WARNING, and
-- one subscriber
SELECT mock.reset();
SELECT mock.fault('{"kind": "slow", "delay_ms": 3000, "method": "POST", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550187');
SELECT status IN ('applied', 'applied (reconciled)') AS applied FROM postscript_fdw_last_commit();
SELECT count(*) AS opt_ins_for_number FROM ps.opt_ins WHERE phone_number = '+15555550187';
SELECT count(*) AS created FROM mock.requests() WHERE method = 'POST' AND status = 201;

-- applied, answered with a malformed body: applied (a warning), not sent again
SELECT mock.reset();
SELECT mock.fault('{"kind": "malformed", "method": "POST", "path": "/api/v2/subscribers", "count": 1}');
INSERT INTO ps.subscribers (phone_number) VALUES ('5555550188');
SELECT status, id FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();

-- an event whose outcome is unknown is never sent again
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 500, "path": "/api/v2/events", "count": 1}');
INSERT INTO once_events (type, email) VALUES ('order_placed', 'a@example.com');
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status FROM mock.sent();

-- an event answered with another 5xx (a proxy's 524: the origin timed out)
-- may have been recorded too: outcome unknown, not sent again
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 524, "path": "/api/v2/events", "count": 1}');
INSERT INTO once_events (type, email) VALUES ('order_placed', 'a@example.com');
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();

-- once an attempt may have been applied, a later failure does not make it
-- "failed": a create applied (answered 500), sent again and answered 429
-- until the retries ran out; an opt-out applied and answered 500: not sent
-- again, its outcome unknown
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "method": "POST", "path": "/api/v2/subscribers", "count": 1}');
SELECT mock.fault('{"kind": "rate_limit", "method": "POST", "path": "/api/v2/subscribers", "count": 5}');
INSERT INTO once_subscribers (phone_number) VALUES ('5555550191');
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();
SELECT count(*) AS created FROM ps.opt_ins WHERE phone_number = '+15555550191';
SELECT mock.reset();
SELECT mock.fault('{"kind": "applied_500", "path": "/api/v2/compliance/unsubscribe", "count": 1}');
SELECT mock.fault('{"kind": "rate_limit", "path": "/api/v2/compliance/unsubscribe", "count": 5}');
INSERT INTO once_opt_outs (subscriber_id) VALUES (:'sub_id');
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM postscript_fdw_last_commit();
SELECT method, path, status FROM mock.sent();

-- after an applied write, a failure whose SQLSTATE clients retry on their
-- own (53400: the rate limit still exceeded) is reported as HV000: running
-- the transaction again would record the first event twice
SELECT mock.reset();
SELECT mock.fault('{"kind": "rate_limit", "method": "POST", "path": "/api/v2/events", "after": 1, "count": 5}');
BEGIN;
INSERT INTO once_events (type, email) VALUES ('order_placed', 'a@example.com'), ('order_paid', 'a@example.com');
COMMIT;
\echo :LAST_ERROR_SQLSTATE
SELECT write, status FROM postscript_fdw_last_commit();

-- the server of queued writes dropped before COMMIT
CREATE SERVER ps_dropped FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'mock_url', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_dropped OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE dropped_events (type text, email text) SERVER ps_dropped OPTIONS (resource 'events');
SELECT mock.reset();
BEGIN;
INSERT INTO dropped_events VALUES ('order_placed', 'a@example.com');
DROP SERVER ps_dropped CASCADE;
\set VERBOSITY terse
COMMIT;
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM postscript_fdw_last_commit();
SELECT count(*) AS requests FROM mock.sent();

-- connection refused: nothing was sent, retried, then an error
CREATE SERVER ps_refused_w FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:1', max_retries '1', max_retry_wait '1', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_refused_w OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE refused_subscribers (phone_number text) SERVER ps_refused_w OPTIONS (resource 'subscribers');
-- (its detail names a port and a time: the message and SQLSTATE only)
\set VERBOSITY terse
INSERT INTO refused_subscribers VALUES ('5555550189');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE

----------------------------------------------------------------- documented reads
-- an unknown subscriber id is answered 400 with {}: no row, not an error
SELECT mock.reset();
SELECT count(*) FROM ps.subscribers WHERE id = 's_no_such_subscriber';
SELECT count(*) FROM ps.subscribers WHERE id IN ('s_no_such_subscriber', :'sub_id');
SELECT method, path, status FROM mock.sent();
-- another 400 stays an error
SELECT mock.fault('{"kind": "status", "status": 400, "method": "GET", "path": "/api/v2/subscribers/s_other"}');
SELECT count(*) FROM ps.subscribers WHERE id = 's_other';
\echo :LAST_ERROR_SQLSTATE
-- a shop without keywords may be answered {}: zero rows
SELECT mock.config('{"keywords_empty": 1}');
SELECT count(*) AS keywords FROM ps.keywords;
SELECT mock.config('{"keywords_empty": 0}');
-- any other list answered {} lacks its records key: an error, not zero rows
-- (a full sync would otherwise remove the whole mirror)
SELECT mock.fault('{"kind": "body", "path": "/api/v2/subscribers", "count": 1, "body": "{}"}');
SELECT count(*) FROM ps.subscribers;
\echo :LAST_ERROR_SQLSTATE
-- timestamp filters go out at second precision, widened; the local filter keeps them exact
SELECT mock.reset();
SELECT count(*) = (SELECT count(*) FROM ps.subscribers WHERE created_at + interval '0' > '2024-06-01 12:00:00.5+00') AS exact
  FROM ps.subscribers WHERE created_at > '2024-06-01 12:00:00.5+00';
SELECT count(*) = (SELECT count(*) FROM ps.subscribers WHERE created_at + interval '0' <= '2023-01-01 00:00:00.25+00') AS exact
  FROM ps.subscribers WHERE created_at <= '2023-01-01 00:00:00.25+00';
SELECT count(*) FROM ps.subscribers WHERE created_at = '2023-01-01 00:00:00.25+00';
SELECT DISTINCT regexp_replace(query, '&page=\d+$', '') AS query FROM mock.requests()
  WHERE query LIKE 'created_at%' ORDER BY 1;

----------------------------------------------------------------- many rows
-- INSERT ... SELECT of a thousand rows, sent at commit within the server's rate limit
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
