--
-- IMPORT FOREIGN SCHEMA: every Postscript object, LIMIT TO and EXCEPT
--
SELECT foreign_table_name FROM information_schema.foreign_tables
 WHERE foreign_table_schema = 'ps' ORDER BY 1;
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ps' AND a.attnum > 0
 ORDER BY c.relname, a.attnum;
SELECT c.relname, ft.ftoptions
  FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ps' ORDER BY 1;

CREATE SCHEMA imp_limit;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (subscribers, keywords, nosuch)
  FROM SERVER ps INTO imp_limit;
SELECT relname FROM pg_class WHERE relnamespace = 'imp_limit'::regnamespace ORDER BY 1;
CREATE SCHEMA imp_except;
IMPORT FOREIGN SCHEMA postscript EXCEPT (subscribers, messages)
  FROM SERVER ps INTO imp_except;
SELECT relname FROM pg_class WHERE relnamespace = 'imp_except'::regnamespace ORDER BY 1;

-- errors
IMPORT FOREIGN SCHEMA public FROM SERVER ps INTO imp_limit;
IMPORT FOREIGN SCHEMA postscript FROM SERVER ps INTO imp_limit OPTIONS (x 'y');
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER ps INTO imp_limit;

-- imported tables read: the request each makes
SELECT mock.reset();
SELECT count(*) FROM imp_limit.keywords;
SELECT method, path, query, auth FROM mock.requests();
DROP SCHEMA imp_limit CASCADE;
DROP SCHEMA imp_except CASCADE;
