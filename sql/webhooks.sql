--
-- Webhooks: the webhooks foreign table (GET /api/v2/webhooks), and
-- deliveries stored by postscript_fdw_webhook_receive() -- the code the
-- receiver worker runs too (the worker itself, over HTTP, end to end through
-- the local API server, is checked by scripts/checks/webhooks.sh).
--
SELECT mock.reset();

-- an API request to the local server (what a user does once with curl:
-- register a callback, fetch the token, fetch an example)
CREATE FUNCTION mock.api(method text, path text, body text DEFAULT NULL)
RETURNS jsonb LANGUAGE sql
RETURN mock.admin(method, path, body, 'sk_test_shop_key')::jsonb;

-------------------------------------------------------------- the webhooks table
SELECT count(*) FROM ps.webhooks;
-- registering a callback is an INSERT: POST /api/v2/webhooks, sent at commit
INSERT INTO ps.webhooks (callback_url, event)
VALUES ('https://hooks.example.com/postscript', 'shop.subscriber.opt_in');
INSERT INTO ps.webhooks (callback_url, event, headers)
VALUES ('https://hooks.example.com/postscript', 'shop.incoming_message', '{"X-Source": "postscript"}');
-- callback_url and event are required
INSERT INTO ps.webhooks (event) VALUES ('shop.test');
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, status, body FROM mock.requests() WHERE method <> 'GET' ORDER BY seq;
SELECT id ~ '^[0-9a-f-]{36}$' AS uuid, callback_url, event, headers,
       created_at IS NOT NULL AS created, raw ? 'updated_at' AS has_updated_at
  FROM ps.webhooks ORDER BY event;
-- one subscription by id: GET /api/v2/webhooks/{id}
SELECT event FROM ps.webhooks
 WHERE id = (SELECT id FROM ps.webhooks WHERE event = 'shop.incoming_message');
SELECT method, regexp_replace(path, '[0-9a-f-]{36}$', '{id}') AS path, query, status
  FROM mock.requests() WHERE method = 'GET';
-- UPDATE is PATCH /api/v2/webhooks/{id} with the columns set, DELETE is
-- DELETE /api/v2/webhooks/{id}: it removes a subscription, not data
UPDATE ps.webhooks SET headers = '{"X-Source": "ps", "X-Env": "test"}'
 WHERE event = 'shop.incoming_message';
INSERT INTO ps.webhooks (callback_url, event) VALUES ('https://hooks.example.com/old', 'shop.test');
DELETE FROM ps.webhooks WHERE event = 'shop.test';
SELECT event, headers FROM ps.webhooks ORDER BY event;
SELECT method, regexp_replace(path, '[0-9a-f-]{36}$', '{id}') AS path, status, body
  FROM mock.requests() WHERE method IN ('PATCH', 'DELETE') OR (method = 'POST' AND body LIKE '%shop.test%')
 ORDER BY seq;
-- the event of a subscription cannot be changed (Postscript's PATCH takes callback_url and headers)
UPDATE ps.webhooks SET event = 'shop.test';
\echo :LAST_ERROR_SQLSTATE
-- an id column declared uuid names the subscription by its text
CREATE FOREIGN TABLE webhooks_by_uuid (id uuid, event text) SERVER ps OPTIONS (resource 'webhooks');
SELECT mock.reset();
INSERT INTO ps.webhooks (callback_url, event) VALUES ('https://hooks.example.com/uuid', 'shop.test');
DELETE FROM webhooks_by_uuid WHERE event = 'shop.test';
SELECT method, regexp_replace(path, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$', '{uuid}') AS path, status
  FROM mock.requests() WHERE method <> 'GET' ORDER BY seq;
SELECT count(*) AS test_subscriptions FROM ps.webhooks WHERE event = 'shop.test';
DROP FOREIGN TABLE webhooks_by_uuid;
-- a DELETE whose 200 arrives but whose body is cut off: the status says it
-- was applied (a WARNING); it is not sent again
SELECT mock.reset();
INSERT INTO ps.webhooks (callback_url, event) VALUES ('https://hooks.example.com/cut', 'shop.test');
SELECT mock.fault('{"kind": "truncate", "method": "DELETE", "path": "/api/v2/webhooks/", "count": 1}');
DELETE FROM ps.webhooks WHERE event = 'shop.test';
SELECT write, method, status, error FROM postscript_fdw_last_commit();
SELECT method, regexp_replace(path, '[0-9a-f-]{36}$', '{id}') AS path, status
  FROM mock.requests() WHERE method = 'DELETE' ORDER BY seq;
-- a subscription deleted in Postscript after the DELETE read it: the id is
-- unknown to the first attempt that reached Postscript (the one before was
-- answered 429, which proves nothing was applied), so nothing proves this
-- DELETE applied it (the CONTEXT names a random id: message and SQLSTATE only)
SELECT mock.reset();
INSERT INTO ps.webhooks (callback_url, event) VALUES ('https://hooks.example.com/gone', 'shop.test');
SELECT id AS gone_id FROM ps.webhooks WHERE event = 'shop.test' \gset
BEGIN;
DELETE FROM ps.webhooks WHERE id = :'gone_id';
SELECT mock.admin('DELETE', '/api/v2/webhooks/' || :'gone_id', NULL, 'sk_test_shop_key');
SELECT mock.fault('{"kind": "rate_limit", "method": "DELETE", "path": "/api/v2/webhooks/", "count": 1}');
\set VERBOSITY terse
COMMIT;
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT write, method, status, error FROM postscript_fdw_last_commit();
SELECT method, status FROM mock.requests() WHERE method = 'DELETE' ORDER BY seq;

-------------------------------------------------------------- the token, in the user mapping
CREATE FUNCTION deliver(body text, signature text DEFAULT 'whsec_test_webhook_token')
RETURNS boolean LANGUAGE sql
RETURN postscript_fdw_webhook_receive('ps', body, jsonb_build_object('Postscript-Signature', signature));
-- without it, nothing is stored
SELECT deliver('{"event": "shop.test", "event_data": {}}');
\echo :LAST_ERROR_SQLSTATE
SELECT mock.reset();
-- fetched from GET /api/v2/webhooks/token into the mapping, never shown
SELECT mock.fault('{"kind": "body", "path": "/api/v2/webhooks/token", "body": "{\"token\": 42}"}');
SELECT postscript_fdw_webhook_fetch_token('ps');
\echo :LAST_ERROR_SQLSTATE
SELECT postscript_fdw_webhook_fetch_token('ps');
SELECT postscript_fdw_webhook_fetch_token('ps', current_user);
-- a NULL argument is an error, before any request: no silent NULL
SELECT postscript_fdw_webhook_fetch_token('ps', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT postscript_fdw_webhook_fetch_token(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT 'webhook_token=whsec_test_webhook_token' = ANY (umoptions) AS kept
  FROM pg_user_mappings WHERE srvname = 'ps' AND usename = current_user;
SELECT method, path, status FROM mock.requests();

-- deliveries: the example payload of the reference, as the local server answers it
CREATE TABLE hook (name text PRIMARY KEY, body text);
INSERT INTO hook
SELECT 'incoming', mock.api('GET', '/api/v2/webhooks/example?event=shop.incoming_message')::text;
SELECT mock.reset();

-------------------------------------------------------------- refused deliveries
-- no signature
SELECT postscript_fdw_webhook_receive('ps', (SELECT body FROM hook), '{"Content-Type": "application/json"}');
\echo :LAST_ERROR_SQLSTATE
-- a wrong one (the token is never in the message)
SELECT deliver((SELECT body FROM hook), 'whsec_guess');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver((SELECT body FROM hook), '');
\echo :LAST_ERROR_SQLSTATE
-- too large: above postscript_fdw.webhook_max_body
SHOW postscript_fdw.webhook_max_body;
SELECT deliver('{"event": "shop.test", "event_data": {"pad": "' || repeat('x', 300000) || '"}}');
\echo :LAST_ERROR_SQLSTATE
-- not JSON, not an object, not an event
SELECT deliver('{"event": "shop.test", "event_data": {');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver('[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver('{"event": "shop.test"}');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver('{"event": 42, "event_data": {}}');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver('{"event": "shop.test", "event_data": {"body": "\u0000"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT postscript_fdw_webhook_receive('ps', '{}', '["Postscript-Signature"]');
\echo :LAST_ERROR_SQLSTATE
-- a NULL argument is an error, not a NULL that looks like nothing happened
SELECT postscript_fdw_webhook_receive('ps', NULL, '{"Postscript-Signature": "whsec_test_webhook_token"}');
\echo :LAST_ERROR_SQLSTATE
SELECT postscript_fdw_webhook_receive('ps', (SELECT body FROM hook), NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT postscript_fdw_webhook_receive(NULL, (SELECT body FROM hook), '{"Postscript-Signature": "whsec_test_webhook_token"}');
\echo :LAST_ERROR_SQLSTATE
SELECT deliver((SELECT body FROM hook), NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM postscript_fdw_webhook_events;

-------------------------------------------------------------- stored once
-- a closer match than pg_catalog's planted in the caller's search_path is
-- not what the store (run as a superuser by the receiver) calls
CREATE FUNCTION public.jsonb_build_array(text, jsonb, jsonb) RETURNS jsonb
  LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'planted function called'; END $$;
SELECT deliver(body) AS new FROM hook;
DROP FUNCTION public.jsonb_build_array(text, jsonb, jsonb);
-- the header's name in any case; a duplicate is accepted and counted
SELECT postscript_fdw_webhook_receive('ps', body, '{"postscript-signature": "whsec_test_webhook_token"}') AS new
  FROM hook;
SELECT deliver(jsonb_pretty(body::jsonb)) AS new FROM hook;
SELECT event, event_id, event_time, deliveries, received_at <= last_received_at AS ordered
  FROM postscript_fdw_webhook_events;
SELECT id, subscriber_id, shop_id, from_number, body, is_opt_out, shopify_customer_id,
       created_at, event_time, webhook_id
  FROM postscript_fdw_webhook_incoming_messages;

-------------------------------------------------------------- out of order, opted in and out again
-- the opt-out (12:05) arrives before the opt-in (12:00), and the same
-- subscriber opts in again at 12:10: three events
SELECT deliver(jsonb_build_object('event', 'shop.subscriber.opt_out', 'event_time', '2026-03-04T12:05:00.000000',
  'event_data', jsonb_build_object('id', 's_OUT1', 'phone_number', '+15555550101'))::text) AS new;
SELECT deliver(jsonb_build_object('event', 'shop.subscriber.opt_in', 'event_time', '2026-03-04T12:00:00.000000',
  'event_data', jsonb_build_object('id', 's_OUT1', 'phone_number', '+15555550101', 'email', 'a@example.com'))::text) AS new;
SELECT deliver(jsonb_build_object('event', 'shop.subscriber.opt_in', 'event_time', '2026-03-04T12:10:00.000000',
  'event_data', jsonb_build_object('id', 's_OUT1', 'phone_number', '+15555550101', 'email', 'a@example.com'))::text) AS new;
-- the late opt-in again: a duplicate
SELECT deliver(jsonb_build_object('event', 'shop.subscriber.opt_in', 'event_time', '2026-03-04T12:00:00.000000',
  'event_data', jsonb_build_object('id', 's_OUT1', 'phone_number', '+15555550101', 'email', 'a@example.com'))::text) AS new;
SELECT subscriber_id, phone_number, email, event_time FROM postscript_fdw_webhook_opt_ins ORDER BY event_time;
SELECT subscriber_id, phone_number, event_time FROM postscript_fdw_webhook_opt_outs;
-- the latest word per subscriber, whatever the arrival order
SELECT DISTINCT ON (subscriber_id) subscriber_id, event
  FROM (SELECT subscriber_id, 'opt_in' AS event, event_time FROM postscript_fdw_webhook_opt_ins
        UNION ALL
        SELECT subscriber_id, 'opt_out', event_time FROM postscript_fdw_webhook_opt_outs) e
 ORDER BY subscriber_id, event_time DESC;

-------------------------------------------------------------- no event id: the content is the identity
-- both spellings of the email event; the same content twice is one event
SELECT deliver('{"event": "shop.email_collected", "event_time": "2026-03-04T13:00:00",
                 "event_data": {"subscriber_id": "s_E1", "email": "e1@example.com"}}') AS new;
SELECT deliver('{"event_time": "2026-03-04T13:00:00", "event": "shop.shop.email_collected",
                 "event_data": {"email": "e1@example.com", "subscriber_id": "s_E1"}}') AS new;
SELECT deliver('{"event": "shop.email_collected", "event_time": "2026-03-04T13:30:00",
                 "event_data": {"subscriber_id": "s_E1", "email": "e1@example.com"}}') AS new;
SELECT subscriber_id, email, event_time FROM postscript_fdw_webhook_emails_collected ORDER BY event_time;
SELECT event, deliveries FROM postscript_fdw_webhook_events
 WHERE event LIKE '%email_collected' ORDER BY event_time;

-------------------------------------------------------------- unknown and hostile events
-- an event type Postscript adds later is stored, not refused
SELECT deliver('{"event": "shop.subscriber.tagged", "event_data": {"id": "s_T", "tag": "VIP"}}') AS new;
-- values of the wrong type or form are NULL in the views, never an error
SELECT deliver('{"event": "shop.incoming_message", "event_time": "yesterday-ish",
  "event_data": {"id": "im_hostile", "from_number": "+15555550199", "body": "<script>",
                 "is_opt_out": "yes", "shopify_customer_id": 99999999999999999999,
                 "created_at": "2026-13-45T99:00:00"}}') AS new;
SELECT id, from_number, body, is_opt_out, shopify_customer_id, created_at, event_time
  FROM postscript_fdw_webhook_incoming_messages ORDER BY id;
-- nothing is resolved through the caller's search_path: an operator planted
-- in a schema ahead of pg_catalog (the receiver's search_path may come from
-- ALTER DATABASE or ALTER ROLE) is never called
CREATE SCHEMA planted;
CREATE FUNCTION planted.name_eq(name, name) RETURNS boolean LANGUAGE plpgsql
  AS $$BEGIN RAISE EXCEPTION 'the planted operator ran'; END$$;
CREATE OPERATOR planted.= (LEFTARG = name, RIGHTARG = name, FUNCTION = planted.name_eq);
SET search_path = planted, pg_catalog, public;
SELECT deliver('{"event": "shop.test", "event_data": {"id": "planted"}}') AS new;
RESET search_path;
DROP OPERATOR planted.= (name, name);
DROP FUNCTION planted.name_eq(name, name);
DROP SCHEMA planted;
-- an event_data.id or event_time of kilobytes (8000 random hex digits: no
-- compression brings them under the btree's 2.7 kB) is stored, and its
-- duplicate counted: the key is then the SHA-256 of the event's identity;
-- short keys stay as they are
SELECT string_agg(md5(i::text), '') AS long_value FROM generate_series(1, 250) i \gset
SELECT deliver(jsonb_build_object('event', 'shop.incoming_message', 'event_time', '2026-03-04T14:00:00',
  'event_data', jsonb_build_object('id', :'long_value'))::text) AS new;
SELECT deliver(jsonb_build_object('event', 'shop.incoming_message', 'event_time', '2026-03-04T14:00:00',
  'event_data', jsonb_build_object('id', :'long_value'))::text) AS new;
SELECT deliver(jsonb_build_object('event', 'shop.test', 'event_time', :'long_value',
  'event_data', jsonb_build_object('id', 'long_time'))::text) AS new;
SELECT deliver(jsonb_build_object('event', 'shop.test', 'event_time', :'long_value',
  'event_data', jsonb_build_object('id', 'long_time'))::text) AS new;
SELECT event, left(dedupe_key, 7) AS key, length(dedupe_key) AS key_length,
       length(event_id) AS id_length, deliveries
  FROM postscript_fdw_webhook_events WHERE event_id = 'long_time' OR length(event_id) > 64
 ORDER BY event;
SELECT dedupe_key, deliveries FROM postscript_fdw_webhook_events
 WHERE event_id IN ('s_OUT1', 'planted') ORDER BY event_time NULLS FIRST, event;
-- an event name is short: one of kilobytes is no Postscript event (400)
SELECT deliver(jsonb_build_object('event', 'shop.' || :'long_value', 'event_data', '{}'::jsonb)::text);
\echo :LAST_ERROR_SQLSTATE
SELECT deliver(jsonb_build_object('event', 'shop.' || repeat('x', 250), 'event_data', '{}'::jsonb)::text) AS new;
SELECT length(event), length(dedupe_key) AS key_length FROM postscript_fdw_webhook_events
 WHERE length(event) > 64;
DELETE FROM postscript_fdw_webhook_events
 WHERE event_id = 'long_time' OR length(event_id) > 64 OR length(event) > 64;
-- a retry is assumed to repeat the first attempt's event_time (Postscript
-- does not say): one stamped anew would be stored as a second row, which the
-- query of docs/webhooks.md finds
SELECT deliver('{"event": "shop.incoming_message", "event_time": "2026-03-04T15:00:00",
                 "event_data": {"id": "im_RESTAMP", "body": "hi"}}') AS new;
SELECT deliver('{"event": "shop.incoming_message", "event_time": "2026-03-04T15:05:00",
                 "event_data": {"id": "im_RESTAMP", "body": "hi"}}') AS new;
SELECT event, event_id, count(*), min(event_time), max(event_time)
  FROM postscript_fdw_webhook_events
 WHERE event_id IS NOT NULL
 GROUP BY event, event_id HAVING count(*) > 1
 ORDER BY event, event_id;
DELETE FROM postscript_fdw_webhook_events WHERE event_id = 'im_RESTAMP';
-- Postscript's times: no zone is UTC; anything but ISO 8601 is NULL
SELECT v, postscript_fdw_webhook_timestamp(v)
  FROM unnest(ARRAY['2026-03-04T12:00:00.123456', '2026-03-04T12:00:00Z', '2026-03-04 12:00:00+02:00',
                    '2026-02-30T00:00:00', 'yesterday', '', '1 day']) v;
SELECT event, count(*) FROM postscript_fdw_webhook_events GROUP BY event ORDER BY event;
-- not one request to the API: deliveries are local work
SELECT count(*) FROM mock.requests();

-------------------------------------------------------------- who may see and use the token
CREATE ROLE ps_hook_reader;
GRANT SELECT ON postscript_fdw_webhook_incoming_messages, hook TO ps_hook_reader;
SET ROLE ps_hook_reader;
SELECT count(*) FROM postscript_fdw_webhook_incoming_messages;
-- the mapping's options are hidden, the catalog is closed, the table too
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'ps';
SELECT umoptions FROM pg_user_mapping;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM postscript_fdw_webhook_events;
\echo :LAST_ERROR_SQLSTATE
-- and the function needs USAGE on the server and a mapping of one's own
SELECT deliver(body) FROM hook;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER ps TO ps_hook_reader;
SET ROLE ps_hook_reader;
SELECT deliver(body) FROM hook;
\echo :LAST_ERROR_SQLSTATE
-- another role's token is the server owner's to fetch (ALTER USER MAPPING's
-- rule), and a role's own needs a mapping of its own: both are settled
-- before any request
SELECT postscript_fdw_webhook_fetch_token('ps', 'postgres');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE USER MAPPING FOR PUBLIC SERVER ps OPTIONS (api_key 'sk_test_shop_key');
SET ROLE ps_hook_reader;
SELECT postscript_fdw_webhook_fetch_token('ps');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP USER MAPPING FOR PUBLIC SERVER ps;
-- a token is kept in a role's own mapping only
SELECT postscript_fdw_webhook_fetch_token('ps', 'ps_hook_reader');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS token_requests FROM mock.requests() WHERE path = '/api/v2/webhooks/token';

-------------------------------------------------------------- the receiver's settings
SHOW postscript_fdw.webhook_listen_address;
SHOW postscript_fdw.webhook_rate_limit;
-- set at server start only
SET postscript_fdw.webhook_port = 8080;
\echo :LAST_ERROR_SQLSTATE

DROP OWNED BY ps_hook_reader;
DROP ROLE ps_hook_reader;
DROP FUNCTION deliver(text, text);
DROP TABLE hook;
DROP FUNCTION mock.api(text, text, text);
ALTER USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (DROP webhook_token);
TRUNCATE postscript_fdw_webhook_events;
