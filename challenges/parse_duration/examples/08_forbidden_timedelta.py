import re
from datetime import timedelta

KEYWORDS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}
ALIASES = {"wk": "w", "wks": "w", "week": "w", "weeks": "w", "day": "d", "days": "d",
           "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "min": "m", "mins": "m", "minute": "m",
           "minutes": "m", "sec": "s", "secs": "s", "second": "s", "seconds": "s", "msec": "ms",
           "msecs": "ms", "millisecond": "ms", "milliseconds": "ms"}


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("text must be str")
    s = text.lower()
    if not re.fullmatch(r"(?:\s|,|\band\b)*(?:\d+(?:\.\d+)?\s*[a-z]+(?:\s|,|\band\b)*)+", s):
        raise ValueError("malformed")
    delta = timedelta()
    for n, u in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", s):
        u = ALIASES.get(u, u)
        if u not in KEYWORDS:
            raise ValueError("unknown unit " + u)
        delta += timedelta(**{KEYWORDS[u]: float(n)})
    return delta.total_seconds()
