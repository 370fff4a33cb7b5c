"""The server's state: the data set, the configuration, the request log, the
faults and the rate buckets, all back to the start on a reset."""

import random
import threading
import time

from psmock.data import Data
from psmock.limiter import LIMITERS
from psmock.webhooks import Webhooks


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        # API requests being handled (arrived, not yet answered), per reset
        # generation: one still held by an earlier test's fault (a stall)
        # is not in flight with this test's requests
        self.active = {}
        # a gate fault's requests wait on it (faults.py)
        self.gate = threading.Condition(self.lock)
        self.start_config = {"page_size": args.page_size, "rate_limit": args.rate_limit,
                             "latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms,
                             "limiter": args.limiter, "webhook_retry_s": args.webhook_retry_s,
                             # 1: GET /keywords answers {} -- documented (part A) for a shop
                             # without keywords
                             "keywords_empty": 0,
                             # 0: never compress an answer (bench/cpu.sh measures both)
                             "gzip": 1}
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

    def enter(self, generation):
        """An API request of this reset generation arrived: how many others
        of it were being handled."""
        with self.lock:
            n = self.active.get(generation, 0)
            self.active[generation] = n + 1
            return n

    def leave(self, generation):
        """An API request's answer is about to leave (or none will)."""
        with self.lock:
            self.active[generation] -= 1
            if self.active[generation] == 0:
                del self.active[generation]

    def record(self, entry, generation):
        """Log a finished request, unless a reset came while it was in flight
        (a slow request must not show up in the next test's log)."""
        with self.lock:
            if generation != self.generation:
                return
            # in arrival order: a request finishes at most a few places
            # late, so walk back from the end (sorting the whole log on
            # every request made each one cost time in the log's length)
            log = self.log
            log.append(entry)
            i = len(log) - 1
            while i > 0 and log[i - 1]["seq"] > entry["seq"]:
                log[i] = log[i - 1]
                i -= 1
            log[i] = entry

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

