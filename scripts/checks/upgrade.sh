#!/usr/bin/env bash
# The extension's update path and its packaging metadata.
#   1. The installed control file's default_version is newer than 1.0 and an
#      update path 1.0 -> default exists (no newer version: FAIL, not skip).
#   2. CREATE EXTENSION postscript_fdw VERSION '1.0' makes exactly the 1.0
#      objects (handler, validator, wrapper); foreign tables created then read.
#   3. ALTER EXTENSION postscript_fdw UPDATE reaches the default version, adds
#      objects (among them the function postscript_fdw_stats), keeps every
#      1.0 object, and the tables created under 1.0 still read the same rows.
#   4. The updated extension has the same objects as a fresh CREATE
#      EXTENSION at the default version (same signatures and properties).
#   5. META.json is well-formed PGXN metadata whose versions agree with the
#      control file.
#
# Needs the test environment of scripts/test.sh: PGHOST/PGPORT/PGUSER of a
# running cluster (as a superuser) on which the extension is installed,
# PS_MOCK_URL, PG_CONFIG.
. "$(dirname "$0")/../checklib.sh" upgrade
cd "$(dirname "$0")/../.." || exit 1
old=ps_upgrade_old
new=ps_upgrade_new

# 1. a version to update to
control="$("$PG_CONFIG" --sharedir)/extension/postscript_fdw.control"
default=$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" "$control")
[ -n "$default" ] || { problem "no default_version in $control"; exit 1; }
[ "$default" != 1.0 ] || problem "default_version is still 1.0: there is no update to test (postscript_fdw--1.0--1.1.sql missing?)"

fresh_db $old $new

path=$(psqlc -d $old -c "SELECT path FROM pg_extension_update_paths('postscript_fdw')
                          WHERE source = '1.0' AND target = '$default'")
[ -n "$path" ] || problem "no update path from 1.0 to $default"

# the objects of the extension, with what matters of each, one per line
members() {
	psqlc -d "$1" <<'SQL'
SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
       || CASE WHEN d.classid = 'pg_proc'::regclass THEN
            (SELECT ' returns ' || pg_get_function_result(p.oid) || ' ' || p.prokind::text || p.provolatile::text
                    || p.proparallel::text || CASE WHEN p.proisstrict THEN ' strict' ELSE '' END
                    || CASE WHEN p.prosecdef THEN ' secdef' ELSE '' END
                    || ' ' || l.lanname || ' acl=' || coalesce(p.proacl::text, '')
               FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = d.objid)
          WHEN d.classid = 'pg_class'::regclass THEN
            (SELECT ' ' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '')
                    || coalesce(' ' || pg_get_viewdef(c.oid), '')
               FROM pg_class c WHERE c.oid = d.objid)
          WHEN d.classid = 'pg_foreign_data_wrapper'::regclass THEN
            (SELECT ' ' || fdwhandler::regproc || ' ' || fdwvalidator::regproc
                    || ' ' || coalesce(obj_description(w.oid, 'pg_foreign_data_wrapper'), '')
               FROM pg_foreign_data_wrapper w WHERE w.oid = d.objid)
          ELSE '' END
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'postscript_fdw')
   AND d.deptype = 'e'
 ORDER BY 1;
SQL
}
members_sorted() { members "$1" | LC_ALL=C sort; }

rows() {
	psqlc -d $old <<'SQL'
SELECT 'subscribers', count(*), md5(string_agg(id || ':' || updated_at, ',' ORDER BY id COLLATE "C"))
  FROM ps.subscribers
UNION ALL
SELECT 'campaigns', count(*), md5(string_agg(id || ':' || coalesce(revenue::text, ''), ',' ORDER BY id COLLATE "C"))
  FROM ps.campaigns
UNION ALL
SELECT 'shop', count(*), string_agg(resource_type, ',') FROM ps.shop;
SQL
}

# 2. version 1.0, and tables created under it
psqlc -d $old -v url="$PS_MOCK_URL" <<'SQL' || problem "set-up at version 1.0 failed"
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw VERSION '1.0';
CREATE SERVER postscript FOREIGN DATA WRAPPER postscript_fdw OPTIONS (api_url :'url', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER postscript OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA ps;
IMPORT FOREIGN SCHEMA postscript FROM SERVER postscript INTO ps;
SQL
[ "$(psqlc -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'postscript_fdw'")" = 1.0 ] \
	|| problem "CREATE EXTENSION ... VERSION '1.0' did not install 1.0"
members_sorted $old >$work/v10
sed -E 's/ returns .*| postscript_fdw_handler .*//' $work/v10 >$work/v10names
printf '%s\n' 'foreign-data wrapper postscript_fdw' 'function postscript_fdw_handler()' \
	'function postscript_fdw_validator(text[],oid)' >$work/want10
diff -u $work/want10 $work/v10names >/dev/null \
	|| problem "version 1.0 has other objects: $(tr '\n' ';' <$work/v10names)"
before=$(rows) || problem "reading under version 1.0 failed"
grep -q '^subscribers|[1-9]' <<<"$before" || problem "no subscribers read under 1.0: $before"

# 3. the update
psqlc -d $old -c 'ALTER EXTENSION postscript_fdw UPDATE' || problem "ALTER EXTENSION postscript_fdw UPDATE failed"
version=$(psqlc -d $old -c "SELECT extversion FROM pg_extension WHERE extname = 'postscript_fdw'")
[ "$version" = "$default" ] || problem "after UPDATE the version is $version, not $default"
members_sorted $old >$work/updated
added=$(LC_ALL=C comm -13 $work/v10 $work/updated)
lost=$(LC_ALL=C comm -23 $work/v10 $work/updated)
[ -n "$added" ] || problem "the update added no object"
[ -z "$lost" ] || problem "the update dropped or changed 1.0 objects: $lost"
grep -q '^function postscript_fdw_stats(' <<<"$added" \
	|| problem "the update did not add the function postscript_fdw_stats (added: ${added:-nothing})"
after=$(rows) || problem "reading after the update failed"
[ "$before" = "$after" ] || problem "tables created under 1.0 read other rows after the update: $before / $after"

# 4. updated == installed fresh
psqlc -d $new -c 'CREATE EXTENSION postscript_fdw' || problem "CREATE EXTENSION at the default version failed"
members_sorted $new >$work/fresh
diff -u $work/fresh $work/updated >$work/diff \
	|| problem "1.0 + UPDATE differs from a fresh install of $default:"$'\n'"$(cat $work/diff)"

# 5. META.json
python3 - "$default" <<'EOF' || status=1
import json
import os
import re
import sys

default = sys.argv[1]
problems = []
try:
    with open("META.json", encoding="utf-8") as f:
        meta = json.load(f)
except (OSError, ValueError) as e:
    print("upgrade: META.json is not well-formed JSON: %s" % e)
    sys.exit(1)

semver = re.compile(r"^\d+\.\d+\.\d+$")
# PGXN Meta Spec 1.0.0: required keys
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    if key not in meta:
        problems.append("META.json lacks the required key %r" % key)
if meta.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("META.json meta-spec version is not 1.0.0")
if meta.get("name") != "postscript_fdw":
    problems.append("META.json name is not postscript_fdw")
version = meta.get("version", "")
if not semver.match(version):
    problems.append("META.json version %r is not a semantic version" % version)
# the control file's 1.2 is the distribution's 1.2.0
if version.rsplit(".", 1)[0] != default:
    problems.append("META.json version %s does not match default_version %s" % (version, default))
licenses = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd",
            "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit",
            "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay",
            "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown"}
lic = meta.get("license")
if not (lic in licenses or isinstance(lic, dict) or
        (isinstance(lic, list) and all(x in licenses for x in lic))):
    problems.append("META.json license %r is not a PGXN license string" % (lic,))
maint = meta.get("maintainer")
if not (isinstance(maint, str) and maint or isinstance(maint, list) and maint):
    problems.append("META.json maintainer must be a string or a non-empty list")
ext = meta.get("provides", {}).get("postscript_fdw")
if not isinstance(ext, dict):
    problems.append("META.json provides no postscript_fdw")
else:
    if ext.get("version") != version:
        problems.append("META.json provides.postscript_fdw.version %r differs from %r"
                        % (ext.get("version"), version))
    for key in ("file", "docfile"):
        if key in ext and not os.path.exists(ext[key]):
            problems.append("META.json provides.postscript_fdw.%s %s does not exist" % (key, ext[key]))
    if "file" not in ext:
        problems.append("META.json provides.postscript_fdw has no file")
pg = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
if not pg or not semver.match(pg) or not pg.startswith("15."):
    problems.append("META.json prereqs.runtime.requires.PostgreSQL should be 15.x.y, is %r" % (pg,))
for p in problems:
    print("upgrade: " + p)
sys.exit(1 if problems else 0)
EOF

[ $status = 0 ] && echo "upgrade: 1.0 -> $default ok, META.json ok"
exit $status
