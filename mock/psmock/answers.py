"""What the server answers besides a handler's object: the three error
shapes of part A, the checks of what a request sends, and text answers.

Documented (part A): {"errors": [...]} for a 403 (v2.access_denied), 400/422
validation and conflicts; {"error_code", "error_message", "success": false}
for a 404 (3001) and the 429 (3002); {"error": "..."} for a 403.  Assumed
(neither part A nor the OpenAPI file has a 401 or a 5xx): the errors shape
of a 401 (v2.authentication_failed) and the error_code 5000 body of a 5xx."""

import json

# documented: the 429 body (part A)
RATE_LIMIT_BODY = {"error_code": 3002, "error_message": "Rate limit exceeded", "success": False}


class ApiError(Exception):
    """An error answer: status, JSON body (one of the three shapes) and
    extra headers."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class Text(str):
    """A text/plain answer (the log and the summary for COPY ... FROM PROGRAM)."""


def validation_error(loc, msg, typ="value_error", status=400):
    return ApiError(status, {"errors": [{"loc": list(loc), "msg": msg, "type": typ}]})


def conflict(msg):
    """Documented (part A): what public client code of the real service tests
    for; its status is not documented (assumed: 400)."""
    return ApiError(400, {"errors": [{"loc": ["body", "phone_number"], "msg": msg,
                                      "type": "v2.entity_conflict"}]})


def not_found(what):
    return ApiError(404, {"error_code": 3001,
                          "error_message": "Could not find %s matching that information" % what,
                          "success": False})


def error_body_for(status):
    """The body an injected error status comes with."""
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
        # assumed: no 401 body is documented
        return {"errors": [{"loc": ["header", "Authorization"], "msg": "Invalid API key",
                            "type": "v2.authentication_failed"}]}
    # assumed: no 5xx body is documented
    return {"error_code": 5000, "error_message": "Internal server error (HTTP %d)" % status, "success": False}


def body_object(body):
    """A request's body as a JSON object, or the validation error."""
    if body is None:
        raise validation_error(("body",), "a JSON object body is required")
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise validation_error(("body",), "the body is not valid JSON", "value_error.jsondecode")
    if not isinstance(obj, dict):
        raise validation_error(("body",), "a JSON object is expected", "type_error.dict")
    # assumed: keys the endpoint does not know are ignored, not refused
    # (neither part A nor the OpenAPI file says what becomes of them)
    return obj


def check_type(obj, key, typ, what):
    value = obj.get(key)
    if value is not None and (not isinstance(value, typ) or isinstance(value, bool)):
        raise validation_error(("body", key), "value is not a valid %s" % what, "type_error." + what)
