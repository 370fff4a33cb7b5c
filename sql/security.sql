--
-- Security: who may aim the database server where, credentials only in user
-- mappings, a missing mapping, redirects refused, hostile answers.
-- (That no secret reaches any message, EXPLAIN, stats or the server log at
-- debug5 is checked by scripts/checks/secrets.sh.)
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();

-------------------------------------------------------------- plain http: loopback addresses only
-- The host of an http:// URL is compared as an address, as libcurl parses
-- it: a name that merely starts like a loopback address is refused, even
-- for a superuser.
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.attacker.example/');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1.attacker.example:8080/api');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://localhost.attacker.example/');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://[::2]:8080/');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://128.0.0.1/');
\echo :LAST_ERROR_SQLSTATE
-- a URL libcurl cannot parse
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:99999/');
\echo :LAST_ERROR_SQLSTATE
-- any address in 127.0.0.0/8, ::1 however written, and localhost in any case
CREATE SERVER ps_http FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.1.2.3:8080/api');
ALTER SERVER ps_http OPTIONS (SET api_url 'http://[::1]/');
ALTER SERVER ps_http OPTIONS (SET api_url 'http://[0:0:0:0:0:0:0:1]:8080');
ALTER SERVER ps_http OPTIONS (SET api_url 'http://LocalHost:8080');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'ps_http';
DROP SERVER ps_http;

-------------------------------------------------------------- api_url is a superuser's choice
CREATE ROLE ps_owner;
CREATE ROLE ps_other;
GRANT USAGE ON FOREIGN DATA WRAPPER postscript_fdw TO ps_owner;
CREATE SCHEMA owned AUTHORIZATION ps_owner;
SET ROLE ps_owner;
-- a non-superuser cannot aim the database server at an internal host
CREATE SERVER ps_evil FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:5432/');
CREATE SERVER ps_evil FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'https://169.254.169.254/latest');
-- without api_url the server talks to https://api.postscript.io
CREATE SERVER ps_own FOREIGN DATA WRAPPER postscript_fdw;
ALTER SERVER ps_own OPTIONS (ADD api_url 'http://[::1]:8080/');
RESET ROLE;
-- a superuser may set it ...
ALTER SERVER ps_own OPTIONS (ADD api_url :'mock_url');
-- ... and the owner cannot change it afterwards
SET ROLE ps_owner;
ALTER SERVER ps_own OPTIONS (SET api_url 'http://127.0.0.2/');
RESET ROLE;
SELECT srvoptions = ARRAY['api_url=' || (SELECT url FROM mock.settings)] AS unchanged
  FROM pg_foreign_server WHERE srvname = 'ps_own';
-- dropping it is allowed: it points the server back at https://api.postscript.io
SET ROLE ps_owner;
ALTER SERVER ps_own OPTIONS (DROP api_url);
RESET ROLE;
ALTER SERVER ps_own OPTIONS (ADD api_url :'mock_url');
SET ROLE ps_owner;
-- the owner may change the other options of a server whose URL a superuser
-- set, and may use that URL (and no other) on a server of its own
ALTER SERVER ps_own OPTIONS (ADD request_timeout '10');
CREATE SERVER ps_own2 FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'mock_url');
DROP SERVER ps_own2;
-- the database server reads ca_file with its own permissions: a role that
-- may not read server files cannot name one ...
ALTER SERVER ps_own OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER SERVER ps_own OPTIONS (ADD ca_file 'ca.pem');
\echo :LAST_ERROR_SQLSTATE
-- ... a superuser can, and the owner may still change the other options
ALTER SERVER ps_own OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
SET ROLE ps_owner;
ALTER SERVER ps_own OPTIONS (SET request_timeout '20');
ALTER SERVER ps_own OPTIONS (SET ca_file '/etc/ssl/certs/other.pem');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER ps_own OPTIONS (DROP ca_file);
RESET ROLE;
-- so can a member of pg_read_server_files
GRANT pg_read_server_files TO ps_owner;
SET ROLE ps_owner;
ALTER SERVER ps_own OPTIONS (ADD ca_file '/etc/ssl/certs/other.pem');
ALTER SERVER ps_own OPTIONS (DROP ca_file);
RESET ROLE;
REVOKE pg_read_server_files FROM ps_owner;
SET ROLE ps_owner;
-------------------------------------------------------------- a missing user mapping
CREATE FOREIGN TABLE owned.keywords (id text, keyword text) SERVER ps_own
  OPTIONS (resource 'keywords');
SELECT count(*) FROM owned.keywords;
-- a write sent at commit is refused by its statement, not by COMMIT
CREATE FOREIGN TABLE owned.events (type text, email text) SERVER ps_own
  OPTIONS (resource 'events');
BEGIN;
INSERT INTO owned.events (type, email) VALUES ('order_placed', 'a@example.com');
ROLLBACK;
-- credentials are refused anywhere but in the mapping, with a hint
ALTER SERVER ps_own OPTIONS (ADD api_key 'sk_test_shop_key');
ALTER FOREIGN TABLE owned.keywords OPTIONS (ADD shop_token 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_own OPTIONS (api_key 'sk_test_shop_key');
SELECT count(*) > 0 AS reads FROM owned.keywords;
-- the mapping dropped after the INSERT: COMMIT fails on that write, unsent
-- (and the failed COMMIT rolls the DROP back)
BEGIN;
INSERT INTO owned.events (type, email) VALUES ('order_placed', 'a@example.com');
DROP USER MAPPING FOR CURRENT_USER SERVER ps_own;
COMMIT;
SELECT write, status, error FROM postscript_fdw_last_commit();
DROP FOREIGN TABLE owned.events;
RESET ROLE;
-- one request, the read after the mapping was made: nothing was sent without it
SELECT count(*) AS requests FROM mock.requests();
-- another role sees the mapping, not the key
GRANT USAGE ON SCHEMA owned TO ps_other;
GRANT SELECT ON owned.keywords TO ps_other;
SET ROLE ps_other;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'ps_own';
SELECT count(*) FROM owned.keywords;
RESET ROLE;

-------------------------------------------------------------- redirects are not followed
SELECT mock.reset();
SELECT mock.fault('{"kind": "status", "status": 302, "path": "/api/v2/keywords",
                    "headers": {"Location": "http://127.0.0.1:1/steal"}}');
SELECT count(*) FROM ps.keywords;
SELECT mock.fault('{"kind": "status", "status": 307, "path": "/api/v2/subscribers", "method": "POST",
                    "headers": {"Location": "http://127.0.0.1:1/steal"}}');
INSERT INTO ps.subscribers (phone_number) VALUES ('+15555550999');
-- one request each: the redirect was not followed, the POST not repeated
SELECT method, path, status FROM mock.requests();

-------------------------------------------------------------- hostile answers
-- each a clean error (or, where the value is valid, a row), never a crash
CREATE FUNCTION hostile(records bytea) RETURNS void LANGUAGE sql AS $$
  SELECT mock.fault(jsonb_build_object(
    'kind', 'body', 'path', '/api/v2/subscribers',
    'body_b64', encode(convert_to('{"page_info": {"page": 1, "total_pages": 1}, "subscribers": [', 'UTF8')
                       || records || convert_to(']}', 'UTF8'), 'base64')))
$$;
CREATE FUNCTION hostile(records text) RETURNS void LANGUAGE sql
  RETURN hostile(convert_to(records, 'UTF8'));
CREATE FOREIGN TABLE h_subscribers (id text, ps_id bigint, email text, tags text[],
  properties jsonb, created_at timestamptz, promotional_can_send boolean, raw jsonb)
  SERVER ps OPTIONS (resource 'subscribers');
SELECT mock.reset();
-- invalid UTF-8 in a string
SELECT hostile(convert_to('{"id": "s_1", "email": "a', 'UTF8') || '\xc328'::bytea
               || convert_to('@x.com"}', 'UTF8'));
SELECT id, email FROM h_subscribers;
-- a NUL character: text cannot hold it
SELECT hostile('{"id": "s_2", "email": "a\u0000b@x.com"}');
SELECT id, email FROM h_subscribers;
-- ... nor can jsonb
SELECT hostile('{"id": "s_3", "properties": {"k": "a\u0000b"}}');
SELECT id, properties FROM h_subscribers;
-- a lone surrogate escape: decoded to U+FFFD (as json-c did), valid UTF-8
SELECT hostile('{"id": "s_4", "email": "\ud800@x.com"}');
SELECT id, email FROM h_subscribers;
-- a number out of bigint's range
SELECT hostile('{"id": "s_5", "ps_id": 99999999999999999999999}');
SELECT id, ps_id FROM h_subscribers;
-- a fraction for a bigint
SELECT hostile('{"id": "s_6", "ps_id": 1.5}');
SELECT id, ps_id FROM h_subscribers;
-- a huge exponent in jsonb
SELECT hostile('{"id": "s_7", "properties": {"n": 1e999999}}');
SELECT id, properties FROM h_subscribers;
-- wrong JSON types for a column
SELECT hostile('{"id": "s_8", "tags": "vip"}');
SELECT id, tags FROM h_subscribers;
SELECT hostile('{"id": "s_9", "tags": [["nested"]]}');
SELECT id, tags FROM h_subscribers;
SELECT hostile('{"id": "s_10", "subscriptions": {"promotional": {"can_send": "yes please"}}}');
SELECT id, promotional_can_send FROM h_subscribers;
-- (a number in a timestamp column is read as Unix epoch seconds)
SELECT hostile('{"id": "s_11", "created_at": 1700000000}');
SELECT id, created_at FROM h_subscribers;
SELECT hostile('{"id": "s_12", "created_at": "2026-13-45T99:00:00"}');
SELECT id, created_at FROM h_subscribers;
SELECT hostile('{"id": {"nested": true}}');
SELECT id FROM h_subscribers;
-- a record that is not an object, and a records key that is not an array
SELECT hostile('42');
SELECT id FROM h_subscribers;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/subscribers",
                    "body": "{\"page_info\": {\"page\": 1, \"total_pages\": 1}, \"subscribers\": {\"id\": \"s\"}}"}');
SELECT id FROM h_subscribers;
-- not JSON at all, an empty body, and a JSON text that ends early
SELECT mock.fault('{"kind": "body", "path": "/api/v2/subscribers", "body": "<html>hello</html>"}');
SELECT id FROM h_subscribers;
SELECT mock.fault('{"kind": "body", "path": "/api/v2/subscribers", "body": ""}');
SELECT id FROM h_subscribers;
SELECT hostile('{"id": "s_13", "email": "x');
SELECT id FROM h_subscribers;
-- duplicate keys: the last one wins, as in jsonb
SELECT hostile('{"id": "s_14", "email": "first@x.com", "email": "last@x.com"}');
SELECT id, email FROM h_subscribers;
-- unicode that is valid survives intact
SELECT hostile('{"id": "s_15", "email": "\u00e9l\u00e8ve+\ud83d\ude00@x.com", "properties": {"note": "\u65e5\u672c"}}');
SELECT id, email, properties->>'note' AS note FROM h_subscribers;
-- a long value of 3-byte characters arrives in many chunks, characters cut
-- at their edges (the body is parsed as it arrives)
SELECT hostile('{"id": "s_16", "email": "' || repeat('日', 30000) || '@x.com"}');
SELECT id, length(email) AS chars, email = repeat('日', 30000) || '@x.com' AS intact
  FROM h_subscribers;
-- after all of it the session still works
SELECT count(*) = (SELECT count FROM mock.summary() WHERE resource = 'subscribers') AS complete
  FROM h_subscribers;

DROP FUNCTION hostile(text);
DROP FUNCTION hostile(bytea);
DROP FOREIGN TABLE h_subscribers;
DROP SCHEMA owned CASCADE;
DROP SERVER ps_own CASCADE;
DROP OWNED BY ps_owner, ps_other;
DROP ROLE ps_owner;
DROP ROLE ps_other;
