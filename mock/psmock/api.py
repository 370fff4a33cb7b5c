"""The handlers of /api/v2 (the webhooks' are in webhooks.py).  Each takes
the request (and the path's parameters) and returns (status, JSON body) or
raises ApiError; routes.py says which route each serves and whether it is
documented (part A) or assumed (part B).  Called under the state's lock."""

import json
import re
from datetime import datetime

from psmock.answers import (ApiError, body_object, check_type, conflict, not_found,
                            validation_error)
from psmock.data import SHOP, LazySubscribers
from psmock.lists import LISTS, build_filters, list_page, ts_range_page
from psmock.values import B36, B62, normalize_phone, now_iso
from psmock.webhooks import webhook_subscriber_data

# documented: at most 50 properties on a subscriber
MAX_PROPERTIES = 50


def me(req):
    return 200, SHOP


# -- lists and their records

def list_of(name):
    """The handler of GET /api/v2/<name>: a page of the list, filtered and sorted."""
    def handler(req):
        data, page_size = req.data, req.state.config["page_size"]
        tests, sort, page = build_filters(name, req.params)
        rows = LazySubscribers(data) if name == "subscribers" else getattr(data, name)
        kind = LISTS[name]["sorts"][sort[0]] if sort else None
        fast = ts_range_page(data, req.params, page, page_size) if name == "subscribers" else None
        chosen, total = fast or list_page(rows, tests, sort, kind, page, page_size)
        return 200, {"page_info": {"page": page, "total_pages": total}, name: chosen}
    return handler


def record_of(name):
    """The handler of GET /api/v2/<name>/{id} for the lists held in full."""
    def handler(req, rid):
        for r in getattr(req.data, name):
            if r["id"] == rid:
                return 200, r
        # assumed (part B): these endpoints are undocumented; an unknown id
        # is the 404 with error_code 3001 that keywords document
        raise not_found(name.rstrip("s").replace("_", "-"))
    return handler


def get_keywords(req):
    if req.state.config["keywords_empty"]:
        return 200, {}          # documented: a shop with no keywords
    return 200, {"keywords": req.data.keywords}


def get_keyword(req, kid):
    k = req.data.keyword_by_id.get(kid)
    if k is None:
        # documented: 404 with error_code 3001 (the reference's example)
        raise not_found("keyword")
    return 200, k


# -- subscribers

def unknown_subscriber_id():
    """documented: GET and PATCH /subscribers/{id} list only 200 and 400 with
    the body {} in the reference; part A reads the 400 as an unknown id
    (unknown, or a pending subscriber's)."""
    return ApiError(400, {})


def get_subscriber(req, sid):
    i = req.data.index_of(sid)
    if i is None:
        raise unknown_subscriber_id()
    return 200, req.data.subscriber(i)


def check_common(obj):
    check_type(obj, "email", str, "string")
    if obj.get("email") is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", obj["email"]):
        raise validation_error(("body", "email"), "value is not a valid email address", "value_error.email")
    check_type(obj, "tags", list, "list")
    for t in obj.get("tags") or []:
        if not isinstance(t, str) or not t:
            raise validation_error(("body", "tags"), "tags must be non-empty strings", "type_error.str")
    check_type(obj, "properties", dict, "dict")
    props = obj.get("properties") or {}
    for key, value in props.items():
        # documented: strings, integers, arrays of strings, ISO dates (strings)
        ok = (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
              or (isinstance(value, list) and all(isinstance(v, str) for v in value)))
        if not ok:
            raise validation_error(("body", "properties", key),
                                   "values are strings, integers, arrays of strings or ISO dates")


def create_subscriber(req):
    # documented in the reference's prose; the 201 and the answer's shape
    # are assumed (part B)
    data = req.data
    obj = body_object(req.body)
    if obj.get("phone_number") is None:
        raise validation_error(("body", "phone_number"), "field required", "value_error.missing")
    phone = normalize_phone(obj["phone_number"])
    if phone is None:
        raise validation_error(("body", "phone_number"), "value is not a valid phone number",
                               "value_error.phone")
    check_common(obj)
    check_type(obj, "shopify_customer_id", int, "integer")
    # documented: origin is website, social or other (default other)
    if obj.get("origin", "other") not in ("website", "social", "other"):
        raise validation_error(("body", "origin"), "value is not a valid enumeration member",
                               "type_error.enum")
    keyword = None
    if obj.get("keyword_id") is not None:
        keyword = data.keyword_by_id.get(obj["keyword_id"])
        if keyword is None:
            raise validation_error(("body", "keyword_id"), "unknown keyword")
    elif obj.get("keyword") is not None:
        keyword = data.keyword_by_name.get(str(obj["keyword"]).upper())
        if keyword is None:
            raise validation_error(("body", "keyword"), "unknown keyword")
    if len(obj.get("properties") or {}) > MAX_PROPERTIES:
        raise validation_error(("body", "properties"), "at most %d properties" % MAX_PROPERTIES)
    # documented: an existing subscriber, active or pending, is v2.entity_conflict
    # (its status is not documented; this server answers 400)
    if data.index_of_phone(phone) is not None:
        raise conflict("Subscriber already exists with phone number: %s" % phone)
    if any(p["phone_number"] == phone for p in data.pending.values()):
        raise conflict("Pending subscriber already exists with phone number: %s" % phone)
    stamp = now_iso()
    sub = {"id": data.next_id("pending", "s_pending_", B36, 12), "ps_id": None,
           "phone_number": phone, "email": obj.get("email"),
           "shopify_customer_id": obj.get("shopify_customer_id"),
           "tags": list(dict.fromkeys(obj.get("tags") or [])),
           "properties": dict(obj.get("properties") or {}),
           "subscriptions": {"promotional": {"can_send": False}, "transactional": {"can_send": False}},
           "data": {}, "created_at": stamp, "updated_at": stamp, "is_pending": True}
    data.pending[sub["id"]] = sub
    data.opt_ins.append({
        "id": data.next_id("opt_in", "oi_"), "subscriber_id": sub["id"], "phone_number": phone,
        "keyword_id": keyword["id"] if keyword else None,
        "source": "keyword" if keyword else "api", "status": "pending",
        "created_at": stamp, "confirmed_at": None})
    return 201, sub


def confirm(state, pending_id):
    """The subscriber answers the double opt-in: pending becomes active
    (POST /__admin/confirm)."""
    data = state.data
    sub = data.pending.pop(pending_id, None)
    if sub is None:
        raise not_found("pending subscriber")
    if data.index_of_phone(sub["phone_number"]) is not None:
        raise conflict("Subscriber already exists with phone number: %s" % sub["phone_number"])
    stamp = now_iso()
    active = dict(sub)
    del active["is_pending"]
    active.update({"id": data.next_id("sub", "s_", B62, 20), "ps_id": 1000 + data.count(),
                   "subscriptions": {"promotional": {"can_send": True}, "transactional": {"can_send": True}},
                   "created_at": stamp, "updated_at": stamp})
    data.append(active)
    for oi in data.opt_ins:
        if oi["subscriber_id"] == pending_id:
            oi.update({"subscriber_id": active["id"], "status": "confirmed", "confirmed_at": stamp})
    state.webhooks.emit("shop.subscriber.opt_in", webhook_subscriber_data(active))
    return active


def patch_subscriber(req, sid):
    data = req.data
    i = data.index_of(sid)
    if i is None:
        raise unknown_subscriber_id()
    obj = body_object(req.body)
    check_common(obj)
    sub = json.loads(json.dumps(data.subscriber(i)))
    # documented: email is only set where the subscriber has none or no
    # Shopify customer is linked; otherwise it is left as it is
    if "email" in obj and (not sub.get("email") or sub.get("shopify_customer_id") is None):
        sub["email"] = obj["email"]
    # documented: tags are added, properties merged key by key
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
    data.change(i, sub)
    return 200, sub


# -- compliance

def unsubscribe(req):
    return 202, opt_out(req, redact=False)


def redact(req):
    return 202, opt_out(req, redact=True)


def opt_out(req, redact):
    """Both flags off and an opt-out; a redact also erases what identifies
    the subscriber.  Documented: the body's keys, 202 {"message": "OK"}.
    The reference lists no other answer than a 403 for either endpoint, so
    what follows for a body it does not describe is assumed: not exactly
    one identifier is a 400 (errors shape), an unknown subscriber id,
    Shopify customer or email a 404 (error_code 3001), and an unknown phone
    number is accepted and logged as an opt-out (a number may opt out
    before it subscribes)."""
    data = req.data
    # documented: redact also finds the subscriber by Shopify customer or
    # email (the OpenAPI file)
    keys = ("postscript_subscriber_id", "phone_number") + (("shopify_customer_id", "email") if redact else ())
    obj = body_object(req.body)
    given = [k for k in keys if obj.get(k) is not None]
    if len(given) != 1:
        raise validation_error(("body",), "exactly one of " + ", ".join(keys))
    phone = obj.get("phone_number")
    if given[0] != "phone_number":
        field = "id" if given[0] == "postscript_subscriber_id" else given[0]
        want = str(obj[given[0]])
        i = data.index_of(want) if field == "id" else next(
            (j for j in range(data.count())
             if data.subscriber(j)[field] is not None and str(data.subscriber(j)[field]) == want), None)
        if i is None:
            # assumed: the reference lists only 202 and 403
            raise not_found("subscriber")
    else:
        norm = normalize_phone(phone)
        if norm is None:
            raise validation_error(("body", "phone_number"), "value is not a valid phone number",
                                   "value_error.phone")
        phone = norm
        i = data.index_of_phone(phone)
    sub = data.subscriber(i) if i is not None else None
    if sub is not None:
        phone = sub["phone_number"]
        changed = json.loads(json.dumps(sub))
        already = not changed["subscriptions"]["promotional"]["can_send"]
        changed["subscriptions"] = {"promotional": {"can_send": False},
                                    "transactional": {"can_send": False}}
        if redact:
            changed.update({"email": None, "properties": {}, "tags": [], "shopify_customer_id": None})
        changed["updated_at"] = now_iso()
        data.change(i, changed)
    else:
        already = any(o["phone_number"] == phone for o in data.opt_outs)
    if not already:
        data.opt_outs.append({"id": data.next_id("opt_out", "oo_"),
                              "subscriber_id": sub["id"] if sub else None,
                              "phone_number": phone, "source": "api", "created_at": now_iso()})
        if sub is not None:
            req.state.webhooks.emit("shop.subscriber.opt_out", webhook_subscriber_data(sub))
    return {"message": "OK"}


# -- custom events

def post_event(req):
    obj = body_object(req.body)
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
    check_type(obj, "properties", dict, "dict")
    # documented (the reference's description of properties): "strings,
    # booleans, integers, floats, and datetime strings"; how a value of
    # another type is refused is assumed (the validation body)
    for key, value in (obj.get("properties") or {}).items():
        if not isinstance(value, (str, bool, int, float)):
            raise validation_error(("body", "properties", key),
                                   "values are strings, booleans, integers, floats or datetime strings")
    check_type(obj, "external_id", str, "string")
    event = dict(obj)
    event["id"] = req.data.next_id("event", "ev_")
    req.data.events.append(event)
    return 202, {"event_ids": [event["id"]]}


# -- messages

def sent_message(m):
    """A message as GET /sent_messages/{id} documents it."""
    return {"id": m["id"], "shop_id": SHOP["resource_id"], "subscriber_id": m["subscriber_id"],
            "phone": m["phone"], "body": m["body"], "media_url": m["media_url"],
            "credits_used": m["credits_used"], "created_at": m["created_at"]}


def post_message_request(req):
    data = req.data
    obj = body_object(req.body)
    if not isinstance(obj.get("body"), str) or not obj["body"]:
        raise validation_error(("body", "body"), "field required", "value_error.missing")
    category = obj.get("category") or "promotional"
    if category not in ("promotional", "transactional", "conversational"):
        raise validation_error(("body", "category"), "unknown category")
    if obj.get("subscriber_id") is not None:
        i = data.index_of(str(obj["subscriber_id"]))
    elif obj.get("phone") is not None:
        i = data.index_of_phone(normalize_phone(obj["phone"]) or "")
    else:
        raise validation_error(("body",), "subscriber_id or phone is required")
    if i is None:
        # documented: the only error the reference lists for this operation
        # is 400 with the body {}; an unknown subscriber gets it (which
        # causes it covers, the reference does not say)
        raise ApiError(400, {})
    sub = data.subscriber(i)
    stamp = now_iso()
    msg = {"id": data.next_id("message", "msg_"), "subscriber_id": sub["id"],
           "phone": sub["phone_number"], "direction": "outbound", "category": category,
           "body": obj["body"], "media_url": obj.get("media_url"), "campaign_id": None,
           "status": "sent", "credits_used": 1, "created_at": stamp}
    data.messages.append(msg)
    # documented shape (part A, the OpenAPI file's example)
    mr = {"id": data.next_id("message_request", "mr_"), "status": "sent", "status_code": 0,
          "subscriber_id": sub["id"], "phone": sub["phone_number"], "body": obj["body"],
          "category": category, "scheduled_at": obj.get("scheduled_at"), "created_at": stamp,
          "updated_at": stamp, "sent_message": sent_message(msg)}
    data.message_requests[mr["id"]] = mr
    return 202, mr


# documented: an unknown id of these two is 400: {} and the errors shape

def get_message_request(req, mid):
    r = req.data.message_requests.get(mid)
    if r is None:
        raise ApiError(400, {})
    return 200, r


def get_sent_message(req, mid):
    for m in req.data.messages:
        if m["id"] == mid:
            return 200, sent_message(m)
    raise validation_error(("path", "id"), "no sent message with this id")
