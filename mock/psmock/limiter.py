"""The rate limit's counting shapes.  Documented (part A): rate_limit
requests per second per token, a 429 beyond it.  Assumed (part C): how the
server counts, which Postscript does not say: a token bucket, fixed windows
or a sliding window, chosen with --limiter or /__admin/config.  Each takes
the token's buckets, the token, the rate and the moment the request arrived
(time.monotonic), and says whether it is let through, counting it if so."""

import bisect
import math

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
