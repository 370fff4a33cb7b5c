/* postscript_fdw--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION postscript_fdw UPDATE TO '1.1'" to load this file. \quit

-- what this backend's connections to Postscript have done, per server and role
CREATE FUNCTION postscript_fdw_stats(
    OUT server_name text,
    OUT role_name text,
    OUT requests bigint,
    OUT status_2xx bigint,
    OUT status_4xx bigint,
    OUT status_5xx bigint,
    OUT status_429 bigint,
    OUT transport_errors bigint,
    OUT retries bigint,
    OUT rate_limit_wait_ms float8,
    OUT backoff_wait_ms float8,
    OUT bytes_received bigint,
    OUT rows_received bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION postscript_fdw_stats() IS
  'requests, statuses, retries, waits, bytes and rows of this backend''s Postscript connections';

CREATE FUNCTION postscript_fdw_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION postscript_fdw_stats_reset() IS
  'zero this backend''s postscript_fdw_stats() counters';
