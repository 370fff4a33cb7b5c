/* postscript_fdw--1.1--1.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION postscript_fdw UPDATE TO '1.2'" to load this file. \quit

-- ---------------------------------------------------------------------
-- writes sent at commit
-- ---------------------------------------------------------------------

-- what the last commit that sent writes did with each of them, in order
CREATE FUNCTION postscript_fdw_last_commit(
    OUT write integer, OUT description text, OUT method text, OUT path text,
    OUT body text, OUT status text, OUT id text, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'postscript_fdw_last_commit'
LANGUAGE C STRICT VOLATILE;

-- ---------------------------------------------------------------------
-- mirrors: local copies of foreign tables, refreshed incrementally
-- ---------------------------------------------------------------------

-- ---------------------------------------------------------------------
-- webhooks: deliveries stored as rows
-- ---------------------------------------------------------------------

-- every webhook event, stored once however often it was delivered
-- (src/webhook.c writes it: the receiver worker and
-- postscript_fdw_webhook_receive() share that code)
CREATE TABLE postscript_fdw_webhook_events (
  dedupe_key text PRIMARY KEY,
  event text NOT NULL,
  event_id text,
  event_time timestamptz,
  webhook_id text,
  resource_id text,
  event_data jsonb NOT NULL,
  payload jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  last_received_at timestamptz NOT NULL DEFAULT now(),
  deliveries integer NOT NULL DEFAULT 1
);
CREATE INDEX postscript_fdw_webhook_events_event_time
  ON postscript_fdw_webhook_events (event, event_time);
-- user data: pg_dump keeps the rows
SELECT pg_catalog.pg_extension_config_dump('postscript_fdw_webhook_events', '');

-- Postscript's times: ISO 8601, zone-less meaning UTC; NULL when unreadable,
-- so that one hostile delivery cannot break a view for every reader
CREATE FUNCTION postscript_fdw_webhook_timestamp(value text)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'postscript_fdw_webhook_timestamp'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION postscript_fdw_webhook_receive(server name, body text, headers jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'postscript_fdw_webhook_receive'
LANGUAGE C STRICT VOLATILE;

-- the subscriber an event is about, whatever its type: event_data is the
-- subscriber object (its id is the subscriber's) or names it in subscriber_id
-- GET /api/v2/webhooks/token, kept as the webhook_token of role's mapping
CREATE FUNCTION postscript_fdw_webhook_fetch_token(server name, role name DEFAULT current_user)
RETURNS void
AS 'MODULE_PATHNAME', 'postscript_fdw_webhook_fetch_token'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW postscript_fdw_webhook_subscriber_events AS
SELECT event, coalesce(event_data->>'subscriber_id', event_data->>'id') AS subscriber_id,
       coalesce(event_data->>'phone_number', event_data->>'from_number') AS phone_number,
       event_data->>'email' AS email,
       event_time, received_at, webhook_id, event_data
  FROM postscript_fdw_webhook_events;

CREATE VIEW postscript_fdw_webhook_opt_ins AS
SELECT subscriber_id, phone_number, email, event_time, received_at, webhook_id, event_data
  FROM postscript_fdw_webhook_subscriber_events WHERE event = 'shop.subscriber.opt_in';

CREATE VIEW postscript_fdw_webhook_opt_outs AS
SELECT subscriber_id, phone_number, email, event_time, received_at, webhook_id, event_data
  FROM postscript_fdw_webhook_subscriber_events WHERE event = 'shop.subscriber.opt_out';

CREATE VIEW postscript_fdw_webhook_incoming_messages AS
SELECT event_id AS id,
       event_data->>'subscriber_id' AS subscriber_id,
       event_data->>'shop_id' AS shop_id,
       event_data->>'from_number' AS from_number,
       event_data->>'body' AS body,
       CASE jsonb_typeof(event_data->'is_opt_out')
         WHEN 'boolean' THEN (event_data->'is_opt_out')::boolean END AS is_opt_out,
       CASE WHEN event_data->>'shopify_customer_id' ~ '^[0-9]{1,18}$'
         THEN (event_data->>'shopify_customer_id')::bigint END AS shopify_customer_id,
       postscript_fdw_webhook_timestamp(event_data->>'created_at') AS created_at,
       event_time, received_at, webhook_id, event_data
  FROM postscript_fdw_webhook_events
 WHERE event = 'shop.incoming_message';

CREATE VIEW postscript_fdw_webhook_emails_collected AS
SELECT subscriber_id, email, phone_number, event_time, received_at, webhook_id, event_data
  FROM postscript_fdw_webhook_subscriber_events
 WHERE event IN ('shop.email_collected', 'shop.shop.email_collected');
