--
-- Reading every object: counts and ids equal the server's data set, every
-- column's value equals what PostgreSQL itself makes of the raw JSON
--
SELECT mock.reset();

WITH fdw AS (
  SELECT 'subscribers' AS resource, count(*) AS n,
         md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) AS m FROM ps.subscribers
  UNION ALL SELECT 'keywords', count(*), md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) FROM ps.keywords
  UNION ALL SELECT 'campaigns', count(*), md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) FROM ps.campaigns
  UNION ALL SELECT 'messages', count(*), md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) FROM ps.messages
  UNION ALL SELECT 'opt_ins', count(*), md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) FROM ps.opt_ins
  UNION ALL SELECT 'opt_outs', count(*), md5(string_agg(id, E'\n' ORDER BY id COLLATE "C")) FROM ps.opt_outs
)
SELECT s.resource, f.n, f.n = s.count AS count_matches, f.m = s.id_md5 AS ids_match
  FROM mock.summary() s JOIN fdw f USING (resource) ORDER BY 1;

-- the shop
SELECT resource_type, resource_id IS NOT NULL AS has_id FROM ps.shop;

-- the data set's awkward values are there
SELECT count(*) FILTER (WHERE email IS NULL) > 0 AS null_emails,
       count(*) FILTER (WHERE email LIKE '%+%') > 0 AS plus_emails,
       count(*) FILTER (WHERE shopify_customer_id IS NULL) > 0 AS null_shopify,
       count(*) FILTER (WHERE phone_number NOT LIKE '+1%') > 0 AS non_us_numbers,
       count(*) FILTER (WHERE properties::text ~ '[^\x01-\x7f]') > 0 AS unicode_properties,
       count(*) FILTER (WHERE raw->>'created_at' LIKE '%.%') > 0 AS fractional_ts,
       count(*) FILTER (WHERE raw->>'created_at' LIKE '%+00:00') > 0 AS offset_ts,
       count(*) FILTER (WHERE cardinality(tags) = 0) > 0 AS empty_tags
  FROM ps.subscribers;

-- typed columns agree with PostgreSQL's own reading of the raw object
SELECT count(*) AS subscribers_mismatched FROM ps.subscribers
 WHERE id IS DISTINCT FROM raw->>'id'
    OR ps_id IS DISTINCT FROM (raw->>'ps_id')::bigint
    OR phone_number IS DISTINCT FROM raw->>'phone_number'
    OR email IS DISTINCT FROM raw->>'email'
    OR shopify_customer_id IS DISTINCT FROM (raw->>'shopify_customer_id')::bigint
    OR tags IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(raw->'tags'))
    OR properties IS DISTINCT FROM raw->'properties'
    OR promotional_can_send IS DISTINCT FROM (raw#>>'{subscriptions,promotional,can_send}')::boolean
    OR transactional_can_send IS DISTINCT FROM (raw#>>'{subscriptions,transactional,can_send}')::boolean
    OR created_at IS DISTINCT FROM (raw->>'created_at')::timestamptz
    OR updated_at IS DISTINCT FROM (raw->>'updated_at')::timestamptz
    OR keyword IS NOT NULL OR keyword_id IS NOT NULL;

-- keyword timestamps carry no zone: they are UTC, whatever the session's zone
SET TimeZone = 'America/New_York';
SELECT count(*) AS keywords_mismatched FROM ps.keywords
 WHERE created_at IS DISTINCT FROM (raw->>'created_at' || '+00')::timestamptz
    OR updated_at IS DISTINCT FROM (raw->>'updated_at' || '+00')::timestamptz
    OR triggered_count IS DISTINCT FROM (raw->>'triggered_count')::bigint
    OR keyword IS DISTINCT FROM raw->>'keyword';
SELECT count(*) FILTER (WHERE raw->>'created_at' !~ '(Z|[+-]\d\d:?\d\d)$') AS zoneless
  FROM ps.keywords;
RESET TimeZone;

SELECT count(*) AS campaigns_mismatched FROM ps.campaigns
 WHERE revenue IS DISTINCT FROM (raw#>>'{stats,revenue}')::numeric
    OR recipients IS DISTINCT FROM (raw#>>'{stats,recipients}')::bigint
    OR delivered IS DISTINCT FROM (raw#>>'{stats,delivered}')::bigint
    OR clicks IS DISTINCT FROM (raw#>>'{stats,clicks}')::bigint
    OR opt_outs IS DISTINCT FROM (raw#>>'{stats,opt_outs}')::bigint
    OR sent_at IS DISTINCT FROM (raw->>'sent_at')::timestamptz
    OR status IS DISTINCT FROM raw->>'status';
SELECT status, sent_at IS NULL AS unsent, count(*) > 0 AS present
  FROM ps.campaigns GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) AS messages_mismatched FROM ps.messages
 WHERE campaign_id IS DISTINCT FROM raw->>'campaign_id'
    OR credits_used IS DISTINCT FROM (raw->>'credits_used')::bigint
    OR direction IS DISTINCT FROM raw->>'direction'
    OR created_at IS DISTINCT FROM (raw->>'created_at')::timestamptz;
SELECT count(*) AS opt_ins_mismatched FROM ps.opt_ins
 WHERE confirmed_at IS DISTINCT FROM (raw->>'confirmed_at')::timestamptz
    OR status IS DISTINCT FROM raw->>'status';

-- every request of this file: one per page or list, shop key auth
SELECT path, auth, count(*) > 0 AS requested
  FROM mock.requests() GROUP BY 1, 2 ORDER BY 1, 2;

-- columns a user declares: any type through its input function, dotted
-- paths, missing keys and JSON null as NULL, a renamed column
CREATE FOREIGN TABLE typed (
  id text,
  n int,
  small smallint,
  big bigint,
  f float8,
  r real,
  num numeric,
  num2 numeric(6,2),
  b boolean,
  b_text boolean OPTIONS (field 'b_str'),
  d date,
  ts timestamptz,
  ts_local timestamp,
  ts_zoneless timestamptz OPTIONS (field 'ts_nz'),
  u uuid,
  ints int[],
  texts text[],
  j json,
  jb jsonb,
  jb_scalar jsonb OPTIONS (field 'num'),
  deep text OPTIONS (field 'a.b.c'),
  obj_as_text text OPTIONS (field 'a'),
  missing text,
  whole jsonb OPTIONS (field '$')
) SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/typed', records_key 'rows');

SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/typed', 'count', -1,
  'body', '{"rows": [
   {"id": "r1", "n": 2147483647, "small": -32768, "big": 9007199254740993, "f": 1.5e300,
    "r": 0.25, "num": "1234.50", "num2": 12.345, "b": true, "b_str": "yes", "d": "2026-02-28",
    "ts": "2026-01-02T03:04:05.123456789Z", "ts_local": "2026-01-02T03:04:05+02:00",
    "ts_nz": "2026-01-02 03:04:05", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "ints": [1, null, 3], "texts": ["x", "日本", "é😀", 5, true], "j": {"k": [1, 2]},
    "jb": {"z": 1, "a": [true, null, 1.50, "s"]}, "a": {"b": {"c": "deep"}}},
   {"id": "r2", "n": null, "ts": "2026-06-30T23:59:59.9999995-07:00", "num": 7, "texts": [],
    "a": {"b": null}}
  ]}'));
SELECT * FROM typed ORDER BY id;
SELECT id, pg_typeof(jb_scalar), jb_scalar FROM typed ORDER BY id;
DROP FOREIGN TABLE typed;

-- values that do not fit their column are errors naming table, column, row id and value
CREATE FOREIGN TABLE strict (id text, n int, v varchar(3), b boolean, ts timestamptz, arr int[])
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/strict', records_key 'rows');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s1\", \"n\": 2147483648}]}"}');
SELECT * FROM strict;
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE strict_f (id text, f float8)
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/strict', records_key 'rows');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"f1\", \"f\": 1e-400}]}"}');
SELECT * FROM strict_f;
\echo :LAST_ERROR_SQLSTATE
-- a subnormal is a value, as float8in takes it
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"f2\", \"f\": 1e-310}]}"}');
SELECT id, f > 0 AS positive FROM strict_f;
DROP FOREIGN TABLE strict_f;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s2\", \"v\": \"abcd\"}]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s3\", \"b\": \"perhaps\"}]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s4\", \"ts\": \"yesterday-ish\"}]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s5\", \"arr\": {\"a\": 1}}]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s6\", \"n\": [1]}]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [\"not an object\"]}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"other\": []}"}');
SELECT * FROM strict;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": {}}"}');
SELECT * FROM strict;
-- unknown keys are ignored; only the columns a query reads are converted
SELECT mock.fault('{"kind": "body", "path": "/api/v2/strict", "count": 1, "body": "{\"rows\": [{\"id\": \"s7\", \"n\": \"bad\", \"extra\": 1}]}"}');
SELECT id FROM strict;
DROP FOREIGN TABLE strict;
