--
-- Pagination: every page, in order, stopping at total_pages or an empty
-- page, whatever page size the server picks
--
SELECT mock.reset();
SELECT mock.config('{"page_size": 7}');
SELECT count(*) = (SELECT count FROM mock.summary() WHERE resource = 'subscribers') AS all_rows,
       md5(string_agg(id, E'\n' ORDER BY id COLLATE "C"))
         = (SELECT id_md5 FROM mock.summary() WHERE resource = 'subscribers') AS same_ids,
       count(DISTINCT id) = count(*) AS no_duplicates
  FROM ps.subscribers;
-- pages 1..ceil(n/7), each once, none past the end
SELECT count(*) = (SELECT ceil(count / 7.0) FROM mock.summary() WHERE resource = 'subscribers') AS one_request_per_page,
       bool_and(query = 'page=' || (row_number)) AS pages_in_order
  FROM (SELECT query, row_number() OVER (ORDER BY seq) FROM mock.requests()) r;

-- a page size the server changes: the FDW never assumes one
SELECT mock.reset();
SELECT mock.config('{"page_size": 1000}');
SELECT count(*) = (SELECT count FROM mock.summary() WHERE resource = 'subscribers') AS all_rows
  FROM ps.subscribers;
SELECT method, path, query FROM mock.requests();

-- without page_info the scan ends at the first empty page
CREATE FOREIGN TABLE paged (id text) SERVER ps
  OPTIONS (resource 'subscribers', endpoint '/api/v2/paged', records_key 'items');
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"items\": [{\"id\": \"a\"}, {\"id\": \"b\"}]}"}');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"items\": [{\"id\": \"c\"}]}"}');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"items\": []}"}');
SELECT * FROM paged;
SELECT method, path, query FROM mock.requests();

-- total_pages ends the scan without asking for an empty page
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"page_info\": {\"page\": 1, \"total_pages\": 2}, \"items\": [{\"id\": \"a\"}]}"}');
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"page_info\": {\"page\": 2, \"total_pages\": 2}, \"items\": [{\"id\": \"b\"}]}"}');
SELECT * FROM paged;
SELECT method, path, query FROM mock.requests();

-- an empty first page is an empty table
SELECT mock.reset();
SELECT mock.fault('{"kind": "body", "path": "/api/v2/paged", "count": 1, "body": "{\"page_info\": {\"page\": 1, \"total_pages\": 0}, \"items\": []}"}');
SELECT count(*) FROM paged;
SELECT method, path, query FROM mock.requests();
DROP FOREIGN TABLE paged;

-- rescans: a LATERAL subquery reads the table again for each outer row
SELECT mock.reset();
EXPLAIN (COSTS OFF)
SELECT v.x, c.n FROM (VALUES (4), (5), (6)) v(x),
  LATERAL (SELECT count(*) AS n FROM ps.keywords k WHERE length(k.keyword) > v.x) c;
SELECT v.x, c.n = (SELECT count(*) FROM ps.keywords WHERE length(keyword) > v.x) AS same,
       c.n > 0 AS nonempty
  FROM (VALUES (4), (5), (6)) v(x),
  LATERAL (SELECT count(*) AS n FROM ps.keywords k WHERE length(k.keyword) > v.x) c
 ORDER BY 1;
-- three outer rows: three reads for the lateral side, three for the check
SELECT method, path, query, count(*) FROM mock.requests() GROUP BY 1, 2, 3;

-- a LIMIT stops paging early
SELECT mock.reset();
SELECT mock.config('{"page_size": 10}');
SELECT count(*) FROM (SELECT id FROM ps.subscribers LIMIT 15) s;
SELECT method, path, query FROM mock.requests();
