"""Webhooks (documented, part A): subscriptions, the signing token, example
payloads, test deliveries; and deliveries to a callback, at least once, with
the Postscript-Signature header, retried until a 200.  The handlers of the
/api/v2/webhooks routes are at the end."""

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

from psmock.answers import ApiError, body_object, validation_error
from psmock.data import SHOP
from psmock.values import fmt_ts

WEBHOOK_EVENTS = ("shop.test", "shop.incoming_message", "shop.subscriber.opt_in",
                  "shop.subscriber.opt_out", "shop.shop.email_collected")   # subscription enum
EXAMPLE_EVENTS = ("shop.test", "shop.incoming_message", "shop.subscriber.opt_in",
                  "shop.subscriber.opt_out", "shop.email_collected")        # example/test enum


def webhook_example_data(event):
    """event_data of an example delivery: shop.incoming_message is the
    reference's own example (part A); the others' shapes are not documented
    and are assumed: the subscriber object's fields."""
    if event == "shop.incoming_message":
        return {"id": "im_1b2a005a386281c9", "subscriber_id": "s_1234567abcd",
                "shop_id": "shop_1234567abcd", "is_opt_out": False, "shopify_customer_id": None,
                "from_number": "+15555555555", "created_at": "2021-11-04T21:52:41.025455",
                "body": "Hello, world"}
    if event in ("shop.subscriber.opt_in", "shop.subscriber.opt_out"):
        return {"id": "s_1234567abcd", "phone_number": "+15555555555", "email": None,
                "shopify_customer_id": None, "created_at": "2021-11-04T21:52:41.025455"}
    if event in ("shop.email_collected", "shop.shop.email_collected"):
        return {"subscriber_id": "s_1234567abcd", "email": "someone@example.com",
                "phone_number": "+15555555555"}
    return {}


def webhook_subscriber_data(sub):
    """event_data of a subscriber's opt-in or opt-out (assumed shape)."""
    return {k: sub.get(k) for k in ("id", "phone_number", "email", "shopify_customer_id",
                                    "created_at")}


def webhook_envelope(event, event_data, webhook_id=None, event_time=None):
    """The documented envelope; event_time is ISO 8601 without a zone (UTC)."""
    return {"webhook_id": webhook_id or "89066f0a-eb36-4ed8-b98c-606e6dcac715",
            "resource_type": "shop", "resource_id": SHOP["resource_id"],
            "event_time": event_time or fmt_ts(time.time(), 4),
            "event": event, "event_data": event_data}


def loopback_url(url):
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "::1", "localhost")


class Webhooks:
    """Subscriptions and deliveries; one per reset generation."""

    def __init__(self, state, generation):
        self.state = state
        self.generation = generation
        self.subscriptions = {}
        self.deliveries = []

    def emit(self, event, event_data):
        """An event happened: deliver it to every subscription for it."""
        for sub in self.subscriptions.values():
            if sub["event"] == event or {sub["event"], event} == {"shop.shop.email_collected",
                                                                   "shop.email_collected"}:
                self.start([{"callback_url": sub["callback_url"], "headers": sub["headers"],
                             "body": webhook_envelope(sub["event"], event_data, sub["id"])}], {})

    # -- deliveries
    def start(self, items, opts):
        """Deliver items ({callback_url, headers, body}) in order, in a thread;
        each one retried every retry_s seconds until a 200 or max_attempts."""
        config = self.state.config
        token = opts.get("token", self.state.args.webhook_token)
        copies = 1 + int(opts.get("duplicates", 0))
        order = list(reversed(items)) if opts.get("out_of_order") else list(items)
        records = []
        for item in order:
            for _ in range(copies):
                payload = item["body"]
                raw = payload.encode("utf-8") if isinstance(payload, str) else \
                    json.dumps(payload, ensure_ascii=False).encode("utf-8")
                rec = {"id": len(self.deliveries) + 1, "callback_url": item["callback_url"],
                       "event": payload.get("event") if isinstance(payload, dict) else None,
                       "state": "pending", "attempts": []}
                self.deliveries.append(rec)
                records.append((rec, raw, dict(item.get("headers") or {})))
        plan = {"token": token, "delay_ms": int(opts.get("delay_ms", 0)),
                "retry_s": float(opts.get("retry_s", config["webhook_retry_s"])),
                "max_attempts": int(opts.get("max_attempts", 13))}
        threading.Thread(target=self.run, args=(records, plan), daemon=True).start()
        return [rec["id"] for rec, _, _ in records]

    def live(self):
        return self.state.generation == self.generation

    def run(self, records, plan):
        for i, (rec, raw, headers) in enumerate(records):
            if i and plan["delay_ms"]:
                time.sleep(plan["delay_ms"] / 1000.0)
            if not self.live():
                return
            if not self.attempt(rec, raw, headers, plan):
                threading.Thread(target=self.retry, args=(rec, raw, headers, plan), daemon=True).start()

    def retry(self, rec, raw, headers, plan):
        while len(rec["attempts"]) < plan["max_attempts"]:
            time.sleep(plan["retry_s"])
            if not self.live() or self.attempt(rec, raw, headers, plan):
                return
        with self.state.lock:
            rec["state"] = "failed"

    def attempt(self, rec, raw, headers, plan):
        """One POST; True once answered 200.  Documented (part A): retried
        "until a 200": another 2xx (a 202, a 204) is no delivery."""
        status, error = 0, None
        if not loopback_url(rec["callback_url"]):
            status, error = 0, "not delivered: the local server only delivers to loopback"
        else:
            h = {"Content-Type": "application/json", "User-Agent": "postscript-mock-webhooks/1.0"}
            h.update(headers)
            if plan["token"] is not None:
                h["Postscript-Signature"] = plan["token"]
            req = urllib.request.Request(rec["callback_url"], data=raw, headers=h, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status = r.status
                    r.read()
            except urllib.error.HTTPError as e:
                status = e.code
                e.close()  # unclosed, Python 3.14 warns into the unit tests' output
            except (OSError, http.client.HTTPException) as e:
                error = type(e).__name__ + ": " + str(getattr(e, "reason", e))
        with self.state.lock:
            rec["attempts"].append({"status": status, "error": error})
            if status == 200:
                rec["state"] = "delivered"
        return status == 200

    def admin_deliver(self, obj):
        """POST /__admin/webhooks/deliver: events [{event, event_data, event_time,
        webhook_id}] (or one event/event_data, or a raw body) to callback_url."""
        url = obj.get("callback_url")
        if not isinstance(url, str) or not loopback_url(url):
            raise ApiError(400, {"error": "callback_url must be a loopback http URL"})
        if "body" in obj:
            bodies = [obj["body"] if isinstance(obj["body"], str) else json.dumps(obj["body"])]
        else:
            events = obj.get("events") or [{"event": obj.get("event", "shop.test"),
                                            "event_data": obj.get("event_data")}]
            bodies = [webhook_envelope(e.get("event", "shop.test"),
                                       e["event_data"] if e.get("event_data") is not None
                                       else webhook_example_data(e.get("event")),
                                       e.get("webhook_id"), e.get("event_time")) for e in events]
        items = [{"callback_url": url, "headers": obj.get("headers") or {}, "body": b} for b in bodies]
        return {"deliveries": self.start(items, obj)}


def check_subscription(obj, create):
    """A subscription body of a create (callback_url and event required) or an update."""
    if create and not isinstance(obj.get("callback_url"), str):
        raise validation_error(("body", "callback_url"), "field required", "value_error.missing")
    url = obj.get("callback_url")
    if url is not None:
        scheme = urlsplit(url).scheme if isinstance(url, str) else None
        # HTTPS only, as documented; plain HTTP to loopback for tests
        if scheme != "https" and not (scheme == "http" and loopback_url(url)):
            raise validation_error(("body", "callback_url"), "an HTTPS URL is required")
    # documented: callback_url and event are both required to create
    if create and "event" not in obj:
        raise validation_error(("body", "event"), "field required", "value_error.missing")
    if create and obj["event"] not in WEBHOOK_EVENTS:
        raise validation_error(("body", "event"), "event must be one of %s" % ", ".join(WEBHOOK_EVENTS))
    if "headers" in obj and not isinstance(obj["headers"], dict):
        raise validation_error(("body", "headers"), "value is not a valid dict", "type_error.dict")
    return obj


# --------------------------------------------------------------------------
# The handlers of /api/v2/webhooks (called under the state's lock)

def get_token(req):
    return 200, {"token": req.state.args.webhook_token}


def get_example(req):
    # documented: event is required (the reference's default is no default
    # for a required parameter)
    event = req.params.get("event", [])
    if len(event) != 1 or event[0] not in EXAMPLE_EVENTS or set(req.params) - {"event"}:
        raise validation_error(("query", "event"), "event must be one of %s" % ", ".join(EXAMPLE_EVENTS))
    return 200, webhook_envelope(event[0], webhook_example_data(event[0]),
                                 event_time="2021-11-04T21:52:41.025455")


def post_test(req):
    obj = body_object(req.body)
    # documented: event is required in the body
    if "event" not in obj:
        raise validation_error(("body", "event"), "field required", "value_error.missing")
    event = obj["event"]
    if event not in EXAMPLE_EVENTS:
        raise validation_error(("body", "event"), "event must be one of %s" % ", ".join(EXAMPLE_EVENTS))
    req.state.webhooks.emit(event, webhook_example_data(event))
    return 202, {"message": "OK"}


def list_subscriptions(req):
    return 200, {"webhook_subscriptions": list(req.state.webhooks.subscriptions.values())}


def create_subscription(req):
    obj = check_subscription(body_object(req.body), create=True)
    stamp = fmt_ts(time.time(), 0)
    sub = {"id": str(uuid.uuid4()), "callback_url": obj["callback_url"],
           "event": obj["event"], "headers": obj.get("headers") or {},
           "created_at": stamp, "updated_at": stamp}
    req.state.webhooks.subscriptions[sub["id"]] = sub
    return 200, sub


def subscription(req, wid):
    sub = req.state.webhooks.subscriptions.get(wid)
    if sub is None:
        raise ApiError(400, {})         # documented: the reference lists 400 with {} only
    return sub


def get_subscription(req, wid):
    return 200, subscription(req, wid)


def patch_subscription(req, wid):
    sub = subscription(req, wid)
    obj = check_subscription(body_object(req.body), create=False)
    # documented: only callback_url and headers change; other keys are ignored
    sub.update({k: obj[k] for k in ("callback_url", "headers") if k in obj})
    sub["updated_at"] = fmt_ts(time.time(), 0)
    return 200, sub


def delete_subscription(req, wid):
    subscription(req, wid)
    del req.state.webhooks.subscriptions[wid]
    return 200, {}
