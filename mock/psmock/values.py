"""Values as Postscript writes them: seeded ids, timestamps in the formats
Postscript is seen to use, phone numbers normalized to E.164."""

import hashlib
import re
import time
from datetime import datetime, timezone

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def digest(*parts):
    return hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=24).digest()


def encode(data, alphabet, length):
    n = int.from_bytes(data, "big")
    out = []
    for _ in range(length):
        n, r = divmod(n, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def fmt_ts(epoch, style=0):
    """A UTC instant in one of the formats Postscript is seen to use."""
    whole = int(epoch)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    micros = int(round((epoch - whole) * 1e6)) % 1000000
    if style == 0:
        return base + "Z"
    if style == 1:
        return "%s.%06dZ" % (base, micros)
    if style == 2:
        return base + "+00:00"
    if style == 3:
        return "%s.%03dZ" % (base, micros // 1000)
    if style == 4:          # zone-less, as keywords have them
        return "%s.%06d" % (base, micros)
    return base             # zone-less, no fraction


_ts_cache = {}


def parse_ts(text):
    """ISO 8601 to epoch seconds; zone-less means UTC.  None if unparsable."""
    if text is None:
        return None
    hit = _ts_cache.get(text)
    if hit is not None:
        return hit
    try:
        s = text.strip()
        if s.endswith("Z") or s.endswith("z"):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
    except (ValueError, TypeError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    value = dt.timestamp()
    if len(_ts_cache) > 500000:
        _ts_cache.clear()
    _ts_cache[text] = value
    return value


def now_iso():
    return fmt_ts(time.time(), 1)


def normalize_phone(value):
    """E.164 as Postscript would store it; other formats parsed as US numbers."""
    if not isinstance(value, str):
        return None
    s = value.strip()
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", s):
        return s
    if re.search(r"[^0-9 ()+.\-]", s):
        return None
    digits = re.sub(r"[^0-9]", "", s)
    if s.startswith("+"):
        return "+" + digits if 8 <= len(digits) <= 15 and digits[0] != "0" else None
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    if len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789":
        return "+1" + digits
    return None
