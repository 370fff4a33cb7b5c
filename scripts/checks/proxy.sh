#!/usr/bin/env bash
# An outbound HTTP proxy, as the README ("Outbound proxy") says it is set: in
# the environment of the PostgreSQL server.  A cluster of its own starts with
# http_proxy pointing at a recording proxy on loopback (which passes requests
# on to the local API server) and no_proxy=localhost:
#   - a server whose api_url is http://127.0.0.1:PORT reads its rows through
#     the proxy: the proxy sees the request in absolute form, with the key;
#   - one whose api_url is http://localhost:PORT (no_proxy) goes direct: the
#     proxy sees nothing of it;
#   - both give the same rows.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, root or
# the postgres OS user); starts and stops its own cluster.
. "$(dirname "$0")/../checklib.sh" proxy
. "$(dirname "$0")/../lib.sh"
chmod 755 "$work"
mock_port=${PS_MOCK_URL##*:}

# the proxy: every request it is sent, in one line each, to proxy.log
cat >"$work/proxy.py" <<'PY'
import http.client, http.server, sys, urllib.parse
log = open(sys.argv[3], "a", buffering=1)
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        log.write("%s %s key=%s\n" % (self.command, self.path,
                  "yes" if self.headers.get("Authorization") else "no"))
        u = urllib.parse.urlsplit(self.path)
        up = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]), timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "host")}
        up.request(self.command, u.path + ("?" + u.query if u.query else ""), body or None, headers)
        r = up.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        up.close()
    do_GET = do_POST = do_PATCH = do_DELETE = relay
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$work/proxy.py" "$work/proxy.port" "$mock_port" "$work/proxy.log" 2>"$work/proxy.err" &
proxy_pid=$!
at_exit "kill $proxy_pid 2>/dev/null"
wait_for "the proxy to listen" 120 test -s "$work/proxy.port" || exit 1
proxy_port=$(cat "$work/proxy.port")

# the cluster, its server processes given the proxy in their environment
PS_WORK=$work/cluster
mkdir -p "$PS_WORK"
at_exit 'ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -m immediate stop >/dev/null 2>&1'
(
	export http_proxy=http://127.0.0.1:$proxy_port no_proxy=localhost
	unset NO_PROXY HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
	ps_start_cluster
	env | grep -E '^(PGHOST|PGPORT|PGUSER)=' >"$work/cluster.env"
) >/dev/null 2>&1 || { problem "could not start a cluster"; exit 1; }
. "$work/cluster.env"
export PGHOST PGPORT PGUSER
db=postgres

psqlc >/dev/null <<SQL || { problem "set-up failed"; exit 1; }
SET client_min_messages = warning;
CREATE EXTENSION postscript_fdw;
CREATE SERVER via_proxy FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://127.0.0.1:$mock_port', rate_limit '0');
CREATE SERVER direct FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'http://localhost:$mock_port', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER via_proxy OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER direct OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA via_proxy;
CREATE SCHEMA direct;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER via_proxy INTO via_proxy;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER direct INTO direct;
SQL

rows() { psqlc -c "SELECT count(*) || ' ' || md5(string_agg(k::text, ',' ORDER BY id)) FROM $1.keywords k"; }
via=$(rows via_proxy) || problem "reading through the proxy failed"
[ "$(grep -c "^GET http://127.0.0.1:$mock_port/api/v2/keywords" "$work/proxy.log")" -ge 1 ] \
	|| problem "the proxy saw no request for the keywords of http://127.0.0.1:$mock_port"
grep -q "^GET http://127.0.0.1:$mock_port/api/v2/keywords.* key=yes$" "$work/proxy.log" \
	|| problem "the request through the proxy carried no Authorization header"
before=$(wc -l <"$work/proxy.log")
dir=$(rows direct) || problem "reading directly failed"
[ "$(wc -l <"$work/proxy.log")" = "$before" ] \
	|| problem "a request to localhost, which no_proxy names, went through the proxy"
[ -n "$via" ] && [ "$via" = "$dir" ] \
	|| problem "through the proxy: '$via', directly: '$dir'"
printf 'proxy: %s keyword rows through the proxy (%s request(s) seen), the same directly\n' \
	"${via%% *}" "$before"
exit $status
