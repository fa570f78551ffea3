import re

UNITS = {"d": 86400, "day": 86400, "days": 86400,
         "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
         "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
         "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1}

GAP = re.compile(r"(?:\s+|,|\band\b)*")
PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    text = text.lower()
    i, total, parts = 0, 0.0, 0
    while True:
        i = GAP.match(text, i).end()
        if i == len(text):
            break
        m = PART.match(text, i)
        if m is None or m.group(2) not in UNITS:
            raise ValueError("malformed duration")
        total += float(m.group(1)) * UNITS[m.group(2)]
        parts += 1
        i = m.end()
    if parts == 0:
        raise ValueError("no duration")
    return total
