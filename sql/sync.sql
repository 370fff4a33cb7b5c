--
-- Mirrors: CALL postscript_fdw_sync(source, target, ...) keeps a local table
-- an exact copy of a foreign table: a full pass in created_at keyset batches
-- of one page each, each committed with its cursor; later runs fetch only
-- updated_at >= cursor - overlap; no row is missed when rows move upstream
-- between two requests; resumable after a cancel or an API failure; one sync
-- per mirror; a full pass finds rows that left Postscript.  Each step asserts
-- the rows, the status view and the requests the local API server received.
--
-- Changes made here carry updated_at values relative to a base time one
-- day ago (the seeded data ends 2026-06-30), and requests show them as
-- <base ± interval>.  The CONTEXT of an error (lines of the procedure) is not
-- shown.
\set SHOW_CONTEXT never
SELECT mock.reset();
SELECT date_trunc('second', now()) - interval '1 day' AS base \gset
SET sync.base = :'base';
SET IntervalStyle = postgres;

-- change subscribers upstream: properties {"touched": 1}, the updated_at given
CREATE FUNCTION sync_touch(spec jsonb, at timestamptz) RETURNS text LANGUAGE sql
  RETURN mock.admin('POST', '/__admin/subscribers',
                    (spec || jsonb_build_object('properties', '{"touched": 1}'::jsonb,
                                                'updated_at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))::text);
-- subscribers disappear upstream (redacted)
CREATE FUNCTION sync_remove(ids text[]) RETURNS text LANGUAGE sql
  RETURN mock.admin('POST', '/__admin/remove', jsonb_build_object('ids', ids)::text);

-- Upstream changes made while a sync runs, between two of its requests: a
-- trigger on the mirror makes the pending ones as the first batch is stored,
-- so the next request sees them.  (It runs in the sync's transaction.)
CREATE TABLE sync_pending (change text, ids text[], at timestamptz);
CREATE FUNCTION sync_pending_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  c record;
BEGIN
  FOR c IN DELETE FROM sync_pending RETURNING * LOOP
    PERFORM CASE c.change WHEN 'touch' THEN sync_touch(jsonb_build_object('ids', c.ids), c.at)
                          WHEN 'remove' THEN sync_remove(c.ids) END;
  END LOOP;
  RETURN NULL;
END $$;

-- a query string with its updated_at values shown relative to the base
CREATE FUNCTION sync_show(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  m text[];
  t timestamptz;
  b timestamptz := current_setting('sync.base');
BEGIN
  FOR m IN SELECT regexp_matches(q, 'updated_at__(?:gte|gt|lt|lte|eq)=([^&]*)', 'g') LOOP
    t := replace(m[1], '%3A', ':');
    q := replace(q, m[1], '<base ' || CASE WHEN t >= b THEN '+ ' || (t - b) ELSE '- ' || (b - t) END || '>');
  END LOOP;
  RETURN q;
END $$;

-- empty the server's request log, keeping its data and faults
CREATE FUNCTION sync_clear_log() RETURNS void LANGUAGE sql
  BEGIN ATOMIC SELECT mock.admin('DELETE', '/__admin/requests'); END;

-- the requests since the last reset, one line per query with its pages
CREATE VIEW sync_requests AS
SELECT min(seq) AS first_seq, method, path,
       sync_show(regexp_replace(query, '&?page=\d+$', '')) AS query,
       string_agg(substring(query from 'page=(\d+)$'), ',' ORDER BY seq) AS pages,
       string_agg(DISTINCT status::text, ',') AS status
  FROM mock.requests()
 GROUP BY method, path, regexp_replace(query, '&?page=\d+$', '')
 ORDER BY 1;

-- a mirror equals the foreign table row for row (reads it: 20 requests)
CREATE FUNCTION sync_diff(mirror regclass, OUT missing bigint, OUT extra bigint)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SELECT (SELECT count(*) FROM (SELECT * FROM ps.subscribers EXCEPT ALL SELECT * FROM %1$s) a),
                         (SELECT count(*) FROM (SELECT * FROM %1$s EXCEPT ALL SELECT * FROM ps.subscribers) b)', mirror)
    INTO missing, extra;
END $$;

-- the requests in all, and those past page 1 (none: each batch is one page)
CREATE VIEW sync_request_count AS
SELECT count(*) AS requests, count(*) FILTER (WHERE query !~ '(^|&)page=1$') AS past_page_1,
       count(DISTINCT query) AS distinct_queries
  FROM mock.requests();

CREATE VIEW sync_status AS
SELECT target, strategy, status, run_mode, batches, rows_fetched, rows_inserted,
       rows_updated, rows_removed, requests, status_429, full_pass_pending, last_error_sqlstate, last_error
  FROM postscript_fdw_sync_status;

-- where a first pass stopped: what is stored, and its cursor: the second of
-- the last row stored, where the next batch begins
CREATE FUNCTION sync_stopped(mirror text, OUT stored bigint, OUT cursor_at_last_stored_second boolean)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SELECT count(*), date_trunc(''second'', max(created_at)) = (SELECT full_pass_cursor FROM postscript_fdw_sync_status WHERE target = %L) FROM %s',
                 'public.' || mirror, mirror)
    INTO stored, cursor_at_last_stored_second;
END $$;

-- 1. The first sync: a full pass, one page of 100 rows a batch, each batch a
-- query of its own from the last created_at stored (page 1 of each: rows
-- that move upstream cannot shift one past a batch).  The mirror is created
-- like the foreign table with a primary key on id.
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT method, path, query, pages, status FROM sync_requests LIMIT 3;
SELECT * FROM sync_request_count;
SELECT * FROM sync_status;
-- the change cursor is where the pass began: any later change has a newer updated_at
SELECT change_cursor = run_started AS cursor_at_pass_start, last_full_at = run_ended AS full_at_end,
       full_pass_cursor IS NULL AS no_pass_pending
  FROM postscript_fdw_sync_status;
SELECT mock.reset();
SELECT * FROM sync_diff('mirror');
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'mirror'::regclass AND contype <> 'n';
-- the state table's rows are kept by pg_dump
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'postscript_fdw';

-- 2. Incremental: only updated_at >= cursor - overlap (5 minutes), upserted.
-- Pretend the pass ended at the base time; then four subscribers change, one
-- of them with an updated_at 2 minutes before the cursor (a late write, or
-- clock skew: the overlap catches it) and one 10 minutes before (beyond the
-- overlap: missed until the next full pass, in 6. below)
UPDATE postscript_fdw_sync_state SET change_cursor = :'base';
SELECT id AS s1 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 10 \gset
SELECT id AS s2 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 20 \gset
SELECT id AS s3 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 30 \gset
SELECT id AS s4 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 40 \gset
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s1', :'s2']), :'base'::timestamptz + interval '1 hour');
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s3']), :'base'::timestamptz - interval '2 minutes');
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s4']), :'base'::timestamptz - interval '10 minutes');
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT method, path, query, pages, status FROM sync_requests;
SELECT * FROM sync_status;
-- the cursor: the newest updated_at stored
SELECT change_cursor - :'base' AS cursor_after_base FROM postscript_fdw_sync_status;
SELECT id = :'s1' AS s1, id = :'s2' AS s2, id = :'s3' AS s3, updated_at - :'base' AS updated_after_base,
       properties->'touched' AS touched
  FROM mirror WHERE properties ? 'touched' ORDER BY updated_at, id;

-- a run with nothing new: one request, which reads the rows at the cursor
-- again (the overlap) and changes nothing.  Run under a DateStyle and a
-- TimeZone whose output does not read back as it was (IST is Israel's
-- abbreviation too): the cursor it sends is the same.
SELECT sync_clear_log();
SET datestyle = 'Postgres, MDY';
SET timezone = 'Asia/Kolkata';
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
RESET datestyle;
RESET timezone;
SELECT method, path, query, pages, status FROM sync_requests;
SELECT status, run_mode, batches, rows_fetched, rows_inserted, rows_updated, requests FROM sync_status;

-- 3. Equal timestamps: fourteen subscribers share one updated_at, more than
-- a page holds; pages of 5, smaller than the server's page_size_estimate
-- (100).  The first query asks for 100 rows and takes 4 pages for the 18
-- there are: page 1 held at least 18 / 4 = 4 of them, so the cursor moves
-- to the 4th row only, and later batches ask for 4 rows (one page).  The
-- page that is all one second is completed with every page of that second
-- (updated_at >= it and < the next), and the next batch starts after it.
SELECT mock.config('{"page_size": 5}');
SELECT sync_touch('{"every": 150, "offset": 3}', :'base'::timestamptz + interval '3 hours');
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s4']), :'base'::timestamptz + interval '2 hours');
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT method, path, query, pages, status FROM sync_requests;
SELECT status, run_mode, batches, rows_fetched, rows_inserted, rows_updated, requests FROM sync_status;
SELECT updated_at - :'base' AS updated_after_base, count(*) FROM mirror WHERE updated_at > :'base' GROUP BY 1 ORDER BY 1;

-- A subscriber changes while an incremental run pages: pages of 5, twelve
-- subscribers changed one second apart (r1 ... r12), and once the first
-- batch (r1 ... r5) is stored, r2 changes again.  It moves to the end of
-- the updated_at order and r6 moves onto page 1: page 2 of the same query
-- (page-number pagination) would start at r7 and miss r6.  Each batch here
-- is a new query from the last updated_at stored: none is missed.
ALTER SERVER ps OPTIONS (ADD page_size_estimate '5');
UPDATE postscript_fdw_sync_state SET change_cursor = :'base'::timestamptz + interval '4 hours' WHERE target = 'public.mirror';
SELECT array_agg(id ORDER BY created_at) AS r FROM (SELECT id, created_at FROM ps.subscribers ORDER BY created_at LIMIT 12 OFFSET 100) s \gset
SELECT count(sync_touch(jsonb_build_object('ids', ARRAY[id]), :'base'::timestamptz + interval '5 hours' + n * interval '1 second'))
  FROM unnest(:'r'::text[]) WITH ORDINALITY u(id, n);
INSERT INTO sync_pending VALUES ('touch', ARRAY[(:'r'::text[])[2]], :'base'::timestamptz + interval '6 hours');
CREATE TRIGGER upstream_changes AFTER INSERT ON mirror FOR EACH STATEMENT EXECUTE FUNCTION sync_pending_changes();
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT method, path, query, pages, status FROM sync_requests;
SELECT status, run_mode, batches, rows_fetched, rows_updated, requests FROM sync_status;
SELECT n, updated_at - :'base' AS updated_after_base
  FROM unnest(:'r'::text[]) WITH ORDINALITY u(id, n) LEFT JOIN mirror m USING (id) ORDER BY n;
SELECT * FROM sync_diff('mirror');
DROP TRIGGER upstream_changes ON mirror;
ALTER SERVER ps OPTIONS (DROP page_size_estimate);
SELECT mock.config('{"page_size": 100}');

-- a row dated in the future (by the clock of this server) does not move the
-- cursor past the time the run began: each run reads it again rather than
-- let the cursor jump over changes made now
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s1']), now() + interval '1 day');
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT rows_fetched, rows_updated, change_cursor = run_started AS cursor_at_run_start FROM postscript_fdw_sync_status;
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT rows_fetched, rows_updated, change_cursor = run_started AS cursor_at_run_start FROM postscript_fdw_sync_status;

-- 4. A first pass stopped, then resumed: mirror2's by a cancel
-- (statement_timeout while its 8th request stalls), mirror3's by the API
-- failing for longer than the retries (503 from the 8th request on, one
-- retry allowed).  The seven batches before stay committed with their
-- cursor, the lock is released, and the next CALL goes on from the cursor.
SELECT mock.reset();
SELECT mock.fault('{"kind": "stall", "delay_ms": 60000, "path": "/api/v2/subscribers", "after": 7}');
SET statement_timeout = '5s';
CALL postscript_fdw_sync('ps.subscribers', 'mirror2');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
ALTER SERVER ps OPTIONS (ADD max_retries '1');
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/subscribers", "after": 7, "count": -1}');
CALL postscript_fdw_sync('ps.subscribers', 'mirror3');
\echo :LAST_ERROR_SQLSTATE
SELECT method, path, query, pages, status FROM sync_requests ORDER BY first_seq DESC LIMIT 2;
ALTER SERVER ps OPTIONS (DROP max_retries);
SELECT s.*, x.* FROM sync_status s, sync_stopped(substring(s.target from 8)) x
 WHERE target IN ('public.mirror2', 'public.mirror3') ORDER BY target;
-- resumed at the cursor: only the page in flight is fetched again (14 of
-- the 21 pages each)
SELECT mock.reset();
CALL postscript_fdw_sync('ps.subscribers', 'mirror2');
CALL postscript_fdw_sync('ps.subscribers', 'mirror3');
SELECT * FROM sync_request_count;
SELECT s.*, d.* FROM sync_status s, sync_diff(s.target) d
 WHERE target IN ('public.mirror2', 'public.mirror3') ORDER BY target;

-- 6. A full pass finds rows that left Postscript: two subscribers disappear
-- upstream.  A batch is one page, one answer of the API: a mirror row in
-- the created_at range it covers that it lacks has left Postscript, and is
-- deleted.  The pass also updates every row that differs: the 30 changed in
-- 2. and 3., which the server's reset in 4. made seeded rows again (s4
-- among them, changed again upstream, older than the cursor by more than
-- the overlap: only a full pass sees it).
SELECT mock.reset();
SELECT id AS gone1 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 700 \gset
SELECT id AS gone2 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 1999 \gset
SELECT sync_remove(ARRAY[:'gone1', :'gone2']);
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s4']), :'base'::timestamptz - interval '10 minutes');
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror', mode => 'full');
SELECT method, path, query ~ 'created_at__lte=' AS recheck, count(*) AS requests
  FROM mock.requests() GROUP BY 1, 2, 3 ORDER BY 3;
SELECT * FROM sync_status WHERE target = 'public.mirror';
SELECT count(*) FROM mirror WHERE id IN (:'gone1', :'gone2');
SELECT * FROM sync_diff('mirror');

-- removed => 'mark': the rows stay, with removed_at set (the column is added)
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror2', mode => 'full', removed => 'mark');
SELECT rows_removed, rows_updated FROM sync_status WHERE target = 'public.mirror2';
SELECT id = :'gone1' AS is_gone1, removed_at IS NOT NULL AS marked FROM mirror2 WHERE removed_at IS NOT NULL ORDER BY 1;
-- a marked row is not marked or counted again by the next full pass
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror2', mode => 'full', removed => 'mark');
SELECT rows_removed, rows_updated, requests FROM sync_status WHERE target = 'public.mirror2';
-- a marked row that comes back is unmarked by any run that reads it, with
-- removed => 'mark' or without
UPDATE mirror2 SET removed_at = now() WHERE id = :'s4';
SELECT sync_touch(jsonb_build_object('ids', ARRAY[:'s4']), now());
CALL postscript_fdw_sync('ps.subscribers', 'mirror2');
SELECT run_mode, rows_updated FROM sync_status WHERE target = 'public.mirror2';
SELECT removed_at IS NULL AS unmarked FROM mirror2 WHERE id = :'s4';

-- A full pass stopped and resumed goes on removing as it began: mirror3's,
-- begun with removed => 'mark', stops at its 8th request (503 twice, one
-- retry allowed) before it reaches gone1 and gone2.  The next CALL, which
-- does not say removed => 'mark', resumes it and marks them, as the pass
-- began, rather than delete them.
ALTER SERVER ps OPTIONS (ADD max_retries '1');
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/subscribers", "after": 7, "count": 2}');
CALL postscript_fdw_sync('ps.subscribers', 'mirror3', mode => 'full', removed => 'mark');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER ps OPTIONS (DROP max_retries);
SELECT status, batches, rows_removed, full_pass_pending, full_pass_removed
  FROM postscript_fdw_sync_status WHERE target = 'public.mirror3';
CALL postscript_fdw_sync('ps.subscribers', 'mirror3');
SELECT status, run_mode, rows_removed, full_pass_pending, full_pass_removed
  FROM postscript_fdw_sync_status WHERE target = 'public.mirror3';
SELECT count(*) AS rows, count(*) FILTER (WHERE removed_at IS NOT NULL) AS marked,
       count(*) FILTER (WHERE id IN (:'gone1', :'gone2') AND removed_at IS NOT NULL) AS gone_marked
  FROM mirror3;

-- a mirror emptied, dropped or pointed at another source since its state
-- was written is read again by a full pass, not by its change cursor
TRUNCATE mirror2;
CALL postscript_fdw_sync('ps.subscribers', 'mirror2');
SELECT run_mode, rows_inserted FROM sync_status WHERE target = 'public.mirror2';
DROP TABLE mirror2;
CALL postscript_fdw_sync('ps.subscribers', 'mirror2');
SELECT run_mode, rows_inserted FROM sync_status WHERE target = 'public.mirror2';

-- 7. One sync per mirror.  A CALL is refused while another session holds
-- the mirror's lock (scripts/checks/sync_sessions.sh).  A lock this
-- session holds was left by a CALL that stopped at a COMMIT (where no
-- handler can unlock): it is no running sync, and the next CALL takes it
-- over and releases it at the end.
SELECT pg_advisory_lock(postscript_fdw_sync_lock_key('public.mirror'));
SELECT status, pid = pg_backend_pid() AS this_session FROM postscript_fdw_sync_status WHERE target = 'public.mirror';
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
SELECT status, pid FROM postscript_fdw_sync_status WHERE target = 'public.mirror';

-- The mirror's deferred constraints are checked before each batch's
-- COMMIT, where an error is caught: the run is recorded as failed and the
-- lock released, and the next CALL goes on.
CREATE TABLE mirror5 (LIKE ps.subscribers, PRIMARY KEY (id));
CREATE FUNCTION mirror5_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'deferred check failed' USING ERRCODE = 'check_violation';
END $$;
CREATE CONSTRAINT TRIGGER mirror5_deferred AFTER INSERT ON mirror5
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION mirror5_check();
CALL postscript_fdw_sync('ps.subscribers', 'mirror5');
\echo :LAST_ERROR_SQLSTATE
SELECT status, pid, batches, last_error_sqlstate, last_error FROM postscript_fdw_sync_status WHERE target = 'public.mirror5';
DROP TRIGGER mirror5_deferred ON mirror5;
CALL postscript_fdw_sync('ps.subscribers', 'mirror5');
SELECT status, pid, rows_inserted FROM postscript_fdw_sync_status WHERE target = 'public.mirror5';

-- 8. A table without a change cursor (keywords: one response) is read whole,
-- one request a run; rows it no longer lists are removed
CALL postscript_fdw_sync('ps.keywords', 'kw_mirror');
INSERT INTO kw_mirror (id, keyword) VALUES ('kw_local_only', 'NOTUPSTREAM');
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.keywords', 'kw_mirror');
SELECT method, path, query, pages, status FROM sync_requests;
SELECT target, strategy, status, run_mode, batches, rows_fetched, rows_inserted, rows_updated, rows_removed, requests
  FROM sync_status WHERE target = 'public.kw_mirror';
SELECT (SELECT count(*) FROM (SELECT * FROM ps.keywords EXCEPT ALL SELECT * FROM kw_mirror) a) AS missing,
       (SELECT count(*) FROM (SELECT * FROM kw_mirror EXCEPT ALL SELECT * FROM ps.keywords) b) AS extra;

-- A mirror without created_at cannot keep a created_at cursor: it is read
-- whole, with a notice.  A whole read of several pages removes a row only
-- when a second read lacks it too (a row removed upstream while it runs
-- shifts the pages after it): the second run reads the 20 pages twice,
-- and removes the row only this mirror has.
CREATE TABLE slim (id text PRIMARY KEY, email text, updated_at timestamptz);
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'slim');
SELECT strategy, status, run_mode, rows_fetched, rows_inserted, rows_removed, requests FROM sync_status WHERE target = 'public.slim';
INSERT INTO slim VALUES ('s_local_only', 'nobody@example.com', now());
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'slim');
SELECT strategy, status, run_mode, rows_fetched, rows_inserted, rows_removed, requests FROM sync_status WHERE target = 'public.slim';
SELECT count(*) AS rows, count(*) FILTER (WHERE id = 's_local_only') AS local_only FROM slim;

-- 9. Mistakes are refused before any request.  Each ends the mirror's last
-- run in the status view, as a failed run that did nothing (no mode, no
-- batch, no request), so that a monitor does not go on seeing the run
-- before as succeeded; its cursors stay.  A mirror that has no row yet
-- gets none.
SELECT sync_clear_log();
CALL postscript_fdw_sync('mirror', 'mirror_of_mirror');
\echo :LAST_ERROR_SQLSTATE
SELECT status, last_error_sqlstate FROM sync_status WHERE target = 'public.mirror';
SELECT change_cursor AS m_cursor, last_full_at AS m_full, pg_catalog.clock_timestamp() AS m_before
  FROM postscript_fdw_sync_status WHERE target = 'public.mirror' \gset
CALL postscript_fdw_sync('ps.subscribers', 'mirror', mode => 'sometimes');
\echo :LAST_ERROR_SQLSTATE
SELECT status, run_mode, run_started > :'m_before' AS started_by_this_call, run_ended >= run_started AS ended,
       batches, rows_fetched, requests, last_error_sqlstate, last_error, last_error_at >= run_started AS error_at,
       change_cursor = :'m_cursor' AS same_change_cursor, last_full_at = :'m_full' AS same_last_full,
       full_pass_pending
  FROM postscript_fdw_sync_status WHERE target = 'public.mirror';
CALL postscript_fdw_sync('ps.subscribers', 'mirror', removed => 'archive');
\echo :LAST_ERROR_SQLSTATE
SELECT status, last_error_sqlstate, last_error FROM sync_status WHERE target = 'public.mirror';
CALL postscript_fdw_sync('ps.subscribers', 'mirror', overlap => '-1 minute');
\echo :LAST_ERROR_SQLSTATE
SELECT status, last_error_sqlstate, last_error FROM sync_status WHERE target = 'public.mirror';
CREATE TABLE no_key (id text, email text);
CALL postscript_fdw_sync('ps.subscribers', 'no_key');
\echo :LAST_ERROR_SQLSTATE
-- ON CONFLICT cannot use a deferrable unique constraint
CREATE TABLE deferred_key (id text, email text, UNIQUE (id) DEFERRABLE);
CALL postscript_fdw_sync('ps.subscribers', 'deferred_key');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS unlocked_mirrors FROM postscript_fdw_sync_status WHERE pid IS NOT NULL;
BEGIN;
CALL postscript_fdw_sync('ps.subscribers', 'mirror');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- several statements in one query string are one transaction too
SELECT 1 AS one \; CALL postscript_fdw_sync('ps.subscribers', 'mirror');
\echo :LAST_ERROR_SQLSTATE
-- those two cannot be recorded: what they wrote would roll back with the
-- caller's transaction.  The status still shows the error before.
SELECT status, last_error_sqlstate, last_error FROM sync_status WHERE target = 'public.mirror';
SELECT count(*) AS rows FROM postscript_fdw_sync_state
 WHERE target IN ('public.mirror_of_mirror', 'public.no_key', 'public.deferred_key');
SELECT count(*) AS requests FROM mock.requests();
-- A mirror that loses its key: the status shows the error in place of the
-- run before (mirror5's succeeded, after the failure of 7.).  Once the key
-- is back, the next run goes on from the cursors (incremental).
ALTER TABLE mirror5 DROP CONSTRAINT mirror5_pkey;
SELECT status, run_mode, last_error_sqlstate FROM sync_status WHERE target = 'public.mirror5';
CALL postscript_fdw_sync('ps.subscribers', 'mirror5');
\echo :LAST_ERROR_SQLSTATE
SELECT status, pid, run_mode, batches, requests, last_error_sqlstate, last_error, full_pass_pending
  FROM postscript_fdw_sync_status WHERE target = 'public.mirror5';
ALTER TABLE mirror5 ADD PRIMARY KEY (id);
CALL postscript_fdw_sync('ps.subscribers', 'mirror5');
SELECT status, run_mode, rows_inserted, last_error_sqlstate FROM sync_status WHERE target = 'public.mirror5';

-- 10. Another role keeps a mirror once it may write the state table, which
-- holds every mirror's cursors (whoever may change them may make any
-- mirror skip changes): until then it is refused before anything is done.
CREATE ROLE sync_job;
CREATE SCHEMA sync_job_schema AUTHORIZATION sync_job;
GRANT USAGE ON SCHEMA ps TO sync_job;
GRANT SELECT ON ps.subscribers TO sync_job;
CREATE USER MAPPING FOR sync_job SERVER ps OPTIONS (api_key 'sk_test_shop_key');
-- in the same session as the superuser's runs above, as a pool would
-- reuse it: their batch table went with each run
SELECT to_regclass('pg_temp.postscript_fdw_sync_batch') AS batch_table;
SELECT sync_clear_log();
SET ROLE sync_job;
CALL postscript_fdw_sync('ps.subscribers', 'sync_job_schema.subscribers');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT to_regclass('sync_job_schema.subscribers') AS mirror, count(*) AS requests FROM mock.requests();
-- one of the three privileges is not enough
GRANT SELECT ON postscript_fdw_sync_state TO sync_job;
SET ROLE sync_job;
CALL postscript_fdw_sync('ps.subscribers', 'sync_job_schema.subscribers');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT to_regclass('sync_job_schema.subscribers') AS mirror, count(*) AS requests FROM mock.requests();
GRANT SELECT, INSERT, UPDATE ON postscript_fdw_sync_state TO sync_job;
GRANT SELECT ON postscript_fdw_sync_status TO sync_job;
SET ROLE sync_job;
CALL postscript_fdw_sync('ps.subscribers', 'sync_job_schema.subscribers');
SELECT status, rows_inserted FROM postscript_fdw_sync_status WHERE target = 'sync_job_schema.subscribers';
RESET ROLE;
-- Without TEMPORARY on the database a run cannot keep its batch: it fails
-- as it starts, and that is recorded.  In a new session (\c), which has no
-- temporary schema yet, no NOTICE says that schema "pg_temp" does not exist
-- as the failed run cleans up.
SELECT current_database() AS db \gset
REVOKE TEMPORARY ON DATABASE :"db" FROM PUBLIC;
\c
SET sync.base = :'base';
SET IntervalStyle = postgres;
SET ROLE sync_job;
CALL postscript_fdw_sync('ps.subscribers', 'sync_job_schema.subscribers');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status, run_mode, batches, last_error_sqlstate, last_error FROM sync_status WHERE target = 'sync_job_schema.subscribers';
GRANT TEMPORARY ON DATABASE :"db" TO PUBLIC;
-- nor without SELECT on its source, which the run's EXPLAIN checks before
-- the run starts: recorded as well
REVOKE SELECT ON ps.subscribers FROM sync_job;
SET ROLE sync_job;
CALL postscript_fdw_sync('ps.subscribers', 'sync_job_schema.subscribers');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT status, run_mode, batches, last_error_sqlstate, last_error FROM sync_status WHERE target = 'sync_job_schema.subscribers';
DROP SCHEMA sync_job_schema CASCADE;
DROP USER MAPPING FOR sync_job SERVER ps;
REVOKE ALL ON ps.subscribers, postscript_fdw_sync_state, postscript_fdw_sync_status FROM sync_job;
REVOKE ALL ON SCHEMA ps FROM sync_job;
DROP ROLE sync_job;

-- 11. A first pass while a subscriber leaves upstream between two of its
-- requests: once the first page (rows 1 to 100 by created_at) is stored,
-- row 50 is removed.  The rows after it move one place up, row 101 onto
-- page 1: page 2 of the same query (page-number pagination) would start at
-- row 102.  The next batch is a new query from row 100's created_at: row 101
-- is not missed.  Row 50 stays in the mirror until a full pass, which then
-- removes it.
SELECT mock.reset();
SELECT id AS r50 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 49 \gset
SELECT id AS r101 FROM ps.subscribers ORDER BY created_at LIMIT 1 OFFSET 100 \gset
CREATE TABLE mirror4 (LIKE ps.subscribers, PRIMARY KEY (id));
CREATE TRIGGER upstream_changes AFTER INSERT ON mirror4 FOR EACH STATEMENT EXECUTE FUNCTION sync_pending_changes();
INSERT INTO sync_pending VALUES ('remove', ARRAY[:'r50']);
SELECT sync_clear_log();
CALL postscript_fdw_sync('ps.subscribers', 'mirror4');
SELECT method, path, query, pages, status FROM sync_requests LIMIT 2;
SELECT * FROM sync_request_count;
SELECT count(*) FILTER (WHERE id = :'r101') AS has_r101, count(*) FILTER (WHERE id = :'r50') AS has_r50 FROM mirror4;
SELECT * FROM sync_diff('mirror4');
CALL postscript_fdw_sync('ps.subscribers', 'mirror4', mode => 'full');
SELECT rows_inserted, rows_updated, rows_removed FROM sync_status WHERE target = 'public.mirror4';
SELECT * FROM sync_diff('mirror4');

DROP TABLE mirror, mirror2, mirror3, mirror4, mirror5, slim, kw_mirror, no_key, deferred_key, sync_pending;
DROP FUNCTION mirror5_check();
DELETE FROM postscript_fdw_sync_state;
DROP VIEW sync_requests, sync_request_count, sync_status;
DROP FUNCTION sync_diff(regclass), sync_clear_log(), sync_touch(jsonb, timestamptz), sync_show(text),
              sync_remove(text[]), sync_pending_changes(), sync_stopped(text);
RESET sync.base;
RESET IntervalStyle;
