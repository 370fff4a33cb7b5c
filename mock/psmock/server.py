"""HTTP: the server and the request pipeline.  An API request is
authenticated, logged, delayed by the simulated latency, counted by the rate
limit, given its fault if one matches, then answered by its route
(routes.py); an admin request is answered by its route at once."""

import gzip
import http.client
import json
import re
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from psmock import faults, routes
from psmock.answers import RATE_LIMIT_BODY, ApiError, Text
from psmock.state import State


# the headers that carry credentials (part A): the log records which of them
# a request had, never their values (part C)
AUTH_HEADERS = ("Authorization", "X-Postscript-Shop-Token")
# the longest request line http.server reads; a longer one it answers 414
MAX_REQUEST_LINE = 65536


def query_params(raw):
    params = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        params.setdefault(key, []).append(value)
    return params


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "postscript-mock/1.0"
    # headers and body go out in separate writes: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK, 40 ms on every request
    # of a keep-alive connection, which no real API server adds
    disable_nagle_algorithm = True
    # an API request's (log entry, reset generation) until it is logged
    pending_log = None

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s\n" % (fmt % args))

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else None

    def __getattr__(self, name):
        # every method (GET, POST, ..., TRACE, OPTIONS) is routed, so one the
        # route table does not know gets its 404 rather than the standard
        # library's 501
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self.dispatch(name[3:])
        raise AttributeError(name)

    def dispatch(self, method):
        self.received = time.monotonic()
        # requests this connection has carried, this one included
        self.served = getattr(self, "served", 0) + 1
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith(routes.ADMIN_PREFIX):
            self.send_answer(*self.answer(method, url, body))
        else:
            self.api(method, url, body)

    def send_error(self, code, message=None, explain=None):
        # http.server refuses a request line over 64 KiB with 414 itself,
        # before dispatch (it sets command to ""): the log still gets it,
        # as every request (part C)
        if code == 414 and self.command == "" and len(self.raw_requestline) > MAX_REQUEST_LINE:
            self.log_refused_line()
        super().send_error(code, message, explain)

    def log_refused_line(self):
        """Log a request whose line was too long (414): its method, and its
        path and query as far as the first 64 KiB go; the rest of the line
        and the headers are read to find the auth headers."""
        method, _, target = self.raw_requestline.decode("latin-1").partition(" ")
        # (a line of exactly 64 KiB and its end: the protocol after the URL)
        url = urlsplit(re.sub(r" HTTP/[0-9.]+$", "", target.rstrip("\r\n")))
        if url.path.startswith(routes.ADMIN_PREFIX):
            return
        line = self.raw_requestline
        while line and not line.endswith(b"\n"):
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
        try:
            self.headers = http.client.parse_headers(self.rfile)
        except (http.client.HTTPException, OSError):
            self.headers = http.client.HTTPMessage()
        state = self.server.state
        label, _ = self.auth()
        seq, generation = state.arrive()
        state.record({"seq": seq, "method": method, "path": url.path, "query": url.query,
                      "auth": label, "headers": self.auth_headers(),
                      "status": 414, "body": None, "at": round(time.monotonic() - state.epoch, 4)},
                     generation)

    def answer(self, method, url, body):
        """(status, body, headers) of the request's route."""
        return routes.serve(self.server.state, method, url.path, query_params(url.query), body)

    # -- responses
    def flush_log(self):
        """An API request is in the log before its answer leaves: a client that
        reads the log as soon as it has its answer finds the request there."""
        if self.pending_log is not None:
            pending, self.pending_log = self.pending_log, None
            self.server.state.leave(pending[1])
            self.server.state.record(*pending)

    def send_answer(self, status, obj, headers):
        if isinstance(obj, Text):
            self.send_json(status, None, headers, raw=obj.encode("utf-8"), content_type="text/plain")
        else:
            self.send_json(status, obj, headers)

    def send_json(self, status, obj, headers=None, raw=None, content_type="application/json",
                  mode=None, delay_ms=0):
        payload = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.flush_log()
        if ("gzip" in (self.headers.get("Accept-Encoding") or "") and len(payload) > 512
                and self.server.state.config["gzip"]):
            payload = gzip.compress(payload, compresslevel=1)
            headers = dict(headers or {}, **{"Content-Encoding": "gzip"})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        try:
            if mode == "truncate":
                self.wfile.write(payload[: max(1, len(payload) // 2)])
                self.wfile.flush()
                self.close_connection = True
            elif mode == "stall":
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                time.sleep(delay_ms / 1000.0)
                self.wfile.write(payload[len(payload) // 2:])
            else:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def start_chunked(self, status):
        self.flush_log()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunked(self, status, raw, size):
        """raw in HTTP chunks of size bytes, each flushed on its own: the client
        gets a body cut anywhere, inside a UTF-8 character or an escape."""
        self.start_chunked(status)
        try:
            for i in range(0, len(raw), max(1, size)):
                part = raw[i:i + max(1, size)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_endless(self, key, record, max_bytes):
        """A chunked list page whose records never end (until the client leaves,
        or max_bytes were sent): the shape of a server gone wrong."""
        self.start_chunked(200)
        block = (record + ",") * max(1, 65536 // (len(record) + 1))
        first = ('{"%s": [' % key).encode("utf-8")
        chunk = block.encode("utf-8")
        sent = 0
        try:
            for part in [first] + [chunk] * (max_bytes // len(chunk) + 1):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                sent += len(part)
                if sent >= max_bytes:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    # -- the API
    def auth_headers(self):
        """Which auth headers the request has (for the log: never their values)."""
        return [h for h in AUTH_HEADERS if h in self.headers]

    def auth(self):
        """(log label, rate bucket key or the ApiError to answer).  Documented
        (part A): a shop's key, or a partner's key with the shop's key as
        X-Postscript-Shop-Token; a public pk_ key never; refusals as 403.
        Assumed: 401 with the errors shape for a missing or unknown key (no
        401 is documented)."""
        args = self.server.state.args
        header = self.headers.get("Authorization")
        token = self.headers.get("X-Postscript-Shop-Token")
        if header is None:
            return "none", ApiError(401, {"errors": [{"loc": ["header", "Authorization"],
                                                      "msg": "Missing API key",
                                                      "type": "v2.authentication_failed"}]})
        m = re.fullmatch(r"Bearer (\S+)", header)
        key = m.group(1) if m else None
        if key == args.shop_key:
            return "shop", key
        if key == args.partner_key:
            if token is None:
                return "partner", ApiError(403, {"errors": [{
                    "loc": ["header", "X-Postscript-Shop-Token"],
                    "msg": "A partner key must be sent with the shop's token",
                    "type": "v2.access_denied"}]})
            if token != args.shop_key:
                return "partner+token", ApiError(403, {"error": "You do not have permission to do that."})
            return "partner+token", key + "/" + token
        if key is not None and key.startswith("pk_"):
            return "other", ApiError(403, {"error": "You do not have permission to do that."})
        return "other", ApiError(401, {"errors": [{"loc": ["header", "Authorization"],
                                                   "msg": "Invalid API key",
                                                   "type": "v2.authentication_failed"}]})

    def api(self, method, url, body):
        state = self.server.state
        label, who = self.auth()
        seq, generation = state.arrive()
        entry = {"seq": seq, "method": method, "path": url.path, "query": url.query, "auth": label,
                 "headers": self.auth_headers(),
                 "status": 0, "body": body.decode("utf-8", "replace") if body is not None else None,
                 "in_flight": state.enter(generation)}
        self.pending_log = (entry, generation)
        try:
            arrival = self.received + state.delay()
            if arrival > time.monotonic():
                time.sleep(arrival - time.monotonic())
            if isinstance(who, ApiError):
                raise who
            if not state.allow(who, entry, arrival):
                raise ApiError(429, RATE_LIMIT_BODY)
            fault = faults.take(state, method, url.path, reused=self.served > 1, body=body)
            if fault is not None and faults.apply(self, fault, entry, method, url, body):
                return
            if generation != state.generation:
                # reset while this request slept: it must not change the new data
                self.close_connection = True
                return
            status, obj, headers = self.answer(method, url, body)
            entry["status"] = status
            self.send_answer(status, obj, headers)
        except ApiError as e:
            entry["status"] = e.status
            self.send_json(e.status, e.body)
        finally:
            # no answer was sent (a closed connection, a reset in between)
            self.flush_log()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(args):
    family_host = args.host.strip("[]")
    if ":" in family_host:
        class Server6(Server):
            address_family = socket.AF_INET6
        server = Server6((family_host, args.port), Handler)
    else:
        server = Server((family_host, args.port), Handler)
    server.state = State(args)
    server.quiet = args.quiet
    return server
