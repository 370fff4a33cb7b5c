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

-- ---------------------------------------------------------------------
-- rate limit
-- ---------------------------------------------------------------------
