/* postscript_fdw--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION postscript_fdw" to load this file. \quit

CREATE FUNCTION postscript_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION postscript_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER postscript_fdw
  HANDLER postscript_fdw_handler
  VALIDATOR postscript_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER postscript_fdw IS
  'Postscript SMS-marketing API: subscribers, keywords, campaigns, messages, opt-ins, opt-outs, events';
