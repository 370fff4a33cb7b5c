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
-- options
-- ---------------------------------------------------------------------

-- every option as the validator knows it: where it may be given (contexts),
-- how its value is checked (kind, min, max), its default (default_value, as
-- a user would write it; else default_doc says what holds), the option it
-- needs (requires), who may set it (superuser) and what it does (doc).
-- The README's option tables are made from it.
CREATE FUNCTION postscript_fdw_options(
    OUT name text, OUT contexts text[], OUT kind text,
    OUT min double precision, OUT max double precision,
    OUT default_value text, OUT default_doc text, OUT requires text,
    OUT superuser text, OUT doc text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'postscript_fdw_options'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

-- ---------------------------------------------------------------------
-- mirrors: local copies of foreign tables, refreshed incrementally
-- ---------------------------------------------------------------------

-- one row per mirror: where its passes stand and what its last run did
CREATE TABLE postscript_fdw_sync_state (
    target text PRIMARY KEY,            -- the mirror table, schema-qualified
    source text NOT NULL,               -- the foreign table it copies
    strategy text NOT NULL,             -- incremental, full or whole (see the procedure)
    change_cursor timestamptz,          -- incremental runs fetch updated_at >= this - overlap
    last_full_at timestamptz,           -- when the last full pass ended
    pass_started_at timestamptz,        -- a full pass under way: when it began
    pass_cursor timestamptz,            -- ... and the created_at second it goes on from
    pass_removed text,                  -- ... and what it does with rows that left: delete or mark
    run_mode text,                      -- full, incremental or whole
    run_status text,                    -- running, succeeded, failed, cancelled
    run_started timestamptz,
    run_ended timestamptz,
    batches bigint NOT NULL DEFAULT 0,  -- committed batches of the last run
    rows_fetched bigint NOT NULL DEFAULT 0,
    rows_inserted bigint NOT NULL DEFAULT 0,
    rows_updated bigint NOT NULL DEFAULT 0,
    rows_removed bigint NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    status_429 bigint NOT NULL DEFAULT 0,
    last_error text,                    -- message and detail of the error that stopped the last run
    last_error_sqlstate text,
    last_error_at timestamptz,
    CHECK (strategy IN ('incremental', 'full', 'whole')),
    CHECK (run_status IN ('running', 'succeeded', 'failed', 'cancelled')),
    CHECK (pass_removed IN ('delete', 'mark'))
);
SELECT pg_catalog.pg_extension_config_dump('postscript_fdw_sync_state', '');

COMMENT ON TABLE postscript_fdw_sync_state IS
  'postscript_fdw_sync(): per mirror, its cursors and its last run (read postscript_fdw_sync_status)';

-- the session advisory lock that lets one sync per mirror run at a time
CREATE FUNCTION postscript_fdw_sync_lock_key(target text)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.hashtextextended('postscript_fdw_sync ' || target, 0);

COMMENT ON FUNCTION postscript_fdw_sync_lock_key(text) IS
  'the advisory lock key postscript_fdw_sync() holds while it updates this mirror';

-- the process that holds that lock, or NULL
CREATE FUNCTION postscript_fdw_sync_holder(lock_key bigint)
RETURNS integer
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN (SELECT l.pid FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
           AND l.classid::bigint = (lock_key >> 32) & 4294967295
           AND l.objid::bigint = lock_key & 4294967295
         LIMIT 1);

COMMENT ON FUNCTION postscript_fdw_sync_holder(bigint) IS
  'the process holding a postscript_fdw_sync() lock (postscript_fdw_sync_lock_key), or NULL';

CREATE VIEW postscript_fdw_sync_status AS
SELECT s.target, s.source, s.strategy,
       CASE WHEN l.pid IS NOT NULL THEN 'running'
            WHEN s.run_status = 'running' THEN 'interrupted'
            ELSE s.run_status END AS status,
       l.pid,
       s.run_mode, s.run_started, s.run_ended,
       s.batches, s.rows_fetched, s.rows_inserted, s.rows_updated, s.rows_removed,
       s.requests, s.status_429,
       s.change_cursor, s.last_full_at,
       s.pass_started_at IS NOT NULL AS full_pass_pending,
       s.pass_cursor AS full_pass_cursor,
       s.pass_removed AS full_pass_removed,
       s.last_error, s.last_error_sqlstate, s.last_error_at
  FROM postscript_fdw_sync_state s,
       LATERAL (SELECT postscript_fdw_sync_holder(postscript_fdw_sync_lock_key(s.target)) AS pid) l;

COMMENT ON VIEW postscript_fdw_sync_status IS
  'postscript_fdw_sync(): per mirror, its state, its last or current run, and its cursors';

/*
 * CALL postscript_fdw_sync(source, target [, mode, removed, overlap])
 *
 * Keeps the local table target an exact copy of the foreign table source.
 * A full pass reads the source in created_at order, one page a batch: each
 * batch is a query of its own (created_at >= cursor ORDER BY created_at
 * LIMIT <rows of a page>, pushed down), answered by page 1 of the API, so
 * that rows moving between pages while a pass runs cannot hide a row (the
 * API pages by number).  Each batch is committed with its cursor, so that a
 * cancelled or failed pass resumes where it stopped; a full pass also finds
 * rows that left the source and deletes or marks them.  Later runs fetch
 * only updated_at >= cursor - overlap, in the same keyset batches.  A
 * source the API cannot page by created_at is read whole each run.
 */
CREATE PROCEDURE postscript_fdw_sync(
    source regclass,
    target text,
    mode text DEFAULT 'auto',
    removed text DEFAULT 'delete',
    overlap interval DEFAULT '5 minutes')
LANGUAGE plpgsql
AS $proc$
DECLARE
    ext text;           -- this extension's schema, quoted (it is relocatable)
    state text;         -- its state table
    srv text;           -- the source's server
    tgt regclass;
    tgt_key text;       -- the target as schema.table, quoted: the lock's name
    parts text[];
    cols text;          -- columns copied: the source's that the target has
    upd_set text;
    same_row text;
    dedup_order text;
    strategy text;
    has_updated boolean;
    lock_key bigint;
    holder integer;     -- the process holding the mirror's lock
    st record;
    run_mode text;
    full_pass boolean;
    fresh boolean;      -- the mirror is new or empty: its first run is a
                        -- full pass whatever the state says
    marks boolean;      -- the mirror has removed_at and the source none
    old_source text;    -- the source the state was written for
    pass_removed text;  -- the removed of the full pass under way, if any
    key_col text;       -- the keyset column of this run
    cur timestamptz;    -- where the run stands in key_col: its next batch
                        -- reads key_col >= this second
    hi timestamptz;
    lo timestamptz;
    got bigint;
    page_rows integer;  -- rows of one API page: each batch asks for that many
    pages bigint;       -- pages a batch's queries fetched: more than one, and
                        -- rows moving between them may have hidden one
    done boolean := false;
    cand timestamptz;
    missing boolean;    -- mirror rows a whole read lacked
    extra bigint;
    t0 timestamptz;     -- when this run began
    started boolean;
    lo_cond text;
    hi_cond text;
    rm_where text;
    stats_sql text;
    run_sql text;
    n_ins bigint;
    n_upd bigint;
    n_rm bigint;
    req0 bigint;
    r429_0 bigint;
    req1 bigint;
    r429_1 bigint;
    ok0 bigint;
    ok1 bigint;
    plan text;
    failed boolean;
    e_state text;
    e_msg text;
    e_detail text;
    e_hint text;
    -- a timestamp in a query string: UTC and ISO 8601, whatever the
    -- session's DateStyle and TimeZone (an abbreviation such as IST or CST
    -- may read back as another zone)
    iso constant text := 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';
BEGIN
    -- it commits after every batch, so only a CALL of its own can run it:
    -- inside BEGIN ... COMMIT, or in a query string with other statements
    -- (one transaction), this fails with "invalid transaction termination"
    -- (2D000) before anything is done.  (transaction_timestamp() against
    -- statement_timestamp() cannot tell: under the extended query protocol
    -- they differ for every statement.)
    COMMIT;

    SELECT pg_catalog.quote_ident(n.nspname) INTO ext
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'postscript_fdw';
    state := ext || '.postscript_fdw_sync_state';
    stats_sql := pg_catalog.format('SELECT coalesce(sum(requests), 0), coalesce(sum(status_429), 0),
                                           coalesce(sum(status_2xx), 0)
                                      FROM %s.postscript_fdw_stats() WHERE server_name = $1', ext);
    -- a run begins: its mode and start, nothing done yet
    run_sql := pg_catalog.format(
        'UPDATE %s SET run_mode = $2, run_status = ''running'', run_started = $3,
                       run_ended = NULL, batches = 0, rows_fetched = 0, rows_inserted = 0,
                       rows_updated = 0, rows_removed = 0, requests = 0, status_429 = 0
          WHERE target = $1', state);

    -- the procedure runs with the caller's rights, and every mirror's
    -- cursors are in one table: a role that may change them may make any
    -- mirror skip changes, so only those granted it may
    IF NOT (pg_catalog.has_table_privilege(state, 'SELECT')
            AND pg_catalog.has_table_privilege(state, 'INSERT')
            AND pg_catalog.has_table_privilege(state, 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied for postscript_fdw_sync state table %', state
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'postscript_fdw_sync records each mirror''s cursors and runs in it.',
                  HINT = pg_catalog.format('A superuser or the extension''s owner can GRANT SELECT, INSERT, UPDATE ON %s TO %I;',
                                           state, CURRENT_USER);
    END IF;

    -- the target, as schema.table: the name its lock is taken on, before it
    -- is created, so that two first runs cannot both create it
    tgt := pg_catalog.to_regclass(target);
    IF tgt IS NULL THEN
        parts := pg_catalog.parse_ident(target);
        IF pg_catalog.array_length(parts, 1) = 1 THEN
            -- where CREATE TABLE would put it
            parts := ARRAY[pg_catalog.current_schema()::text, parts[1]];
        END IF;
        IF pg_catalog.array_length(parts, 1) <> 2 OR parts[1] IS NULL THEN
            RAISE EXCEPTION 'invalid mirror table name "%"', target
                USING ERRCODE = 'invalid_name', HINT = 'Name it table or schema.table.';
        END IF;
        tgt_key := pg_catalog.format('%I.%I', parts[1], parts[2]);
    ELSE
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) INTO tgt_key
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = tgt;
    END IF;

    -- one sync per mirror: refuse while another session holds its lock
    EXECUTE pg_catalog.format('SELECT %s.postscript_fdw_sync_lock_key($1)', ext) INTO lock_key USING tgt_key;
    EXECUTE pg_catalog.format('SELECT %s.postscript_fdw_sync_holder($1)', ext) INTO holder USING lock_key;
    -- held by this session: an earlier CALL stopped at one of its COMMITs,
    -- where no exception handler can catch an error and unlock; it is not
    -- running (a CALL does not run inside another)
    WHILE holder = pg_catalog.pg_backend_pid() LOOP
        PERFORM pg_catalog.pg_advisory_unlock(lock_key);
        EXECUTE pg_catalog.format('SELECT %s.postscript_fdw_sync_holder($1)', ext) INTO holder USING lock_key;
    END LOOP;
    IF holder IS NOT NULL OR NOT pg_catalog.pg_try_advisory_lock(lock_key) THEN
        RAISE EXCEPTION 'another postscript_fdw_sync of "%" is running', tgt_key
            USING ERRCODE = 'lock_not_available',
                  DETAIL = 'Another session holds its advisory lock; postscript_fdw_sync_status shows its process id.',
                  HINT = 'Wait for it to end (see postscript_fdw_sync_status); a mirror is updated by one sync at a time.';
    END IF;

    -- from here on, every error is recorded in the state, unlocks, and is
    -- raised again: those found before the run starts too (the arguments,
    -- the source, the mirror's key, the caller's privileges on them), so
    -- that the status view does not go on showing the run before as the
    -- last one.  Not before: the state cannot be written without the
    -- privileges checked above, nor a mirror's row without its name and its
    -- lock (another session's run owns the row while it holds the lock).
    -- The first step checks the call and starts the run, each next one is
    -- a batch.
    failed := false;
    started := false;
    WHILE NOT failed AND NOT done LOOP
        BEGIN
            IF NOT started THEN
                IF mode IS NULL OR mode NOT IN ('auto', 'full') THEN
                    RAISE EXCEPTION 'invalid mode "%" for postscript_fdw_sync', mode
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = 'Use ''auto'' (resume or start a full pass when one is due, otherwise fetch what changed) or ''full'' (a full pass that also finds removed rows).';
                END IF;
                IF removed IS NULL OR removed NOT IN ('delete', 'mark') THEN
                    RAISE EXCEPTION 'invalid value "%" for removed', removed
                        USING ERRCODE = 'invalid_parameter_value',
                              HINT = 'Use ''delete'' (delete rows that left Postscript) or ''mark'' (set their removed_at).';
                END IF;
                IF overlap IS NULL OR overlap < interval '0' THEN
                    RAISE EXCEPTION 'overlap must not be negative'
                        USING ERRCODE = 'invalid_parameter_value',
                              DETAIL = 'An incremental run starts this long before its cursor.',
                              HINT = 'Give an interval of zero or more, such as ''5 minutes'' (the default).';
                END IF;
                SELECT s.srvname INTO srv
                  FROM pg_catalog.pg_foreign_table ft
                  JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
                  JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                 WHERE ft.ftrelid = source AND w.fdwname = 'postscript_fdw';
                IF srv IS NULL THEN
                    RAISE EXCEPTION '"%" is not a postscript_fdw foreign table', source
                        USING ERRCODE = 'wrong_object_type';
                END IF;
                -- the rows of a page, until a batch shows fewer: the server's
                -- page_size_estimate, or the FDW's default for it (src/options.c)
                SELECT coalesce(pg_catalog.max(pg_catalog.split_part(o, '=', 2)::integer), 100) INTO page_rows
                  FROM pg_catalog.pg_foreign_server s, pg_catalog.unnest(s.srvoptions) o
                 WHERE s.srvname = srv AND o LIKE 'page\_size\_estimate=%';
                IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                WHERE attrelid = source AND attname = 'id' AND attnum > 0 AND NOT attisdropped) THEN
                    RAISE EXCEPTION 'foreign table "%" has no column "id"', source
                        USING ERRCODE = 'undefined_column',
                              DETAIL = 'A mirror matches rows by id.';
                END IF;
                -- created like the source, with a primary key on id, if missing
                tgt := pg_catalog.to_regclass(tgt_key);
                IF tgt IS NULL THEN
                    EXECUTE pg_catalog.format('CREATE TABLE %s (LIKE %s)', tgt_key, source);
                    EXECUTE pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (id)', tgt_key);
                    tgt := tgt_key::regclass;
                    -- a full pass looks for removed rows batch by batch, by created_at range
                    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                WHERE attrelid = tgt AND attname = 'created_at' AND NOT attisdropped) THEN
                        EXECUTE pg_catalog.format('CREATE INDEX ON %s (created_at)', tgt);
                    END IF;
                END IF;
                -- a mirror dropped, truncated or pointed at another source
                -- since the state was written starts over
                EXECUTE pg_catalog.format(
                    'SELECT source, CASE WHEN pass_started_at IS NOT NULL THEN pass_removed END FROM %s WHERE target = $1', state)
                    INTO old_source, pass_removed USING tgt_key;
                EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT FROM %s)', tgt) INTO fresh;
                fresh := fresh OR pg_catalog.to_regclass(old_source) IS DISTINCT FROM source;
                -- a full pass under way goes on removing as it began: the
                -- rows it found gone so far were deleted or marked so, and
                -- a call with another removed (a frequent run that does not
                -- say removed => 'mark') must not treat the rest otherwise
                IF NOT fresh AND pass_removed IS NOT NULL THEN
                    removed := pass_removed;
                END IF;
                IF removed = 'mark' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                                     WHERE attrelid = tgt AND attname = 'removed_at' AND NOT attisdropped) THEN
                    EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN removed_at timestamptz', tgt);
                END IF;
                IF NOT EXISTS (
                    SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                           ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                     WHERE i.indrelid = tgt AND i.indisunique AND i.indimmediate AND i.indnkeyatts = 1 AND a.attname = 'id'
                       AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
                    RAISE EXCEPTION 'mirror table "%" has no unique index on "id"', tgt_key
                        USING ERRCODE = 'invalid_table_definition',
                              DETAIL = 'Rows are stored with INSERT ... ON CONFLICT (id), which needs a unique index on id alone that is not deferrable.',
                              HINT = pg_catalog.format('ALTER TABLE %s ADD PRIMARY KEY (id);', tgt);
                END IF;

                SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),
                       pg_catalog.string_agg(pg_catalog.format('%1$I = excluded.%1$I', a.attname), ', ' ORDER BY a.attnum),
                       pg_catalog.format('ROW(%s)::record OPERATOR(pg_catalog.*<>) ROW(%s)::record',
                              pg_catalog.string_agg('t.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),
                              pg_catalog.string_agg('excluded.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)),
                       pg_catalog.bool_or(a.attname = 'updated_at' AND a.atttypid = 'timestamptz'::regtype)
                  INTO cols, upd_set, same_row, has_updated
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
                   AND NOT (removed = 'mark' AND a.attname = 'removed_at')
                   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute b
                                WHERE b.attrelid = tgt AND b.attname = a.attname AND b.attnum > 0
                                  AND NOT b.attisdropped AND b.attgenerated = '');
                -- a row that comes back is no longer removed, whatever this run's
                -- removed (an earlier run may have marked it)
                marks := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                  WHERE attrelid = tgt AND attname = 'removed_at' AND attnum > 0 AND NOT attisdropped)
                         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                          WHERE attrelid = source AND attname = 'removed_at' AND attnum > 0 AND NOT attisdropped);
                IF removed = 'mark' OR marks THEN
                    upd_set := upd_set || ', removed_at = NULL';
                    same_row := same_row || ' OR t.removed_at IS NOT NULL';
                END IF;
                dedup_order := CASE WHEN has_updated THEN 'id, updated_at DESC NULLS LAST' ELSE 'id' END;

                -- what the API can page: created_at keyset for full passes, updated_at
                -- keyset for changes; EXPLAIN shows what the FDW sends (no request)
                strategy := 'whole';
                IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                            WHERE attrelid = source AND attname = 'created_at' AND attnum > 0 AND NOT attisdropped) THEN
                    EXECUTE pg_catalog.format('EXPLAIN (FORMAT JSON) SELECT id FROM %s WHERE created_at >= %L::timestamptz ORDER BY created_at LIMIT 1',
                                              source, '2000-01-01Z') INTO plan;
                    IF pg_catalog.strpos(plan, 'created_at__gte=') = 0 OR pg_catalog.strpos(plan, 'sort=created_at__asc') = 0 THEN
                        NULL;               -- pushdown is off: read whole, as documented
                    ELSIF cols !~ '(^|, )created_at(,|$)' THEN
                        RAISE NOTICE 'mirror "%" has no column created_at: it is read whole on every run', tgt_key
                            USING DETAIL = 'Its source can be read in batches by created_at, but a batch''s cursor is kept in the mirror''s created_at; read whole, every run fetches every page.',
                                  HINT = 'Add created_at (and updated_at, for runs that fetch only changes) to the mirror.';
                    ELSE
                        strategy := 'full';
                        IF has_updated THEN
                            EXECUTE pg_catalog.format('EXPLAIN (FORMAT JSON) SELECT id FROM %s WHERE updated_at >= %L::timestamptz ORDER BY updated_at LIMIT 1',
                                                      source, '2000-01-01Z') INTO plan;
                            IF pg_catalog.strpos(plan, 'updated_at__gte=') > 0 AND pg_catalog.strpos(plan, 'sort=updated_at__asc') > 0 THEN
                                strategy := 'incremental';
                            END IF;
                        END IF;
                    END IF;
                END IF;

                EXECUTE pg_catalog.format(
                    'INSERT INTO %s AS s (target, source, strategy) VALUES ($1, $2, $3)
                     ON CONFLICT (target) DO UPDATE SET source = $2, strategy = $3', state)
                    USING tgt_key, source::text, strategy;
                EXECUTE pg_catalog.format('SELECT * FROM %s WHERE target = $1', state) INTO st USING tgt_key;
                t0 := pg_catalog.clock_timestamp();
                full_pass := strategy <> 'whole'
                             AND (mode = 'full' OR st.pass_started_at IS NOT NULL OR fresh
                                  OR st.last_full_at IS NULL OR strategy = 'full');
                run_mode := CASE WHEN strategy = 'whole' THEN 'whole' WHEN full_pass THEN 'full' ELSE 'incremental' END;
                IF full_pass THEN
                    key_col := 'created_at';
                    IF st.pass_started_at IS NULL OR fresh THEN
                        EXECUTE pg_catalog.format(
                            'UPDATE %s SET pass_started_at = $2, pass_cursor = NULL, pass_removed = $3 WHERE target = $1', state)
                            USING tgt_key, t0, removed;
                        cur := NULL;
                    ELSE
                        cur := st.pass_cursor;
                    END IF;
                ELSIF run_mode = 'incremental' THEN
                    key_col := 'updated_at';
                    cur := st.change_cursor - overlap;
                END IF;
                EXECUTE run_sql USING tgt_key, run_mode, t0;
                -- a batch as fetched, before it is applied.  Emptied by a
                -- TRUNCATE per batch, not ON COMMIT DELETE ROWS: a COMMIT in a
                -- procedure runs the on-commit truncation in the procedure's
                -- memory context, which keeps a few hundred bytes of it per
                -- batch until the CALL ends.
                IF pg_catalog.to_regclass('pg_temp.postscript_fdw_sync_batch') IS NOT NULL THEN
                    DROP TABLE pg_temp.postscript_fdw_sync_batch;
                END IF;
                EXECUTE pg_catalog.format('CREATE TEMP TABLE postscript_fdw_sync_batch AS
                                           SELECT %s FROM %s WITH NO DATA', cols, tgt);
                started := true;
            ELSE
                TRUNCATE pg_temp.postscript_fdw_sync_batch;
                req0 := NULL;
                EXECUTE stats_sql INTO req0, r429_0, ok0 USING srv;
                lo_cond := 'true';
                hi_cond := 'true';
                IF run_mode = 'whole' THEN
                    -- no keyset: one statement reads it all (keywords: one request)
                    EXECUTE pg_catalog.format('INSERT INTO pg_temp.postscript_fdw_sync_batch (%1$s) SELECT %1$s FROM %2$s',
                                              cols, source);
                    GET DIAGNOSTICS got = ROW_COUNT;
                    EXECUTE stats_sql INTO req1, r429_1, ok1 USING srv;
                    pages := ok1 - ok0;
                    done := true;
                ELSE
                    -- whole seconds, as the API compares them: what it sends
                    -- is what the query keeps, so one page answers a LIMIT
                    -- of a page
                    IF cur IS NOT NULL THEN
                        lo_cond := pg_catalog.format('%I >= %L::timestamptz', key_col,
                                                     pg_catalog.to_char(pg_catalog.date_trunc('second', cur) AT TIME ZONE 'UTC', iso));
                    END IF;
                    EXECUTE pg_catalog.format(
                        'INSERT INTO pg_temp.postscript_fdw_sync_batch (%1$s) SELECT %1$s FROM %2$s WHERE %3$s ORDER BY %4$I LIMIT %5$s',
                        cols, source, lo_cond, key_col, page_rows);
                    GET DIAGNOSTICS got = ROW_COUNT;
                    EXECUTE stats_sql INTO req1, r429_1, ok1 USING srv;
                    pages := ok1 - ok0;
                    IF pages > 1 THEN
                        -- pages are smaller than page_rows: page 1 held at
                        -- least got / pages of the rows, only those surely
                        -- came from one answer.  The others are stored too,
                        -- and read again by the next batch: rows may have
                        -- moved between the pages.
                        page_rows := GREATEST(got / pages, 1);
                    END IF;
                    -- the seconds of the first row and of the last row of page 1
                    -- (or of all, when fewer)
                    EXECUTE pg_catalog.format(
                        'SELECT date_trunc(''second'', min(%1$I)),
                                date_trunc(''second'', coalesce((SELECT %1$I FROM pg_temp.postscript_fdw_sync_batch ORDER BY %1$I OFFSET %2$s LIMIT 1), max(%1$I)))
                           FROM pg_temp.postscript_fdw_sync_batch', key_col, page_rows - 1)
                        INTO lo, hi;
                    IF pages <= 1 AND got < page_rows THEN
                        -- the last batch: one response held every row from the cursor on
                        done := true;
                        IF hi IS NOT NULL THEN
                            cur := hi;
                        END IF;
                    ELSIF lo = hi THEN
                        -- one second fills a page: take every row of it, page by
                        -- page, then go past it
                        EXECUTE pg_catalog.format(
                            'INSERT INTO pg_temp.postscript_fdw_sync_batch (%1$s) SELECT %1$s FROM %2$s WHERE %3$I >= %4$L::timestamptz AND %3$I < %5$L::timestamptz ORDER BY %3$I',
                            cols, source, key_col, pg_catalog.to_char(hi AT TIME ZONE 'UTC', iso),
                            pg_catalog.to_char((hi + interval '1 second') AT TIME ZONE 'UTC', iso));
                        GET DIAGNOSTICS extra = ROW_COUNT;
                        got := got + extra;
                        pages := pages + 1;
                        cur := hi + interval '1 second';
                        hi_cond := pg_catalog.format('%I < %L::timestamptz', key_col,
                                                     pg_catalog.to_char(cur AT TIME ZONE 'UTC', iso));
                    ELSE
                        -- rows of second hi may go on past this page: the next
                        -- batch starts at hi
                        hi_cond := pg_catalog.format('%I < %L::timestamptz', key_col,
                                                     pg_catalog.to_char(hi AT TIME ZONE 'UTC', iso));
                        cur := hi;
                    END IF;
                END IF;

                n_rm := 0;
                IF run_mode <> 'incremental' THEN
                    -- mirror rows in the range this batch covers that it lacks:
                    -- gone from Postscript, or, when the batch took several
                    -- pages, hidden from it by rows that moved between them.
                    -- Then each such created_at is asked for again first, as a
                    -- range (the API compares whole seconds: an = with a
                    -- fraction of a second is not pushed down, and would read
                    -- the whole source).  One page is one answer: what it
                    -- lacks in its range was not there.
                    rm_where := pg_catalog.format(
                        '%s AND %s AND NOT EXISTS (SELECT 1 FROM pg_temp.postscript_fdw_sync_batch b WHERE b.id = t.id)%s',
                        lo_cond, hi_cond, CASE WHEN removed = 'mark' THEN ' AND t.removed_at IS NULL' ELSE '' END);
                    IF run_mode = 'whole' AND pages > 1 THEN
                        -- a whole read of several pages: a row removed or
                        -- added upstream while it ran shifts the pages after
                        -- it, and a row can slip from one page to the one
                        -- already read.  A row missing is removed only if a
                        -- second read lacks it too.
                        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s t WHERE %s)', tgt, rm_where) INTO missing;
                        IF missing THEN
                            EXECUTE pg_catalog.format('INSERT INTO pg_temp.postscript_fdw_sync_batch (%1$s) SELECT %1$s FROM %2$s',
                                                      cols, source);
                            GET DIAGNOSTICS extra = ROW_COUNT;
                            got := got + extra;
                        END IF;
                    ELSIF run_mode = 'full' AND pages > 1 THEN
                        FOR cand IN EXECUTE pg_catalog.format('SELECT DISTINCT t.created_at FROM %s t WHERE %s AND t.created_at IS NOT NULL',
                                                              tgt, rm_where) LOOP
                            EXECUTE pg_catalog.format(
                                'INSERT INTO pg_temp.postscript_fdw_sync_batch (%1$s) SELECT %1$s FROM %2$s WHERE created_at >= %3$L::timestamptz AND created_at <= %3$L::timestamptz',
                                cols, source, pg_catalog.to_char(cand AT TIME ZONE 'UTC', iso));
                            GET DIAGNOSTICS extra = ROW_COUNT;
                            got := got + extra;
                        END LOOP;
                    END IF;
                END IF;

                EXECUTE pg_catalog.format(
                    'WITH up AS (INSERT INTO %1$s AS t (%2$s)
                                   SELECT DISTINCT ON (id) %2$s FROM pg_temp.postscript_fdw_sync_batch ORDER BY %3$s
                                 ON CONFLICT (id) DO UPDATE SET %4$s WHERE %5$s
                                 RETURNING t.xmax = 0 AS inserted)
                     SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up',
                    tgt, cols, dedup_order, upd_set, same_row) INTO n_ins, n_upd;
                IF run_mode <> 'incremental' THEN
                    IF removed = 'delete' THEN
                        EXECUTE pg_catalog.format('DELETE FROM %s t WHERE %s', tgt, rm_where);
                    ELSE
                        EXECUTE pg_catalog.format('UPDATE %s t SET removed_at = pg_catalog.clock_timestamp() WHERE %s', tgt, rm_where);
                    END IF;
                    GET DIAGNOSTICS n_rm = ROW_COUNT;
                END IF;

                EXECUTE stats_sql INTO req1, r429_1, ok1 USING srv;
                -- the change cursor: the newest updated_at stored, but not past
                -- the run's start on this server's clock, so that a row dated in
                -- the future is read again by later runs rather than let the
                -- cursor jump over changes made now
                EXECUTE pg_catalog.format(
                    'UPDATE %s SET batches = batches + 1, rows_fetched = rows_fetched + $2,
                            rows_inserted = rows_inserted + $3, rows_updated = rows_updated + $4,
                            rows_removed = rows_removed + $5, requests = requests + $6, status_429 = status_429 + $7,
                            pass_cursor = CASE WHEN $8 = ''full'' THEN $9 ELSE pass_cursor END,
                            change_cursor = CASE WHEN $8 = ''incremental'' THEN greatest(change_cursor, least($9, $10)) ELSE change_cursor END
                      WHERE target = $1', state)
                    USING tgt_key, got, n_ins, n_upd, n_rm, req1 - req0, r429_1 - r429_0, run_mode, cur, t0;
                IF done THEN
                    EXECUTE pg_catalog.format(
                        'UPDATE %s SET run_status = ''succeeded'', run_ended = $3,
                                last_full_at = CASE WHEN $2 = ''incremental'' THEN last_full_at ELSE $3 END,
                                change_cursor = CASE WHEN $2 = ''full'' THEN pass_started_at ELSE change_cursor END,
                                pass_started_at = CASE WHEN $2 = ''full'' THEN NULL ELSE pass_started_at END,
                                pass_cursor = CASE WHEN $2 = ''full'' THEN NULL ELSE pass_cursor END,
                                pass_removed = CASE WHEN $2 = ''full'' THEN NULL ELSE pass_removed END
                          WHERE target = $1', state) USING tgt_key, run_mode, pg_catalog.clock_timestamp();
                END IF;
            END IF;
            -- the mirror's deferred constraints and triggers are checked here,
            -- where an error is caught, not at the COMMIT below
            SET CONSTRAINTS ALL IMMEDIATE;
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                    e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
            failed := true;
        END;
        -- the batch and its cursor become visible together, or not at all
        COMMIT;
    END LOOP;

    IF failed THEN
        -- record what stopped it (its requests happened, though the batch did not)
        IF req0 IS NOT NULL THEN
            EXECUTE stats_sql INTO req1, r429_1, ok1 USING srv;
        END IF;
        BEGIN
            IF NOT started THEN
                -- it failed before its run began (which rolled back): the
                -- run it records did nothing, in no mode.  A mirror without
                -- a row yet gets none: its strategy is not known.
                EXECUTE run_sql USING tgt_key, NULL::text, pg_catalog.clock_timestamp();
            END IF;
            EXECUTE pg_catalog.format(
                'UPDATE %s SET run_status = $2, run_ended = pg_catalog.clock_timestamp(),
                        requests = requests + $3, status_429 = status_429 + $4,
                        last_error = $5, last_error_sqlstate = $6, last_error_at = pg_catalog.clock_timestamp()
                  WHERE target = $1', state)
                USING tgt_key, CASE WHEN e_state = '57014' THEN 'cancelled' ELSE 'failed' END,
                      coalesce(req1 - req0, 0), coalesce(r429_1 - r429_0, 0),
                      e_msg || CASE WHEN e_detail <> '' THEN ': ' || e_detail ELSE '' END, e_state;
        EXCEPTION WHEN OTHERS THEN
            -- not recorded (the state shows a run that started as
            -- interrupted, else the run before); the error that stopped the
            -- run is raised below all the same
            NULL;
        END;
    END IF;
    -- the batch table goes with the run: a pooled session may run the next
    -- CALL as another role, which could not drop this one's.  A run that
    -- failed before it made one may leave the session without a temporary
    -- schema, and DROP TABLE IF EXISTS would then say in a NOTICE that
    -- schema "pg_temp" does not exist.
    IF pg_catalog.to_regclass('pg_temp.postscript_fdw_sync_batch') IS NOT NULL THEN
        DROP TABLE pg_temp.postscript_fdw_sync_batch;
    END IF;
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(lock_key);
    IF failed THEN
        IF e_detail <> '' AND e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
        ELSIF e_detail <> '' THEN
            RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
        ELSIF e_hint <> '' THEN
            RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
        ELSE
            RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
        END IF;
    END IF;
END
$proc$;

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

-- not STRICT: a NULL argument is an error (22004), raised by the C code;
-- STRICT would answer NULL, which a caller may take for a delivery stored
CREATE FUNCTION postscript_fdw_webhook_receive(server name, body text, headers jsonb)
RETURNS boolean
AS 'MODULE_PATHNAME', 'postscript_fdw_webhook_receive'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- GET /api/v2/webhooks/token, kept as the webhook_token of role's mapping;
-- a NULL argument is an error (22004), not a token silently left unchanged
CREATE FUNCTION postscript_fdw_webhook_fetch_token(server name, role name DEFAULT current_user)
RETURNS void
AS 'MODULE_PATHNAME', 'postscript_fdw_webhook_fetch_token'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- the subscriber an event is about, whatever its type: event_data is the
-- subscriber object (its id is the subscriber's) or names it in subscriber_id
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

-- The resource catalog (src/resources.c) as rows: the tables, their columns
-- and their writes, as the code uses them.  docs/reference.md is generated
-- from these (scripts/gen_reference.sh).
CREATE FUNCTION postscript_fdw_resources(
    OUT resource text,
    OUT description text,
    OUT documented boolean,
    OUT readable boolean,
    OUT endpoint text,
    OUT records_key text,
    OUT paginated boolean,
    OUT object_endpoint text,
    OUT refused_hint text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION postscript_fdw_resources() IS
  'the Postscript objects a foreign table can read or write: endpoint, records key, pagination';

CREATE FUNCTION postscript_fdw_columns(
    OUT resource text,
    OUT ordinal integer,
    OUT column_name text,
    OUT type text,
    OUT field text,
    OUT object_id boolean,
    OUT filters text[],
    OUT sortable boolean,
    OUT nullable boolean,
    OUT write_only boolean,
    OUT body_key text,
    OUT written_by text[],
    OUT value_check text,
    OUT description text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION postscript_fdw_columns() IS
  'the columns of each Postscript object: type, JSON field, the query parameters its filters become, sort, body key';

CREATE FUNCTION postscript_fdw_writes(
    OUT resource text,
    OUT operation text,
    OUT method text,
    OUT path text,
    OUT required text[],
    OUT if_outcome_unknown text,
    OUT returning_row text,
    OUT commit_waits_for text)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

COMMENT ON FUNCTION postscript_fdw_writes() IS
  'the request each INSERT, UPDATE and DELETE row becomes, with its required columns, and which earlier writes of a COMMIT it waits for';
