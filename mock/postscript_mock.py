#!/usr/bin/env python3
"""A local Postscript API server for postscript_fdw's tests, demo and benchmark.

Python 3 standard library only.  It implements parts A to C of the contract
(../shared/postscript-api.md): every endpoint, both authentication schemes, the
per-token rate limit with the documented 429 body, page-number pagination with a
server-side page size, every filter and sort, the three error body shapes, a
deterministic seeded data set whose size is chosen at start-up, a request log
and fault injection driven through /__admin/ endpoints.  See README.md beside
this file.

Documented or assumed: behaviours that follow part A (what Postscript
documents) carry a "documented:" comment where they are decided; the list
endpoints of campaigns, messages, opt_ins and opt_outs (LISTS below, but
subscribers), the create answer's shape and the conflict's status (400) are
part B, our assumptions.
"""

import argparse
import base64
import bisect
import calendar
import gzip
import hashlib
import http.client
import json
import math
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API = "/api/v2"
SHOP = {"resource_id": "shop_1234567abcde", "resource_name": "Test Shop ☕ & Co",
        "resource_type": "shop"}
RATE_LIMIT_BODY = {"error_code": 3002, "error_message": "Rate limit exceeded", "success": False}
MAX_PROPERTIES = 50
SEED_START = calendar.timegm((2022, 1, 1, 0, 0, 0))
SEED_END = calendar.timegm((2026, 6, 30, 0, 0, 0))
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class ApiError(Exception):
    """An error answer: status and JSON body (one of the three shapes)."""

    def __init__(self, status, body):
        super().__init__(status)
        self.status = status
        self.body = body


def validation_error(loc, msg, typ="value_error", status=400):
    return ApiError(status, {"errors": [{"loc": list(loc), "msg": msg, "type": typ}]})


def conflict(msg):
    """Documented (part A): what public client code of the real service tests for."""
    return ApiError(400, {"errors": [{"loc": ["body", "phone_number"], "msg": msg,
                                      "type": "v2.entity_conflict"}]})


def not_found(what):
    return ApiError(404, {"error_code": 3001,
                          "error_message": "Could not find %s matching that information" % what,
                          "success": False})


def digest(*parts):
    return hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=24).digest()


def encode(data, alphabet, length):
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def fmt_ts(epoch, style=0):
    """A UTC instant in one of the formats Postscript is seen to use."""
    whole = int(epoch)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    micros = int(round((epoch - whole) * 1e6)) % 1000000
    if style == 0:
        return base + "Z"
    if style == 1:
        return "%s.%06dZ" % (base, micros)
    if style == 2:
        return base + "+00:00"
    if style == 3:
        return "%s.%03dZ" % (base, micros // 1000)
    if style == 4:          # zone-less, as keywords have them
        return "%s.%06d" % (base, micros)
    return base             # zone-less, no fraction


_ts_cache = {}


def parse_ts(text):
    """ISO 8601 to epoch seconds; zone-less means UTC.  None if unparsable."""
    if text is None:
        return None
    hit = _ts_cache.get(text)
    if hit is not None:
        return hit
    try:
        s = text.strip()
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
    except (ValueError, TypeError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    value = dt.timestamp()
    if len(_ts_cache) > 500000:
        _ts_cache.clear()
    _ts_cache[text] = value
    return value


def now_iso():
    return fmt_ts(time.time(), 1)


def normalize_phone(value):
    """E.164 as Postscript would store it; other formats parsed as US numbers."""
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", s):
        return s
    if re.search(r"[^0-9 ()+.\-]", s):
        return None
    digits = re.sub(r"[^0-9]", "", s)
    if s.startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 and digits[0] != "0" else None
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
        return "+1" + digits
    return None


# --------------------------------------------------------------------------
# Resources: which filters and sorts each list endpoint takes.
# documented: subscribers (part A); assumed: campaigns, messages, opt_ins,
# opt_outs (part B: no public source describes them)

TS_OPS = ("eq", "gt", "gte", "lt", "lte")
LISTS = {
    "subscribers": {
        "filters": {"created_at": ("ts", TS_OPS), "updated_at": ("ts", TS_OPS),
                    "email": ("str", ("eq", "contains", "in")),
                    "phone_number": ("str", ("eq", "contains", "in")),
                    "shopify_customer_id": ("str", ("eq", "contains", "in")),
                    "ps_id": ("int", ("eq",))},
        "sorts": {"created_at": "ts", "updated_at": "ts", "phone_number": "str",
                  "shopify_customer_id": "int"},
    },
    "campaigns": {
        "filters": {"status": ("str", ("eq", "in")), "created_at": ("ts", TS_OPS),
                    "sent_at": ("ts", TS_OPS), "updated_at": ("ts", TS_OPS)},
        "sorts": {"created_at": "ts", "sent_at": "ts"},
    },
    "messages": {
        "filters": {"subscriber_id": ("str", ("eq", "in")), "phone": ("str", ("eq",)),
                    "campaign_id": ("str", ("eq",)), "direction": ("str", ("eq",)),
                    "category": ("str", ("eq",)), "created_at": ("ts", TS_OPS)},
        "sorts": {"created_at": "ts"},
    },
    "opt_ins": {
        "filters": {"subscriber_id": ("str", ("eq",)), "phone_number": ("str", ("eq",)),
                    "created_at": ("ts", TS_OPS)},
        "sorts": {"created_at": "ts"},
    },
    "opt_outs": {
        "filters": {"subscriber_id": ("str", ("eq",)), "phone_number": ("str", ("eq",)),
                    "created_at": ("ts", TS_OPS)},
        "sorts": {"created_at": "ts"},
    },
}

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivo", "Jun",
         "Kai", "Lena", "Mo", "Nia", "Óscar", "Pia"]
LAST = ["smith", "o'neil", "garcia", "nguyen", "müller", "kim", "rossi", "dubois"]
DOMAINS = ["example.com", "mail.example.org", "shop.example.net", "example.co.uk"]
TAGS = ["VIP", "wholesale", "Beauty", "returning", "früh-bucher", "新客", "Home Goods"]
CATEGORIES = ["Beauty", "Home Goods", "Outdoor", "Tea & Coffee", "Jouets", "雑貨"]
CITIES = ["Zürich", "東京", "São Paulo", "New York", "Kraków", "Αθήνα"]
US_AREAS = ["212", "310", "415", "512", "617", "702", "808", "917"]
KEYWORDS = ["JOIN", "YOUROCK", "VIP", "DEALS", "SALE25", "TEA", "BLACKFRIDAY", "CAFÉ",
            "WELCOME", "STOP2GO", "SUMMER", "GIFT"]
CAMPAIGN_NAMES = ["Black Friday", "Cyber Monday", "Spring Sale 🌸", "Welcome series",
                  "Back in stock", "Fête des mères", "Summer drop", "Flash sale"]
STATUSES = ["draft", "scheduled", "sending", "sent", "paused", "cancelled"]
BODIES = ["Your order has shipped!", "20% off today only 🎉 {link}", "Reply STOP to opt out",
          "Ça arrive bientôt", "Thanks! We got your message.", "New arrivals: {link}"]


def unindex(index, entry):
    """Remove an entry from a sorted list (found by bisection, not a scan)."""
    del index[bisect.bisect_left(index, entry)]


class Data:
    """The seeded data set.  Subscribers are generated on demand from their index
    (so a million costs no memory until rows are changed); the other objects,
    bounded in size, are built at start-up."""

    def __init__(self, seed, subscribers):
        self.seed = seed
        self.n = subscribers
        self.span = (SEED_END - SEED_START) / max(1, subscribers)
        self.overrides = {}     # index -> changed subscriber
        self.extra = []         # subscribers confirmed after start-up
        self.pending = {}       # pending id -> pending subscriber
        self.removed = set()    # indexes of subscribers deleted upstream (POST /__admin/remove)
        self._alive = None      # (count, removed, listed indexes) while some are removed
        self._ts_index = {}     # field -> sorted [(epoch, index)] of listed subscribers
        self._id_index = None
        self._phone_index = None
        self.counter = 0
        self.events = []
        self.message_requests = {}
        self.keywords = [self._keyword(i) for i in range(len(KEYWORDS))]
        self.keyword_by_name = {k["keyword"].upper(): k for k in self.keywords}
        self.keyword_by_id = {k["id"]: k for k in self.keywords}
        linked = min(subscribers, 50000)
        ncamp = max(len(STATUSES) * 4, min(200, subscribers // 50))
        self.campaigns = [self._campaign(i) for i in range(ncamp)]
        self.opt_ins = []
        self.opt_outs = []
        for i in range(linked):
            s = self.subscriber(i)
            h = digest(seed, "consent", i)
            created = parse_ts(s["created_at"]) - 30 - h[0]
            source = ("keyword", "checkout", "popup", "api")[h[1] % 4]
            self.opt_ins.append({
                "id": "oi_" + encode(h[2:14], B62, 16), "subscriber_id": s["id"],
                "phone_number": s["phone_number"],
                "keyword_id": self.keywords[h[3] % len(self.keywords)]["id"] if source == "keyword" else None,
                "source": source, "status": "confirmed", "created_at": fmt_ts(created, h[4] % 4),
                "confirmed_at": fmt_ts(created + 20 + h[5], 0)})
            if not s["subscriptions"]["promotional"]["can_send"]:
                self.opt_outs.append({
                    "id": "oo_" + encode(h[14:24], B62, 16), "subscriber_id": s["id"],
                    "phone_number": s["phone_number"],
                    "source": ("reply_stop", "api", "carrier", "support")[h[6] % 4],
                    "created_at": fmt_ts(min(SEED_END, parse_ts(s["created_at"]) + 3600 * (1 + h[7])), h[8] % 3)})
            if i % 97 == 13:    # a double opt-in never confirmed
                self.opt_ins.append({
                    "id": "oi_" + encode(digest(seed, "unconfirmed", i)[:12], B62, 16),
                    "subscriber_id": "s_pending_" + encode(h[9:17], B36, 12),
                    "phone_number": "+1555%07d" % (7000000 + i), "keyword_id": self.keywords[0]["id"],
                    "source": "keyword", "status": "pending", "created_at": fmt_ts(created + 7, 0),
                    "confirmed_at": None})
        self.opt_ins.sort(key=lambda r: parse_ts(r["created_at"]))
        self.opt_outs.sort(key=lambda r: parse_ts(r["created_at"]))
        sent = [c for c in self.campaigns if c["status"] in ("sent", "sending")]
        self.messages = []
        for j in range(min(2 * subscribers, 60000)):
            h = digest(seed, "message", j)
            i = int.from_bytes(h[:4], "big") % linked
            s = self.subscriber(i)
            inbound = h[4] % 7 == 0
            category = "conversational" if inbound else ("promotional", "transactional")[h[5] % 2]
            campaign = sent[h[6] % len(sent)]["id"] if (not inbound and category == "promotional"
                                                         and h[7] % 10 < 7 and sent) else None
            self.messages.append({
                "id": "msg_" + encode(h[8:20], B62, 16), "subscriber_id": s["id"],
                "phone": s["phone_number"], "direction": "inbound" if inbound else "outbound",
                "category": category, "body": BODIES[h[20] % len(BODIES)].replace("{link}", "https://ex.am/p/%d" % j),
                "media_url": "https://cdn.example.com/m/%d.jpg" % j if h[21] % 9 == 0 else None,
                "campaign_id": campaign,
                "status": "received" if inbound else ("delivered", "sent", "failed", "delivered")[h[22] % 4],
                "credits_used": 0 if inbound else 1 + h[23] % 3,
                "created_at": fmt_ts(min(SEED_END, parse_ts(s["created_at"]) + 60 * (1 + int.from_bytes(h[:3], "big") % 50000)), h[5] % 4)})
        self.messages.sort(key=lambda r: parse_ts(r["created_at"]))

    # -- seeded objects
    def _keyword(self, i):
        h = digest(self.seed, "keyword", i)
        created = SEED_START - 86400 * 30 + i * 86400 * 11 + int.from_bytes(h[:3], "big") % 86400 + h[3] / 256.0
        return {"id": "kw_" + encode(h[4:16], B36, 15), "keyword": KEYWORDS[i],
                "triggered_count": int.from_bytes(h[16:19], "big") % 50000,
                "created_at": fmt_ts(created, 4 if i % 3 else 5),
                "updated_at": fmt_ts(created + 3600 * (1 + h[19]), 4)}

    def _campaign(self, i):
        h = digest(self.seed, "campaign", i)
        status = STATUSES[i % len(STATUSES)]
        created = SEED_START + (SEED_END - SEED_START) * i / 250.0 + h[0] * 60
        started = status in ("sent", "sending", "paused", "cancelled")
        recipients = 0 if not started else 500 + int.from_bytes(h[1:3], "big") % 20000
        sent = recipients if status == "sent" else recipients * (h[3] % 100) // 100
        delivered = sent - sent * (h[4] % 5) // 100
        clicks = delivered * (h[5] % 12) // 100
        conversions = clicks * (h[6] % 30) // 100
        revenue = conversions * (1000 + int.from_bytes(h[7:9], "big") % 9000)
        return {"id": "cmp_" + encode(h[9:21], B62, 16),
                "name": "%s %d" % (CAMPAIGN_NAMES[i % len(CAMPAIGN_NAMES)], 2022 + i * 4 // 250),
                "status": status, "body": BODIES[h[21] % len(BODIES)].replace("{link}", "https://ex.am/c/%d" % i),
                "media_url": "https://cdn.example.com/c/%d.png" % i if h[22] % 3 == 0 else None,
                "segment_id": "seg_" + encode(h[12:20], B62, 10) if h[23] % 4 else None,
                "scheduled_at": None if status == "draft" else fmt_ts(created + 86400, 0),
                "sent_at": fmt_ts(created + 86400 + h[2], 1) if status in ("sent", "sending") else None,
                "created_at": fmt_ts(created, i % 3),
                "updated_at": fmt_ts(created + 86400 * 2, 0),
                "stats": {"recipients": recipients, "sent": sent, "delivered": delivered,
                          "clicks": clicks, "conversions": conversions,
                          "revenue": "%d.%02d" % divmod(revenue, 100), "opt_outs": sent * (h[10] % 3) // 1000,
                          "credits_used": sent * (1 + h[11] % 2)}}

    def sub_id(self, i):
        return "s_" + encode(digest(self.seed, "sub", i)[:16], B62, 20)

    def sub_phone(self, i, h):
        local = (i * 7919 + 1234567) % 8000000 + 2000000
        kind = h[0] % 20
        if kind == 0:
            return "+447%09d" % ((i * 104729) % 1000000000)
        if kind == 1:
            return "+4915%09d" % ((i * 15485863) % 1000000000)
        if kind == 2:
            return "+614%08d" % ((i * 7919) % 100000000)
        # no 555 exchange in a seeded number (tests write +1 555 555 01xx numbers);
        # the few that would have one move to an area code no other number uses
        area = US_AREAS[h[1] % len(US_AREAS)] if local // 10000 != 555 else "646"
        return "+1%s%07d" % (area, local)

    def _stamps(self, i, h):
        """A seeded subscriber's created_at and updated_at, as sent."""
        created = SEED_START + i * self.span + (h[16] % 100) / 1000.0 * self.span
        if h[17] % 3 == 0:
            created += h[18] / 256.0 + (h[19] % 100) / 1e6
        updated = max(created, min(SEED_END, created + 3600 * (h[20] % 200)))
        return fmt_ts(created, h[17] % 4), fmt_ts(updated, h[18] % 2)

    def _generate(self, i):
        h = digest(self.seed, "sub", i)
        created_at, updated_at = self._stamps(i, h)
        first, last = FIRST[h[2] % len(FIRST)], LAST[h[3] % len(LAST)]
        if h[4] % 10 == 0:
            email = None
        else:
            plus = "+promo" if h[5] % 7 == 0 else ""
            email = "%s.%s%s%d@%s" % (first.lower(), last.replace("'", ""), plus, i, DOMAINS[h[6] % len(DOMAINS)])
        ntags = h[7] % 4
        tags = sorted({TAGS[h[8 + k] % len(TAGS)] for k in range(ntags)}) if h[11] % 4 else []
        props = {}
        if h[12] % 5:
            props = {"has_purchased": h[13] % 2 == 0, "days_since_purchase": h[14] % 365,
                     "categories": sorted({CATEGORIES[h[15] % 6], CATEGORIES[h[13] % 6]}),
                     "birthday": "19%02d-%02d-%02d" % (60 + h[21] % 40, 1 + h[22] % 12, 1 + h[23] % 28),
                     "first_name": first}
            if h[12] % 3 == 0:
                props["city"] = CITIES[h[14] % len(CITIES)]
        return {"id": "s_" + encode(h[:16], B62, 20), "ps_id": 1000 + i,
                "phone_number": self.sub_phone(i, h[16:]), "email": email,
                "shopify_customer_id": None if h[9] % 5 == 0 else 6000000000000 + i * 37,
                "tags": tags, "properties": props,
                "subscriptions": {"promotional": {"can_send": h[10] % 10 != 0},
                                  "transactional": {"can_send": h[10] % 20 != 1}},
                "data": {}, "created_at": created_at, "updated_at": updated_at}

    # -- subscribers
    def count(self):
        return self.n + len(self.extra)

    def subscriber(self, i):
        s = self.overrides.get(i)
        if s is not None:
            return s
        if i < self.n:
            return self._generate(i)
        return self.extra[i - self.n]

    def subscribers(self):
        for i in range(self.count()):
            if i not in self.removed:
                yield self.subscriber(i)

    def listed(self):
        """Indexes of the listed subscribers, in list order (None: all of them)."""
        if not self.removed:
            return None
        key = (self.count(), len(self.removed))
        if self._alive is None or self._alive[0] != key:
            self._alive = (key, [i for i in range(self.count()) if i not in self.removed])
        return self._alive[1]

    def index_of(self, sid):
        if self._id_index is None:
            self._id_index = {self.sub_id(i): i for i in range(self.n)}
            for k, s in enumerate(self.extra):
                self._id_index[s["id"]] = self.n + k
        i = self._id_index.get(sid)
        return None if i in self.removed else i

    def index_of_phone(self, phone):
        if self._phone_index is None:
            self._phone_index = {}
            for i in range(self.count()):
                self._phone_index[self.subscriber(i)["phone_number"]] = i
        i = self._phone_index.get(phone)
        return None if i in self.removed else i

    def change(self, i, s):
        old = self.subscriber(i)
        if i < self.n:
            self.overrides[i] = s
        else:
            self.extra[i - self.n] = s
        if self._phone_index is not None:
            self._phone_index[s["phone_number"]] = i
        for field, index in self._ts_index.items():
            if old[field] != s[field] and i < index[0]:
                unindex(index[1], (parse_ts(old[field]), i))
                bisect.insort(index[1], (parse_ts(s[field]), i))

    def remove(self, i):
        """The subscriber disappears from the API (as if deleted upstream)."""
        for field, index in self._ts_index.items():
            if i < index[0]:
                unindex(index[1], (parse_ts(self.subscriber(i)[field]), i))
        self.removed.add(i)

    def ts_index(self, field):
        """The listed subscribers sorted by a timestamp field, ties in list
        order: [(epoch, index)].  Built once (seeded rows from their stamps
        alone, without generating them), then kept up to date."""
        index = self._ts_index.get(field)
        if index is None:
            pos = ("created_at", "updated_at").index(field)
            rows = []
            for i in range(self.n):
                if i in self.removed:
                    continue
                if i in self.overrides:
                    text = self.overrides[i][field]
                else:
                    text = self._stamps(i, digest(self.seed, "sub", i))[pos]
                rows.append((parse_ts(text), i))
            rows.sort()
            index = self._ts_index[field] = [self.n, rows]
        while index[0] < self.count():      # confirmed since: appended to the list
            if index[0] not in self.removed:
                bisect.insort(index[1], (parse_ts(self.subscriber(index[0])[field]), index[0]))
            index[0] += 1
        return index[1]

    def next_id(self, kind, prefix, alphabet=B62, length=16):
        self.counter += 1
        return prefix + encode(digest(self.seed, kind, "new", self.counter)[:16], alphabet, length)


# --------------------------------------------------------------------------
# Listing: filters, sorts, pages

def query_params(raw):
    params = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        params.setdefault(key, []).append(value)
    return params


def build_filters(resource, params):
    spec = LISTS[resource]
    tests = []
    sort = None
    page = 1
    for key, values in params.items():
        if key == "page":
            if len(values) != 1 or not re.fullmatch(r"[0-9]{1,9}", values[0]) or int(values[0]) < 1:
                raise validation_error(("query", "page"), "value is not a valid page number",
                                       "type_error.integer")
            page = int(values[0])
            continue
        if key == "sort":
            m = re.fullmatch(r"([a-z_]+)__(asc|desc)", values[0]) if len(values) == 1 else None
            if not m or m.group(1) not in spec["sorts"]:
                raise validation_error(("query", "sort"), "unsupported sort: %s" % ",".join(values))
            sort = (m.group(1), m.group(2) == "desc")
            continue
        field, _, op = key.rpartition("__")
        if field not in spec["filters"] or op not in spec["filters"][field][1]:
            raise validation_error(("query", key), "unknown query parameter", "value_error.extra")
        kind = spec["filters"][field][0]
        if op != "in" and len(values) != 1:
            raise validation_error(("query", key), "a single value is expected")
        if kind == "int":
            if not re.fullmatch(r"-?[0-9]{1,18}", values[0]):
                raise validation_error(("query", key), "value is not a valid integer",
                                       "type_error.integer")
            want = int(values[0])
            tests.append(lambda r, f=field, w=want: r.get(f) is not None and r[f] == w)
        elif kind == "ts":
            want = parse_ts(values[0])
            if want is None:
                raise validation_error(("query", key), "invalid datetime format",
                                       "value_error.datetime")
            cmp = {"eq": lambda a, b: a == b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
                   "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}[op]
            tests.append(lambda r, f=field, w=want, c=cmp:
                         r.get(f) is not None and c(parse_ts(r[f]), w))
        elif op == "eq":
            tests.append(lambda r, f=field, w=values[0]: r.get(f) is not None and str(r[f]) == w)
        elif op == "contains":
            tests.append(lambda r, f=field, w=values[0]: r.get(f) is not None and w in str(r[f]))
        else:
            wanted = set(values)
            tests.append(lambda r, f=field, w=wanted: r.get(f) is not None and str(r[f]) in w)
    return tests, sort, page


def sort_key(kind):
    if kind == "ts":
        return parse_ts
    return lambda v: v


def list_page(rows, tests, sort, sort_kind, page, page_size):
    """rows: an iterable in default order.  Returns (page rows, total_pages)."""
    if not tests and sort is None:
        chosen = rows[(page - 1) * page_size: page * page_size]
        return chosen, max(1, math.ceil(len(rows) / page_size))
    matched = [r for r in rows if all(t(r) for t in tests)] if tests else list(rows)
    if sort is not None:
        field, desc = sort
        conv = sort_key(sort_kind)
        present = [r for r in matched if r.get(field) is not None]
        missing = [r for r in matched if r.get(field) is None]
        present.sort(key=lambda r: conv(r[field]), reverse=desc)
        matched = missing + present if desc else present + missing
    total = len(matched)
    return matched[(page - 1) * page_size: page * page_size], max(1, math.ceil(total / page_size))


def ts_range_page(data, params, page, page_size):
    """A page of subscribers filtered and sorted by the same timestamp field
    (created_at__gte=…&sort=created_at__asc: the sync's keyset pages), from
    the sorted index instead of a pass over every subscriber.  Same rows and
    order as list_page; None when the query is not of that form."""
    sort = params.get("sort", [""])[0]
    field, _, direction = sort.rpartition("__")
    if field not in ("created_at", "updated_at"):
        return None
    bounds = []
    for key, values in params.items():
        f, _, op = key.rpartition("__")
        if key in ("page", "sort"):
            continue
        if f != field:
            return None
        bounds.append((op, parse_ts(values[0])))
    index = data.ts_index(field)
    lo, hi = 0, len(index)
    for op, w in bounds:
        if op in ("gt", "lte", "eq"):
            edge = bisect.bisect_left(index, (w, math.inf))
        if op in ("gte", "lt", "eq"):
            edge_low = bisect.bisect_left(index, (w, -1))
        if op == "gt":
            lo = max(lo, edge)
        elif op == "gte":
            lo = max(lo, edge_low)
        elif op == "lt":
            hi = min(hi, edge_low)
        elif op == "lte":
            hi = min(hi, edge)
        else:
            lo, hi = max(lo, edge_low), min(hi, edge)
    total = max(0, hi - lo)
    first, last = (page - 1) * page_size, min(total, page * page_size)
    picked = []
    for k in range(first, last):
        if direction == "asc":
            picked.append(index[lo + k][1])
            continue
        # descending: groups of equal stamps from the end, each in list order
        j = hi - 1 - k
        w = index[j][0]
        g_lo = max(lo, bisect.bisect_left(index, (w, -1)))
        g_hi = min(hi, bisect.bisect_left(index, (w, math.inf)))
        picked.append(index[g_lo + g_hi - 1 - j][1])
    return [data.subscriber(i) for i in picked], max(1, math.ceil(total / page_size))


class LazySubscribers:
    """The subscriber list as a sequence, for unfiltered pages of a large set."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        listed = self.data.listed()
        return self.data.count() if listed is None else len(listed)

    def __getitem__(self, sl):
        listed = self.data.listed()
        return [self.data.subscriber(i if listed is None else listed[i])
                for i in range(*sl.indices(len(self)))]

    def __iter__(self):
        return self.data.subscribers()


# --------------------------------------------------------------------------
# Webhooks (documented, part A): subscriptions, the signing token, example
# payloads, test deliveries; and deliveries to a callback, at least once,
# with the Postscript-Signature header, retried until a 2xx.

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

    # -- the API (called under the state's lock)
    def handle(self, method, rest, params, body):
        if rest == ["token"] and method == "GET":
            Api.no_params(params)
            return 200, {"token": self.state.args.webhook_token}
        if rest == ["example"] and method == "GET":
            # documented: event is required (the reference's default is no
            # default for a required parameter)
            event = params.get("event", [])
            if len(event) != 1 or event[0] not in EXAMPLE_EVENTS or set(params) - {"event"}:
                raise validation_error(("query", "event"), "event must be one of %s" % ", ".join(EXAMPLE_EVENTS))
            return 200, webhook_envelope(event[0], webhook_example_data(event[0]),
                                         event_time="2021-11-04T21:52:41.025455")
        if rest == ["test"] and method == "POST":
            Api.no_params(params)
            obj = Api.body_object(body)
            # documented: event is required in the body
            if "event" not in obj:
                raise validation_error(("body", "event"), "field required", "value_error.missing")
            event = obj["event"]
            if event not in EXAMPLE_EVENTS:
                raise validation_error(("body", "event"), "event must be one of %s" % ", ".join(EXAMPLE_EVENTS))
            self.emit(event, webhook_example_data(event))
            return 202, {"message": "OK"}
        if not rest and method == "GET":
            Api.no_params(params)
            return 200, {"webhook_subscriptions": list(self.subscriptions.values())}
        if not rest and method == "POST":
            Api.no_params(params)
            obj = self.check(Api.body_object(body), create=True)
            stamp = fmt_ts(time.time(), 0)
            sub = {"id": str(uuid.uuid4()), "callback_url": obj["callback_url"],
                   "event": obj["event"], "headers": obj.get("headers") or {},
                   "created_at": stamp, "updated_at": stamp}
            self.subscriptions[sub["id"]] = sub
            return 200, sub
        if len(rest) == 1 and method in ("GET", "PATCH", "DELETE"):
            Api.no_params(params)
            sub = self.subscriptions.get(rest[0])
            if sub is None:
                raise ApiError(400, {})         # the reference lists 400 with {} only
            if method == "GET":
                return 200, sub
            if method == "DELETE":
                del self.subscriptions[rest[0]]
                return 200, {}
            obj = self.check(Api.body_object(body), create=False)
            # documented: only callback_url and headers change; other keys are ignored
            sub.update({k: obj[k] for k in ("callback_url", "headers") if k in obj})
            sub["updated_at"] = fmt_ts(time.time(), 0)
            return 200, sub
        raise ApiError(404, {"error": "Not found: %s %s/webhooks/%s" % (method, API, "/".join(rest))})

    @staticmethod
    def check(obj, create):
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
        each one retried every retry_s seconds until a 2xx or max_attempts."""
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
        """One POST; True once answered 2xx."""
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
            except (OSError, http.client.HTTPException) as e:
                error = type(e).__name__ + ": " + str(getattr(e, "reason", e))
        with self.state.lock:
            rec["attempts"].append({"status": status, "error": error})
            if 200 <= status < 300:
                rec["state"] = "delivered"
        return 200 <= status < 300

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


# --------------------------------------------------------------------------
# The server state: data, configuration, request log, faults, rate buckets

class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.start_config = {"page_size": args.page_size, "rate_limit": args.rate_limit,
                             "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms,
                             "limiter": args.limiter, "webhook_retry_s": args.webhook_retry_s,
                             # 1: GET /keywords answers {} -- documented (part A) for a shop
                             # without keywords
                             "keywords_empty": 0}
        self.reset()

    def reset(self):
        with self.lock:
            self.config = dict(self.start_config)
            self.generation = getattr(self, "generation", 0) + 1
            self.log = []
            self.seq = 0
            self.faults = []
            self.buckets = {}
            self.epoch = time.monotonic()
            self.data = Data(self.args.seed, self.args.subscribers)
            self.webhooks = Webhooks(self, self.generation)

    def arrive(self):
        """A request's place in the log, and the reset generation it belongs to."""
        with self.lock:
            self.seq += 1
            return self.seq, self.generation

    def record(self, entry, generation):
        """Log a finished request, unless a reset came while it was in flight
        (a slow request must not show up in the next test's log)."""
        with self.lock:
            if generation == self.generation:
                self.log.append(entry)
                self.log.sort(key=lambda e: e["seq"])

    def take_fault(self, method, path, reused=False):
        """The next fault for this request; a fault with "reused": true only
        strikes a request on a connection that served one before."""
        with self.lock:
            for f in self.faults:
                if f["count"] == 0:
                    continue
                if f.get("reused") and not reused:
                    continue
                if f.get("method") and f["method"].upper() != method:
                    continue
                if f.get("path") and not path.startswith(f["path"]):
                    continue
                if f.get("after", 0) > 0:
                    f["after"] -= 1
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                return f
        return None

    # The rate limit.  Documented (part A): rate_limit requests per second per
    # token, a 429 with RATE_LIMIT_BODY beyond it, no Retry-After.  Assumed
    # (part C): how the server counts, which Postscript does not say; one of
    # LIMITERS, chosen with --limiter or /__admin/config.  Only accepted
    # requests count.  A request counts at the moment it arrives: when this
    # server read it plus the simulated network delay, whenever the thread
    # handling it gets to run (a busy server must not bunch requests up
    # that arrived apart), so moments may come slightly out of order.
    def allow(self, token, entry, now):
        """Whether the rate limit lets the request that arrived at now
        (time.monotonic) through; entry["at"] is now in seconds since the
        last reset."""
        rate = self.config["rate_limit"]
        with self.lock:
            entry["at"] = round(now - self.epoch, 4)
            if not rate:
                return True
            return LIMITERS[self.config["limiter"]](self.buckets, token, float(rate), now)

    def delay(self):
        """Seconds a request takes to reach the limiter: latency_ms with
        jitter_ms of uniform jitter either way (requests arrive compressed or
        stretched, as over a real network)."""
        ms = self.config["latency_ms"]
        if self.config["jitter_ms"]:
            ms += random.uniform(-self.config["jitter_ms"], self.config["jitter_ms"])
        return max(0.0, ms) / 1000.0


def limit_bucket(buckets, token, rate, now):
    """A token bucket: capacity rate_limit (at least 1), refilled at rate_limit/s."""
    capacity = max(1.0, rate)
    tokens, last = buckets.get(token, (capacity, now))
    now = max(now, last)
    tokens = min(capacity, tokens + (now - last) * rate)
    if tokens < 1.0:
        buckets[token] = (tokens, now)
        return False
    buckets[token] = (tokens - 1.0, now)
    return True


def window_of(rate):
    """rate_limit as whole requests per window: n per n/rate seconds."""
    n = max(1, int(rate))
    return n, n / rate


def limit_fixed(buckets, token, rate, now):
    """Fixed windows: at most n requests in each window [k*w, (k+1)*w)."""
    n, w = window_of(rate)
    k = math.floor(now / w)
    counts = buckets.setdefault(token, {})
    for old in [j for j in counts if j < k - 1]:
        del counts[old]
    if counts.get(k, 0) >= n:
        return False
    counts[k] = counts.get(k, 0) + 1
    return True


def limit_sliding(buckets, token, rate, now):
    """A sliding window: at most n requests in any w seconds."""
    n, w = window_of(rate)
    times = buckets.setdefault(token, [])
    while times and times[0] <= now - 2 * w:
        times.pop(0)
    # the window (now - w, now], and every later one the request falls in
    # (a request counted before it arrived later than this one)
    later = [t for t in times[bisect.bisect_right(times, now):] if t < now + w]
    for t in [now] + later:
        if sum(1 for u in times if t - w < u <= t) >= n:
            return False
    bisect.insort(times, now)
    return True


LIMITERS = {"bucket": limit_bucket, "fixed": limit_fixed, "sliding": limit_sliding}


# what POST /__admin/subscribers may set on a subscriber
SETTABLE = {"email", "tags", "properties", "subscriptions", "shopify_customer_id", "updated_at"}
# how a change names its subscribers (pick_subscribers)
PICKS = {"id", "ids", "every", "offset"}

FAULT_KINDS = {"status", "rate_limit", "slow", "stall", "truncate", "malformed", "close",
               "applied_500", "body", "huge_page", "endless"}


def records_key_of(f, path):
    """The list key a hostile page uses: the fault's, or the path's last part."""
    return f.get("records_key") or path.rstrip("/").rsplit("/", 1)[-1]


def copy_escape(value):
    if value is None:
        return "\\N"
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def error_body_for(status):
    if status == 429:
        return RATE_LIMIT_BODY
    if status == 404:
        return {"error_code": 3001, "error_message": "Could not find a resource matching that information",
                "success": False}
    if status == 403:
        return {"error": "You do not have permission to do that."}
    if status in (400, 422):
        return {"errors": [{"loc": ["body"], "msg": "injected validation error", "type": "value_error"}]}
    if status == 401:
        return {"errors": [{"loc": ["header", "Authorization"], "msg": "Invalid API key",
                            "type": "v2.authentication_failed"}]}
    return {"error_code": 5000, "error_message": "Internal server error (HTTP %d)" % status, "success": False}


# --------------------------------------------------------------------------
# The API

class Api:
    def __init__(self, state):
        self.state = state

    @property
    def data(self):
        return self.state.data

    def handle(self, method, path, params, body):
        """Returns (status, JSON body)."""
        parts = path[len(API):].strip("/").split("/") if path.startswith(API + "/") else None
        if not parts or parts == [""]:
            raise ApiError(404, {"error": "Not found: %s" % path})
        name, rest = parts[0], parts[1:]
        if name in LISTS and method == "GET" and not rest:
            return 200, self.list(name, params)
        if name == "subscribers":
            if method == "POST" and not rest:
                self.no_params(params)
                # documented in the reference's prose; the 201 and the
                # answer's shape are assumed (part B)
                return 201, self.create_subscriber(body)
            if len(rest) == 1 and method in ("GET", "PATCH"):
                self.no_params(params)
                i = self.data.index_of(rest[0])
                if i is None and method == "GET":
                    # documented: the reference lists only 200 and 400 with {}
                    raise ApiError(400, {})
                if i is None:
                    raise not_found("subscriber")
                if method == "GET":
                    return 200, self.data.subscriber(i)
                return 200, self.patch_subscriber(i, body)
        if name in LISTS and method == "GET" and len(rest) == 1:
            self.no_params(params)
            for r in getattr(self.data, name):
                if r["id"] == rest[0]:
                    return 200, r
            raise not_found(name.rstrip("s").replace("_", "-"))
        if name == "keywords" and method == "GET":
            self.no_params(params)
            if not rest:
                if self.state.config["keywords_empty"]:
                    return 200, {}          # documented: a shop with no keywords
                return 200, {"keywords": self.data.keywords}
            if len(rest) == 1:
                k = self.data.keyword_by_id.get(rest[0])
                if k is None:
                    raise not_found("keyword")
                return 200, k
        if name == "me" and method == "GET" and not rest:
            self.no_params(params)
            return 200, SHOP
        if name == "compliance" and method == "PATCH" and rest in (["unsubscribe"], ["redact"]):
            self.no_params(params)
            return 202, self.unsubscribe(body, redact=rest[0] == "redact")
        if name == "events" and method == "POST" and not rest:
            self.no_params(params)
            return 202, self.event(body)
        if name == "message_requests" and method == "POST" and not rest:
            self.no_params(params)
            return 202, self.message_request(body)
        if name == "webhooks":
            return self.state.webhooks.handle(method, rest, params, body)
        # an unknown id of these two is documented as 400: {} and the errors shape
        if name == "message_requests" and method == "GET" and len(rest) == 1:
            r = self.data.message_requests.get(rest[0])
            if r is None:
                raise ApiError(400, {})
            return 200, r
        if name == "sent_messages" and method == "GET" and len(rest) == 1:
            for m in self.data.messages:
                if m["id"] == rest[0]:
                    return 200, self.sent_message(m)
            raise validation_error(("path", "id"), "no sent message with this id")
        raise ApiError(404, {"error": "Not found: %s %s" % (method, path)})

    @staticmethod
    def no_params(params):
        for key in params:
            raise validation_error(("query", key), "unknown query parameter", "value_error.extra")

    def list(self, name, params):
        tests, sort, page = build_filters(name, params)
        rows = LazySubscribers(self.data) if name == "subscribers" else getattr(self.data, name)
        kind = LISTS[name]["sorts"][sort[0]] if sort else None
        fast = ts_range_page(self.data, params, page, self.state.config["page_size"]) \
            if name == "subscribers" else None
        chosen, total = fast or list_page(rows, tests, sort, kind, page, self.state.config["page_size"])
        return {"page_info": {"page": page, "total_pages": total}, name: chosen}

    # -- writes
    @staticmethod
    def body_object(body):
        if body is None:
            raise validation_error(("body",), "a JSON object body is required")
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise validation_error(("body",), "the body is not valid JSON", "value_error.jsondecode")
        if not isinstance(obj, dict):
            raise validation_error(("body",), "a JSON object is expected", "type_error.dict")
        # documented: keys the endpoint does not know are ignored, not refused
        return obj

    @staticmethod
    def check_type(obj, key, typ, what):
        value = obj.get(key)
        if value is not None and (not isinstance(value, typ) or isinstance(value, bool)):
            raise validation_error(("body", key), "value is not a valid %s" % what, "type_error." + what)

    def check_common(self, obj):
        self.check_type(obj, "email", str, "string")
        if obj.get("email") is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", obj["email"]):
            raise validation_error(("body", "email"), "value is not a valid email address", "value_error.email")
        self.check_type(obj, "tags", list, "list")
        for t in obj.get("tags") or []:
            if not isinstance(t, str) or not t:
                raise validation_error(("body", "tags"), "tags must be non-empty strings", "type_error.str")
        self.check_type(obj, "properties", dict, "dict")
        props = obj.get("properties") or {}
        for key, value in props.items():
            # documented: strings, integers, arrays of strings, ISO dates (strings)
            ok = (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
                  or (isinstance(value, list) and all(isinstance(v, str) for v in value)))
            if not ok:
                raise validation_error(("body", "properties", key),
                                       "values are strings, integers, arrays of strings or ISO dates")

    def create_subscriber(self, body):
        obj = self.body_object(body)
        if obj.get("phone_number") is None:
            raise validation_error(("body", "phone_number"), "field required", "value_error.missing")
        phone = normalize_phone(obj["phone_number"])
        if phone is None:
            raise validation_error(("body", "phone_number"), "value is not a valid phone number",
                                   "value_error.phone")
        self.check_common(obj)
        self.check_type(obj, "shopify_customer_id", int, "integer")
        # documented: origin is website, social or other (default other)
        if obj.get("origin", "other") not in ("website", "social", "other"):
            raise validation_error(("body", "origin"), "value is not a valid enumeration member",
                                   "type_error.enum")
        keyword = None
        if obj.get("keyword_id") is not None:
            keyword = self.data.keyword_by_id.get(obj["keyword_id"])
            if keyword is None:
                raise validation_error(("body", "keyword_id"), "unknown keyword")
        elif obj.get("keyword") is not None:
            keyword = self.data.keyword_by_name.get(str(obj["keyword"]).upper())
            if keyword is None:
                raise validation_error(("body", "keyword"), "unknown keyword")
        if len(obj.get("properties") or {}) > MAX_PROPERTIES:
            raise validation_error(("body", "properties"), "at most %d properties" % MAX_PROPERTIES)
        # documented: an existing subscriber, active or pending, is v2.entity_conflict
        # (its status is not documented; this server answers 400)
        if self.data.index_of_phone(phone) is not None:
            raise conflict("Subscriber already exists with phone number: %s" % phone)
        if any(p["phone_number"] == phone for p in self.data.pending.values()):
            raise conflict("Pending subscriber already exists with phone number: %s" % phone)
        stamp = now_iso()
        sub = {"id": self.data.next_id("pending", "s_pending_", B36, 12), "ps_id": None,
               "phone_number": phone, "email": obj.get("email"),
               "shopify_customer_id": obj.get("shopify_customer_id"),
               "tags": list(dict.fromkeys(obj.get("tags") or [])),
               "properties": dict(obj.get("properties") or {}),
               "subscriptions": {"promotional": {"can_send": False}, "transactional": {"can_send": False}},
               "data": {}, "created_at": stamp, "updated_at": stamp, "is_pending": True}
        self.data.pending[sub["id"]] = sub
        self.data.opt_ins.append({
            "id": self.data.next_id("opt_in", "oi_"), "subscriber_id": sub["id"], "phone_number": phone,
            "keyword_id": keyword["id"] if keyword else None,
            "source": "keyword" if keyword else "api", "status": "pending",
            "created_at": stamp, "confirmed_at": None})
        return sub

    def confirm(self, pending_id):
        """The subscriber answers the double opt-in: pending becomes active."""
        sub = self.data.pending.pop(pending_id, None)
        if sub is None:
            raise not_found("pending subscriber")
        if self.data.index_of_phone(sub["phone_number"]) is not None:
            raise conflict("Subscriber already exists with phone number: %s" % sub["phone_number"])
        stamp = now_iso()
        active = dict(sub)
        del active["is_pending"]
        active.update({"id": self.data.next_id("sub", "s_", B62, 20), "ps_id": 1000 + self.data.count(),
                       "subscriptions": {"promotional": {"can_send": True}, "transactional": {"can_send": True}},
                       "created_at": stamp, "updated_at": stamp})
        self.data.index_of(active["id"])        # build the index before extending
        self.data.extra.append(active)
        i = self.data.count() - 1
        self.data._id_index[active["id"]] = i
        if self.data._phone_index is not None:
            self.data._phone_index[active["phone_number"]] = i
        for oi in self.data.opt_ins:
            if oi["subscriber_id"] == pending_id:
                oi.update({"subscriber_id": active["id"], "status": "confirmed", "confirmed_at": stamp})
        self.state.webhooks.emit("shop.subscriber.opt_in", webhook_subscriber_data(active))
        return active

    def patch_subscriber(self, i, body):
        obj = self.body_object(body)
        self.check_common(obj)
        sub = json.loads(json.dumps(self.data.subscriber(i)))
        # documented: email is only set where the subscriber has none or no
        # Shopify customer is linked; otherwise it is left as it is
        if "email" in obj and (not sub.get("email") or sub.get("shopify_customer_id") is None):
            sub["email"] = obj["email"]
        for t in obj.get("tags") or []:
            if t not in sub["tags"]:
                sub["tags"].append(t)
        merged = dict(sub["properties"])
        merged.update(obj.get("properties") or {})
        if len(merged) > MAX_PROPERTIES:
            raise validation_error(("body", "properties"),
                                   "a subscriber holds at most %d properties" % MAX_PROPERTIES)
        sub["properties"] = merged
        sub["updated_at"] = now_iso()
        self.data.change(i, sub)
        return sub

    def unsubscribe(self, body, redact):
        # redact also finds the subscriber by Shopify customer or email (the OpenAPI file)
        keys = ("postscript_subscriber_id", "phone_number") + (("shopify_customer_id", "email") if redact else ())
        obj = self.body_object(body)
        given = [k for k in keys if obj.get(k) is not None]
        if len(given) != 1:
            raise validation_error(("body",), "exactly one of " + ", ".join(keys))
        phone = obj.get("phone_number")
        if given[0] != "phone_number":
            field = "id" if given[0] == "postscript_subscriber_id" else given[0]
            want = str(obj[given[0]])
            i = self.data.index_of(want) if field == "id" else next(
                (j for j in range(self.data.count())
                 if self.data.subscriber(j)[field] is not None and str(self.data.subscriber(j)[field]) == want), None)
            if i is None:
                raise not_found("subscriber")
        else:
            norm = normalize_phone(phone)
            if norm is None:
                raise validation_error(("body", "phone_number"), "value is not a valid phone number",
                                       "value_error.phone")
            phone = norm
            i = self.data.index_of_phone(phone)
        sub = self.data.subscriber(i) if i is not None else None
        if sub is not None:
            phone = sub["phone_number"]
            changed = json.loads(json.dumps(sub))
            already = not changed["subscriptions"]["promotional"]["can_send"]
            changed["subscriptions"] = {"promotional": {"can_send": False},
                                        "transactional": {"can_send": False}}
            if redact:
                changed.update({"email": None, "properties": {}, "tags": [], "shopify_customer_id": None})
            changed["updated_at"] = now_iso()
            self.data.change(i, changed)
        else:
            already = any(o["phone_number"] == phone for o in self.data.opt_outs)
        if not already:
            self.data.opt_outs.append({"id": self.data.next_id("opt_out", "oo_"),
                                       "subscriber_id": sub["id"] if sub else None,
                                       "phone_number": phone, "source": "api", "created_at": now_iso()})
            if sub is not None:
                self.state.webhooks.emit("shop.subscriber.opt_out", webhook_subscriber_data(sub))
        return {"message": "OK"}

    def event(self, body):
        obj = self.body_object(body)
        if not isinstance(obj.get("type"), str) or not re.fullmatch(r"[A-Za-z0-9_]+", obj["type"]):
            raise validation_error(("body", "type"), "letters, digits and underscores only")
        # documented: subscriber_id, phone and email are all optional, several
        # may go together, and matching is asynchronous: an unknown subscriber
        # is accepted
        # documented: occurred_at only as "%Y-%m-%d %H:%M:%S.%f" (UTC)
        if obj.get("occurred_at") is not None:
            try:
                datetime.strptime(str(obj["occurred_at"]), "%Y-%m-%d %H:%M:%S.%f")
            except ValueError:
                raise validation_error(("body", "occurred_at"),
                                       "time data does not match format '%Y-%m-%d %H:%M:%S.%f'",
                                       "value_error.datetime")
        self.check_type(obj, "properties", dict, "dict")
        self.check_type(obj, "external_id", str, "string")
        event = dict(obj)
        event["id"] = self.data.next_id("event", "ev_")
        self.data.events.append(event)
        return {"event_ids": [event["id"]]}

    @staticmethod
    def sent_message(m):
        """A message as GET /sent_messages/{id} documents it."""
        return {"id": m["id"], "shop_id": SHOP["resource_id"], "subscriber_id": m["subscriber_id"],
                "phone": m["phone"], "body": m["body"], "media_url": m["media_url"],
                "credits_used": m["credits_used"], "created_at": m["created_at"]}

    def message_request(self, body):
        obj = self.body_object(body)
        if not isinstance(obj.get("body"), str) or not obj["body"]:
            raise validation_error(("body", "body"), "field required", "value_error.missing")
        category = obj.get("category") or "promotional"
        if category not in ("promotional", "transactional", "conversational"):
            raise validation_error(("body", "category"), "unknown category")
        if obj.get("subscriber_id") is not None:
            i = self.data.index_of(str(obj["subscriber_id"]))
            if i is None:
                raise not_found("subscriber")
            sub = self.data.subscriber(i)
        elif obj.get("phone") is not None:
            i = self.data.index_of_phone(normalize_phone(obj["phone"]) or "")
            if i is None:
                raise not_found("subscriber")
            sub = self.data.subscriber(i)
        else:
            raise validation_error(("body",), "subscriber_id or phone is required")
        stamp = now_iso()
        msg = {"id": self.data.next_id("message", "msg_"), "subscriber_id": sub["id"],
               "phone": sub["phone_number"], "direction": "outbound", "category": category,
               "body": obj["body"], "media_url": obj.get("media_url"), "campaign_id": None,
               "status": "sent", "credits_used": 1, "created_at": stamp}
        self.data.messages.append(msg)
        # documented shape (part A, the OpenAPI file's example)
        req = {"id": self.data.next_id("message_request", "mr_"), "status": "sent", "status_code": 0,
               "subscriber_id": sub["id"], "phone": sub["phone_number"], "body": obj["body"],
               "category": category, "scheduled_at": obj.get("scheduled_at"), "created_at": stamp,
               "updated_at": stamp, "sent_message": self.sent_message(msg)}
        self.data.message_requests[req["id"]] = req
        return req


# --------------------------------------------------------------------------
# HTTP

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "postscript-mock/1.0"
    # headers and body go out in separate writes: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK, 40 ms on every request
    # of a keep-alive connection, which no real API server adds
    disable_nagle_algorithm = True

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

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def __getattr__(self, name):
        # any other method (TRACE, OPTIONS, ...) is routed too, so it gets the
        # API's 404 for an unknown route rather than the standard library's 501
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self.dispatch(name[3:])
        raise AttributeError(name)

    def dispatch(self, method):
        self.received = time.monotonic()
        # requests this connection has carried, this one included
        self.served = getattr(self, "served", 0) + 1
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith("/__admin/"):
            self.admin(method, url, body)
        else:
            self.api(method, url, body)

    # -- responses
    def send_json(self, status, obj, headers=None, raw=None, content_type="application/json",
                  mode=None, delay_ms=0):
        payload = raw if raw is not None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        # an API request is in the log before its answer leaves: a client that
        # reads the log as soon as it has its answer finds the request there
        pending = getattr(self, "pending_log", None)
        if pending is not None:
            self.pending_log = None
            self.server.state.record(*pending)
        if "gzip" in (self.headers.get("Accept-Encoding") or "") and len(payload) > 512:
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

    def send_chunked(self, status, raw, size):
        """raw in HTTP chunks of size bytes, each flushed on its own: the client
        gets a body cut anywhere, inside a UTF-8 character or an escape."""
        pending = getattr(self, "pending_log", None)
        if pending is not None:
            self.pending_log = None
            self.server.state.record(*pending)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
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
        pending = getattr(self, "pending_log", None)
        if pending is not None:
            self.pending_log = None
            self.server.state.record(*pending)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
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

    def admin_reply(self, obj, status=200):
        self.send_json(status, obj)

    # -- the API
    def auth(self):
        """(log label, bucket key) or raises ApiError."""
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
                 "status": 0, "body": body.decode("utf-8", "replace") if body is not None else None}
        self.pending_log = (entry, generation)
        try:
            arrival = self.received + state.delay()
            if arrival > time.monotonic():
                time.sleep(arrival - time.monotonic())
            if isinstance(who, ApiError):
                raise who
            if not state.allow(who, entry, arrival):
                raise ApiError(429, RATE_LIMIT_BODY)
            fault = state.take_fault(method, url.path, reused=self.served > 1)
            if fault is not None and self.apply_fault(fault, entry, method, url, body):
                return
            if generation != state.generation:
                # reset while this request slept: it must not change the new data
                self.close_connection = True
                return
            with state.lock:
                status, obj = Api(state).handle(method, url.path, query_params(url.query), body)
            entry["status"] = status
            self.send_json(status, obj)
        except ApiError as e:
            entry["status"] = e.status
            self.send_json(e.status, e.body)
        finally:
            # no answer was sent (a closed connection, a reset in between)
            if self.pending_log is not None:
                self.pending_log = None
                state.record(entry, generation)

    def apply_fault(self, f, entry, method, url, body):
        """Answers as the fault says; False when the request then goes on normally."""
        kind = f["kind"]
        headers = dict(f.get("headers") or {})
        if kind == "slow":
            time.sleep(f.get("delay_ms", 1000) / 1000.0)
            return False
        if kind == "close":
            self.close_connection = True
            entry["status"] = 0
            return True
        if kind == "rate_limit" or (kind == "status" and f.get("status") == 429):
            if f.get("retry_after") is not None:
                headers["Retry-After"] = f["retry_after"]
            entry["status"] = 429
            self.send_json(429, RATE_LIMIT_BODY, headers)
            return True
        if kind == "status":
            entry["status"] = f["status"]
            self.send_json(f["status"], error_body_for(f["status"]), headers)
            return True
        if kind == "body":
            raw = base64.b64decode(f["body_b64"]) if "body_b64" in f else f.get("body", "").encode("utf-8")
            entry["status"] = f.get("status", 200)
            if f.get("chunk_bytes"):
                self.send_chunked(entry["status"], raw, int(f["chunk_bytes"]))
                return True
            self.send_json(entry["status"], None, headers, raw=raw,
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
            self.send_json(200, None, headers, raw=raw)
            return True
        if kind == "endless":
            entry["status"] = 200
            self.send_endless(records_key_of(f, url.path), f.get("record", '{"id": "x"}'),
                              int(f.get("max_bytes", 1 << 31)))
            return True
        state = self.server.state
        try:
            with state.lock:
                status, obj = Api(state).handle(method, url.path, query_params(url.query), body)
        except ApiError as e:
            status, obj = e.status, e.body
        if kind == "applied_500":
            entry["status"] = 500
            self.send_json(500, error_body_for(500), headers)
        elif kind == "malformed":
            entry["status"] = status
            raw = json.dumps(obj).encode("utf-8")
            self.send_json(status, None, headers, raw=raw[: len(raw) // 2] + b"<html>Bad Gateway</html>")
        else:               # truncate, stall
            entry["status"] = status
            self.send_json(status, obj, headers, mode=kind, delay_ms=f.get("delay_ms", 30000))
        return True

    # -- /__admin/
    def admin(self, method, url, body):
        state = self.server.state
        route = url.path[len("/__admin/"):]
        fmt = dict(parse_qsl(url.query)).get("format")
        try:
            obj = json.loads(body.decode("utf-8")) if body else {}
        except ValueError:
            return self.admin_reply({"error": "the body is not JSON"}, 400)
        if route == "reset" and method == "POST":
            state.reset()
            return self.admin_reply({"reset": True})
        if route == "config" and method in ("GET", "POST"):
            with state.lock:
                for key, value in obj.items():
                    if key == "limiter":
                        if value not in LIMITERS:
                            return self.admin_reply({"error": "limiter must be one of %s" % sorted(LIMITERS)}, 400)
                        state.config[key] = value
                        state.buckets = {}
                        continue
                    if key not in state.config or not isinstance(value, (int, float)) or value < 0:
                        return self.admin_reply({"error": "unknown or invalid setting %s" % key}, 400)
                    if key == "page_size" and value < 1:
                        return self.admin_reply({"error": "page_size must be at least 1"}, 400)
                    state.config[key] = int(value) if key not in ("rate_limit", "webhook_retry_s") else value
                    if key == "rate_limit":
                        state.buckets = {}
                return self.admin_reply(dict(state.config))
        if route == "faults" and method == "POST":
            if obj.get("kind") not in FAULT_KINDS:
                return self.admin_reply({"error": "kind must be one of %s" % sorted(FAULT_KINDS)}, 400)
            if obj["kind"] == "status" and not isinstance(obj.get("status"), int):
                return self.admin_reply({"error": "a status fault needs a status"}, 400)
            fault = dict(obj)
            fault.setdefault("count", 1)
            fault.setdefault("after", 0)
            with state.lock:
                state.faults.append(fault)
            return self.admin_reply({"faults": len(state.faults)})
        if route == "faults" and method == "DELETE":
            with state.lock:
                state.faults = []
            return self.admin_reply({"faults": 0})
        if route == "faults" and method == "GET":
            return self.admin_reply({"faults": state.faults})
        if route == "requests" and method == "GET":
            with state.lock:
                log = list(state.log)
            if fmt == "copy":
                cols = ("seq", "method", "path", "query", "auth", "status", "body")
                text = "".join("\t".join(copy_escape(e[c]) for c in cols) + "\n" for e in log)
                return self.send_json(200, None, raw=text.encode("utf-8"), content_type="text/plain")
            return self.admin_reply({"requests": log})
        if route == "requests" and method == "DELETE":
            with state.lock:
                state.log = []
            return self.admin_reply({"requests": 0})
        if route == "summary" and method == "GET":
            with state.lock:
                rows = self.summary()
            if fmt == "copy":
                text = "".join("%s\t%d\t%s\n" % (r, n, copy_escape(m)) for r, n, m in rows)
                return self.send_json(200, None, raw=text.encode("utf-8"), content_type="text/plain")
            return self.admin_reply({"summary": [{"resource": r, "count": n, "id_md5": m} for r, n, m in rows]})
        if route == "confirm" and method == "POST":
            try:
                with state.lock:
                    return self.admin_reply(Api(state).confirm(str(obj.get("id"))))
            except ApiError as e:
                return self.admin_reply(e.body, e.status)
        if route == "webhooks/deliver" and method == "POST":
            try:
                with state.lock:
                    return self.admin_reply(state.webhooks.admin_deliver(obj))
            except ApiError as e:
                return self.admin_reply(e.body, e.status)
        if route == "webhooks/deliveries" and method == "GET":
            with state.lock:
                return self.admin_reply({"deliveries": json.loads(json.dumps(state.webhooks.deliveries))})
        if route == "events" and method == "GET":
            with state.lock:
                return self.admin_reply({"events": list(state.data.events)})
        if route in ("subscribers", "remove") and method == "POST":
            with state.lock:
                try:
                    if route == "remove":
                        chosen = self.pick_subscribers(obj)
                        for i in chosen:
                            state.data.remove(i)
                        return self.admin_reply({"removed": len(chosen)})
                    return self.admin_reply({"changed": self.change_subscribers(obj)})
                except ApiError as e:
                    return self.admin_reply(e.body, e.status)
        return self.admin_reply({"error": "no such admin endpoint"}, 404)

    def pick_subscribers(self, obj):
        """Indexes of the subscribers a body names: {"id": ...}, {"ids": [...]}
        or {"every": N, "offset": K} (every Nth listed subscriber from the Kth)."""
        data = self.server.state.data
        named = [k for k in ("id", "ids", "every") if k in obj]
        if named == ["id"]:
            chosen = [data.index_of(str(obj["id"]))]
        elif named == ["ids"] and isinstance(obj["ids"], list):
            chosen = [data.index_of(str(sid)) for sid in obj["ids"]]
        elif named == ["every"]:
            every, offset = obj["every"], obj.get("offset", 0)
            if not isinstance(every, int) or every < 1 or not isinstance(offset, int) or offset < 0:
                raise ApiError(400, {"error": "every is a positive integer, offset one not below 0"})
            listed = data.listed() or range(data.count())
            return [listed[k] for k in range(offset, len(listed), every)]
        else:
            raise ApiError(400, {"error": "name the subscribers by one of id, ids (a list), every"})
        if None in chosen:
            raise ApiError(400, {"error": "unknown subscriber id"})
        return chosen

    def change_subscribers(self, body):
        """Subscribers changed in Postscript, as no API request changes them (and
        none is logged): a change, or a list of them, names subscribers
        (pick_subscribers) and gives the SETTABLE fields to set; updated_at
        becomes now unless given.  Every change is checked before any is
        applied.  Returns how many were changed."""
        data = self.server.state.data
        plan = []
        for change in body if isinstance(body, list) else [body]:
            if not isinstance(change, dict):
                raise ApiError(400, {"error": "a change is a JSON object"})
            fields = {k: v for k, v in change.items() if k not in PICKS}
            if not set(fields) <= SETTABLE:
                raise ApiError(400, {"error": "a change sets only %s" % ", ".join(sorted(SETTABLE))})
            if "updated_at" in fields and parse_ts(str(fields["updated_at"])) is None:
                raise ApiError(400, {"error": "updated_at is not an ISO 8601 date-time"})
            plan.append((self.pick_subscribers(change), fields))
        stamp = now_iso()
        changed = 0
        for chosen, fields in plan:
            for i in chosen:
                sub = json.loads(json.dumps(data.subscriber(i)))
                sub["updated_at"] = stamp
                sub.update(fields)
                data.change(i, sub)
                changed += 1
        return changed

    def summary(self):
        data = self.server.state.data
        out = []
        for name in ("campaigns", "keywords", "messages", "opt_ins", "opt_outs", "subscribers"):
            if name == "subscribers":
                ids = [data.sub_id(i) for i in range(data.n) if i not in data.removed] + \
                      [s["id"] for k, s in enumerate(data.extra) if data.n + k not in data.removed]
            else:
                ids = [r["id"] for r in getattr(data, name)]
            ids.sort(key=lambda s: s.encode("utf-8"))
            md5 = hashlib.md5("\n".join(ids).encode("utf-8")).hexdigest() if ids else None
            out.append((name, len(ids), md5))
        return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--subscribers", type=int, default=2000)
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--rate-limit", type=float, default=0, help="requests/s per token; 0 = off")
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


def make_server(args):
    family_host = args.host.strip("[]")
    if ":" in family_host:
        import socket

        class Server6(Server):
            address_family = socket.AF_INET6
        server = Server6((family_host, args.port), Handler)
    else:
        server = Server((family_host, args.port), Handler)
    server.state = State(args)
    server.quiet = args.quiet
    return server


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = make_server(args)
    port = server.server_address[1]
    print("PORT=%d" % port, flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
