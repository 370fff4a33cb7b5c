--
-- Option validation: every context, with errors that list the valid options
--
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (nosuch 'x');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_key 'sk_secret_1');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'ftp://example.com');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'http://example.com');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'https://user:pw@example.com');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'https://api.postscript.io/api/v2/');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (request_timeout '-1');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (max_retries '1.5');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (rate_limit 'fast');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (rate_limit 'nan');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (request_timeout 'NaN');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (pushdown 'maybe');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (max_response_size '100');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (default_country 'USA');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (default_country 'ZZ');
CREATE SERVER bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (default_country 'uk');
CREATE SERVER good FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:1/', connect_timeout '0.5', request_timeout '30',
           max_retries '0', rate_limit '15', rate_burst '5', max_concurrency '4',
           pushdown 'false', default_country 'GB', page_size_estimate '50');
ALTER SERVER good OPTIONS (SET api_url 'https://api.postscript.io');
ALTER SERVER good OPTIONS (SET default_country 'jp');
ALTER SERVER good OPTIONS (ADD shop_token 'sk_secret_2');

-- user mappings
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key '');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key 'pk_public_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key 'sk_ok', webhook_token 'pk_public_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_url 'https://x.io');
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (api_key 'sk_ok', shop_token 'sk_shop');

-- tables
CREATE FOREIGN TABLE t_bad1 (id text) SERVER good OPTIONS (resource 'nosuch');
CREATE FOREIGN TABLE t_bad2 (id text) SERVER good OPTIONS (endpoint '/api/v2/x');
CREATE FOREIGN TABLE t_bad3 (id text) SERVER good OPTIONS (resource 'subscribers', endpoint 'api/v2/x');
CREATE FOREIGN TABLE t_bad4 (id text) SERVER good OPTIONS (resource 'subscribers', endpoint '/a?b=1');
CREATE FOREIGN TABLE t_bad5 (id text) SERVER good OPTIONS (resource 'subscribers', api_key 'sk_secret_3');
CREATE FOREIGN TABLE t_bad6 (id text) SERVER good OPTIONS (resource 'subscribers', page 'x');
CREATE FOREIGN TABLE t_bad7 (id text OPTIONS (path 'x')) SERVER good OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE t_bad8 (id text OPTIONS (shop_token 'sk_secret_4')) SERVER good OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE t_ok (id text OPTIONS (field 'id'), can text OPTIONS (field 'subscriptions.promotional.can_send'))
  SERVER good OPTIONS (resource 'subscribers', endpoint '/api/v2/subscribers', records_key 'subscribers',
                       paginated 'true', pushdown 'true', batch_size '10');

-- a table named after its resource needs no resource option
CREATE FOREIGN TABLE keywords (id text, keyword text) SERVER good;
-- a table whose name is no resource does
CREATE FOREIGN TABLE kw (id text) SERVER good;
SELECT * FROM kw;

-- a table's option is over its server's (good has pushdown 'false'); a table
-- option not given is the resource's (endpoint, paginated)
CREATE FOREIGN TABLE subs_server (id text, email text) SERVER good OPTIONS (resource 'subscribers');
CREATE FOREIGN TABLE subs_table (id text, email text) SERVER good
  OPTIONS (resource 'subscribers', pushdown 'true', paginated 'false');
EXPLAIN (COSTS OFF) SELECT id FROM subs_server WHERE email = 'a@x.com';
EXPLAIN (COSTS OFF) SELECT id FROM subs_table WHERE email = 'a@x.com';

-- the declarations, and every declared default is a valid value where the
-- option is given
SELECT name, contexts, kind, min, max, default_value, requires, superuser IS NOT NULL AS superuser
  FROM postscript_fdw_options();
DO $$
BEGIN
  EXECUTE (SELECT format('CREATE SERVER defaults FOREIGN DATA WRAPPER postscript_fdw OPTIONS (%s)',
                         string_agg(format('%I %L', name, default_value), ', '))
             FROM postscript_fdw_options()
            WHERE 'server' = ANY (contexts) AND default_value IS NOT NULL);
END
$$;
SELECT array_length(srvoptions, 1) FROM pg_foreign_server WHERE srvname = 'defaults';
DROP SERVER defaults;

-- no secret in the catalog outside user mappings
SELECT count(*) FROM pg_foreign_server WHERE array_to_string(srvoptions, ',') LIKE '%sk_secret%';
DROP SERVER good CASCADE;
