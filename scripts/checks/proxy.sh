#!/usr/bin/env bash
# An outbound proxy, as the README ("Through an outbound proxy") says it is
# set: in the environment of the PostgreSQL server.  A cluster of its own
# starts with http_proxy and https_proxy pointing at a recording proxy on
# loopback and no_proxy=localhost.  The proxy passes plain requests on to the
# local API server, and tunnels CONNECT to a TLS front of it that holds a
# certificate for api.postscript.test (a name that resolves nowhere) from a
# CA made here, given to the server as ca_file:
#   - api_url http://127.0.0.1:PORT reads its rows through the proxy: the
#     proxy sees the request in absolute form, with the key;
#   - api_url http://localhost:PORT (named by no_proxy) goes direct: the
#     proxy sees nothing of it;
#   - api_url https://api.postscript.test reads through a CONNECT tunnel: the
#     proxy sees the host name and port, and no request or key of it;
#   - all three give the same rows;
#   - a ca_file that does not exist fails the first request, not the ALTER.
#
# Needs the environment of scripts/test.sh (PS_MOCK_URL, PG_CONFIG, root or
# the postgres OS user); installs openssl; starts and stops its own cluster.
. "$(dirname "$0")/../checklib.sh" proxy
. "$(dirname "$0")/../lib.sh"
chmod 755 "$work"
mock_port=${PS_MOCK_URL##*:}
host=api.postscript.test
ps_apt_install openssl

# a CA and a certificate for $host
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=postscript_fdw proxy check CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" &&
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=$host" -keyout "$work/tls.key" -out "$work/tls.csr" &&
	printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$host" \
		>"$work/tls.ext" &&
	openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
		-CAcreateserial -days 2 -extfile "$work/tls.ext" -out "$work/tls.pem"
} >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log"; problem "could not make the certificates"; exit 1; }
chmod 644 "$work"/*.pem

# The proxy (plain requests in absolute form, CONNECT tunnels), and with a
# certificate the TLS front: each writes every request line it is sent,
# one a line, to its log; both pass requests on to the local API server.
cat >"$work/relay.py" <<'PY'
import http.client, http.server, select, socket, ssl, sys, urllib.parse
portfile, mock_port, logname, tunnel_to = sys.argv[1:5]
cert = sys.argv[5:7]
log = open(logname, "a", buffering=1)
class Relay(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        log.write("%s %s key=%s\n" % (self.command, self.path,
                  "yes" if self.headers.get("Authorization") else "no"))
        u = urllib.parse.urlsplit(self.path)
        up = http.client.HTTPConnection("127.0.0.1", int(mock_port), timeout=60)
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
    def do_CONNECT(self):
        log.write("CONNECT %s key=%s\n" % (self.path,
                  "yes" if self.headers.get("Authorization") else "no"))
        up = socket.create_connection(("127.0.0.1", int(open(tunnel_to).read())), timeout=60)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        ends = [self.connection, up]
        while True:
            ready = select.select(ends, [], [], 60)[0]
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    up.close()
                    self.close_connection = True
                    return
                (up if s is self.connection else self.connection).sendall(data)
    def log_message(self, *args):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
if cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(portfile, "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$work/relay.py" "$work/tls.port" "$mock_port" "$work/tls.log" /dev/null \
	"$work/tls.pem" "$work/tls.key" 2>"$work/tls.err" &
at_exit "kill $! 2>/dev/null"
python3 "$work/relay.py" "$work/proxy.port" "$mock_port" "$work/proxy.log" "$work/tls.port" \
	2>"$work/proxy.err" &
at_exit "kill $! 2>/dev/null"
wait_for "the proxy and the TLS front to listen" 120 \
	eval 'test -s "$work/proxy.port" && test -s "$work/tls.port"' || exit 1
proxy_port=$(cat "$work/proxy.port")

# the cluster, its server processes given the proxy in their environment
PS_WORK=$work/cluster
mkdir -p "$PS_WORK"
at_exit 'ps_as_postgres "$bindir/pg_ctl" -D "$PS_WORK/data" -m immediate stop >/dev/null 2>&1'
(
	export http_proxy=http://127.0.0.1:$proxy_port https_proxy=http://127.0.0.1:$proxy_port \
		no_proxy=localhost
	unset NO_PROXY HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
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
CREATE SERVER tunnel FOREIGN DATA WRAPPER postscript_fdw
  OPTIONS (api_url 'https://$host', ca_file '$work/ca.pem', rate_limit '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER via_proxy OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER direct OPTIONS (api_key 'sk_test_shop_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER tunnel OPTIONS (api_key 'sk_test_shop_key');
CREATE SCHEMA via_proxy;
CREATE SCHEMA direct;
CREATE SCHEMA tunnel;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER via_proxy INTO via_proxy;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER direct INTO direct;
IMPORT FOREIGN SCHEMA postscript LIMIT TO (keywords) FROM SERVER tunnel INTO tunnel;
SQL

rows() { psqlc -c "SELECT count(*) || ' ' || md5(string_agg(k::text, ',' ORDER BY id)) FROM $1.keywords k"; }
# seen PATTERN [LOG]: how many lines of the proxy's log (or LOG) match
seen() { grep -c -- "$1" "${2:-$work/proxy.log}"; }

via=$(rows via_proxy) || problem "reading through the proxy failed"
[ "$(seen "^GET http://127.0.0.1:$mock_port/api/v2/keywords")" -ge 1 ] \
	|| problem "the proxy saw no request for the keywords of http://127.0.0.1:$mock_port"
[ "$(seen "^GET http://127.0.0.1:$mock_port/api/v2/keywords.* key=yes$")" -ge 1 ] \
	|| problem "the request through the proxy carried no Authorization header"

before=$(wc -l <"$work/proxy.log")
dir=$(rows direct) || problem "reading directly failed"
[ "$(wc -l <"$work/proxy.log")" = "$before" ] \
	|| problem "a request to localhost, which no_proxy names, went through the proxy"

tls=$(rows tunnel) || problem "reading https://$host through the proxy failed"
[ "$(seen "^CONNECT $host:443 key=no$")" -ge 1 ] \
	|| problem "the proxy saw no CONNECT $host:443 (or one with a key)"
[ "$(seen "$host.*/api/")" = 0 ] \
	|| problem "the proxy saw a request line of https://$host: it should see only the tunnel"
[ "$(seen "^GET /api/v2/keywords.* key=yes$" "$work/tls.log")" -ge 1 ] \
	|| problem "the TLS front saw no request for the keywords, with the key"

# a ca_file is read at the first request: a missing one fails it, and says so
out=$(psqlc -c "ALTER SERVER tunnel OPTIONS (SET ca_file '$work/missing.pem')" \
	-c "SELECT count(*) FROM tunnel.keywords" 2>&1) \
	&& problem "a scan with a missing ca_file succeeded: $out"
case "$out" in
*"ERROR:  TLS connection to the Postscript API failed"*) ;;
*) problem "a scan with a missing ca_file failed otherwise: $out" ;;
esac

[ -n "$via" ] && [ "$via" = "$dir" ] && [ "$via" = "$tls" ] \
	|| problem "rows through the proxy: '$via', directly: '$dir', through the tunnel: '$tls'"
printf 'proxy: %s keyword rows through the proxy, directly and through a CONNECT tunnel (%s)\n' \
	"${via%% *}" "$(cut -d' ' -f1 "$work/proxy.log" | sort | uniq -c | xargs)"
exit $status
