--
-- Pages are scanned as they arrive, without a tree: bodies cut anywhere read
-- as they do whole; hostile shapes; times in ISO 8601 only; one reader of
-- list responses; the cap on a response's size
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();

-------------------------------------------------------------- chunks
-- the same page whole, then one byte per HTTP chunk: characters of 2, 3 and
-- 4 bytes, escapes and a surrogate pair are cut everywhere
CREATE FOREIGN TABLE chunked (id text, name text, tags text[], doc jsonb, n numeric, ok boolean)
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/chunked', records_key 'rows');
CREATE TEMP TABLE chunk_body AS SELECT
  '{"rows": [{"id": "c1", "name": "é日😀 \u00e9\ud83d\ude00 \"q\" \\ \/", "tags": ["ü", "\u65e5", null],
    "doc": {"k": "ç", "a": [1.50, true, null], "e": {}}, "n": -12.5e-1, "ok": true},
   {"id": "c2", "n": 7, "ok": false}, {}, {"id": "c4"}],
   "page_info": {"total_pages": 1}}'::text AS body;
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/chunked', 'count', 1,
                                     'body', body)) FROM chunk_body;
CREATE TEMP TABLE whole AS SELECT row_number() OVER () AS pos, * FROM chunked;
SELECT * FROM whole ORDER BY pos;
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/chunked', 'count', 1,
                                     'body', body, 'chunk_bytes', 1)) FROM chunk_body;
CREATE TEMP TABLE cut AS SELECT row_number() OVER () AS pos, * FROM chunked;
SELECT (SELECT count(*) FROM cut) AS rows,
       (SELECT count(*) FROM (SELECT * FROM cut EXCEPT SELECT * FROM whole) d) AS differ;
DROP FOREIGN TABLE chunked;

-------------------------------------------------------------- shapes
-- records without fields, in order between others
CREATE FOREIGN TABLE shapes (id text, n int)
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/shapes', records_key 'rows');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/shapes", "count": 1,
  "body": "{\"rows\": [{}, {\"id\": \"x\"}, {}, {}, {\"n\": 3}, {}]}"}');
SELECT row_number() OVER () AS pos, id, n FROM shapes;
-- a records key given twice: the last one counts, as in a parsed object
SELECT mock.fault('{"kind": "body", "path": "/api/v2/shapes", "count": 1,
  "body": "{\"rows\": [{\"id\": \"a\"}], \"rows\": [{\"id\": \"b\"}, {\"id\": \"c\"}]}"}');
SELECT id FROM shapes;
-- a huge page of tiny records: 200,000 {} in one response, one request
SELECT mock.reset();
SELECT mock.fault('{"kind": "huge_page", "path": "/api/v2/subscribers", "records": 200000, "count": 1}');
SELECT count(*), count(id), count(email) FROM ps.subscribers;
SELECT method, path, query, status FROM mock.requests();
-- a page that never ends stops at max_response_size
CREATE SERVER ps_capped FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_response_size '1048576');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_capped OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE capped_keywords (id text) SERVER ps_capped OPTIONS (resource 'keywords');
SELECT mock.fault('{"kind": "endless", "path": "/api/v2/keywords", "count": 1}');
SELECT count(id) FROM capped_keywords;
\echo :LAST_ERROR_SQLSTATE
DROP SERVER ps_capped CASCADE;

-------------------------------------------------------------- times
-- ISO 8601 only: a date alone is midnight UTC, offsets with or without a colon
SET TimeZone = 'UTC';
CREATE FOREIGN TABLE times (id text, ts timestamptz, d date, ts0 timestamp(0))
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/times', records_key 'rows');
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/times', 'count', 1, 'body',
  '{"rows": [{"id": "t1", "ts": "2026-01-02", "d": "2026-02-28T23:30:00-05:00", "ts0": "2026-01-02T03:04:05.6Z"},
             {"id": "t2", "ts": "2026-01-02T03:04:05+0200", "d": "2024-02-29", "ts0": 1700000000}]}'));
SELECT * FROM times ORDER BY id;
-- words, other formats and impossible dates are errors, not guesses; a
-- fraction finer than a microsecond is rounded as timestamptz_in rounds it
CREATE FUNCTION pg_temp.read_time(col text, v text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  PERFORM mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/times', 'count', 1,
    'body', jsonb_build_object('rows', jsonb_build_array(jsonb_build_object('id', 't', col, v)))::text));
  EXECUTE format('SELECT %I::text FROM times', col) INTO r;
  RETURN r;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT col, v, pg_temp.read_time(col, v) AS read
  FROM (VALUES ('ts'), ('d')) c(col),
       unnest(ARRAY['yesterday', 'now', 'epoch', 'infinity', '2026-02-30', '2026-01-02 03:04:05 PST',
                    'Jan 2 2026', '2026-1-2', '2026-01-02T25:00:00Z', '2026-01-02T03:04:05.123Z',
                    '2024-02-29T23:59:59Z', '2025-02-29T00:00:00Z', '2026-01-02T03:04:60Z',
                    '2016-12-31T23:59:60Z', '2016-12-31T23:59:60.5Z', '2026-01-02T24:00:00Z',
                    '2026-01-02T24:00:00.000+09:00', '2026-01-02T24:00:00.5Z',
                    '2026-01-02T24:01:00Z', '2026-01-02T03:04:61Z',
                    '2026-01-02T03:04:5Z', '2026-01-02T03:04:05', '2026-01-02T03:04:05.9999995+05:30',
                    '2026-01-02T03:04:05.1234565Z', '2026-01-02T03:04:05.0000005Z']) v
 ORDER BY col, v;
-- count(*) converts no column (nor do postgres_fdw and file_fdw): a value
-- that cannot be read fails only a query that reads its column
SELECT mock.fault('{"kind": "body", "path": "/api/v2/times", "count": 2,
  "body": "{\"rows\": [{\"id\": \"t1\", \"ts\": \"yesterday\"}, {\"id\": \"t2\"}]}"}');
SELECT count(*) FROM times;
SELECT count(ts) FROM times;
\echo :LAST_ERROR_SQLSTATE
RESET TimeZone;
DROP FOREIGN TABLE times;

-------------------------------------------------------------- domains and array elements
-- a domain, or an array's element, converts as the type under it (a time
-- is ISO 8601, without a zone UTC, whatever TimeZone says; a jsonb element
-- is the JSON value), and then the domain is checked
SET TimeZone = 'Asia/Tokyo';
CREATE DOMAIN ts_d AS timestamptz CHECK (VALUE > '2000-01-01Z');
CREATE DOMAIN ts0_d AS timestamp(0);
CREATE DOMAIN ts_arr_d AS timestamptz[];
CREATE FOREIGN TABLE typed (id text, ts ts_d, ts0 ts0_d, tsa timestamptz[], tsda ts_d[],
                            tsarr ts_arr_d, ja jsonb[], ep timestamptz)
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/typed', records_key 'rows');
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/typed', 'count', 2, 'body',
  '{"rows": [{"id": "t1", "ts": "2026-03-04T05:06:07", "ts0": "2026-03-04T05:06:07.6+05:30",
              "tsa": ["2026-03-04T05:06:07", null], "tsda": ["2026-03-04T05:06:07Z"],
              "tsarr": ["2026-03-04"], "ja": ["123", "true", {"a": 1}, null, "VIP"],
              "ep": 1700000000.5}]}'));
SELECT * FROM typed;
SELECT jsonb_typeof(ja[1]) AS first, jsonb_typeof(ja[3]) AS third FROM typed;
-- a word is refused in an array too; the domain's CHECK holds
SELECT mock.fault('{"kind": "body", "path": "/api/v2/typed", "count": 2,
  "body": "{\"rows\": [{\"id\": \"t2\", \"tsa\": [\"now\"], \"ts\": \"1999-01-01\"}]}"}');
SELECT tsa FROM typed;
\echo :LAST_ERROR_SQLSTATE
SELECT ts FROM typed;
\echo :LAST_ERROR_SQLSTATE
RESET TimeZone;
DROP FOREIGN TABLE typed;
DROP DOMAIN ts_d, ts0_d, ts_arr_d;
-- an element's length and scale are the array's, as in a cast to the type
CREATE FOREIGN TABLE typmods (id text, n numeric(5,1)[], v varchar(3)[])
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/typmods', records_key 'rows');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/typmods", "count": 2,
  "body": "{\"rows\": [{\"id\": \"m1\", \"n\": [1.25, 2, null], \"v\": [\"abcd\"]}]}"}');
SELECT n, '{1.25, 2, null}'::numeric(5,1)[] AS cast FROM typmods;
SELECT v FROM typmods;
\echo :LAST_ERROR_SQLSTATE
DROP FOREIGN TABLE typmods;

-------------------------------------------------------------- arrays
-- a text[] column of plain ASCII strings is read in place, any other array
-- by the scanner: both give what PostgreSQL makes of the same JSON
CREATE FOREIGN TABLE arrs (id text, a text[])
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/arrs', records_key 'rows');
CREATE TEMP TABLE arr_src (id text, a text);
INSERT INTO arr_src VALUES
  ('plain', '["vip", "new", "x"]'), ('empty string', '["", "b"]'), ('one', '["a"]'),
  ('sixteen', (SELECT json_agg('t' || i)::text FROM generate_series(1, 16) i)),
  ('seventeen', (SELECT json_agg('t' || i)::text FROM generate_series(1, 17) i)),
  ('escapes', '["a\"b", "c\\d", "u\u0041"]'), ('not ascii', '["x", "é"]'),
  ('null', '["x", null]'), ('mixed', '["a", 1, true, 2.50]'), ('empty', '[]');
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/arrs', 'count', 1,
  'body', '{"rows": [' || string_agg(format('{"id": %s, "a": %s}', to_json(id), a), ', ') || ']}'))
  FROM arr_src;
CREATE TEMP TABLE arr_read AS SELECT * FROM arrs;
SELECT s.id, r.a, r.a IS NOT DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(s.a::jsonb)) AS same
  FROM arr_src s LEFT JOIN arr_read r USING (id) ORDER BY s.id;
DROP FOREIGN TABLE arrs;

-------------------------------------------------------------- jsonb
-- objects and arrays become jsonb without jsonb_in: the same values, the
-- same text and the same size, as PostgreSQL's own reading of the JSON the
-- API sent (the json_rows fuzzer compares them byte for byte); read beside
-- the whole record (raw), a column of one key is a copy of its member
CREATE FOREIGN TABLE docs (id text, doc jsonb, raw jsonb OPTIONS (field '$'))
  SERVER ps OPTIONS (resource 'keywords', endpoint '/api/v2/docs', records_key 'rows');
CREATE TEMP TABLE doc_src (id text, doc text);
INSERT INTO doc_src VALUES
  ('keys', '{"b": 1, "a": 2, "ab": 3, "aa": 4, "a": "last wins", "": "empty", "日本": "mb", "é": 1, "B": 0}'),
  ('numbers', '[0, -0, 1.50, 0.0, 1e3, 1E-3, -12.5e-1, 9223372036854775807, -9223372036854775808,
               9223372036854775808, -9223372036854775809, 123456789012345678901234567890.5, 1e-400,
               7, -7, 10000, -10000, 100000000, 6000000022237, 18446744073709551615,
               18446744073709551616, 99999999999999999999, 100000000000000000000]'),
  ('strings', '["\"\\\/\b\f\n\r\t", "\u00e9\u65E5\ud83d\ude00\uD83D\uDE00", "é日😀", "a\u001fb", ""]'),
  ('escaped keys', '{"\u0061": 1, "a": 2, "\"": 3, "\\": 4}'),
  ('nested', '{"z": {}, "y": [], "x": [null, true, false, {"k": [[{"deep": {"b": 2, "a": 1}}]]}]}'),
  ('empty', '{}'),
  ('many keys', (SELECT '{' || string_agg(format('"k%s": %s', i % 37, i), ', ') || '}'
                   FROM generate_series(1, 300) i)),
  ('long', (SELECT '[' || string_agg(format('"%s"', repeat('x', i)), ',') || ']'
              FROM generate_series(1, 100) i)),
  ('scalar', '"not a container"');
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/docs', 'count', 2, 'body',
  '{"rows": [' || string_agg(format('{"id": %s, "doc": %s}', to_json(id), doc), ', ') || ']}'))
  FROM doc_src;
CREATE TEMP TABLE doc_read AS SELECT id, doc, pg_column_size(doc) AS size FROM docs;
CREATE TEMP TABLE doc_with_raw AS SELECT id, doc, pg_column_size(doc) AS size, raw FROM docs;
SELECT s.id, r.doc::text = s.doc::jsonb::text AS same_text, r.doc = s.doc::jsonb AS equal,
       r.size = pg_column_size(s.doc::jsonb) AS same_size,
       w.doc::text = r.doc::text AND w.size = r.size AS same_beside_raw,
       w.raw = jsonb_build_object('id', s.id, 'doc', s.doc::jsonb) AS raw_equal
  FROM doc_src s LEFT JOIN doc_read r USING (id) LEFT JOIN doc_with_raw w USING (id) ORDER BY s.id;
SELECT doc FROM doc_read WHERE id IN ('keys', 'strings', 'escaped keys') ORDER BY id;
-- what jsonb_in refuses inside an object, it still reports: a raw control
-- character (in a value a later duplicate key overwrites too); an unpaired
-- surrogate escape is U+FFFD, as in a text column
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/docs', 'count', 1, 'body',
  '{"rows": [{"id": "ctl", "doc": {"k": "a' || chr(9) || 'b"}}]}'));
SELECT * FROM docs;
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/docs', 'count', 1, 'body',
  '{"rows": [{"id": "dup", "doc": {"k": {"x": "a' || chr(7) || 'b"}, "k": 1}}]}'));
SELECT * FROM docs;
SELECT mock.fault(jsonb_build_object('kind', 'body', 'path', '/api/v2/docs', 'count', 1, 'body',
  '{"rows": [{"id": "lone", "doc": ["\ud800x"]}]}'));
SELECT * FROM docs;
DROP FOREIGN TABLE docs;

-------------------------------------------------------------- one list reader
-- the planner's remote estimate reads a list response as the scan does:
-- the same error for a body without its records array
CREATE FOREIGN TABLE broken (id text)
  SERVER ps OPTIONS (resource 'subscribers', endpoint '/api/v2/broken', records_key 'rows');
CREATE FOREIGN TABLE broken_estimated (id text)
  SERVER ps OPTIONS (resource 'subscribers', endpoint '/api/v2/broken', records_key 'rows',
                     use_remote_estimate 'true');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/broken", "count": 2, "body": "{\"other\": []}"}');
SELECT * FROM broken;
SELECT * FROM broken_estimated;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/broken", "count": 2, "body": "{\"rows\": 5}"}');
SELECT * FROM broken;
SELECT * FROM broken_estimated;
DROP FOREIGN TABLE broken, broken_estimated;

-------------------------------------------------------------- max_response_size
-- what a scan holds grows with a response's size: above the default cap,
-- only a superuser may raise it
CREATE ROLE regress_ps_parser;
GRANT USAGE ON FOREIGN DATA WRAPPER postscript_fdw TO regress_ps_parser;
SET ROLE regress_ps_parser;
CREATE SERVER ps_big FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', max_response_size '67108865');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER ps_big FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', max_response_size '67108864');
ALTER SERVER ps_big OPTIONS (SET max_response_size '100000000');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER SERVER ps_big OPTIONS (SET max_response_size '100000000');
-- the owner may still change the server's other options (the whole list is
-- checked again) and keep the superuser's cap, but not raise it further
SET ROLE regress_ps_parser;
ALTER SERVER ps_big OPTIONS (ADD request_timeout '10');
ALTER SERVER ps_big OPTIONS (SET max_response_size '100000001');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT srvoptions[2:] FROM pg_foreign_server WHERE srvname = 'ps_big';
DROP SERVER ps_big;
DROP OWNED BY regress_ps_parser;
DROP ROLE regress_ps_parser;
