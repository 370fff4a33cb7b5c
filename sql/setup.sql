--
-- Set-up shared by every test: the extension, a server on the local
-- Postscript API server (its URL comes from the PS_MOCK_URL environment
-- variable), the imported tables, and helpers that drive the local server's
-- admin API: its request log, fault injection, configuration and data summary.
--
\getenv mock_url PS_MOCK_URL
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
-- pages one at a time, so that tests can assert the order of requests
-- (concurrent page fetching is tested in resilience.sql)
CREATE SERVER ps FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', rate_limit '0', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript FROM SERVER ps INTO ps;
RESET client_min_messages;

CREATE SCHEMA mock;
CREATE TABLE mock.settings (url text NOT NULL);
INSERT INTO mock.settings VALUES (:'mock_url');
CREATE TABLE mock.raw (line text);
-- auth: the scheme (shop, partner+token, ...); headers: which auth headers
-- arrived (Authorization, X-Postscript-Shop-Token), never their values;
-- in_flight: how many other requests the server was handling when it came
CREATE TABLE mock.log (seq int, method text, path text, query text, auth text,
                       status int, body text, headers text[], in_flight int);
CREATE TABLE mock.summary_rows (resource text, count bigint, id_md5 text);

-- a string as one shell word
CREATE FUNCTION mock.sh(s text) RETURNS text LANGUAGE sql IMMUTABLE
  RETURN '''' || replace(s, '''', '''\''''') || '''';

-- one admin request (or, given the test API key, an API request); returns
-- the response body
CREATE FUNCTION mock.admin(method text, path text, body text DEFAULT NULL,
                           api_key text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  cmd text := 'curl -sS --fail-with-body -X ' || method
    || CASE WHEN api_key IS NULL THEN ''
            ELSE ' -H ' || mock.sh('Authorization: Bearer ' || api_key) END
    || CASE WHEN body IS NULL THEN ''
            ELSE ' -H ''Content-Type: application/json'' --data-binary ' || mock.sh(body) END
    || ' ' || mock.sh((SELECT url FROM mock.settings) || path);
BEGIN
  TRUNCATE mock.raw;
  -- CSV with quote and delimiter characters that never occur: raw lines
  EXECUTE format('COPY mock.raw FROM PROGRAM %L WITH (FORMAT csv, QUOTE E''\x01'', DELIMITER E''\x02'')', cmd);
  RETURN (SELECT string_agg(line, E'\n') FROM mock.raw);
END $$;

CREATE FUNCTION mock.reset() RETURNS void LANGUAGE sql
  BEGIN ATOMIC SELECT mock.admin('POST', '/__admin/reset'); END;
CREATE FUNCTION mock.fault(spec jsonb) RETURNS void LANGUAGE sql
  BEGIN ATOMIC SELECT mock.admin('POST', '/__admin/faults', spec::text); END;
CREATE FUNCTION mock.config(spec jsonb) RETURNS void LANGUAGE sql
  BEGIN ATOMIC SELECT mock.admin('POST', '/__admin/config', spec::text); END;

-- EXPLAIN ANALYZE of q, the same on every PostgreSQL version: no timing,
-- summary or buffers (on by default since 18), and row counts as integers
-- (18 prints them with two decimals)
CREATE FUNCTION mock.explain_analyze(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) ' || q LOOP
    RETURN NEXT regexp_replace(line, '(rows=[0-9]+)\.00 ', '\1 ', 'g');
  END LOOP;
END $$;

-- an admin listing of the server (?format=copy) loaded into a table
CREATE FUNCTION mock.load(target regclass, path text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('TRUNCATE %s', target);
  EXECUTE format('COPY %s FROM PROGRAM %L', target,
                 'curl -sS --fail ' || mock.sh((SELECT url FROM mock.settings) || path));
END $$;

-- the API requests the server received since the last reset
CREATE FUNCTION mock.requests()
RETURNS SETOF mock.log LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mock.load('mock.log', '/__admin/requests?format=copy');
  RETURN QUERY SELECT * FROM mock.log ORDER BY seq;
END $$;

-- the requests since the last call, then a fresh log
CREATE FUNCTION mock.take_requests() RETURNS TABLE (method text, path text, query text)
LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY SELECT r.method, r.path, r.query FROM mock.requests() r;
  PERFORM mock.reset();
END $$;

-- what the server holds: per resource, row count and md5 of the sorted ids
CREATE FUNCTION mock.summary()
RETURNS SETOF mock.summary_rows LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mock.load('mock.summary_rows', '/__admin/summary?format=copy');
  RETURN QUERY SELECT * FROM mock.summary_rows ORDER BY resource;
END $$;

-- run a statement; 'ok' or 'SQLSTATE: message' (for errors whose detail varies)
CREATE FUNCTION mock.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT mock.reset();
SELECT resource, count > 0 AS has_rows FROM mock.summary();
