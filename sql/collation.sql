--
-- Collations: = under a case-insensitive (nondeterministic) collation is not
-- sent to the API, which compares exactly: PostgreSQL checks it, and the row is
-- still found.  Such collations need a PostgreSQL built with ICU: without ICU
-- the file ends at the check below (expected/collation_1.out).  The check is
-- initdb's ICU root collation: 16's catalog holds "unicode" even without ICU.
--
SELECT NOT EXISTS (SELECT FROM pg_collation WHERE collname = 'und-x-icu') AS no_icu \gset
\if :no_icu
\quit
\endif
SELECT id AS sid, email AS semail FROM ps.subscribers
 WHERE email IS NOT NULL ORDER BY id LIMIT 1 \gset
SELECT mock.reset();
CREATE COLLATION coll_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXPLAIN (COSTS OFF) SELECT id FROM ps.subscribers WHERE email = upper(:'semail') COLLATE coll_ci;
SELECT id = :'sid' AS same FROM ps.subscribers WHERE email = upper(:'semail') COLLATE coll_ci;
-- every page read, none asked for by email
SELECT count(*) > 1 AS read_pages, count(*) FILTER (WHERE query LIKE '%email%') AS by_email
  FROM mock.requests();
-- under the column's own (deterministic) collation it is sent
SELECT mock.reset();
SELECT count(*) FROM ps.subscribers WHERE email = upper(:'semail');
SELECT path, query FROM mock.requests();
DROP COLLATION coll_ci;
