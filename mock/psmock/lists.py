"""The list endpoints: which filters and sorts each takes, and a page of
rows for a query.  Matching is exact and case-sensitive (documented:
__contains is a case-sensitive substring, __eq exact); timestamps compare as
instants."""

import bisect
import math
import re

from psmock.answers import validation_error
from psmock.values import parse_ts

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
            # documented: the reference types ps_id__eq as a 32-bit integer
            if not -2**31 <= want < 2**31:
                raise validation_error(("query", key), "ensure this value is less than or equal to 2147483647",
                                       "value_error.number.not_le")
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

