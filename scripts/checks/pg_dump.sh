#!/usr/bin/env bash
# pg_dump / pg_restore round trip of a database that uses postscript_fdw:
# the extension, a server with options, user mappings, imported foreign
# tables and a hand-made one with table and column options.  The restored
# database must have the same catalog entries (options of the server, the
# tables, the columns and the user mappings) and its tables must return the
# same rows from the local API server.  Also verifies what the README (pg_dump section)
# says about credentials: a whole-database dump holds the user mappings'
# api_key in clear text; restoring from a TOC list without the USER MAPPING
# entries, or dumping only schemas (-n), leaves them out.  The database also
# holds the campaign-analytics materialized views of
# examples/20_campaign_analytics.sql: a whole restore refreshes them from the
# API; a restore without user mappings must leave out their data entries too
# and refresh them once a mapping exists.
#
# Needs the test environment of scripts/test.sh: PGHOST/PGPORT/PGUSER of a
# running cluster (as a superuser), PS_MOCK_URL, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" pg_dump
src=ps_dump_src
dst=ps_dump_dst
dst2=ps_dump_nomap
reader=ps_dump_reader
drop_reader() { "$bindir/psql" -X -q -d postgres -c "DROP ROLE IF EXISTS $reader" 2>/dev/null; }
drop_reader
at_exit drop_reader
fresh_db $src
psqlc -d $src -v url="$PS_MOCK_URL" <<'SQL' || { echo "pg_dump: set-up failed"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
CREATE SERVER postscript FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url :'url', rate_limit '0', max_retries '2', page_size_estimate '50');
CREATE USER MAPPING FOR CURRENT_USER SERVER postscript OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR PUBLIC SERVER postscript OPTIONS (api_key 'sk_test_public_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript FROM SERVER postscript INTO ps;
CREATE FOREIGN TABLE public.vip (
  sid       text OPTIONS (field 'id'),
  mail      text OPTIONS (field 'email'),
  can_promo boolean OPTIONS (field 'subscriptions.promotional.can_send'),
  joined    timestamptz OPTIONS (field 'created_at')
) SERVER postscript
  OPTIONS (resource 'subscribers', endpoint '/api/v2/subscribers',
           records_key 'subscribers', pushdown 'true', batch_size '10');
COMMENT ON FOREIGN TABLE public.vip IS 'hand-made table over subscribers';
SQL

# the campaign-analytics materialized views over ps.campaigns (and the
# example's incremental sync), as a user of the example has them
psqlc -d $src -f "$(dirname "$0")/../../examples/20_campaign_analytics.sql" >/dev/null \
	|| { echo "pg_dump: examples/20_campaign_analytics.sql failed"; exit 1; }

# what the materialized views hold
views() {
	psqlc -d "$1" <<'SQL'
SELECT 'campaign_analytics', count(*), md5(string_agg(a::text, ',' ORDER BY campaign_id COLLATE "C"))
  FROM campaign_analytics a
UNION ALL
SELECT 'campaign_analytics_monthly', count(*), md5(string_agg(m::text, ',' ORDER BY month))
  FROM campaign_analytics_monthly m;
SQL
}

# every catalog entry the FDW's objects consist of, as sorted text; options
# sorted too (pg_dump writes them in name order)
catalog() {
	psqlc -d "$1" <<'SQL'
CREATE FUNCTION pg_temp.opts(text[]) RETURNS text LANGUAGE sql
  RETURN (SELECT string_agg(o, ',' ORDER BY o) FROM unnest($1) o);
SELECT 'extension', extname || ' ' || extversion FROM pg_extension WHERE extname = 'postscript_fdw'
UNION ALL
SELECT 'wrapper', fdwname || ' ' || fdwhandler::regproc || ' ' || fdwvalidator::regproc
  FROM pg_foreign_data_wrapper
UNION ALL
SELECT 'server', srvname || ' ' || pg_temp.opts(srvoptions) FROM pg_foreign_server
UNION ALL
SELECT 'user mapping', usename || ' ' || srvname || ' ' || pg_temp.opts(umoptions)
  FROM pg_user_mappings
UNION ALL
SELECT 'table', c.oid::regclass || ' ' || s.srvname || ' ' || pg_temp.opts(ft.ftoptions)
       || ' ' || coalesce(obj_description(c.oid, 'pg_class'), '')
  FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
  JOIN pg_foreign_server s ON s.oid = ft.ftserver
UNION ALL
SELECT 'column', a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || coalesce(pg_temp.opts(a.attfdwoptions), '')
  FROM pg_attribute a JOIN pg_foreign_table ft ON ft.ftrelid = a.attrelid
 WHERE a.attnum > 0 AND NOT a.attisdropped
ORDER BY 1, 2;
SQL
}

# what the tables return
rows() {
	psqlc -d "$1" <<'SQL'
SELECT 'subscribers', count(*), md5(string_agg(id || ':' || coalesce(email, ''), ',' ORDER BY id COLLATE "C"))
  FROM ps.subscribers
UNION ALL
SELECT 'campaigns', count(*), md5(string_agg(id || ':' || coalesce(revenue::text, ''), ',' ORDER BY id COLLATE "C"))
  FROM ps.campaigns
UNION ALL
SELECT 'keywords', count(*), md5(string_agg(id, ',' ORDER BY id COLLATE "C")) FROM ps.keywords
UNION ALL
SELECT 'vip', count(*), md5(string_agg(sid || ':' || coalesce(mail, '') || ':' || can_promo || ':' || joined,
                                       ',' ORDER BY sid COLLATE "C"))
  FROM public.vip WHERE can_promo;
SQL
}

catalog $src >"$work/src.catalog" || problem "reading the catalog of $src failed"
rows $src >"$work/src.rows" || problem "reading the tables of $src failed"
grep -q '^server|postscript api_url=' "$work/src.catalog" || problem "set-up incomplete: $(cat "$work/src.catalog")"
grep -q '^column|vip.can_promo boolean field=subscriptions.promotional.can_send$' "$work/src.catalog" \
	|| problem "column options not in the catalog query's output"
[ "$(grep -c '^user mapping|' "$work/src.catalog")" = 2 ] || problem "expected two user mappings"
grep -q '^subscribers|[1-9]' "$work/src.rows" || problem "no subscribers read in $src"
views $src >"$work/src.views" || problem "reading the materialized views of $src failed"
grep -q '^campaign_analytics|[1-9]' "$work/src.views" || problem "no rows in campaign_analytics of $src"

# the round trip
"$bindir/pg_dump" -Fc -f "$work/db.dump" $src || problem "pg_dump failed"
fresh_db $dst
"$bindir/pg_restore" --exit-on-error -d $dst "$work/db.dump" || problem "pg_restore failed"
catalog $dst >"$work/dst.catalog" || problem "reading the catalog of $dst failed"
rows $dst >"$work/dst.rows" || problem "reading the restored tables failed"
diff -u "$work/src.catalog" "$work/dst.catalog" >"$work/catalog.diff" \
	|| problem "catalogs differ after restore:"$'\n'"$(cat "$work/catalog.diff")"
diff -u "$work/src.rows" "$work/dst.rows" >"$work/rows.diff" \
	|| problem "restored tables return other rows:"$'\n'"$(cat "$work/rows.diff")"
# the restore refreshed the materialized views from the API (their data
# entries come after the user mappings), and a concurrent refresh works
[ "$(views $dst)" = "$(cat "$work/src.views")" ] || problem "restored materialized views hold other rows"
psqlc -d $dst -c 'REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics' \
	-c 'REFRESH MATERIALIZED VIEW CONCURRENTLY campaign_analytics_monthly' \
	|| problem "REFRESH MATERIALIZED VIEW CONCURRENTLY after restore failed"

# credentials: the archive holds them in clear text ...
"$bindir/pg_restore" -f "$work/db.sql" "$work/db.dump" || problem "pg_restore -f failed"
grep -q "CREATE USER MAPPING FOR postgres SERVER postscript OPTIONS (" "$work/db.sql" \
	|| problem "no CREATE USER MAPPING in the dump"
grep -q "api_key 'sk_test_shop_key'" "$work/db.sql" \
	|| problem "the dump does not hold the api_key in clear text (the README (pg_dump section) says it does)"

# ... a restore from a TOC list without the USER MAPPING entries has none ...
"$bindir/pg_restore" -l "$work/db.dump" >"$work/toc.all" || problem "pg_restore -l failed"
[ "$(grep -c ' USER MAPPING ' "$work/toc.all")" = 2 ] \
	|| problem "expected two USER MAPPING entries in the archive's TOC"
# without a mapping the materialized views cannot be refreshed during the
# restore: their data entries are left out too, and refreshed afterwards
grep -v -e ' USER MAPPING ' -e ' MATERIALIZED VIEW DATA ' "$work/toc.all" >"$work/toc.nomap"
[ "$(grep -c ' MATERIALIZED VIEW DATA ' "$work/toc.all")" = 2 ] \
	|| problem "expected two MATERIALIZED VIEW DATA entries in the archive's TOC"
fresh_db $dst2
"$bindir/pg_restore" --exit-on-error -L "$work/toc.nomap" -d $dst2 "$work/db.dump" \
	|| problem "pg_restore -L without user mappings failed"
grep -v '^user mapping|' "$work/src.catalog" >"$work/src.nomap"
catalog $dst2 >"$work/dst2.catalog"
diff -u "$work/src.nomap" "$work/dst2.catalog" >"$work/nomap.diff" \
	|| problem "restore without user mappings: catalog differs beyond the mappings:"$'\n'"$(cat "$work/nomap.diff")"
# ... so reading fails until a mapping is created, then works
out=$(psqlc -d $dst2 -c 'SELECT count(*) FROM ps.keywords' 2>&1) \
	&& problem "a restore without user mappings could still read: $out"
grep -qi 'user mapping' <<<"$out" || problem "unexpected error without a user mapping: $out"
psqlc -d $dst2 -c "CREATE USER MAPPING FOR CURRENT_USER SERVER postscript OPTIONS (api_key 'sk_test_shop_key')" \
	|| problem "creating the user mapping after restore failed"
[ "$(rows $dst2)" = "$(cat "$work/src.rows")" ] || problem "after a new user mapping the tables return other rows"
out=$(psqlc -d $dst2 -c 'SELECT count(*) FROM campaign_analytics' 2>&1) \
	&& problem "a materialized view restored without its data could be read: $out"
grep -q 'has not been populated' <<<"$out" || problem "unexpected error from an unpopulated view: $out"
psqlc -d $dst2 -c 'REFRESH MATERIALIZED VIEW campaign_analytics' \
	-c 'REFRESH MATERIALIZED VIEW campaign_analytics_monthly' \
	|| problem "refreshing the materialized views after the restore failed"
[ "$(views $dst2)" = "$(cat "$work/src.views")" ] || problem "materialized views refreshed after restore hold other rows"

# ... and a dump of schemas only (-n) holds neither the server nor any mapping
"$bindir/pg_dump" -n ps -f "$work/schema.sql" $src || problem "pg_dump -n failed"
grep -q 'CREATE FOREIGN TABLE ps.subscribers' "$work/schema.sql" || problem "pg_dump -n ps has no foreign tables"
grep -qE 'USER MAPPING|CREATE SERVER|sk_test' "$work/schema.sql" \
	&& problem "pg_dump -n ps holds a server, a user mapping or a key"

# ... and a role that neither owns the server nor is a superuser dumps the
# mappings without their options (pg_user_mappings hides them from it)
psqlc -d $src <<SQL || problem "creating the role $reader failed"
CREATE ROLE $reader LOGIN;
GRANT USAGE ON SCHEMA ps TO $reader;
GRANT SELECT ON ALL TABLES IN SCHEMA ps, public TO $reader;
SQL
"$bindir/pg_dump" -U $reader -f "$work/reader.sql" $src || problem "pg_dump as $reader failed"
grep -q 'CREATE USER MAPPING FOR postgres SERVER postscript;' "$work/reader.sql" \
	|| problem "pg_dump as $reader: no user mapping without options"
grep -qE "sk_test|api_key" "$work/reader.sql" && problem "pg_dump as $reader holds a key"

[ $status = 0 ] && echo "pg_dump: round trip ok ($(wc -l <"$work/src.catalog") catalog entries, $(wc -l <"$work/src.rows") tables compared)"
exit $status
