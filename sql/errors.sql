--
-- API failures: each becomes an error with a fitting SQLSTATE, the API's
-- message in DETAIL and the request (never a secret) in CONTEXT
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();

-- 401: a key the API does not know
CREATE SERVER ps_badkey FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'mock_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_badkey OPTIONS (api_key 'sk_wrong_key_0123');
CREATE FOREIGN TABLE badkey_shop (resource_id text) SERVER ps_badkey OPTIONS (resource 'shop');
SELECT * FROM badkey_shop;
\echo :LAST_ERROR_SQLSTATE

-- 403: a partner key without the shop token, and with a wrong one
CREATE SERVER ps_partner_notoken FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_partner_notoken OPTIONS (api_key 'sk_partner_test_key');
CREATE FOREIGN TABLE notoken_shop (resource_id text) SERVER ps_partner_notoken OPTIONS (resource 'shop');
SELECT * FROM notoken_shop;
\echo :LAST_ERROR_SQLSTATE
ALTER USER MAPPING FOR CURRENT_USER SERVER ps_partner_notoken OPTIONS (ADD shop_token 'sk_other_shop');
SELECT * FROM notoken_shop;
\echo :LAST_ERROR_SQLSTATE

-- 404: an endpoint that does not exist
CREATE FOREIGN TABLE nosuch (id text) SERVER ps OPTIONS (resource 'campaigns', endpoint '/api/v2/nosuch');
SELECT * FROM nosuch;
\echo :LAST_ERROR_SQLSTATE

-- 400 in the errors shape: an endpoint that takes no page parameter
CREATE FOREIGN TABLE kw_paged (id text) SERVER ps
  OPTIONS (resource 'subscribers', endpoint '/api/v2/keywords', records_key 'keywords');
SELECT * FROM kw_paged;
\echo :LAST_ERROR_SQLSTATE
-- 422 in the errors shape, 500 in the error shape
SELECT mock.fault('{"kind": "status", "status": 422, "path": "/api/v2/keywords", "count": 1}');
SELECT * FROM ps.keywords;
\echo :LAST_ERROR_SQLSTATE
SELECT mock.fault('{"kind": "status", "status": 500, "path": "/api/v2/keywords", "count": 1}');
SELECT * FROM ps.keywords;
\echo :LAST_ERROR_SQLSTATE

-- malformed and truncated bodies
SELECT mock.fault('{"kind": "malformed", "path": "/api/v2/keywords", "count": 1}');
SELECT * FROM ps.keywords;
\echo :LAST_ERROR_SQLSTATE
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "count": 1, "body": "{\"keywords\": [{\"id\": \"x\"}]"}');
SELECT * FROM ps.keywords;
\echo :LAST_ERROR_SQLSTATE
SELECT mock.fault('{"kind": "body", "path": "/api/v2/keywords", "count": 1, "body": "{\"keywords\": []} trailing"}');
SELECT * FROM ps.keywords;
\echo :LAST_ERROR_SQLSTATE

-- transport failures (their detail names ports and byte counts: SQLSTATE and message only)
CREATE SERVER ps_refused FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:1', max_retries '0', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_refused OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE refused_shop (resource_id text) SERVER ps_refused OPTIONS (resource 'shop');
SELECT mock.try('SELECT * FROM refused_shop');

CREATE SERVER ps_strict FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'mock_url', max_retries '0', request_timeout '0.5');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_strict OPTIONS (api_key 'sk_test_shop_key');
CREATE FOREIGN TABLE strict_keywords (id text) SERVER ps_strict OPTIONS (resource 'keywords');
SELECT mock.fault('{"kind": "slow", "delay_ms": 2000, "path": "/api/v2/keywords", "count": 1}');
SELECT mock.try('SELECT * FROM strict_keywords');
SELECT mock.fault('{"kind": "truncate", "path": "/api/v2/keywords", "count": 1}');
SELECT mock.try('SELECT * FROM strict_keywords');
SELECT mock.fault('{"kind": "close", "path": "/api/v2/keywords", "count": 1}');
SELECT mock.try('SELECT * FROM strict_keywords');

-- reads retry what is worth retrying: one 503, then the full answer
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 503, "path": "/api/v2/keywords", "count": 1}');
SELECT count(*) = (SELECT count FROM mock.summary() WHERE resource = 'keywords') AS complete
  FROM ps.keywords;
SELECT method, path, status FROM mock.requests();

-- the key never shows: not in any message above, nor in the catalog outside user mappings
SELECT count(*) FROM pg_foreign_server WHERE array_to_string(srvoptions, ',') LIKE '%sk_%';

DROP SERVER ps_badkey, ps_partner_notoken, ps_refused, ps_strict CASCADE;
DROP FOREIGN TABLE nosuch, kw_paged;
