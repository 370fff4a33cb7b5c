#!/usr/bin/env bash
# The webhook receiver's throughput, one command (as root, like bench/run.sh):
#
#   bash bench/webhooks.sh [N]      # N deliveries per scenario (default 5000)
#
# Builds and installs the extension, starts a throwaway cluster with the
# receiver (fsync and synchronous commit on: a 200 means on disk), then
# POSTs signed shop.incoming_message deliveries over keep-alive HTTP/1.1
# connections and reports deliveries per second for:
#   1. new events, one connection;
#   2. new events, four connections at once;
#   3. the same events again (duplicates: counted, not stored twice).
# Figures go to stdout and to bench/webhooks-results.txt.  Not part of CI.
set -u
. "$(dirname "$0")/../scripts/lib.sh"

N=${1:-5000}
OUT="$PS_ROOT/bench/webhooks-results.txt"
TOKEN=whsec_bench_token

ps_setup_traps
ps_take_lock
ps_install_deps
ps_build_install
port=$(ps_free_port)
ps_start_cluster -c fsync=on -c synchronous_commit=on -c shared_preload_libraries=postscript_fdw \
	-c postscript_fdw.webhook_port="$port" -c postscript_fdw.webhook_server=hooks \
	-c postscript_fdw.webhook_rate_limit=0
bindir=$("$PG_CONFIG" --bindir)
"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL || ps_die "set-up failed"
CREATE EXTENSION postscript_fdw;
CREATE SERVER hooks FOREIGN DATA WRAPPER postscript_fdw;
CREATE USER MAPPING FOR CURRENT_USER SERVER hooks OPTIONS (webhook_token '$TOKEN');
SQL

python3 - "$port" "$N" "$TOKEN" <<'PY' | tee "$OUT"
import http.client, json, sys, threading, time

port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(240):                     # the receiver answers 401 once up
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/", b"{}")
        if c.getresponse().status == 401:
            break
    except OSError:
        pass
    time.sleep(0.25)


def body(tag, i):
    return json.dumps({"webhook_id": "89066f0a-eb36-4ed8-b98c-606e6dcac715", "resource_type": "shop",
                       "resource_id": "shop_1234567abcd", "event_time": "2026-01-01T00:00:00.%06d" % i,
                       "event": "shop.incoming_message",
                       "event_data": {"id": "im_%s%07d" % (tag, i), "subscriber_id": "s_1234567abcd",
                                      "from_number": "+15555555555", "body": "Hello, world %d" % i,
                                      "is_opt_out": False, "created_at": "2026-01-01T00:00:00"}})


def send(bodies, statuses):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for b in bodies:
        c.request("POST", "/postscript", b, {"Postscript-Signature": token,
                                             "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        statuses[r.status] = statuses.get(r.status, 0) + 1


def run(name, tag, connections):
    bodies = [body(tag, i) for i in range(n)]
    statuses = {}
    threads = [threading.Thread(target=send, args=(bodies[k::connections], statuses))
               for k in range(connections)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    dt = time.monotonic() - t
    print("%-40s %6d deliveries in %6.2f s: %7.0f/s  statuses %s" % (name, n, dt, n / dt, statuses))


print("webhook receiver, fsync and synchronous_commit on")
run("new events, 1 connection", "a", 1)
run("new events, 4 connections", "b", 4)
run("duplicates, 1 connection", "a", 1)
PY
"$bindir/psql" -X -At -d postgres -c "SELECT 'stored: ' || count(*) || ' events, ' || sum(deliveries) || ' deliveries' FROM postscript_fdw_webhook_events" | tee -a "$OUT"
