"""The handlers of /__admin/ (tests, the demo and the benchmark only; no
authentication, no request log, no rate limit).  Each takes the request and
returns (status, JSON body or Text) or raises ApiError with an {"error": ...}
body.  Called under the state's lock."""

import hashlib
import json

from psmock import api
from psmock.answers import ApiError, Text
from psmock.faults import FAULT_KINDS
from psmock.limiter import LIMITERS
from psmock.values import now_iso, parse_ts

# what POST /__admin/subscribers may set on a subscriber
SETTABLE = {"email", "tags", "properties", "subscriptions", "shopify_customer_id", "updated_at"}
# how a change names its subscribers (pick below)
PICKS = {"id", "ids", "every", "offset"}


def refusal(msg, status=400):
    return ApiError(status, {"error": msg})


def body_of(req):
    """The JSON body ({} when there is none)."""
    try:
        return json.loads(req.body.decode("utf-8")) if req.body else {}
    except ValueError:
        raise refusal("the body is not JSON")


def copy_escape(value):
    if value is None:
        return "\\N"
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def copy_format(req):
    """Whether the answer is asked for as text for COPY ... FROM PROGRAM."""
    return req.params.get("format") == ["copy"]


def reset(req):
    req.state.reset()
    return 200, {"reset": True}


def get_config(req):
    return 200, dict(req.state.config)


def set_config(req):
    state = req.state
    for key, value in body_of(req).items():
        if key == "limiter":
            if value not in LIMITERS:
                raise refusal("limiter must be one of %s" % sorted(LIMITERS))
            state.config[key] = value
            state.buckets = {}
            continue
        if key not in state.config or not isinstance(value, (int, float)) or value < 0:
            raise refusal("unknown or invalid setting %s" % key)
        if key == "page_size" and value < 1:
            raise refusal("page_size must be at least 1")
        state.config[key] = int(value) if key not in ("rate_limit", "webhook_retry_s") else value
        if key == "rate_limit":
            state.buckets = {}
    return 200, dict(state.config)


def add_fault(req):
    fault = dict(body_of(req))
    if fault.get("kind") not in FAULT_KINDS:
        raise refusal("kind must be one of %s" % sorted(FAULT_KINDS))
    if fault["kind"] == "status" and not isinstance(fault.get("status"), int):
        raise refusal("a status fault needs a status")
    fault.setdefault("count", 1)
    fault.setdefault("after", 0)
    if fault["kind"] == "gate":
        if not isinstance(fault["count"], int) or fault["count"] < 1:
            raise refusal("a gate fault needs a count of at least 1")
        fault["size"] = fault["count"]
    req.state.faults.append(fault)
    return 200, {"faults": len(req.state.faults)}


def list_faults(req):
    return 200, {"faults": req.state.faults}


def drop_faults(req):
    req.state.faults = []
    return 200, {"faults": 0}


def copy_array(names):
    """A list of header names as a PostgreSQL array literal (names hold no
    quote, comma, brace or space)."""
    return "{" + ",".join(names) + "}"


def get_requests(req):
    log = list(req.state.log)
    if copy_format(req):
        cols = ("seq", "method", "path", "query", "auth", "status", "body")
        return 200, Text("".join("\t".join([copy_escape(e[c]) for c in cols] + [copy_array(e["headers"]),
                                                                             copy_escape(e.get("in_flight"))])
                                 + "\n" for e in log))
    return 200, {"requests": log}


def drop_requests(req):
    req.state.log = []
    return 200, {"requests": 0}


def get_summary(req):
    """Per resource: row count and the md5 of its sorted ids."""
    data = req.data
    rows = []
    for name in ("campaigns", "keywords", "messages", "opt_ins", "opt_outs", "subscribers"):
        if name == "subscribers":
            ids = [data.sub_id(i) for i in range(data.n) if i not in data.removed] + \
                  [s["id"] for k, s in enumerate(data.extra) if data.n + k not in data.removed]
        else:
            ids = [r["id"] for r in getattr(data, name)]
        ids.sort(key=lambda s: s.encode("utf-8"))
        md5 = hashlib.md5("\n".join(ids).encode("utf-8")).hexdigest() if ids else None
        rows.append((name, len(ids), md5))
    if copy_format(req):
        return 200, Text("".join("%s\t%d\t%s\n" % (r, n, copy_escape(m)) for r, n, m in rows))
    return 200, {"summary": [{"resource": r, "count": n, "id_md5": m} for r, n, m in rows]}


def confirm(req):
    return 200, api.confirm(req.state, str(body_of(req).get("id")))


def get_events(req):
    return 200, {"events": list(req.data.events)}


def deliver_webhooks(req):
    return 200, req.state.webhooks.admin_deliver(body_of(req))


def list_deliveries(req):
    return 200, {"deliveries": json.loads(json.dumps(req.state.webhooks.deliveries))}


def pick(data, obj):
    """Indexes of the subscribers a body names: {"id": ...}, {"ids": [...]}
    or {"every": N, "offset": K} (every Nth listed subscriber from the Kth)."""
    named = [k for k in ("id", "ids", "every") if k in obj]
    if named == ["id"]:
        chosen = [data.index_of(str(obj["id"]))]
    elif named == ["ids"] and isinstance(obj["ids"], list):
        chosen = [data.index_of(str(sid)) for sid in obj["ids"]]
    elif named == ["every"]:
        every, offset = obj["every"], obj.get("offset", 0)
        if not isinstance(every, int) or every < 1 or not isinstance(offset, int) or offset < 0:
            raise refusal("every is a positive integer, offset one not below 0")
        listed = data.listed() or range(data.count())
        return [listed[k] for k in range(offset, len(listed), every)]
    else:
        raise refusal("name the subscribers by one of id, ids (a list), every")
    if None in chosen:
        raise refusal("unknown subscriber id")
    return chosen


def change_subscribers(req):
    """Subscribers changed in Postscript, as no API request changes them (and
    none is logged): a change, or a list of them, names subscribers (pick)
    and gives the SETTABLE fields to set; updated_at becomes now unless
    given.  Every change is checked before any is applied."""
    body = body_of(req)
    plan = []
    for change in body if isinstance(body, list) else [body]:
        if not isinstance(change, dict):
            raise refusal("a change is a JSON object")
        fields = {k: v for k, v in change.items() if k not in PICKS}
        if not set(fields) <= SETTABLE:
            raise refusal("a change sets only %s" % ", ".join(sorted(SETTABLE)))
        if "updated_at" in fields and parse_ts(str(fields["updated_at"])) is None:
            raise refusal("updated_at is not an ISO 8601 date-time")
        plan.append((pick(req.data, change), fields))
    stamp = now_iso()
    changed = 0
    for chosen, fields in plan:
        for i in chosen:
            sub = json.loads(json.dumps(req.data.subscriber(i)))
            sub["updated_at"] = stamp
            sub.update(fields)
            req.data.change(i, sub)
            changed += 1
    return 200, {"changed": changed}


def remove_subscribers(req):
    """Subscribers deleted in Postscript: gone from lists, GET by id and the
    summary."""
    chosen = pick(req.data, body_of(req))
    for i in chosen:
        req.data.remove(i)
    return 200, {"removed": len(chosen)}
