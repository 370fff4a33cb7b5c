"""The seeded data set: deterministic for a seed and a number of
subscribers.  Subscribers are generated on demand from their index (a
million cost no memory until one changes); the other objects, bounded in
size, are built at start-up.  The shapes are part A's (subscribers, keywords,
the shop) and part B's (campaigns, messages, opt-ins, opt-outs)."""

import bisect
import calendar

from psmock.values import B36, B62, digest, encode, fmt_ts, parse_ts

# the shop the keys belong to (GET /me)
SHOP = {"resource_id": "shop_1234567abcde", "resource_name": "Test Shop ☕ & Co",
        "resource_type": "shop"}
SEED_START = calendar.timegm((2022, 1, 1, 0, 0, 0))
SEED_END = calendar.timegm((2026, 6, 30, 0, 0, 0))

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivo", "Jun",
         "Kai", "Lena", "Mo", "Nia", "Óscar", "Pia"]
LAST = ["smith", "o'neil", "garcia", "nguyen", "müller", "kim", "rossi", "dubois"]
DOMAINS = ["example.com", "mail.example.org", "shop.example.net", "example.co.uk"]
TAGS = ["VIP", "wholesale", "Beauty", "returning", "früh-bucher", "新客", "Home Goods"]
CATEGORIES = ["Beauty", "Home Goods", "Outdoor", "Tea & Coffee", "Jouets", "雑貨"]
CITIES = ["Zürich", "東京", "São Paulo", "New York", "Kraków", "Αθήνα"]
US_AREAS = ["212", "310", "415", "512", "617", "702", "808", "917"]
KEYWORDS = ["JOIN", "YOUROCK", "VIP", "DEALS", "SALE25", "TEA", "BLACKFRIDAY", "CAFÉ",
            "WELCOME", "STOP2GO", "SUMMER", "GIFT"]
CAMPAIGN_NAMES = ["Black Friday", "Cyber Monday", "Spring Sale 🌸", "Welcome series",
                  "Back in stock", "Fête des mères", "Summer drop", "Flash sale"]
STATUSES = ["draft", "scheduled", "sending", "sent", "paused", "cancelled"]
BODIES = ["Your order has shipped!", "20% off today only 🎉 {link}", "Reply STOP to opt out",
          "Ça arrive bientôt", "Thanks! We got your message.", "New arrivals: {link}"]


def unindex(index, entry):
    """Remove an entry from a sorted list (found by bisection, not a scan)."""
    del index[bisect.bisect_left(index, entry)]


class Data:
    """The seeded data set.  Subscribers are generated on demand from their index
    (so a million costs no memory until rows are changed); the other objects,
    bounded in size, are built at start-up."""

    def __init__(self, seed, subscribers):
        self.seed = seed
        self.n = subscribers
        self.span = (SEED_END - SEED_START) / max(1, subscribers)
        self.overrides = {}     # index -> changed subscriber
        self.extra = []         # subscribers confirmed after start-up
        self.pending = {}       # pending id -> pending subscriber
        self.removed = set()    # indexes of subscribers deleted upstream (POST /__admin/remove)
        self._alive = None      # (count, removed, listed indexes) while some are removed
        self._ts_index = {}     # field -> sorted [(epoch, index)] of listed subscribers
        self._id_index = None
        self._phone_index = None
        self.counter = 0
        self.events = []
        self.message_requests = {}
        self.keywords = [self._keyword(i) for i in range(len(KEYWORDS))]
        self.keyword_by_name = {k["keyword"].upper(): k for k in self.keywords}
        self.keyword_by_id = {k["id"]: k for k in self.keywords}
        linked = min(subscribers, 50000)
        ncamp = max(len(STATUSES) * 4, min(200, subscribers // 50))
        self.campaigns = [self._campaign(i) for i in range(ncamp)]
        self.opt_ins = []
        self.opt_outs = []
        for i in range(linked):
            s = self.subscriber(i)
            h = digest(seed, "consent", i)
            created = parse_ts(s["created_at"]) - 30 - h[0]
            source = ("keyword", "checkout", "popup", "api")[h[1] % 4]
            self.opt_ins.append({
                "id": "oi_" + encode(h[2:14], B62, 16), "subscriber_id": s["id"],
                "phone_number": s["phone_number"],
                "keyword_id": self.keywords[h[3] % len(self.keywords)]["id"] if source == "keyword" else None,
                "source": source, "status": "confirmed", "created_at": fmt_ts(created, h[4] % 4),
                "confirmed_at": fmt_ts(created + 20 + h[5], 0)})
            if not s["subscriptions"]["promotional"]["can_send"]:
                self.opt_outs.append({
                    "id": "oo_" + encode(h[14:24], B62, 16), "subscriber_id": s["id"],
                    "phone_number": s["phone_number"],
                    "source": ("reply_stop", "api", "carrier", "support")[h[6] % 4],
                    "created_at": fmt_ts(min(SEED_END, parse_ts(s["created_at"]) + 3600 * (1 + h[7])), h[8] % 3)})
            if i % 97 == 13:    # a double opt-in never confirmed
                self.opt_ins.append({
                    "id": "oi_" + encode(digest(seed, "unconfirmed", i)[:12], B62, 16),
                    "subscriber_id": "s_pending_" + encode(h[9:17], B36, 12),
                    "phone_number": "+1555%07d" % (7000000 + i), "keyword_id": self.keywords[0]["id"],
                    "source": "keyword", "status": "pending", "created_at": fmt_ts(created + 7, 0),
                    "confirmed_at": None})
        self.opt_ins.sort(key=lambda r: parse_ts(r["created_at"]))
        self.opt_outs.sort(key=lambda r: parse_ts(r["created_at"]))
        sent = [c for c in self.campaigns if c["status"] in ("sent", "sending")]
        self.messages = []
        for j in range(min(2 * subscribers, 60000)):
            h = digest(seed, "message", j)
            i = int.from_bytes(h[:4], "big") % linked
            s = self.subscriber(i)
            inbound = h[4] % 7 == 0
            category = "conversational" if inbound else ("promotional", "transactional")[h[5] % 2]
            campaign = sent[h[6] % len(sent)]["id"] if (not inbound and category == "promotional"
                                                         and h[7] % 10 < 7 and sent) else None
            self.messages.append({
                "id": "msg_" + encode(h[8:20], B62, 16), "subscriber_id": s["id"],
                "phone": s["phone_number"], "direction": "inbound" if inbound else "outbound",
                "category": category, "body": BODIES[h[20] % len(BODIES)].replace("{link}", "https://ex.am/p/%d" % j),
                "media_url": "https://cdn.example.com/m/%d.jpg" % j if h[21] % 9 == 0 else None,
                "campaign_id": campaign,
                "status": "received" if inbound else ("delivered", "sent", "failed", "delivered")[h[22] % 4],
                "credits_used": 0 if inbound else 1 + h[23] % 3,
                "created_at": fmt_ts(min(SEED_END, parse_ts(s["created_at"]) + 60 * (1 + int.from_bytes(h[:3], "big") % 50000)), h[5] % 4)})
        self.messages.sort(key=lambda r: parse_ts(r["created_at"]))

    # -- seeded objects
    def _keyword(self, i):
        h = digest(self.seed, "keyword", i)
        created = SEED_START - 86400 * 30 + i * 86400 * 11 + int.from_bytes(h[:3], "big") % 86400 + h[3] / 256.0
        return {"id": "kw_" + encode(h[4:16], B36, 15), "keyword": KEYWORDS[i],
                "triggered_count": int.from_bytes(h[16:19], "big") % 50000,
                "created_at": fmt_ts(created, 4 if i % 3 else 5),
                "updated_at": fmt_ts(created + 3600 * (1 + h[19]), 4)}

    def _campaign(self, i):
        h = digest(self.seed, "campaign", i)
        status = STATUSES[i % len(STATUSES)]
        created = SEED_START + (SEED_END - SEED_START) * i / 250.0 + h[0] * 60
        started = status in ("sent", "sending", "paused", "cancelled")
        recipients = 0 if not started else 500 + int.from_bytes(h[1:3], "big") % 20000
        sent = recipients if status == "sent" else recipients * (h[3] % 100) // 100
        delivered = sent - sent * (h[4] % 5) // 100
        clicks = delivered * (h[5] % 12) // 100
        conversions = clicks * (h[6] % 30) // 100
        revenue = conversions * (1000 + int.from_bytes(h[7:9], "big") % 9000)
        return {"id": "cmp_" + encode(h[9:21], B62, 16),
                "name": "%s %d" % (CAMPAIGN_NAMES[i % len(CAMPAIGN_NAMES)], 2022 + i * 4 // 250),
                "status": status, "body": BODIES[h[21] % len(BODIES)].replace("{link}", "https://ex.am/c/%d" % i),
                "media_url": "https://cdn.example.com/c/%d.png" % i if h[22] % 3 == 0 else None,
                "segment_id": "seg_" + encode(h[12:20], B62, 10) if h[23] % 4 else None,
                "scheduled_at": None if status == "draft" else fmt_ts(created + 86400, 0),
                "sent_at": fmt_ts(created + 86400 + h[2], 1) if status in ("sent", "sending") else None,
                "created_at": fmt_ts(created, i % 3),
                "updated_at": fmt_ts(created + 86400 * 2, 0),
                "stats": {"recipients": recipients, "sent": sent, "delivered": delivered,
                          "clicks": clicks, "conversions": conversions,
                          "revenue": "%d.%02d" % divmod(revenue, 100), "opt_outs": sent * (h[10] % 3) // 1000,
                          "credits_used": sent * (1 + h[11] % 2)}}

    def sub_id(self, i):
        return "s_" + encode(digest(self.seed, "sub", i)[:16], B62, 20)

    def sub_phone(self, i, h):
        local = (i * 7919 + 1234567) % 8000000 + 2000000
        kind = h[0] % 20
        if kind == 0:
            return "+447%09d" % ((i * 104729) % 1000000000)
        if kind == 1:
            return "+4915%09d" % ((i * 15485863) % 1000000000)
        if kind == 2:
            return "+614%08d" % ((i * 7919) % 100000000)
        # no 555 exchange in a seeded number (tests write +1 555 555 01xx numbers);
        # the few that would have one move to an area code no other number uses
        area = US_AREAS[h[1] % len(US_AREAS)] if local // 10000 != 555 else "646"
        return "+1%s%07d" % (area, local)

    def _stamps(self, i, h):
        """A seeded subscriber's created_at and updated_at, as sent."""
        created = SEED_START + i * self.span + (h[16] % 100) / 1000.0 * self.span
        if h[17] % 3 == 0:
            created += h[18] / 256.0 + (h[19] % 100) / 1e6
        updated = max(created, min(SEED_END, created + 3600 * (h[20] % 200)))
        return fmt_ts(created, h[17] % 4), fmt_ts(updated, h[18] % 2)

    def _generate(self, i):
        h = digest(self.seed, "sub", i)
        created_at, updated_at = self._stamps(i, h)
        first, last = FIRST[h[2] % len(FIRST)], LAST[h[3] % len(LAST)]
        if h[4] % 10 == 0:
            email = None
        else:
            plus = "+promo" if h[5] % 7 == 0 else ""
            email = "%s.%s%s%d@%s" % (first.lower(), last.replace("'", ""), plus, i, DOMAINS[h[6] % len(DOMAINS)])
        ntags = h[7] % 4
        tags = sorted({TAGS[h[8 + k] % len(TAGS)] for k in range(ntags)}) if h[11] % 4 else []
        props = {}
        if h[12] % 5:
            props = {"has_purchased": h[13] % 2 == 0, "days_since_purchase": h[14] % 365,
                     "categories": sorted({CATEGORIES[h[15] % 6], CATEGORIES[h[13] % 6]}),
                     "birthday": "19%02d-%02d-%02d" % (60 + h[21] % 40, 1 + h[22] % 12, 1 + h[23] % 28),
                     "first_name": first}
            if h[12] % 3 == 0:
                props["city"] = CITIES[h[14] % len(CITIES)]
        return {"id": "s_" + encode(h[:16], B62, 20), "ps_id": 1000 + i,
                "phone_number": self.sub_phone(i, h[16:]), "email": email,
                "shopify_customer_id": None if h[9] % 5 == 0 else 6000000000000 + i * 37,
                "tags": tags, "properties": props,
                "subscriptions": {"promotional": {"can_send": h[10] % 10 != 0},
                                  "transactional": {"can_send": h[10] % 20 != 1}},
                "data": {}, "created_at": created_at, "updated_at": updated_at}

    # -- subscribers
    def count(self):
        return self.n + len(self.extra)

    def subscriber(self, i):
        s = self.overrides.get(i)
        if s is not None:
            return s
        if i < self.n:
            return self._generate(i)
        return self.extra[i - self.n]

    def subscribers(self):
        for i in range(self.count()):
            if i not in self.removed:
                yield self.subscriber(i)

    def listed(self):
        """Indexes of the listed subscribers, in list order (None: all of them)."""
        if not self.removed:
            return None
        key = (self.count(), len(self.removed))
        if self._alive is None or self._alive[0] != key:
            self._alive = (key, [i for i in range(self.count()) if i not in self.removed])
        return self._alive[1]

    def index_of(self, sid):
        if self._id_index is None:
            self._id_index = {self.sub_id(i): i for i in range(self.n)}
            for k, s in enumerate(self.extra):
                self._id_index[s["id"]] = self.n + k
        i = self._id_index.get(sid)
        return None if i in self.removed else i

    def index_of_phone(self, phone):
        if self._phone_index is None:
            self._phone_index = {}
            for i in range(self.count()):
                self._phone_index[self.subscriber(i)["phone_number"]] = i
        i = self._phone_index.get(phone)
        return None if i in self.removed else i

    def change(self, i, s):
        old = self.subscriber(i)
        if i < self.n:
            self.overrides[i] = s
        else:
            self.extra[i - self.n] = s
        if self._phone_index is not None:
            self._phone_index[s["phone_number"]] = i
        for field, index in self._ts_index.items():
            if old[field] != s[field] and i < index[0]:
                unindex(index[1], (parse_ts(old[field]), i))
                bisect.insort(index[1], (parse_ts(s[field]), i))

    def append(self, sub):
        """A subscriber confirmed since start-up: listed last, indexed by id
        and phone number."""
        self.index_of(sub["id"])        # build the index before extending
        self.extra.append(sub)
        i = self.count() - 1
        self._id_index[sub["id"]] = i
        if self._phone_index is not None:
            self._phone_index[sub["phone_number"]] = i

    def remove(self, i):
        """The subscriber disappears from the API (as if deleted upstream)."""
        for field, index in self._ts_index.items():
            if i < index[0]:
                unindex(index[1], (parse_ts(self.subscriber(i)[field]), i))
        self.removed.add(i)

    def ts_index(self, field):
        """The listed subscribers sorted by a timestamp field, ties in list
        order: [(epoch, index)].  Built once (seeded rows from their stamps
        alone, without generating them), then kept up to date."""
        index = self._ts_index.get(field)
        if index is None:
            pos = ("created_at", "updated_at").index(field)
            rows = []
            for i in range(self.n):
                if i in self.removed:
                    continue
                if i in self.overrides:
                    text = self.overrides[i][field]
                else:
                    text = self._stamps(i, digest(self.seed, "sub", i))[pos]
                rows.append((parse_ts(text), i))
            rows.sort()
            index = self._ts_index[field] = [self.n, rows]
        while index[0] < self.count():      # confirmed since: appended to the list
            if index[0] not in self.removed:
                bisect.insort(index[1], (parse_ts(self.subscriber(index[0])[field]), index[0]))
            index[0] += 1
        return index[1]

    def next_id(self, kind, prefix, alphabet=B62, length=16):
        self.counter += 1
        return prefix + encode(digest(self.seed, kind, "new", self.counter)[:16], alphabet, length)



class LazySubscribers:
    """The subscriber list as a sequence, for unfiltered pages of a large set."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        listed = self.data.listed()
        return self.data.count() if listed is None else len(listed)

    def __getitem__(self, sl):
        listed = self.data.listed()
        return [self.data.subscriber(i if listed is None else listed[i])
                for i in range(*sl.indices(len(self)))]

    def __iter__(self):
        return self.data.subscribers()

