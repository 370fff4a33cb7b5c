#!/usr/bin/env python3
"""A local Postscript API server for postscript_fdw's tests, demo and benchmark.

Python 3 standard library only.  It implements parts A to C of the contract
(../shared/postscript-api.md): every endpoint, both authentication schemes, the
per-token rate limit with the documented 429 body, page-number pagination with a
server-side page size, every filter and sort, the three error body shapes, a
deterministic seeded data set whose size is chosen at start-up, a request log
and fault injection driven through /__admin/ endpoints.  See README.md beside
this file.

This file is the command line; the server is the package psmock/ beside it
(psmock/__init__.py lists its modules), its routes in psmock/routes.py, each
marked documented (part A), assumed (part B) or admin.  Within the handlers,
behaviours that follow part A carry a "documented:" comment where they are
decided.
"""

import argparse
import os
import sys

from psmock.limiter import LIMITERS
from psmock.server import make_server


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--subscribers", type=int, default=2000)
    p.add_argument("--page-size", type=int, default=100)
    # documented (part A): 15 requests per second per token; part C asks
    # this server to enforce it.  Runs that must not be limited say
    # --rate-limit 0.
    p.add_argument("--rate-limit", type=float, default=15,
                   help="requests/s per token (Postscript: 15); 0 = off")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--jitter-ms", type=int, default=0,
                   help="latency varies by up to this much either way, uniformly")
    p.add_argument("--limiter", choices=sorted(LIMITERS), default="bucket",
                   help="how the rate limit counts (Postscript does not say)")
    p.add_argument("--shop-key", default="sk_test_shop_key")
    p.add_argument("--partner-key", default="sk_partner_test_key")
    p.add_argument("--webhook-token", default="whsec_test_webhook_token",
                   help="the shop's webhook signing token (GET /api/v2/webhooks/token)")
    p.add_argument("--webhook-retry-s", type=float, default=300,
                   help="seconds between delivery attempts (Postscript: 5 minutes)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.subscribers < 1 or args.page_size < 1:
        p.error("--subscribers and --page-size must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = make_server(args)
    port = server.server_address[1]
    print("PORT=%d" % port, flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
