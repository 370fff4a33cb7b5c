"""Unit tests of the local Postscript API server (postscript_mock.py, psmock/).

Run: cd mock && python3 -m unittest discover -v -p 'test_*.py'
Each test class starts its own server in this process on an ephemeral
loopback port, talks to it over HTTP and checks statuses, bodies and the
request log against the contract (../shared/postscript-api.md, parts A-C).
"""

import base64
import gzip
import http.client
import json
import threading
import time
import unittest
from urllib.parse import quote, urlencode

import postscript_mock as pm
import psmock.data
from psmock import routes
from psmock.answers import RATE_LIMIT_BODY
from psmock.data import LazySubscribers
from psmock.limiter import LIMITERS, limit_sliding
from psmock.lists import LISTS, build_filters, list_page, ts_range_page
from psmock.server import make_server
from psmock.values import fmt_ts, parse_ts

SHOP = "sk_test_shop_key"
PARTNER = "sk_partner_test_key"


def start(*argv):
    server = make_server(pm.parse_args(["--port", "0", "--quiet", *argv]))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server


class Client:
    def __init__(self, server):
        self.port = server.server_address[1]

    def call(self, method, path, body=None, key=SHOP, token=None, raw=False, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if token is not None:
            h["X-Postscript-Shop-Token"] = token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            if raw:
                return r.status, payload, dict(r.getheaders())
            return r.status, (json.loads(payload) if payload else None), dict(r.getheaders())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def admin(self, method, route, body=None):
        return self.call(method, "/__admin/" + route, body=body, key=None)[1]

    def walk(self, resource, **params):
        rows, page = [], 1
        while True:
            q = urlencode(dict(params, page=page))
            status, body, _ = self.get("/api/v2/%s?%s" % (resource, q))
            if status != 200:
                raise AssertionError("page %d: %d %r" % (page, status, body))
            rows.extend(body[resource])
            if page >= body["page_info"]["total_pages"]:
                return rows, body["page_info"]["total_pages"]
            page += 1


class MockTest(unittest.TestCase):
    # no rate limit (the default is Postscript's 15/s): most tests make
    # requests in quick succession; RateLimitTest sets its limits itself
    ARGS = ("--subscribers", "300", "--page-size", "50", "--rate-limit", "0")

    @classmethod
    def setUpClass(cls):
        cls.server = start(*cls.ARGS)
        cls.c = Client(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        self.c.admin("POST", "reset")

    def log(self):
        return self.c.admin("GET", "requests")["requests"]

    def count(self, resource):
        return {r["resource"]: r["count"] for r in self.c.admin("GET", "summary")["summary"]}[resource]


class AuthTest(MockTest):
    def test_no_key_is_401_with_errors_body(self):
        status, body, _ = self.c.get("/api/v2/me", key=None)
        self.assertEqual(status, 401)
        self.assertEqual(body["errors"][0]["loc"], ["header", "Authorization"])

    def test_wrong_key_is_401(self):
        status, body, _ = self.c.get("/api/v2/me", key="sk_nope")
        self.assertEqual(status, 401)
        self.assertEqual(body["errors"][0]["type"], "v2.authentication_failed")

    def test_public_key_is_403(self):
        self.assertEqual(self.c.get("/api/v2/me", key="pk_public")[0], 403)

    def test_partner_key_needs_shop_token(self):
        self.assertEqual(self.c.get("/api/v2/me", key=PARTNER)[0], 403)
        self.assertEqual(self.c.get("/api/v2/me", key=PARTNER, token="sk_wrong")[0], 403)
        status, body, _ = self.c.get("/api/v2/me", key=PARTNER, token=SHOP)
        self.assertEqual(status, 200)
        self.assertEqual(body["resource_type"], "shop")

    def test_log_records_the_scheme_and_headers_not_the_key(self):
        self.c.get("/api/v2/me")
        self.c.get("/api/v2/me", key=PARTNER, token=SHOP)
        self.c.get("/api/v2/me", key=None)
        self.c.get("/api/v2/me", key=None, headers={"x-postscript-shop-token": SHOP})
        log = self.log()
        self.assertEqual([e["auth"] for e in log], ["shop", "partner+token", "none", "none"])
        # part C: which auth headers were present, never their values
        self.assertEqual([e["headers"] for e in log],
                         [["Authorization"], ["Authorization", "X-Postscript-Shop-Token"], [],
                          ["X-Postscript-Shop-Token"]])
        self.assertNotIn(SHOP, json.dumps(log))
        self.assertNotIn(PARTNER, json.dumps(log))
        copy = self.c.call("GET", "/__admin/requests?format=copy", key=None, raw=True)[1].decode()
        # the eighth column: seq, method, path, query, auth, status, body, headers, in_flight
        self.assertEqual([line.split("\t")[7] for line in copy.splitlines()],
                         ["{Authorization}", "{Authorization,X-Postscript-Shop-Token}", "{}",
                          "{X-Postscript-Shop-Token}"])
        self.assertNotIn(SHOP, copy)


class PaginationTest(MockTest):
    def test_walk_every_page(self):
        rows, total = self.c.walk("subscribers")
        self.assertEqual(total, 6)
        self.assertEqual(len(rows), 300)
        self.assertEqual(len({r["id"] for r in rows}), 300)
        self.assertEqual(self.count("subscribers"), 300)
        self.assertEqual([e["query"] for e in self.log()], ["page=%d" % p for p in range(1, 7)])

    def test_page_past_the_end_is_empty(self):
        status, body, _ = self.c.get("/api/v2/subscribers?page=99")
        self.assertEqual(status, 200)
        self.assertEqual(body["subscribers"], [])
        self.assertEqual(body["page_info"]["total_pages"], 6)

    def test_invalid_page_is_400(self):
        for bad in ("0", "x", "-1"):
            self.assertEqual(self.c.get("/api/v2/subscribers?page=" + bad)[0], 400, bad)

    def test_page_size_is_server_side(self):
        self.c.admin("POST", "config", {"page_size": 7})
        status, body, _ = self.c.get("/api/v2/subscribers?page=1")
        self.assertEqual(len(body["subscribers"]), 7)
        self.assertEqual(body["page_info"]["total_pages"], 43)

    def test_every_list_endpoint_answers(self):
        for resource in ("subscribers", "campaigns", "messages", "opt_ins", "opt_outs"):
            rows, _ = self.c.walk(resource)
            self.assertEqual(len(rows), self.count(resource), resource)
            self.assertGreater(len(rows), 0, resource)
        status, body, _ = self.c.get("/api/v2/keywords")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["keywords"]), self.count("keywords"))

    def test_data_set_variety(self):
        rows, _ = self.c.walk("subscribers")
        self.assertTrue(any(r["email"] is None for r in rows))
        self.assertTrue(any(r["email"] and "+" in r["email"] for r in rows))
        self.assertTrue(any(r["shopify_customer_id"] is None for r in rows))
        self.assertTrue(any(not r["phone_number"].startswith("+1") for r in rows))
        self.assertTrue(all(r["phone_number"].startswith("+") for r in rows))
        self.assertTrue(any(any(ord(ch) > 127 for ch in json.dumps(r["properties"], ensure_ascii=False))
                            for r in rows))
        stamps = [r["created_at"] for r in rows]
        self.assertTrue(any("." in s for s in stamps) and any("." not in s for s in stamps))


class FilterTest(MockTest):
    def setUp(self):
        super().setUp()
        self.all, _ = self.c.walk("subscribers")
        self.c.admin("POST", "reset")

    def test_email_eq_with_plus(self):
        email = next(r["email"] for r in self.all if r["email"] and "+" in r["email"])
        rows, _ = self.c.walk("subscribers", email__eq=email)
        self.assertEqual([r["id"] for r in rows], [r["id"] for r in self.all if r["email"] == email])
        self.assertIn("email__eq=" + quote(email, safe=""), self.log()[0]["query"])

    def test_in_filter(self):
        emails = [r["email"] for r in self.all if r["email"]][:3]
        q = "&".join("email__in=" + quote(e, safe="") for e in emails)
        status, body, _ = self.c.get("/api/v2/subscribers?" + q)
        self.assertEqual(status, 200)
        self.assertEqual(sorted(r["email"] for r in body["subscribers"]), sorted(emails))

    def test_timestamp_range(self):
        ts = sorted(parse_ts(r["created_at"]) for r in self.all)
        mid = ts[len(ts) // 2]
        bound = fmt_ts(mid)
        rows, _ = self.c.walk("subscribers", created_at__gte=bound)
        want = [r["id"] for r in self.all if parse_ts(r["created_at"]) >= parse_ts(bound)]
        self.assertEqual(sorted(r["id"] for r in rows), sorted(want))
        rows, _ = self.c.walk("subscribers", created_at__lt=bound)
        self.assertEqual(len(rows), 300 - len(want))

    def test_contains(self):
        rows, _ = self.c.walk("subscribers", email__contains="promo")
        self.assertEqual(sorted(r["id"] for r in rows),
                         sorted(r["id"] for r in self.all if r["email"] and "promo" in r["email"]))
        self.assertGreater(len(rows), 0)

    def test_sort_both_ways(self):
        asc, _ = self.c.walk("subscribers", sort="created_at__asc")
        desc, _ = self.c.walk("subscribers", sort="created_at__desc")
        keys = [parse_ts(r["created_at"]) for r in asc]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual([r["id"] for r in desc], [r["id"] for r in reversed(asc)])

    def test_unknown_parameter_and_bad_values_are_400(self):
        for q in ("nosuch=1", "email__gt=x", "sort=email__asc", "created_at__gte=yesterday",
                  "ps_id__eq=abc"):
            status, body, _ = self.c.get("/api/v2/subscribers?" + q)
            self.assertEqual(status, 400, q)
            self.assertIn("errors", body)

    def test_get_by_id_and_unknown_id(self):
        sid = self.all[5]["id"]
        status, body, _ = self.c.get("/api/v2/subscribers/" + sid)
        self.assertEqual((status, body["id"]), (200, sid))
        # documented: the reference lists only 200 and 400 with {}, for GET
        # and PATCH alike
        self.assertEqual(self.c.get("/api/v2/subscribers/s_nosuch")[:2], (400, {}))
        self.assertEqual(self.c.call("PATCH", "/api/v2/subscribers/s_nosuch", {"tags": ["x"]})[:2],
                         (400, {}))
        status, body, _ = self.c.get("/api/v2/keywords/kw_nosuch")
        self.assertEqual((status, body["error_code"], body["success"]), (404, 3001, False))


class SyncSupportTest(MockTest):
    """What the mirror sync (postscript_fdw_sync) relies on: keyset pages
    served from the sorted index equal the plain filter-and-sort, and the
    admin endpoints that change or remove subscribers."""

    def slow_page(self, params, page):
        data = self.server.state.data
        tests, sort, _ = build_filters("subscribers", params)
        kind = LISTS["subscribers"]["sorts"][sort[0]]
        return list_page(LazySubscribers(data), tests, sort, kind, page, 50)

    def test_keyset_pages_equal_filter_and_sort(self):
        self.c.admin("POST", "subscribers", {"every": 7, "updated_at": "2026-06-30T00:00:00Z"})
        self.c.admin("POST", "subscribers", {"every": 11, "offset": 3})
        self.c.admin("POST", "remove", {"every": 13, "offset": 5})
        rows, _ = self.c.walk("subscribers")
        for field in ("created_at", "updated_at"):
            stamps = sorted({r[field] for r in rows}, key=parse_ts)
            for direction in ("asc", "desc"):
                for op, value in (("gte", stamps[40]), ("gt", stamps[-3]), ("lt", stamps[10]),
                                  ("eq", "2026-06-30T00:00:00Z"), (None, None)):
                    params = {"sort": ["%s__%s" % (field, direction)]}
                    if op:
                        params["%s__%s" % (field, op)] = [value]
                    for page in (1, 2, 3):
                        fast = ts_range_page(self.server.state.data, params, page, 50)
                        slow = self.slow_page(params, page)
                        self.assertEqual([r["id"] for r in fast[0]], [r["id"] for r in slow[0]],
                                         (params, page))
                        self.assertEqual(fast[1], slow[1])

    def test_change_every_nth_and_by_ids(self):
        before, _ = self.c.walk("subscribers")
        self.assertEqual(self.c.admin("POST", "subscribers", {"every": 100, "offset": 1, "tags": ["changed"]}),
                         {"changed": 3})
        after, _ = self.c.walk("subscribers")
        changed = [a["id"] for a, b in zip(after, before) if a != b]
        self.assertEqual(changed, [before[k]["id"] for k in (1, 101, 201)])
        self.assertEqual(after[1]["tags"], ["changed"])
        self.assertGreater(parse_ts(after[1]["updated_at"]), parse_ts(before[1]["updated_at"]))
        self.c.admin("POST", "subscribers", {"ids": [before[2]["id"]], "updated_at": "2030-01-01T00:00:00Z"})
        rows, _ = self.c.walk("subscribers", updated_at__gte="2030-01-01T00:00:00Z")
        self.assertEqual([r["id"] for r in rows], [before[2]["id"]])

    def test_admin_changes_subscribers_without_a_request(self):
        rows, _ = self.c.walk("subscribers")
        newest = max(parse_ts(r["updated_at"]) for r in rows)
        self.c.admin("POST", "reset")
        changed = self.c.admin("POST", "subscribers", [{"id": rows[5]["id"], "email": "new@x.com"},
                                                      {"id": rows[9]["id"], "tags": ["t"]}])
        self.assertEqual(changed, {"changed": 2})
        self.assertEqual(self.log(), [])
        after, _ = self.c.walk("subscribers", updated_at__gt=fmt_ts(newest))
        self.assertEqual([(r["id"], r["email"], r["tags"]) for r in after],
                         [(rows[5]["id"], "new@x.com", rows[5]["tags"]), (rows[9]["id"], rows[9]["email"], ["t"])])
        # one bad change: none is applied
        status, err, _ = self.c.call("POST", "/__admin/subscribers",
                                     [{"id": rows[1]["id"], "email": "b@x.com"}, {"id": "s_nosuch"}], key=None)
        self.assertEqual((status, "error" in err), (400, True))
        self.assertEqual(self.c.get("/api/v2/subscribers/" + rows[1]["id"])[1]["email"], rows[1]["email"])

    def test_remove_hides_a_subscriber_everywhere(self):
        before, _ = self.c.walk("subscribers")
        gone = before[60]["id"]
        self.assertEqual(self.c.admin("POST", "remove", {"ids": [gone]}), {"removed": 1})
        after, _ = self.c.walk("subscribers")
        self.assertEqual([r["id"] for r in after], [r["id"] for r in before if r["id"] != gone])
        self.assertEqual(self.c.get("/api/v2/subscribers/" + gone)[0], 400)       # documented: an unknown id is 400 {}
        self.assertEqual(self.count("subscribers"), 299)
        rows, _ = self.c.walk("subscribers", sort="created_at__asc",
                              created_at__gte=before[60]["created_at"])
        self.assertNotIn(gone, [r["id"] for r in rows])

    def test_request_log_can_be_emptied_alone(self):
        self.c.admin("POST", "subscribers", {"every": 100})
        self.c.get("/api/v2/me")
        self.assertEqual(len(self.log()), 1)
        self.assertEqual(self.c.admin("DELETE", "requests"), {"requests": 0})
        self.assertEqual(self.log(), [])
        rows, _ = self.c.walk("subscribers", updated_at__gt="2026-07-01T00:00:00Z")
        self.assertEqual(len(rows), 3)

    def test_bad_admin_bodies_are_400(self):
        sid = self.c.get("/api/v2/subscribers")[1]["subscribers"][0]["id"]
        for body in ({}, {"every": 0}, {"ids": ["s_nosuch"]}, {"every": 2, "updated_at": "soon"},
                     {"id": sid, "ids": [sid]}, {"id": sid, "ps_id": 7}, [1]):
            status, reply, _ = self.c.call("POST", "/__admin/subscribers", body=body, key=None)
            self.assertEqual(status, 400, body)
            self.assertIn("error", reply)
        for body in ({}, {"every": 0}, {"ids": "s_nosuch"}):
            self.assertEqual(self.c.call("POST", "/__admin/remove", body=body, key=None)[0], 400, body)
        self.assertEqual(self.count("subscribers"), 300)


class WriteTest(MockTest):
    def test_create_is_pending_until_confirmed(self):
        status, sub, _ = self.c.call("POST", "/api/v2/subscribers",
                                     {"phone_number": "+15555550100", "email": "new+one@x.com",
                                      "tags": ["a"], "properties": {"k": 1}})
        self.assertEqual(status, 201)
        self.assertTrue(sub["id"].startswith("s_pending_"))
        self.assertTrue(sub["is_pending"])
        # pending: a pending opt-in, not an active subscriber
        self.assertEqual(self.c.walk("subscribers", phone_number__eq="+15555550100")[0], [])
        # documented: an id that cannot be fetched is answered 400 with {}
        self.assertEqual(self.c.get("/api/v2/subscribers/" + sub["id"])[:2], (400, {}))
        opt_ins, _ = self.c.walk("opt_ins", phone_number__eq="+15555550100")
        self.assertEqual([(o["subscriber_id"], o["status"]) for o in opt_ins], [(sub["id"], "pending")])
        # the double opt-in confirmed: an active subscriber
        self.c.admin("POST", "confirm", {"id": sub["id"]})
        rows, _ = self.c.walk("subscribers", phone_number__eq="+15555550100")
        self.assertEqual([r["email"] for r in rows], ["new+one@x.com"])
        self.assertEqual(self.count("subscribers"), 301)

    def test_active_and_pending_phone_are_entity_conflicts(self):
        rows, _ = self.c.walk("subscribers")
        status, err, _ = self.c.call("POST", "/api/v2/subscribers", {"phone_number": rows[3]["phone_number"]})
        self.assertEqual(status, 400)
        self.assertEqual(err["errors"][0]["type"], "v2.entity_conflict")
        self.assertEqual(self.c.call("POST", "/api/v2/subscribers", {"phone_number": "+15555550111"})[0], 201)
        status, err, _ = self.c.call("POST", "/api/v2/subscribers", {"phone_number": "+15555550111"})
        self.assertEqual(status, 400)
        self.assertEqual(err["errors"][0]["type"], "v2.entity_conflict")
        self.assertTrue(err["errors"][0]["msg"].startswith("Pending subscriber already exists"))

    def test_origin_and_unknown_keys(self):
        self.assertEqual(self.c.call("POST", "/api/v2/subscribers",
                                     {"phone_number": "+15555550112", "origin": "social", "nosuch": 1})[0], 201)
        self.assertEqual(self.c.call("POST", "/api/v2/subscribers",
                                     {"phone_number": "+15555550113", "origin": "tv"})[0], 400)

    def test_validation(self):
        for body in ({"email": "x@y.com"}, {"phone_number": "not a phone"},
                     {"phone_number": "+15555550102", "properties": {"b": True}},
                     {"phone_number": "+15555550103", "properties": {str(i): i for i in range(51)}}):
            status, err, _ = self.c.call("POST", "/api/v2/subscribers", body)
            self.assertEqual(status, 400, body)
            self.assertIn("errors", err)
        self.assertEqual(self.c.call("POST", "/api/v2/subscribers", b"{not json")[0], 400)
        self.assertEqual(self.count("subscribers"), 300)

    def test_patch_adds_tags_and_merges_properties(self):
        rows, _ = self.c.walk("subscribers")
        s = rows[0]
        status, body, _ = self.c.call("PATCH", "/api/v2/subscribers/" + s["id"],
                                      {"tags": ["zz-new"], "properties": {"added": "yes"}})
        self.assertEqual(status, 200)
        self.assertEqual(set(body["tags"]), set(s["tags"]) | {"zz-new"})
        self.assertEqual(body["properties"], dict(s["properties"], added="yes"))

    def test_patch_email_only_where_none_or_no_customer(self):
        rows, _ = self.c.walk("subscribers")
        linked = next(r for r in rows if r["email"] and r["shopify_customer_id"] is not None)
        free = next(r for r in rows if r["email"] and r["shopify_customer_id"] is None)
        for r, want in ((linked, linked["email"]), (free, "new@x.com")):
            status, body, _ = self.c.call("PATCH", "/api/v2/subscribers/" + r["id"], {"email": "new@x.com"})
            self.assertEqual((status, body["email"]), (200, want))

    def test_unsubscribe(self):
        rows, _ = self.c.walk("subscribers")
        s = next(r for r in rows if r["subscriptions"]["promotional"]["can_send"])
        before = self.count("opt_outs")
        status, _, _ = self.c.call("PATCH", "/api/v2/compliance/unsubscribe",
                                   {"postscript_subscriber_id": s["id"]})
        self.assertEqual(status, 202)
        self.assertEqual(self.count("opt_outs"), before + 1)
        _, after, _ = self.c.get("/api/v2/subscribers/" + s["id"])
        self.assertFalse(after["subscriptions"]["promotional"]["can_send"])

    def test_event(self):
        status, body, _ = self.c.call("POST", "/api/v2/events",
                                      {"type": "viewed_product", "email": "a@b.com", "properties": {"x": 1}})
        self.assertEqual(status, 202)
        self.assertEqual(len(body["event_ids"]), 1)
        self.assertEqual(self.c.call("POST", "/api/v2/events", {"type": "bad type!", "email": "a@b.com"})[0], 400)
        # documented: identifiers optional, unknown subscribers accepted, the time format
        self.assertEqual(self.c.call("POST", "/api/v2/events",
                                     {"type": "t", "subscriber_id": "s_nosuch", "phone": "+15555550100",
                                      "occurred_at": "2026-03-04 05:06:07.500000"})[0], 202)
        self.assertEqual(self.c.call("POST", "/api/v2/events", {"type": "t"})[0], 202)
        self.assertEqual(self.c.call("POST", "/api/v2/events",
                                     {"type": "t", "occurred_at": "2026-03-04T05:06:07Z"})[0], 400)
        # documented: property values are strings, booleans, integers, floats
        # and datetime strings
        self.assertEqual(self.c.call("POST", "/api/v2/events",
                                     {"type": "t", "properties": {"s": "x", "b": True, "i": 1, "f": 1.5,
                                                                  "at": "2026-03-04T05:06:07Z"}})[0], 202)
        for bad in ([], ["tea"], {}, None):
            self.assertEqual(self.c.call("POST", "/api/v2/events",
                                         {"type": "t", "properties": {"v": bad}})[0], 400, bad)
        self.assertEqual(len(self.c.admin("GET", "events")["events"]), 4)


class RateLimitTest(MockTest):
    def test_default_is_the_documented_15_per_second(self):
        # part A: 15 requests per second per token; part C: enforced unless
        # told otherwise (a token bucket unless --limiter says another shape)
        args = pm.parse_args([])
        self.assertEqual((args.rate_limit, args.limiter), (15, "bucket"))
        server = start()
        try:
            self.assertEqual(Client(server).admin("GET", "config")["rate_limit"], 15)
        finally:
            server.shutdown()
            server.server_close()

    def test_burst_gets_429_with_documented_body(self):
        self.c.admin("POST", "config", {"rate_limit": 3})
        statuses = []
        for _ in range(8):
            status, body, _ = self.c.get("/api/v2/me")
            statuses.append(status)
            if status == 429:
                self.assertEqual(body, RATE_LIMIT_BODY)
        self.assertIn(200, statuses)
        self.assertIn(429, statuses)
        self.assertLessEqual(statuses.count(200), 4)

    def test_limit_is_per_token(self):
        self.c.admin("POST", "config", {"rate_limit": 2})
        for _ in range(4):
            self.c.get("/api/v2/me")
        self.assertEqual(self.c.get("/api/v2/me", key=PARTNER, token=SHOP)[0], 200)

    def test_off_by_default(self):
        self.assertTrue(all(self.c.get("/api/v2/me")[0] == 200 for _ in range(30)))

    def test_limiter_shapes(self):
        # each shape at 15/s, on made-up clock readings: no timing involved
        def admitted(shape, times):
            buckets = {}
            return [LIMITERS[shape](buckets, "t", 15.0, t) for t in times]
        # a bucket: 15 at once, then one per 1/15 s
        self.assertEqual(admitted("bucket", [0.0] * 16 + [0.07]), [True] * 15 + [False, True])
        # fixed windows: 15 late in one second and 15 early in the next pass
        self.assertEqual(admitted("fixed", [10.9] * 16 + [11.0] * 16),
                         ([True] * 15 + [False]) * 2)
        # sliding: the 16th only once the first has left (now - 1 s, now]
        self.assertEqual(admitted("sliding", [10.9] * 15 + [11.0, 11.89, 11.9]),
                         [True] * 15 + [False, False, True])
        # a request that arrived before ones already counted: every window it
        # falls in counts it
        self.assertEqual(admitted("sliding", [11.0] * 14 + [10.5, 10.4, 11.6]), [True] * 15 + [False, True])
        # below 1/s: one request per 1/rate seconds
        buckets = {}
        self.assertEqual([limit_sliding(buckets, "t", 0.5, t) for t in (0.0, 1.0, 2.0)],
                         [True, False, True])

    def test_limiter_and_jitter_config(self):
        self.assertEqual(self.c.admin("POST", "config", {"limiter": "sliding", "jitter_ms": 20})["limiter"],
                         "sliding")
        self.assertIn("error", self.c.admin("POST", "config", {"limiter": "leaky"}))
        # one request per 20 s: the answers do not depend on how fast they come
        self.c.admin("POST", "config", {"rate_limit": 0.05})
        statuses = [self.c.get("/api/v2/me")[0] for _ in range(3)]
        self.assertEqual(statuses, [200, 429, 429])
        self.c.admin("POST", "reset")
        self.assertEqual(self.c.admin("GET", "config")["limiter"], "bucket")

    def test_gzip_config(self):
        # a page is gzip'd when the client accepts it, unless gzip is off
        gz = {"Accept-Encoding": "gzip"}
        status, payload, headers = self.c.get("/api/v2/subscribers", raw=True, headers=gz)
        self.assertEqual((status, headers.get("Content-Encoding")), (200, "gzip"))
        self.assertIn(b'"subscribers"', gzip.decompress(payload))
        self.c.admin("POST", "config", {"gzip": 0})
        status, payload, headers = self.c.get("/api/v2/subscribers", raw=True, headers=gz)
        self.assertEqual((status, headers.get("Content-Encoding")), (200, None))
        self.assertIn(b'"subscribers"', payload)
        self.c.admin("POST", "reset")


class FaultTest(MockTest):
    def test_status_fault_once(self):
        self.c.admin("POST", "faults", {"kind": "status", "status": 503, "path": "/api/v2/keywords"})
        self.assertEqual(self.c.get("/api/v2/keywords")[0], 503)
        self.assertEqual(self.c.get("/api/v2/keywords")[0], 200)
        self.assertEqual([e["status"] for e in self.log()], [503, 200])

    def test_after_and_method(self):
        self.c.admin("POST", "faults", {"kind": "status", "status": 500, "path": "/api/v2/keywords",
                                        "after": 1, "method": "GET"})
        self.assertEqual([self.c.get("/api/v2/keywords")[0] for _ in range(3)], [200, 500, 200])

    def test_retry_after_header(self):
        self.c.admin("POST", "faults", {"kind": "rate_limit", "retry_after": "2"})
        status, body, headers = self.c.get("/api/v2/me")
        self.assertEqual((status, headers.get("Retry-After")), (429, "2"))

    def test_truncate_and_malformed(self):
        self.c.admin("POST", "faults", {"kind": "truncate", "path": "/api/v2/keywords"})
        self.c.admin("POST", "faults", {"kind": "malformed", "path": "/api/v2/keywords"})
        for _ in range(2):
            try:
                status, payload, _ = self.c.get("/api/v2/keywords", raw=True)
            except http.client.IncompleteRead:
                continue
            with self.assertRaises(ValueError):
                json.loads(payload)

    def test_body_in_chunks(self):
        raw = '{"keywords": [{"id": "k\u00e9\u65e5"}]}'.encode("utf-8")
        self.c.admin("POST", "faults", {"kind": "body", "path": "/api/v2/keywords",
                                        "body_b64": base64.b64encode(raw).decode(), "chunk_bytes": 1})
        status, payload, _ = self.c.get("/api/v2/keywords", raw=True)
        self.assertEqual((status, payload), (200, raw))

    def test_huge_page(self):
        self.c.admin("POST", "faults", {"kind": "huge_page", "path": "/api/v2/subscribers",
                                        "records": 1000, "record": '{"id": "s"}'})
        status, body, _ = self.c.get("/api/v2/subscribers")
        self.assertEqual(status, 200)
        self.assertEqual(body["subscribers"], [{"id": "s"}] * 1000)
        self.assertEqual(body["page_info"]["total_pages"], 1)

    def test_endless_stops_at_max_bytes(self):
        self.c.admin("POST", "faults", {"kind": "endless", "path": "/api/v2/keywords",
                                        "max_bytes": 200000})
        status, payload, _ = self.c.get("/api/v2/keywords", raw=True)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(len(payload), 200000)
        self.assertTrue(payload.startswith(b'{"keywords": [{"id": "x"},'))
        with self.assertRaises(ValueError):
            json.loads(payload)     # it never ends: no closing bracket

    def test_close(self):
        self.c.admin("POST", "faults", {"kind": "close", "path": "/api/v2/me"})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.c.get("/api/v2/me")
        self.assertEqual(self.c.get("/api/v2/me")[0], 200)

    def test_close_reused_only_hits_a_reused_connection(self):
        self.c.admin("POST", "faults", {"kind": "close", "reused": True, "method": "POST"})
        self.assertEqual(self.c.call("POST", "/api/v2/events", {"type": "a", "email": "a@b.com"})[0], 202)
        conn = http.client.HTTPConnection("127.0.0.1", self.c.port, timeout=30)
        try:
            h = {"Authorization": "Bearer " + SHOP, "Content-Type": "application/json"}
            conn.request("POST", "/api/v2/events", body=b'{"type": "b", "email": "a@b.com"}', headers=h)
            self.assertEqual(conn.getresponse().read() and 202, 202)
            conn.request("POST", "/api/v2/events", body=b'{"type": "c", "email": "a@b.com"}', headers=h)
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                conn.getresponse()
        finally:
            conn.close()
        self.assertEqual([(e["method"], e["status"]) for e in self.log()],
                         [("POST", 202), ("POST", 202), ("POST", 0)])

    def test_body_fault(self):
        raw = b'{"keywords": [{"id": "k\xff"}]}'
        self.c.admin("POST", "faults", {"kind": "body", "path": "/api/v2/keywords",
                                        "body_b64": base64.b64encode(raw).decode()})
        status, payload, _ = self.c.get("/api/v2/keywords", raw=True)
        self.assertEqual((status, payload), (200, raw))

    def test_applied_500_applies_the_write(self):
        self.c.admin("POST", "faults", {"kind": "applied_500", "path": "/api/v2/subscribers", "method": "POST"})
        status, _, _ = self.c.call("POST", "/api/v2/subscribers", {"phone_number": "+15555550104"})
        self.assertEqual(status, 500)
        opt_ins, _ = self.c.walk("opt_ins", phone_number__eq="+15555550104")
        self.assertEqual([o["status"] for o in opt_ins], ["pending"])

    def test_gate_holds_until_all_arrive(self):
        # three requests sent together pass the gate; in_flight shows they
        # overlapped.  One sent alone waits out the timeout, then is answered.
        self.c.admin("POST", "faults", {"kind": "gate", "count": 3, "path": "/api/v2/keywords"})
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.c.get("/api/v2/keywords")[0]))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200, 200, 200])
        log = self.log()
        self.assertEqual(sorted(e["in_flight"] for e in log), [0, 1, 2])
        self.assertNotIn("gate", [k for e in log for k in e])
        self.c.admin("POST", "faults", {"kind": "gate", "count": 2, "timeout_ms": 50,
                                        "path": "/api/v2/keywords"})
        self.assertEqual(self.c.get("/api/v2/keywords")[0], 200)
        self.assertEqual((self.log()[-1]["gate"], self.log()[-1]["in_flight"]), ("timeout", 0))

    def test_body_contains(self):
        self.c.admin("POST", "faults", {"kind": "status", "status": 503, "method": "POST",
                                        "path": "/api/v2/events", "body_contains": "second"})
        first = self.c.call("POST", "/api/v2/events", {"type": "first", "email": "a@example.com"})[0]
        second = self.c.call("POST", "/api/v2/events", {"type": "second", "email": "a@example.com"})[0]
        self.assertEqual((first, second), (202, 503))

    def test_gate_needs_a_count(self):
        status, _, _ = self.c.call("POST", "/__admin/faults", {"kind": "gate", "count": 0}, key=None)
        self.assertEqual(status, 400)

    def test_unknown_fault_kind_is_400(self):
        status, _, _ = self.c.call("POST", "/__admin/faults", {"kind": "nosuch"}, key=None)
        self.assertEqual(status, 400)


class ResetTest(MockTest):
    def test_reset_clears_log_faults_writes_and_config(self):
        self.c.call("POST", "/api/v2/subscribers", {"phone_number": "+15555550105"})
        self.c.admin("POST", "faults", {"kind": "status", "status": 500, "path": "/api/v2/me"})
        self.c.admin("POST", "config", {"page_size": 3})
        self.c.admin("POST", "reset")
        self.assertEqual(self.log(), [])
        self.assertEqual(self.c.admin("GET", "faults")["faults"], [])
        self.assertEqual(self.count("subscribers"), 300)
        self.assertEqual(self.c.get("/api/v2/me")[0], 200)
        self.assertEqual(len(self.c.get("/api/v2/subscribers?page=1")[1]["subscribers"]), 50)

    def test_log_entry_is_there_when_the_answer_arrives(self):
        # the log write slowed down, as on a busy machine: a client reading the
        # log as soon as it has its answer must still find its request
        state = self.server.state
        original = state.record

        def slow_record(entry, generation):
            time.sleep(0.3)
            original(entry, generation)

        state.record = slow_record
        try:
            self.assertEqual(self.c.get("/api/v2/me")[0], 200)
            self.assertEqual([e["path"] for e in self.log()], ["/api/v2/me"])
        finally:
            state.record = original

    def test_log_is_in_arrival_order_when_requests_finish_out_of_order(self):
        # requests that finished late take their place by seq; one from
        # before a reset is dropped
        state = self.server.state
        self.c.admin("POST", "reset")
        gen = state.generation
        for seq in (1, 2, 5, 3, 6, 4):
            state.record({"seq": seq}, gen)
        state.record({"seq": 7}, gen - 1)
        self.assertEqual([e["seq"] for e in state.log], [1, 2, 3, 4, 5, 6])

    def test_fractional_rate_limit_lets_requests_through(self):
        self.c.admin("POST", "config", {"rate_limit": 0.5})
        self.assertEqual(self.c.get("/api/v2/me")[0], 200)
        self.assertEqual(self.c.get("/api/v2/me")[0], 429)

    def test_request_line_over_64_kib_is_logged_with_414(self):
        # http.server answers it before the request pipeline: logged all the same
        query = "email__eq=" + "x" * 70000
        status, _, _ = self.c.get("/api/v2/subscribers?" + query, raw=True)
        self.assertEqual(status, 414)
        self.assertEqual(self.c.get("/api/v2/me")[0], 200)
        log = self.log()
        self.assertEqual([(e["method"], e["path"], e["status"], e["auth"], e["headers"]) for e in log],
                         [("GET", "/api/v2/subscribers", 414, "shop", ["Authorization"]),
                          ("GET", "/api/v2/me", 200, "shop", ["Authorization"])])
        # the query as far as the first 64 KiB of the line go
        self.assertTrue(query.startswith(log[0]["query"]) and len(log[0]["query"]) > 60000)
        self.assertNotIn(SHOP, json.dumps(log))

    def test_copy_format(self):
        self.c.get("/api/v2/subscribers?page=2")
        status, payload, _ = self.c.call("GET", "/__admin/requests?format=copy", key=None, raw=True)
        fields = payload.decode().rstrip("\n").split("\t")
        self.assertEqual(fields[1:6], ["GET", "/api/v2/subscribers", "page=2", "shop", "200"])


class DocumentedShapesTest(MockTest):
    """What the OpenAPI file documents (scripts/checks/api_contract.sh checks it all)."""

    def test_any_method_is_routed(self):
        for method in ("TRACE", "OPTIONS", "QUERY"):
            status, body, _ = self.c.call(method, "/api/v2/me")
            self.assertEqual((status, body), (404, {"error": "Not found: %s /api/v2/me" % method}))

    def test_message_request_and_sent_message(self):
        rows, _ = self.c.walk("subscribers")
        status, mr, _ = self.c.call("POST", "/api/v2/message_requests", {"phone": rows[2]["phone_number"], "body": "hi"})
        self.assertEqual(status, 202)
        self.assertEqual((mr["subscriber_id"], mr["phone"], mr["status_code"]), (rows[2]["id"], rows[2]["phone_number"], 0))
        self.assertEqual(self.c.get("/api/v2/message_requests/" + mr["id"])[1], mr)
        status, sent, _ = self.c.get("/api/v2/sent_messages/" + mr["sent_message"]["id"])
        self.assertEqual((status, sent), (200, mr["sent_message"]))
        self.assertEqual((sent["shop_id"], sent["body"]), (psmock.data.SHOP["resource_id"], "hi"))
        # unknown ids: 400 as documented, {} and the errors shape
        self.assertEqual(self.c.get("/api/v2/message_requests/mr_nosuch")[:2], (400, {}))
        self.assertEqual(self.c.call("POST", "/api/v2/message_requests",
                                     {"subscriber_id": "s_nosuch", "body": "hi"})[:2], (400, {}))
        status, err, _ = self.c.get("/api/v2/sent_messages/msg_nosuch")
        self.assertEqual((status, err["errors"][0]["loc"]), (400, ["path", "id"]))

    def test_redact_by_email_or_shopify_customer(self):
        rows, _ = self.c.walk("subscribers")
        a, b = [r for r in rows if r["email"] and r["shopify_customer_id"]][:2]
        for body in ({"email": a["email"]}, {"shopify_customer_id": str(b["shopify_customer_id"])}):
            self.assertEqual(self.c.call("PATCH", "/api/v2/compliance/redact", body)[:2], (202, {"message": "OK"}))
        for s in (a, b):
            after = self.c.get("/api/v2/subscribers/" + s["id"])[1]
            self.assertEqual((after["email"], after["shopify_customer_id"]), (None, None))
        # assumed (the reference lists only 202 and 403): an unknown
        # subscriber is 404 with error_code 3001
        for path in ("unsubscribe", "redact"):
            status, err, _ = self.c.call("PATCH", "/api/v2/compliance/" + path,
                                         {"postscript_subscriber_id": "s_nosuch"})
            self.assertEqual((status, err["error_code"]), (404, 3001))
        # not for an unsubscribe, and one identifier only
        self.assertEqual(self.c.call("PATCH", "/api/v2/compliance/unsubscribe", {"email": a["email"]})[0], 400)
        self.assertEqual(self.c.call("PATCH", "/api/v2/compliance/redact",
                                     {"email": a["email"], "phone_number": a["phone_number"]})[0], 400)


class RouteTableTest(MockTest):
    """The route table: what it does not serve, and its documented/assumed marks."""

    def test_unknown_path_is_404_without_allow(self):
        status, body, headers = self.c.get("/api/v2/nosuch")
        self.assertEqual((status, body), (404, {"error": "Not found: GET /api/v2/nosuch"}))
        self.assertNotIn("Allow", headers)
        status, body, headers = self.c.call("POST", "/__admin/nosuch", {}, key=None)
        self.assertEqual((status, body), (404, {"error": "no such admin endpoint"}))
        self.assertEqual([e["path"] for e in self.log()], ["/api/v2/nosuch"])

    def test_method_a_path_does_not_take_is_404_with_allow(self):
        status, body, headers = self.c.call("DELETE", "/api/v2/subscribers")
        self.assertEqual((status, body), (404, {"error": "Not found: DELETE /api/v2/subscribers"}))
        self.assertEqual(headers["Allow"], "GET, POST")
        # a literal path before the pattern it also matches
        self.assertEqual(self.c.call("PUT", "/api/v2/webhooks/token")[2]["Allow"],
                         "GET, PATCH, DELETE")
        self.assertEqual(self.c.call("GET", "/__admin/reset", key=None)[:2],
                         (404, {"error": "no such admin endpoint"}))

    def test_trailing_slash_and_query_parameters(self):
        self.assertEqual(self.c.get("/api/v2/me/")[:2], (200, psmock.data.SHOP))
        status, body, _ = self.c.get("/api/v2/me?x=1")
        self.assertEqual((status, body["errors"][0]["loc"]), (400, ["query", "x"]))
        status, body, _ = self.c.call("GET", "/__admin/events?x=1", key=None)
        self.assertEqual((status, "error" in body), (400, True))

    def test_every_route_is_marked_and_served(self):
        api = [r for r in routes.ROUTES if r.source != routes.ADMIN]
        self.assertEqual({r.source for r in api}, {routes.DOCUMENTED, routes.ASSUMED})
        self.assertEqual(sorted({r.pattern.split("/")[3] for r in api if r.source == routes.ASSUMED}),
                         ["campaigns", "messages", "opt_ins", "opt_outs"])
        self.assertEqual(len({(r.method, r.pattern) for r in routes.ROUTES}), len(routes.ROUTES))
        for r in routes.ROUTES:
            path = r.pattern.replace("{id}", "nosuch")
            self.assertIs(routes.resolve(r.method, path)[0], r, (r.method, r.pattern))


class DeterminismTest(unittest.TestCase):
    def first_page(self, *argv):
        server = start("--subscribers", "100", *argv)
        try:
            return Client(server).get("/api/v2/subscribers?page=1")[1]
        finally:
            server.shutdown()
            server.server_close()

    def test_same_seed_same_data_other_seed_other_data(self):
        a = self.first_page("--seed", "7")
        self.assertEqual(a, self.first_page("--seed", "7"))
        self.assertNotEqual(a, self.first_page("--seed", "8"))


class ConcurrencyTest(MockTest):
    def test_parallel_pages(self):
        results = {}

        def fetch(page):
            results[page] = self.c.get("/api/v2/subscribers?page=%d" % page)

        threads = [threading.Thread(target=fetch, args=(p,)) for p in range(1, 7) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertTrue(all(r[0] == 200 for r in results.values()))
        ids = [s["id"] for p in range(1, 7) for s in results[p][1]["subscribers"]]
        self.assertEqual(len(set(ids)), 300)
        self.assertEqual(len(self.log()), 12)


class Receiver:
    """A callback for deliveries: answers the statuses it is given in turn
    (then 200) and keeps what it received."""

    def __init__(self, statuses=()):
        import http.server
        received, answers = [], list(statuses)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = answers.pop(0) if answers else 200
                received.append((self.headers.get("Postscript-Signature"), json.loads(body), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookTest(MockTest):
    def wait_delivered(self, n):
        for _ in range(400):
            d = self.c.admin("GET", "webhooks/deliveries")["deliveries"]
            if len(d) == n and all(x["state"] != "pending" for x in d):
                return d
            time.sleep(0.05)
        self.fail("deliveries not finished: %r" % d)

    def test_subscription_crud(self):
        status, sub, _ = self.c.call("POST", "/api/v2/webhooks",
                                     {"callback_url": "https://example.com/h", "event": "shop.subscriber.opt_in"})
        self.assertEqual(status, 200)
        self.assertRegex(sub["id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(sorted(sub), ["callback_url", "created_at", "event", "headers", "id", "updated_at"])
        status, body, _ = self.c.get("/api/v2/webhooks")
        self.assertEqual(body, {"webhook_subscriptions": [sub]})
        status, body, _ = self.c.call("PATCH", "/api/v2/webhooks/" + sub["id"], {"headers": {"X-A": "1"}})
        self.assertEqual((status, body["headers"]), (200, {"X-A": "1"}))
        self.assertEqual(self.c.call("DELETE", "/api/v2/webhooks/" + sub["id"])[:2], (200, {}))
        self.assertEqual(self.c.get("/api/v2/webhooks/" + sub["id"])[:2], (400, {}))
        # HTTPS only, but for loopback; the enum of the reference
        for bad in ({"callback_url": "http://example.com/h"}, {"event": "shop.test"},
                    {"callback_url": "https://example.com/h", "event": "shop.nope"}):
            self.assertEqual(self.c.call("POST", "/api/v2/webhooks", bad)[0], 400)

    def test_token_and_example(self):
        self.assertEqual(self.c.get("/api/v2/webhooks/token")[1], {"token": "whsec_test_webhook_token"})
        status, body, _ = self.c.get("/api/v2/webhooks/example?event=shop.incoming_message")
        self.assertEqual(status, 200)
        self.assertEqual(body["event_data"]["id"], "im_1b2a005a386281c9")
        self.assertEqual(sorted(body), ["event", "event_data", "event_time", "resource_id",
                                        "resource_type", "webhook_id"])
        self.assertEqual(self.c.get("/api/v2/webhooks/example?event=shop.nope")[0], 400)

    def test_event_is_required(self):
        # documented: required in the create and test bodies and in the example's query
        status, body, _ = self.c.call("POST", "/api/v2/webhooks", {"callback_url": "https://example.com/h"})
        self.assertEqual((status, body["errors"][0]["loc"]), (400, ["body", "event"]))
        status, body, _ = self.c.call("POST", "/api/v2/webhooks/test", {})
        self.assertEqual((status, body["errors"][0]["loc"]), (400, ["body", "event"]))
        status, body, _ = self.c.get("/api/v2/webhooks/example")
        self.assertEqual((status, body["errors"][0]["loc"]), (400, ["query", "event"]))
        self.assertEqual(self.c.get("/api/v2/webhooks")[1], {"webhook_subscriptions": []})
        self.assertEqual(self.c.call("POST", "/api/v2/webhooks/test", {"event": "shop.test"})[:2],
                         (202, {"message": "OK"}))

    def test_delivery_duplicates_order_retry(self):
        r = Receiver([500])
        try:
            self.c.admin("POST", "webhooks/deliver", {
                "callback_url": r.url, "duplicates": 1, "out_of_order": True, "retry_s": 0.05,
                "events": [{"event": "shop.subscriber.opt_in", "event_data": {"id": "s_1"}},
                           {"event": "shop.subscriber.opt_out", "event_data": {"id": "s_1"}}]})
            d = self.wait_delivered(4)
        finally:
            r.close()
        self.assertEqual([x["event"] for x in d], ["shop.subscriber.opt_out"] * 2 + ["shop.subscriber.opt_in"] * 2)
        self.assertEqual([[a["status"] for a in x["attempts"]] for x in d], [[500, 200], [200], [200], [200]])
        self.assertTrue(all(sig == "whsec_test_webhook_token" for sig, _, _ in r.received))
        self.assertEqual(len(r.received), 5)

    def test_only_a_200_is_a_delivery(self):
        # documented: retried "until a 200"; a 204 (or a 202) is not one
        r = Receiver([204, 202])
        try:
            self.c.admin("POST", "webhooks/deliver", {"callback_url": r.url, "retry_s": 0.05})
            d = self.wait_delivered(1)
        finally:
            r.close()
        self.assertEqual([a["status"] for a in d[0]["attempts"]], [204, 202, 200])
        self.assertEqual(d[0]["state"], "delivered")
        self.assertEqual(len(r.received), 3)

    def test_subscribers_opt_out_is_delivered(self):
        r = Receiver()
        try:
            self.c.admin("POST", "config", {"webhook_retry_s": 0.05})
            self.c.call("POST", "/api/v2/webhooks", {"callback_url": r.url, "event": "shop.subscriber.opt_out"})
            sid = next(x["id"] for x in self.c.get("/api/v2/subscribers")[1]["subscribers"]
                       if x["subscriptions"]["promotional"]["can_send"])
            self.c.call("PATCH", "/api/v2/compliance/unsubscribe", {"postscript_subscriber_id": sid})
            self.wait_delivered(1)
        finally:
            r.close()
        self.assertEqual(r.received[0][1]["event"], "shop.subscriber.opt_out")
        self.assertEqual(r.received[0][1]["event_data"]["id"], sid)

    def test_no_delivery_beyond_loopback(self):
        self.assertEqual(self.c.call("POST", "/__admin/webhooks/deliver",
                                     {"callback_url": "https://example.com/h"}, key=None)[0], 400)


if __name__ == "__main__":
    unittest.main()
