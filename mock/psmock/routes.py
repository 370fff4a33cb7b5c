"""The route table: every (method, path) the server answers, its handler,
and where the behaviour comes from:

  documented  part A of the contract (../shared/postscript-api.md): what
              Postscript documents, the harvested OpenAPI file included
  assumed     part B: what no public source describes, our assumption
  admin       /__admin/, for tests, the demo and the benchmark only

A path parameter is written {name}, as in the OpenAPI file, and matches one
path segment; a trailing "/" is ignored.  The first route that matches both
method and path serves the request, so a literal path comes before a
pattern it also matches (/webhooks/token before /webhooks/{id}).  A path no
route matches is 404; so is a method a matched path does not take (Postscript
documents no 405), with Allow naming the methods the path does take.  A
route with query=False refuses every query parameter with the errors shape;
the others read and check their own."""

import re

from psmock import admin, api, webhooks
from psmock.answers import ApiError, validation_error

DOCUMENTED, ASSUMED, ADMIN = "documented", "assumed", "admin"
ADMIN_PREFIX = "/__admin/"


class Route:
    """method and pattern served by handler(request, *path parameters); source
    is DOCUMENTED, ASSUMED or ADMIN; query says whether the handler takes a
    query string."""

    def __init__(self, method, pattern, handler, source, query=False):
        assert source in (DOCUMENTED, ASSUMED, ADMIN)
        assert pattern.startswith(ADMIN_PREFIX) == (source == ADMIN)
        self.method = method
        self.pattern = pattern
        self.handler = handler
        self.source = source
        self.query = query
        self.regex = re.compile("/".join("([^/]+)" if re.fullmatch(r"\{\w+\}", part) else re.escape(part)
                                         for part in pattern.split("/")) + "$")


class Request:
    """A request as a handler sees it: params is the query string parsed
    ({name: [values]}), body the raw body (None without one)."""

    def __init__(self, state, params, body):
        self.state = state
        self.params = params
        self.body = body

    @property
    def data(self):
        return self.state.data


ROUTES = [
    Route("GET", "/api/v2/me", api.me, DOCUMENTED),
    Route("GET", "/api/v2/subscribers", api.list_of("subscribers"), DOCUMENTED, query=True),
    Route("POST", "/api/v2/subscribers", api.create_subscriber, DOCUMENTED),
    Route("GET", "/api/v2/subscribers/{id}", api.get_subscriber, DOCUMENTED),
    Route("PATCH", "/api/v2/subscribers/{id}", api.patch_subscriber, DOCUMENTED),
    Route("GET", "/api/v2/keywords", api.get_keywords, DOCUMENTED),
    Route("GET", "/api/v2/keywords/{id}", api.get_keyword, DOCUMENTED),
    Route("PATCH", "/api/v2/compliance/unsubscribe", api.unsubscribe, DOCUMENTED),
    Route("PATCH", "/api/v2/compliance/redact", api.redact, DOCUMENTED),
    Route("POST", "/api/v2/events", api.post_event, DOCUMENTED),
    Route("POST", "/api/v2/message_requests", api.post_message_request, DOCUMENTED),
    Route("GET", "/api/v2/message_requests/{id}", api.get_message_request, DOCUMENTED),
    Route("GET", "/api/v2/sent_messages/{id}", api.get_sent_message, DOCUMENTED),
    Route("GET", "/api/v2/webhooks", webhooks.list_subscriptions, DOCUMENTED),
    Route("POST", "/api/v2/webhooks", webhooks.create_subscription, DOCUMENTED),
    Route("GET", "/api/v2/webhooks/token", webhooks.get_token, DOCUMENTED),
    Route("GET", "/api/v2/webhooks/example", webhooks.get_example, DOCUMENTED, query=True),
    Route("POST", "/api/v2/webhooks/test", webhooks.post_test, DOCUMENTED),
    Route("GET", "/api/v2/webhooks/{id}", webhooks.get_subscription, DOCUMENTED),
    Route("PATCH", "/api/v2/webhooks/{id}", webhooks.patch_subscription, DOCUMENTED),
    Route("DELETE", "/api/v2/webhooks/{id}", webhooks.delete_subscription, DOCUMENTED),
    Route("GET", "/api/v2/campaigns", api.list_of("campaigns"), ASSUMED, query=True),
    Route("GET", "/api/v2/campaigns/{id}", api.record_of("campaigns"), ASSUMED),
    Route("GET", "/api/v2/messages", api.list_of("messages"), ASSUMED, query=True),
    Route("GET", "/api/v2/messages/{id}", api.record_of("messages"), ASSUMED),
    Route("GET", "/api/v2/opt_ins", api.list_of("opt_ins"), ASSUMED, query=True),
    Route("GET", "/api/v2/opt_ins/{id}", api.record_of("opt_ins"), ASSUMED),
    Route("GET", "/api/v2/opt_outs", api.list_of("opt_outs"), ASSUMED, query=True),
    Route("GET", "/api/v2/opt_outs/{id}", api.record_of("opt_outs"), ASSUMED),
    Route("POST", "/__admin/reset", admin.reset, ADMIN),
    Route("GET", "/__admin/config", admin.get_config, ADMIN),
    Route("POST", "/__admin/config", admin.set_config, ADMIN),
    Route("POST", "/__admin/faults", admin.add_fault, ADMIN),
    Route("GET", "/__admin/faults", admin.list_faults, ADMIN),
    Route("DELETE", "/__admin/faults", admin.drop_faults, ADMIN),
    Route("GET", "/__admin/requests", admin.get_requests, ADMIN, query=True),
    Route("DELETE", "/__admin/requests", admin.drop_requests, ADMIN),
    Route("GET", "/__admin/summary", admin.get_summary, ADMIN, query=True),
    Route("POST", "/__admin/confirm", admin.confirm, ADMIN),
    Route("GET", "/__admin/events", admin.get_events, ADMIN),
    Route("POST", "/__admin/subscribers", admin.change_subscribers, ADMIN),
    Route("POST", "/__admin/remove", admin.remove_subscribers, ADMIN),
    Route("POST", "/__admin/webhooks/deliver", admin.deliver_webhooks, ADMIN),
    Route("GET", "/__admin/webhooks/deliveries", admin.list_deliveries, ADMIN),
]


def resolve(method, path):
    """The route that serves method and path, and the path's parameters;
    ApiError 404 when there is none."""
    allowed = []
    for route in ROUTES:
        m = route.regex.match(path.rstrip("/"))
        if m is None:
            continue
        if route.method == method:
            return route, m.groups()
        if route.method not in allowed:
            allowed.append(route.method)
    headers = {"Allow": ", ".join(allowed)} if allowed else None
    if path.startswith(ADMIN_PREFIX):
        raise ApiError(404, {"error": "no such admin endpoint"}, headers)
    raise ApiError(404, {"error": "Not found: %s %s" % (method, path)}, headers)


def serve(state, method, path, params, body):
    """The answer to a request: (status, JSON body or Text, headers).  Takes
    the state's lock."""
    try:
        route, args = resolve(method, path)
        if params and not route.query:
            key = next(iter(params))
            if route.source == ADMIN:
                raise admin.refusal("%s takes no query parameter %s" % (route.pattern, key))
            raise validation_error(("query", key), "unknown query parameter", "value_error.extra")
        with state.lock:
            status, obj = route.handler(Request(state, params, body), *args)
        return status, obj, {}
    except ApiError as e:
        return e.status, e.body, e.headers
