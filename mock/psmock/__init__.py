"""The local Postscript API server (see ../README.md): the modules, leaves first.

values    ids, timestamps and phone numbers as Postscript writes them
data      the seeded data set (subscribers generated on demand, the rest built)
lists     the list endpoints' filters, sorts and pages
answers   error bodies and the checks of what a request sends
limiter   the rate limit's counting shapes
api       the handlers of /api/v2 (but webhooks)
webhooks  webhook subscriptions, examples and deliveries
state     configuration, request log, faults, rate buckets; reset
faults    the faults a request can be given
admin     the handlers of /__admin/ (tests only)
routes    the route table: (method, path) -> handler, documented or assumed
server    HTTP: the request pipeline, the command line
"""
