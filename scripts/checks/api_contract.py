"""The local API server against Postscript's harvested OpenAPI file.

Usage: api_contract.py OPENAPI.yml   (PS_MOCK_URL names the running server)

For every operation of the file that the server serves, requests are derived
from the file itself:
  - the operation as a shop and as a partner with X-Postscript-Shop-Token
    (the header parameter every operation documents);
  - every documented query parameter on its own, its value taken from a real
    subscriber (a filter's field) or from its schema (page, the sort fields
    that the description lists, every value of an enum such as the webhook
    event names); a required query parameter is sent with every request;
  - {id} of each path from a fresh data set (after a reset): a subscriber,
    a keyword, a message request, a sent message, a webhook subscription
    created for the purpose (its UUID);
  - every documented body property, the alternatives that part A of the
    contract says exclude each other ("subscriber_id or phone") in bodies of
    their own;
and each must be answered with the operation's documented 2xx status and a
body valid against the documented schema.  Each documented error status is
provoked (an unknown id, a body without its required properties or with
wrongly typed ones, an invalid page, a required query parameter left out or
one outside its enum, a public pk_ key or a partner key without the shop
token) and must come with its documented body.

Validation rules for the harvested file:
  - its schemas never mark a property nullable, while the documentation's
    prose has nulls (email, shopify_customer_id): null is accepted anywhere;
  - where a success response has an example, the example's keys must be
    present in the answer (several operations document their body by an
    example only; the examples' Python literals True/False are read as JSON;
    keys inside free-form maps such as properties are illustrations; the
    trailing commas of the webhook subscription's examples are dropped; the
    example event's event_data keys are required only of an answer for that
    event).  Error bodies are held to their schema only: part A documents
    three error shapes, and the examples of one are not the fields of all;
  - the subscription's event enum spells shop.shop.email_collected, the
    example's and the test's enum shop.email_collected (part A: expect
    both): each operation is held to its own enum.

The route table of the local server (mock/psmock/routes.py) must mark as
documented exactly the operations of the file, and those that part A
documents from the reference's prose (PROSE_ONLY).

Known divergences that another branch is changing (issue 13) are reported,
not failed; one that no longer occurs is reported as such, to be removed.
"""

import copy
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import yaml
from jsonschema import Draft202012Validator

MOCK = os.environ["PS_MOCK_URL"]
SHOP_KEY = "sk_test_shop_key"
PARTNER_KEY = "sk_partner_test_key"
METHODS = ("get", "post", "patch", "put", "delete")
NOT_SERVED = ()                         # path prefixes the local server has no route for
# operations part A documents from the reference's prose, not the file
PROSE_ONLY = {("POST", "/api/v2/subscribers")}
# body properties that part A says are alternatives: one body per alternative
ALTERNATIVES = {
    ("POST", "/api/v2/message_requests"): ("subscriber_id", "phone"),
    ("PATCH", "/api/v2/compliance/unsubscribe"): ("postscript_subscriber_id", "phone_number"),
    ("PATCH", "/api/v2/compliance/redact"): ("postscript_subscriber_id", "phone_number",
                                             "shopify_customer_id", "email"),
}
# (method, path, what) -> why: divergences being fixed on another branch
KNOWN = {
}

problems = []
known_seen = set()
not_provoked = []


def call(method, path, query=None, body=None, auth="shop"):
    url = MOCK + path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")
    headers = {"Content-Type": "application/json"}
    if auth == "shop":
        headers["Authorization"] = "Bearer " + SHOP_KEY
    elif auth.startswith("partner"):
        headers["Authorization"] = "Bearer " + PARTNER_KEY
        if auth == "partner":
            headers["X-Postscript-Shop-Token"] = SHOP_KEY
    elif auth == "public":
        headers["Authorization"] = "Bearer pk_contract_check"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def admin(method, route, body=None):
    req = urllib.request.Request(MOCK + "/__admin/" + route, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- schemas

def nullable(schema):
    """The schema with null accepted for every property."""
    schema = copy.deepcopy(schema)

    def walk(node):
        for sub in (node.get("properties") or {}).values():
            walk(sub)
            if isinstance(sub.get("type"), str):
                sub["type"] = [sub["type"], "null"]
        if isinstance(node.get("items"), dict):
            walk(node["items"])
    walk(schema)
    return schema


# objects of free keys ("custom properties as key/value pairs"): the
# example's keys there are illustrations, not fields
FREE_FORM = {"properties", "data", "ctx"}
JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
              (dict, "object"), (list, "array"))


def shape(example):
    """A schema requiring the example's keys, with the example's types (or null)."""
    for py, name in JSON_TYPES:
        if isinstance(example, py):
            break
    else:
        return {}
    schema = {"type": [name, "null"]}
    if isinstance(example, dict):
        schema["required"] = sorted(example)
        schema["properties"] = {k: shape(v) if k not in FREE_FORM else {"type": ["object", "null"]}
                                for k, v in example.items()}
    elif isinstance(example, list) and example:
        schema["items"] = shape(example[0])
    return schema


def example_of(content):
    for ex in (content.get("examples") or {}).values():
        text = ex.get("value")
        literal = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", text or ""))
        # the webhook subscription's examples (create, list, get, update) end
        # their object with a trailing comma, which JSON does not allow
        for candidate in (text, literal, re.sub(r",(\s*[}\]])", r"\1", literal)):
            try:
                return json.loads(candidate)
            except (TypeError, ValueError):
                continue
    return None


def violations(response, body, by_example=True):
    """What in body the documented response (its schema, and with by_example
    its example's keys) does not allow."""
    content = (response.get("content") or {}).get("application/json") or {}
    schemas = []
    if "schema" in content:
        schemas.append(nullable(content["schema"]))
    example = example_of(content) if by_example else None
    if example:
        example_shape = shape(example)
        # GET /webhooks/example documents one event only (shop.incoming_message):
        # its event_data keys are that event's; another event's event_data is
        # another object (part A lists no fields for it), so only the envelope's
        # keys are required of an answer for a different event
        if isinstance(body, dict) and isinstance(example.get("event"), str) \
                and "event_data" in example and body.get("event") != example["event"]:
            example_shape["properties"]["event_data"] = {"type": ["object", "null"]}
        schemas.append(example_shape)
    found = []
    for schema in schemas:
        for e in Draft202012Validator(schema).iter_errors(body):
            found.append("%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "body", e.message))
    return found


# ---------------------------------------------------------------- values

def subscribers_for_values():
    """Two subscribers with every field set, for filter and body values."""
    status, page = call("GET", "/api/v2/subscribers", {"page": 1})
    full = [s for s in page["subscribers"] if s.get("email") and s.get("shopify_customer_id")]
    return full[0], full[1]


def query_values(param, sample, other):
    """Values to send for one documented query parameter (each a request)."""
    name, schema = param["name"], param.get("schema") or {}
    if name == "page":
        return [1, 2]
    if schema.get("enum"):
        return list(schema["enum"])         # every documented value (webhook event names)
    if name == "sort":
        fields = re.findall(r"`([a-z_]+)`", param.get("description", "").split("Valid fields:")[-1])
        return ["%s__%s" % (f, d) for f in fields for d in ("asc", "desc")]
    field, _, op = name.rpartition("__")
    value = sample[field]
    if schema.get("format") == "date":
        value = value[:10]
    if op == "contains":
        value = str(value)[2:-2]
    if op == "in":
        return [[str(value), str(other[field])]]
    return [int(value) if schema.get("type") == "integer" else str(value)]


def body_value(name, schema, sample):
    if schema.get("enum"):
        return schema.get("default", schema["enum"][0])
    kind = schema.get("type")
    if kind == "object" or schema.get("format") == "json":
        return {"key": "value"}
    if kind == "array":
        return ["contract_check"]
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    if name in ("subscriber_id", "postscript_subscriber_id"):
        return sample["id"]
    if name in ("phone", "phone_number"):
        return sample["phone_number"]
    if sample.get(name) is not None:
        return str(sample[name])
    if "%Y-%m-%d %H:%M:%S.%f" in schema.get("description", ""):
        return "2026-03-04 05:06:07.500000"
    if schema.get("format") == "date-time":
        return "2027-01-01T10:00:00Z"
    if name.endswith("url"):
        return "https://example.com/contract.png"
    if name == "type":
        return "contract_check"
    return schema.get("default", "contract check")


def bodies(key, op, sample):
    """One body with every documented property, one per alternative."""
    rb = ((op.get("requestBody") or {}).get("content") or {}).get("application/json")
    if rb is None:
        return [None]
    props = rb["schema"].get("properties") or {}
    full = {k: body_value(k, v, sample) for k, v in props.items()}
    alts = ALTERNATIVES.get(key, ())
    if not alts:
        return [full]
    return [{k: v for k, v in full.items() if k not in alts or k == keep} for keep in alts]


def required_query(op):
    """The required query parameters with a documented value (the default)."""
    return {p["name"]: p["schema"].get("default", p["schema"].get("enum", [None])[0])
            for p in op.get("parameters") or [] if p.get("in") == "query" and p.get("required")}


def wrong_body(op):
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    if schema.get("required"):
        return {}
    return {k: {"wrong": "type"} for k, v in (schema.get("properties") or {}).items()
            if v.get("type") != "object"}


# ---------------------------------------------------------------- checks

def judge(key, what, status, body, responses, want):
    """Problems with one answer; a known divergence is recorded instead."""
    found = []
    if status not in want:
        found.append("status %s, documented %s: %s" % (status, "/".join(str(w) for w in sorted(want)), str(body)[:200]))
    else:
        found = violations(responses[str(status)], body, by_example=status < 300)
    if not found:
        return True
    known = KNOWN.get(key + (what,))
    if known:
        known_seen.add(key + (what,))
        return False
    for f in found:
        f = re.sub(r"/\d+/", "/*/", f)
        if not any(p.startswith("%s %s " % key) and p.endswith(f) for p in problems):
            problems.append("%s %s (%s): %s" % (key[0], key[1], what, f))
    return False


def fresh_ids(sample):
    """Reset the server; ids for the {id} of each path."""
    admin("POST", "reset")
    _, kws = call("GET", "/api/v2/keywords")
    _, mr = call("POST", "/api/v2/message_requests", body={"subscriber_id": sample["id"], "body": "contract check"})
    # a subscription's id is a UUID made at creation: a new one after every reset
    _, hook = call("POST", "/api/v2/webhooks", body={"callback_url": "https://example.com/contract",
                                                     "event": "shop.test"})
    return {"/api/v2/subscribers/{id}": sample["id"], "/api/v2/keywords/{id}": kws["keywords"][0]["id"],
            "/api/v2/message_requests/{id}": mr["id"], "/api/v2/sent_messages/{id}": mr["sent_message"]["id"],
            "/api/v2/webhooks/{id}": hook["id"]}


def target(path, sample):
    """Reset the server; the path with a real id of the fresh data set (a
    DELETE or PATCH of one request must not change what the next one meets)."""
    ids = fresh_ids(sample)
    return path.replace("{id}", ids.get(path, "")) if "{id}" in path else path


def check_operation(path, method, op, sample, other):
    key = (method.upper(), path)
    responses = op.get("responses") or {}
    success = {s for s in responses if s.startswith("2")}
    errors = sorted(s for s in responses if not s.startswith("2"))
    required = required_query(op)
    sent = 0
    # the operation as a shop and as a partner (with its required query
    # parameters); every query parameter; every body
    for auth in ("shop", "partner"):
        judge(key, "as " + auth, *call(key[0], target(path, sample), required or None,
                                       bodies(key, op, sample)[0], auth=auth),
              responses, {int(s) for s in success})
        sent += 1
    for param in op.get("parameters") or []:
        if param.get("in") != "query":
            continue
        for value in query_values(param, sample, other):
            judge(key, "query %s=%s" % (param["name"], value),
                  *call(key[0], target(path, sample), dict(required, **{param["name"]: value})),
                  responses, {int(s) for s in success})
            sent += 1
    for body in bodies(key, op, sample):
        if body is not None:
            judge(key, "body", *call(key[0], target(path, sample), required or None, body),
                  responses, {int(s) for s in success})
            sent += 1
    # the documented error statuses
    for status in errors:
        tries = []
        if status in ("400", "404") and "{id}" in path:
            tries.append(dict(path=path.replace("{id}", "nosuch_contract_id"), query=required or None))
        if status == "400" and op.get("requestBody"):
            tries.append(dict(body=wrong_body(op), query=required or None))
        if status == "400" and any(p.get("name") == "page" for p in op.get("parameters") or []):
            tries.append(dict(query=dict(required, page="not_a_number")))
        if status == "400":
            # a required query parameter left out; a value outside its enum
            for name in required:
                tries.append(dict(query={k: v for k, v in required.items() if k != name}))
            for p in op.get("parameters") or []:
                if p.get("in") == "query" and (p.get("schema") or {}).get("enum"):
                    tries.append(dict(query=dict(required, **{p["name"]: "not_a_documented_value"})))
        if status == "403":
            tries += [dict(auth="public", query=required or None),
                      dict(auth="partner-no-token", query=required or None)]
        if not tries:
            not_provoked.append("%s %s %s" % (key[0], path, status))
            continue
        results = []
        for t in tries:
            real = target(path, sample)
            results.append(call(key[0], t.get("path", real), t.get("query"), t.get("body"), t.get("auth", "shop")))
            sent += 1
        if not any(s == int(status) and not violations(responses[status], b, False) for s, b in results):
            judge(key, status, *results[0], responses, {int(status)})
    return sent


def check_route_marks(spec):
    """The local server's route table marks as documented exactly the file's
    operations, and those part A documents in prose only."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "mock"))
    from psmock import routes
    documented = {(r.method, r.pattern) for r in routes.ROUTES if r.source == routes.DOCUMENTED}
    in_file = {(m.upper(), path) for path, item in spec["paths"].items() for m in METHODS
               if m in item and not path.startswith(NOT_SERVED)}
    for method, path in sorted(documented - in_file - PROSE_ONLY):
        problems.append("%s %s is marked documented in mock/psmock/routes.py, but the file has no such operation"
                        % (method, path))
    for method, path in sorted(in_file - documented):
        problems.append("%s %s is documented, but mock/psmock/routes.py does not mark it so" % (method, path))


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    check_route_marks(spec)
    admin("POST", "reset")
    sample, other = subscribers_for_values()
    served = skipped = sent = 0
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            if path.startswith(NOT_SERVED):
                status, _ = call(method.upper(), path.replace("{id}", "x"))
                if status != 404:
                    problems.append("%s %s is served now (%s): take it out of NOT_SERVED" % (method.upper(), path, status))
                skipped += 1
                continue
            served += 1
            sent += check_operation(path, method, item[method], sample, other)
    admin("POST", "reset")
    for k in sorted(known_seen):
        print("api_contract: known divergence, %s %s (%s): %s" % (k + (KNOWN[k],)))
    for k in sorted(set(KNOWN) - known_seen):
        print("api_contract: no longer divergent, remove from KNOWN: %s %s (%s)" % k)
    if not_provoked:
        print("api_contract: documented statuses not provoked: " + ", ".join(not_provoked))
    for p in problems:
        print("api_contract: " + p)
    if problems:
        sys.exit(1)
    print("api_contract: ok; %d operations checked with %d requests, %d not served%s"
          % (served, sent, skipped, " (%s)" % ", ".join(NOT_SERVED) if NOT_SERVED else ""))


if __name__ == "__main__":
    main()
