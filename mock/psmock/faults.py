"""Faults a test injects through POST /__admin/faults: which request a
fault strikes, and how the answer goes wrong (README.md beside the package
lists the kinds)."""

import base64
import json
import time

from psmock.answers import RATE_LIMIT_BODY, error_body_for

FAULT_KINDS = {"status", "rate_limit", "slow", "stall", "truncate", "malformed", "close",
               "applied_500", "body", "huge_page", "endless", "gate"}


def take(state, method, path, reused=False, body=None):
    """The next fault for this request; a fault with "reused": true only
    strikes a request on a connection that served one before, one with
    "body_contains" only a request whose body holds that text."""
    with state.lock:
        for f in state.faults:
            if f["count"] == 0:
                continue
            if f.get("reused") and not reused:
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            if f.get("path") and not path.startswith(f["path"]):
                continue
            if f.get("body_contains") is not None and \
                    f["body_contains"].encode("utf-8") not in (body or b""):
                continue
            if f.get("after", 0) > 0:
                f["after"] -= 1
                continue
            if f["count"] > 0:
                f["count"] -= 1
            return f
    return None


def records_key_of(f, path):
    """The list key a hostile page uses: the fault's, or the path's last part."""
    return f.get("records_key") or path.rstrip("/").rsplit("/", 1)[-1]


def apply(h, f, entry, method, url, body):
    """Answers the request as fault f says (h: the request's HTTP handler,
    entry: its log entry); False when the request then goes on normally."""
    kind = f["kind"]
    headers = dict(f.get("headers") or {})
    if kind == "gate":
        # held until the gate's `count` requests are all here (or timeout_ms
        # passed), then answered normally: only requests in flight together
        # pass without the wait
        state = h.server.state
        with state.gate:
            f["held"] = f.get("held", 0) + 1
            state.gate.notify_all()
            if not state.gate.wait_for(lambda: f["held"] >= f["size"],
                                       f.get("timeout_ms", 30000) / 1000.0):
                entry["gate"] = "timeout"
        return False
    if kind == "slow":
        time.sleep(f.get("delay_ms", 1000) / 1000.0)
        return False
    if kind == "close":
        h.close_connection = True
        entry["status"] = 0
        return True
    if kind == "rate_limit" or (kind == "status" and f.get("status") == 429):
        if f.get("retry_after") is not None:
            headers["Retry-After"] = f["retry_after"]
        entry["status"] = 429
        h.send_json(429, RATE_LIMIT_BODY, headers)
        return True
    if kind == "status":
        entry["status"] = f["status"]
        h.send_json(f["status"], error_body_for(f["status"]), headers)
        return True
    if kind == "body":
        raw = base64.b64decode(f["body_b64"]) if "body_b64" in f else f.get("body", "").encode("utf-8")
        entry["status"] = f.get("status", 200)
        if f.get("chunk_bytes"):
            h.send_chunked(entry["status"], raw, int(f["chunk_bytes"]))
            return True
        h.send_json(entry["status"], None, headers, raw=raw,
                    content_type=f.get("content_type", "application/json"))
        return True
    if kind == "huge_page":
        # one well-formed page of `records` copies of `record` (JSON text)
        rec = f.get("record", "{}").encode("utf-8")
        n = int(f.get("records", 100000))
        raw = b"".join([b'{"', records_key_of(f, url.path).encode("utf-8"), b'": [',
                        b",".join([rec] * n), b'], "page_info": {"page": 1, "total_pages": ',
                        str(int(f.get("total_pages", 1))).encode(), b"}}"])
        entry["status"] = 200
        h.send_json(200, None, headers, raw=raw)
        return True
    if kind == "endless":
        entry["status"] = 200
        h.send_endless(records_key_of(f, url.path), f.get("record", '{"id": "x"}'),
                       int(f.get("max_bytes", 1 << 31)))
        return True
    status, obj, _ = h.answer(method, url, body)
    if kind == "applied_500":
        entry["status"] = 500
        h.send_json(500, error_body_for(500), headers)
    elif kind == "malformed":
        entry["status"] = status
        raw = json.dumps(obj).encode("utf-8")
        h.send_json(status, None, headers, raw=raw[: len(raw) // 2] + b"<html>Bad Gateway</html>")
    else:               # truncate, stall
        entry["status"] = status
        h.send_json(status, obj, headers, mode=kind, delay_ms=f.get("delay_ms", 30000))
    return True
