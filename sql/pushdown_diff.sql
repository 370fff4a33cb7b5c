--
-- Differential test of the pushdown: a generated set of queries (every
-- column x operator x values drawn from the data, in several time zones,
-- as constants and as parameters of generic plans, single filters, pairs
-- of filters, ORDER BY ... LIMIT) must give exactly the rows that the same
-- query gives with pushdown off.  The reference is read once through
-- tables with pushdown 'false' into local tables; every twentieth query is
-- also run directly against the pushdown-off foreign table.  The local
-- server's pages are made larger while the cases run (fewer requests per
-- full read; the FDW never assumes a page size).
--
SELECT mock.reset();
SET timezone = 'UTC';

CREATE SCHEMA pd_off;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers, campaigns, messages, opt_ins, opt_outs)
  FROM SERVER ps INTO pd_off;
DO $$
DECLARE
  t text;
BEGIN
  FOR t IN SELECT foreign_table_name FROM information_schema.foreign_tables
            WHERE foreign_table_schema = 'pd_off'
  LOOP
    EXECUTE format('ALTER FOREIGN TABLE pd_off.%I OPTIONS (ADD pushdown %L)', t, 'false');
  END LOOP;
END $$;

-- the reference: the data as read without pushdown
CREATE SCHEMA pd_ref;
CREATE TABLE pd_ref.subscribers AS SELECT * FROM pd_off.subscribers;
CREATE TABLE pd_ref.campaigns AS SELECT * FROM pd_off.campaigns;
CREATE TABLE pd_ref.messages AS SELECT * FROM pd_off.messages;
CREATE TABLE pd_ref.opt_ins AS SELECT * FROM pd_off.opt_ins;
CREATE TABLE pd_ref.opt_outs AS SELECT * FROM pd_off.opt_outs;
-- every request so far was unfiltered
SELECT count(*) > 0 AS read, bool_and(query ~ '^(page=\d+)?$') AS unfiltered FROM mock.requests();
SELECT mock.reset();

-- the generated cases: table, predicate (SQL text), and for the parameter
-- form the column, its operator, the parameter's type and value
CREATE TABLE pd_case (n serial, tbl text, pred text, tz text,
                      col text, op text, ptype text, pvalue text);
CREATE TABLE pd_got (r text);
CREATE TABLE pd_bad (n int, form text, extra bigint, missing bigint);

-- the literal of a value: 'text'::type
CREATE FUNCTION pd_lit(v anyelement) RETURNS text LANGUAGE sql
  AS $$ SELECT quote_literal(v::text) || '::' || pg_typeof(v)::text $$;

DO $$
DECLARE
  c record;
  vals text[];
  v text;
  op text;
  big boolean;
  ops text[];
  tz text;
BEGIN
  FOR c IN SELECT table_name AS tbl, column_name AS col, data_type AS typ
             FROM information_schema.columns
            WHERE table_schema = 'pd_ref'
              AND data_type IN ('text', 'bigint', 'timestamp with time zone')
            ORDER BY table_name, ordinal_position
  LOOP
    EXECUTE format('SELECT count(*) > 3000 FROM pd_ref.%I', c.tbl) INTO big;
    -- values at the 0th, 10th, 50th, 90th and 100th percentile
    EXECUTE format($q$SELECT array_agg(DISTINCT pd_lit(v)) FILTER (WHERE v IS NOT NULL)
                        FROM unnest((SELECT percentile_disc(ARRAY[0, 0.1, 0.5, 0.9, 1])
                                            WITHIN GROUP (ORDER BY %I) FROM pd_ref.%I)) v$q$,
                   c.col, c.tbl) INTO vals;
    CONTINUE WHEN vals IS NULL;
    IF c.typ = 'text' THEN
      EXECUTE format($q$SELECT ARRAY[pd_lit(upper(v)), pd_lit(lower(v)), pd_lit(v || ' '),
                                     pd_lit('no such value'::text), pd_lit(''::text)]
                        FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY %I) v
                                FROM pd_ref.%I) s$q$, c.col, c.tbl) INTO STRICT ops;
      vals := vals || ops;
      ops := CASE WHEN big THEN ARRAY['='] ELSE ARRAY['=', '<>', '<', '>='] END;
    ELSIF c.typ = 'bigint' THEN
      EXECUTE format($q$SELECT ARRAY[v::text, (v + 1)::text, pd_lit(v * 1000)]
                        FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY %I) v
                                FROM pd_ref.%I) s$q$, c.col, c.tbl) INTO STRICT ops;
      vals := vals || ops;
      ops := CASE WHEN big THEN ARRAY['=', '>'] ELSE ARRAY['=', '<>', '<', '<=', '>', '>='] END;
    ELSE
      EXECUTE format($q$SELECT ARRAY[pd_lit(v + interval '1 microsecond'),
                                     pd_lit(v - interval '1 microsecond'),
                                     pd_lit(v + interval '0.5 second'),
                                     pd_lit((v AT TIME ZONE 'America/New_York')::date),
                                     pd_lit(v AT TIME ZONE 'Asia/Kolkata'),
                                     pd_lit('infinity'::timestamptz),
                                     pd_lit('-infinity'::timestamptz)]
                        FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY %I) v
                                FROM pd_ref.%I) s$q$, c.col, c.tbl) INTO STRICT ops;
      vals := vals || ops;
      ops := CASE WHEN big THEN ARRAY['=', '>', '<']
                  ELSE ARRAY['=', '<>', '<', '<=', '>', '>='] END;
    END IF;
    FOREACH op IN ARRAY ops LOOP
      -- what the API cannot filter by is read in full: two values suffice
      FOREACH v IN ARRAY CASE WHEN op = '<>' OR (c.typ = 'text' AND op <> '=') THEN vals[1:2]
                              ELSE vals END LOOP
        -- dates and timestamps without zone are read in the session's zone
        FOREACH tz IN ARRAY CASE WHEN v ~ '::(date|timestamp without time zone)$'
                                 THEN ARRAY['UTC', 'America/New_York', 'Asia/Kolkata']
                                 ELSE ARRAY['UTC'] END LOOP
          INSERT INTO pd_case (tbl, pred, tz, col, op, ptype, pvalue)
          VALUES (c.tbl, format('%I %s %s', c.col, op, v), tz, c.col, op,
                  CASE WHEN op IN ('=', '<', '>=') AND v LIKE '%::%'
                       THEN substring(v from '::(.*)$') END, v);
        END LOOP;
      END LOOP;
    END LOOP;
    -- IN lists and = ANY, with NULLs and unknown values
    INSERT INTO pd_case (tbl, pred, tz, col, op, ptype, pvalue)
    VALUES (c.tbl, format('%I IN (%s, NULL)', c.col, array_to_string(vals[1:3], ', ')), 'UTC',
            NULL, NULL, NULL, NULL),
           (c.tbl, format('%I = ANY (ARRAY[%s])', c.col, array_to_string(vals, ', ')), 'UTC',
            NULL, NULL, NULL, NULL);
    -- LIKE: substrings, case, escapes, wildcards
    IF c.typ = 'text' THEN
      EXECUTE format($q$SELECT array_agg(p) FROM (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY %I) v
                                                     FROM pd_ref.%I) s,
                            LATERAL unnest(ARRAY['%%' || substr(v, 2, 4) || '%%',
                                                 '%%' || upper(substr(v, 2, 4)) || '%%',
                                                 substr(v, 1, 3) || '%%',
                                                 '%%' || substr(v, 2, 2) || '_' || substr(v, 5, 2) || '%%',
                                                 '%%+%%', '%%@%%', '%%\_%%', '%%\%%%%', '%%%%']) p$q$,
                     c.col, c.tbl) INTO vals;
      FOREACH v IN ARRAY vals LOOP
        INSERT INTO pd_case (tbl, pred, tz, col, op, ptype, pvalue)
        VALUES (c.tbl, format('%I LIKE %L', c.col, v), 'UTC', c.col, 'LIKE', 'text', quote_literal(v));
      END LOOP;
    END IF;
  END LOOP;
  -- pairs of filters on one table
  INSERT INTO pd_case (tbl, pred, tz)
  SELECT a.tbl, a.pred || ' AND ' || b.pred, 'UTC'
    FROM pd_case a JOIN pd_case b ON a.tbl = b.tbl AND a.col <> b.col
   WHERE a.tz = 'UTC' AND b.tz = 'UTC' AND (a.n * 31 + b.n * 17) % 499 = 0;
END $$;

-- run every case: pushdown on (a constant, and for one column and operator a
-- parameter of a generic plan) against the reference
CREATE FUNCTION pd_check(form text, n int, fill text[], ref text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  stmt text;
  extra bigint;
  missing bigint;
BEGIN
  TRUNCATE pd_got;
  FOREACH stmt IN ARRAY fill LOOP
    EXECUTE stmt;
  END LOOP;
  EXECUTE format('SELECT (SELECT count(*) FROM (SELECT r FROM pd_got EXCEPT ALL %1$s) x),
                         (SELECT count(*) FROM (%1$s EXCEPT ALL SELECT r FROM pd_got) y)', ref)
     INTO extra, missing;
  IF extra <> 0 OR missing <> 0 THEN
    INSERT INTO pd_bad VALUES (n, form, extra, missing);
  END IF;
END $$;

SELECT mock.config('{"page_size": 1000}');
SET plan_cache_mode = force_generic_plan;
DO $$
DECLARE
  c record;
  ref text;
BEGIN
  FOR c IN SELECT * FROM pd_case ORDER BY n LOOP
    PERFORM set_config('TimeZone', c.tz, false);
    ref := format('SELECT t::text FROM pd_ref.%I t WHERE %s', c.tbl, c.pred);
    PERFORM pd_check('const', c.n,
                     ARRAY[format('INSERT INTO pd_got SELECT t::text FROM ps.%I t WHERE %s',
                                  c.tbl, c.pred)], ref);
    IF c.ptype IS NOT NULL THEN
      PERFORM pd_check('param', c.n,
                       ARRAY[format('PREPARE pd_q(%s) AS SELECT t::text FROM ps.%I t WHERE %I %s $1',
                                    c.ptype, c.tbl, c.col, c.op),
                             format('CREATE TEMP TABLE pd_p AS EXECUTE pd_q(%s)', c.pvalue),
                             'INSERT INTO pd_got SELECT * FROM pd_p',
                             'DROP TABLE pd_p',
                             'DEALLOCATE pd_q'], ref);
    END IF;
    IF c.n % 20 = 0 THEN
      PERFORM pd_check('off', c.n,
                       ARRAY[format('INSERT INTO pd_got SELECT t::text FROM ps.%I t WHERE %s',
                                    c.tbl, c.pred)],
                       format('SELECT t::text FROM pd_off.%I t WHERE %s', c.tbl, c.pred));
    END IF;
  END LOOP;
END $$;
RESET plan_cache_mode;
SET timezone = 'UTC';
SELECT mock.config('{"page_size": 100}');

-- joins to local rows (parameterized scans) against the reference
CREATE TABLE pd_keys AS
  SELECT email, id FROM pd_ref.subscribers WHERE email IS NOT NULL ORDER BY id LIMIT 4;
INSERT INTO pd_keys VALUES ('nobody@example.com', 's_no_such_subscriber');
ANALYZE pd_keys;
SELECT pd_check('join', 0, ARRAY['INSERT INTO pd_got SELECT s::text FROM pd_keys k JOIN ps.subscribers s ON s.email = k.email'],
                'SELECT s::text FROM pd_keys k JOIN pd_ref.subscribers s ON s.email = k.email');
SELECT pd_check('join', 0, ARRAY['INSERT INTO pd_got SELECT s::text FROM pd_keys k JOIN ps.subscribers s ON s.id = k.id'],
                'SELECT s::text FROM pd_keys k JOIN pd_ref.subscribers s ON s.id = k.id');
SELECT pd_check('join', 0, ARRAY['INSERT INTO pd_got SELECT s::text FROM ps.subscribers s WHERE s.email = ANY (ARRAY(SELECT email FROM pd_keys))'],
                'SELECT s::text FROM pd_ref.subscribers s WHERE s.email = ANY (ARRAY(SELECT email FROM pd_keys))');

-- ORDER BY a sortable field, with LIMIT: the same values in the same order
CREATE TABLE pd_order (tbl text, expr text, cond text, dir text, lim int, same boolean);
DO $$
DECLARE
  s record;
  d text;
  l int;
  got text;
  want text;
BEGIN
  FOR s IN SELECT * FROM (VALUES ('subscribers', 'created_at', 'true'),
                                 ('subscribers', 'updated_at', 'true'),
                                 ('subscribers', 'phone_number COLLATE "C"', 'true'),
                                 ('campaigns', 'created_at', 'true'), ('campaigns', 'sent_at', 'true'),
                                 ('campaigns', 'sent_at', 'sent_at > ''2000-01-01'''),
                                 ('messages', 'created_at', 'true'), ('opt_ins', 'created_at', 'true'),
                                 ('opt_outs', 'created_at', 'true')) v(tbl, expr, cond)
  LOOP
    FOREACH d IN ARRAY ARRAY['', 'DESC', 'NULLS FIRST', 'DESC NULLS LAST'] LOOP
      FOREACH l IN ARRAY ARRAY[5, 150] LOOP
        EXECUTE format('SELECT array_agg(v)::text FROM (SELECT %s AS v FROM ps.%I WHERE %s ORDER BY 1 %s LIMIT %s) x',
                       s.expr, s.tbl, s.cond, d, l) INTO got;
        EXECUTE format('SELECT array_agg(v)::text FROM (SELECT %s AS v FROM pd_ref.%I WHERE %s ORDER BY 1 %s LIMIT %s) x',
                       s.expr, s.tbl, s.cond, d, l) INTO want;
        INSERT INTO pd_order VALUES (s.tbl, s.expr, s.cond, d, l, got IS NOT DISTINCT FROM want);
      END LOOP;
    END LOOP;
  END LOOP;
END $$;

-- the outcome: how many cases, and none that differs
SELECT count(*) AS cases, count(*) FILTER (WHERE ptype IS NOT NULL) AS with_param,
       count(DISTINCT tbl) AS tables FROM pd_case;
SELECT count(*) AS orderings, count(*) FILTER (WHERE same) AS same FROM pd_order;
SELECT tbl, expr, cond, dir, lim FROM pd_order WHERE NOT same;
SELECT b.form, b.extra, b.missing, c.tbl, c.pred, c.tz
  FROM pd_bad b LEFT JOIN pd_case c USING (n) ORDER BY b.n, b.form;
-- and that the API was really asked: filters, sorts and id lookups were sent
SELECT count(DISTINCT regexp_replace(query, '&?page=\d+$', '')) > 100 AS filters_sent,
       count(*) FILTER (WHERE query LIKE '%sort=%') > 0 AS sorts_sent,
       count(*) FILTER (WHERE path ~ '/subscribers/.') > 0 AS ids_fetched
  FROM mock.requests() WHERE query LIKE '%\_\_%' OR path ~ '/subscribers/.';

DROP TABLE pd_case, pd_got, pd_bad, pd_keys, pd_order;
DROP FUNCTION pd_check(text, int, text[], text);
DROP FUNCTION pd_lit(anyelement);
DROP SCHEMA pd_ref CASCADE;
DROP SCHEMA pd_off CASCADE;
