#!/usr/bin/env bash
# No secret in any output: the API key, the partner key and the shop token
# of the user mappings must not appear in anything that succeeding and
# failing queries produce: query results, errors, notices, EXPLAIN (VERBOSE,
# ANALYZE), postscript_fdw_stats(), the catalog as seen by another role, and
# the server log with log_min_messages = debug5 and verbose error fields.
#
# The mappings are made first, at the default log level (PostgreSQL logs no
# successful DDL); everything after runs at debug5.  The check also proves it
# looked: the log has DEBUG lines and the expected errors, and the grep finds
# the keys in the file that made the mappings.
#
# Needs the environment of scripts/test.sh: PGHOST/PGPORT/PGUSER (a
# superuser), PS_MOCK_URL (the local server, started with its default keys),
# PS_PG_LOG, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" secrets
: "${PS_PG_LOG:?}"
chmod 755 "$work"
at_exit '"$bindir/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS ps_secret_other" 2>/dev/null'
db=ps_secrets

SHOP_KEY=sk_test_shop_key
PARTNER_KEY=sk_partner_test_key
WRONG_KEY=sk_live_wrong_Secret_7f3a9c
WRONG_TOKEN=sk_shop_wrong_Token_51e0b2
SECRETS="$SHOP_KEY $PARTNER_KEY $WRONG_KEY $WRONG_TOKEN"

fresh_db $db
admin POST /__admin/reset >/dev/null

cat >"$work/setup.sql" <<SQL
CREATE EXTENSION postscript_fdw;
CREATE SERVER ps_ok FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_ok OPTIONS (api_key '$SHOP_KEY');
CREATE SERVER ps_bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_bad OPTIONS (api_key '$WRONG_KEY');
CREATE SERVER ps_partner FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_partner OPTIONS (api_key '$PARTNER_KEY', shop_token '$SHOP_KEY');
CREATE SERVER ps_partner_bad FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url '$PS_MOCK_URL');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_partner_bad OPTIONS (api_key '$PARTNER_KEY', shop_token '$WRONG_TOKEN');
CREATE SERVER ps_down FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url 'http://127.0.0.1:1', max_retries '1', max_retry_wait '0.2');
CREATE USER MAPPING FOR CURRENT_USER SERVER ps_down OPTIONS (api_key '$SHOP_KEY');
CREATE SCHEMA ok; CREATE SCHEMA bad; CREATE SCHEMA partner; CREATE SCHEMA partner_bad; CREATE SCHEMA down;
IMPORT FOREIGN SCHEMA postscript FROM SERVER ps_ok INTO ok;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (shop, keywords) FROM SERVER ps_bad INTO bad;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (shop, keywords) FROM SERVER ps_partner INTO partner;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (shop) FROM SERVER ps_partner_bad INTO partner_bad;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (shop) FROM SERVER ps_down INTO down;
CREATE ROLE ps_secret_other;
GRANT USAGE ON SCHEMA ok TO ps_secret_other;
SQL
"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d $db -f "$work/setup.sql" >"$work/setup.out" 2>&1 \
	|| { cat "$work/setup.out"; exit 1; }

logstart=$(($(stat -c %s "$PS_PG_LOG") + 1))
fault() { printf "\\\\! curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary '%s' %s/__admin/faults\n" "$1" "$PS_MOCK_URL"; }
{
	cat <<SQL
SET client_min_messages = debug5;
SET log_min_messages = debug5;
SET log_error_verbosity = verbose;
\\set VERBOSITY verbose
\\set SHOW_CONTEXT always
SELECT * FROM ok.shop;
SELECT count(*) FROM ok.keywords;
SELECT * FROM ok.subscribers WHERE email = 'nobody+x@example.com';
SELECT id FROM ok.subscribers ORDER BY updated_at DESC LIMIT 3;
EXPLAIN (VERBOSE) SELECT * FROM ok.subscribers WHERE email = 'a+b@x.com';
EXPLAIN (ANALYZE, VERBOSE) SELECT * FROM ok.keywords;
SELECT * FROM bad.shop;
SELECT count(*) FROM bad.keywords;
SELECT * FROM partner.shop;
SELECT count(*) FROM partner.keywords;
SELECT * FROM partner_bad.shop;
SELECT * FROM down.shop;
INSERT INTO ok.subscribers (phone_number, email) VALUES ('not a phone', 'x@y.com');
INSERT INTO ok.subscribers (phone_number, email) VALUES ('+1 555 555 0142', 'secret-test@example.com') RETURNING *;
INSERT INTO ok.subscribers (phone_number, email) VALUES ('+1 555 555 0142', 'secret-test@example.com');
SQL
	fault '{"kind": "status", "status": 500, "path": "/api/v2/keywords", "count": 5}'
	echo "SELECT count(*) FROM ok.keywords;"
	fault '{"kind": "status", "status": 429, "path": "/api/v2/keywords", "count": 2}'
	echo "SELECT count(*) FROM ok.keywords;"
	fault '{"kind": "status", "status": 403, "path": "/api/v2/me"}'
	echo "SELECT * FROM ok.shop;"
	fault '{"kind": "malformed", "path": "/api/v2/me"}'
	echo "SELECT * FROM ok.shop;"
	cat <<SQL
SELECT * FROM postscript_fdw_stats();
SELECT * FROM pg_foreign_server;
SET ROLE ps_secret_other;
SELECT * FROM pg_user_mappings;
SELECT count(*) FROM ok.keywords;
RESET ROLE;
SQL
} >"$work/session.sql"
"$bindir/psql" -X -d $db -f "$work/session.sql" >"$work/session.out" 2>&1
sleep 1
tail -c +"$logstart" "$PS_PG_LOG" >"$work/server.log"

# the check looked where it says
for s in $SECRETS; do
	grep -q -- "$s" "$work/setup.sql" || problem "the pattern $s is not even in the setup script"
done
[ "$(grep -c 'DEBUG:' "$work/server.log")" -gt 20 ] || problem "the server log has no DEBUG lines: log_min_messages = debug5 did not apply"
for e in 'status 401\|HTTP 401' 'HTTP 403' 'could not connect' 'invalid phone number' 'HTTP 500' 'malformed'; do
	grep -q -- "$e" "$work/session.out" || problem "the session did not produce an error matching \"$e\""
done
grep -q 'Postscript Request' "$work/session.out" || problem "EXPLAIN output missing"
grep -q 'ps_ok' "$work/session.out" || problem "stats output missing"
grep -q 'postscript_fdw: GET /api/v2/keywords' "$work/server.log" || problem "the FDW's DEBUG1 request lines are missing"

# and found nothing
for s in $SECRETS; do
	for f in session.out server.log; do
		if grep -n -- "$s" "$work/$f" >"$work/hits"; then
			problem "$s appears in $f:"
			head -n 5 "$work/hits"
		fi
	done
done
# nor a Bearer header, anywhere
grep -n 'Bearer \|X-Postscript-Shop-Token:' "$work/session.out" "$work/server.log" && problem "an auth header appears"
[ "$status" = 0 ] && printf 'secrets: %d lines of output and %d lines of server log at debug5, no secret\n' \
	"$(wc -l <"$work/session.out")" "$(wc -l <"$work/server.log")"
exit $status
