--
-- Both authentication schemes: a shop key alone, a partner key with the
-- shop's token; the server's log shows which headers arrived (never values)
--
\getenv mock_url PS_MOCK_URL
SELECT mock.reset();
SELECT resource_type FROM ps.shop;

CREATE SERVER ps_partner FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_partner
  OPTIONS (api_key 'sk_partner_test_key', shop_token 'sk_test_shop_key');
CREATE SCHEMA partner;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (shop, keywords) FROM SERVER ps_partner INTO partner;
SELECT resource_type FROM partner.shop;
SELECT count(*) = (SELECT count FROM mock.summary() WHERE resource = 'keywords') AS complete
  FROM partner.keywords;
-- the shop key alone: Authorization; the partner: both headers
SELECT method, path, auth, headers, status FROM mock.requests();

-- a mapping for PUBLIC serves every role
CREATE ROLE ps_reader;
GRANT USAGE ON SCHEMA partner, mock TO ps_reader;
GRANT SELECT ON partner.shop TO ps_reader;
DROP USER MAPPING FOR CURRENT_USER SERVER ps_partner;
CREATE USER MAPPING FOR PUBLIC SERVER ps_partner
  OPTIONS (api_key 'sk_partner_test_key', shop_token 'sk_test_shop_key');
SET ROLE ps_reader;
SELECT resource_type FROM partner.shop;
RESET ROLE;

-- changing the mapping takes effect in the same session
ALTER USER MAPPING FOR PUBLIC SERVER ps_partner OPTIONS (SET shop_token 'sk_wrong');
SELECT resource_type FROM partner.shop;

-- a role without any mapping
DROP USER MAPPING FOR PUBLIC SERVER ps_partner;
SET ROLE ps_reader;
SELECT resource_type FROM partner.shop;
RESET ROLE;

DROP SCHEMA partner CASCADE;
DROP SERVER ps_partner CASCADE;
REVOKE ALL ON SCHEMA mock FROM ps_reader;
DROP ROLE ps_reader;
