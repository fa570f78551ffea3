import re

FACTORS = {
    "w": 604800, "wk": 604800, "wks": 604800, "week": 604800, "weeks": 604800,
    "d": 86400, "day": 86400, "days": 86400,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
}
PART = r"\d+(?:\.\d+)?\s*[a-z]+"
SEP = r"(?:\s|,|\band\b)*"
WHOLE = re.compile(SEP + PART + "(?:" + SEP + PART + ")*" + SEP)
PIECE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("text must be a string")
    lowered = text.lower()
    if not WHOLE.fullmatch(lowered):
        raise ValueError("not a duration: %r" % text)
    total = 0.0
    for amount, unit in PIECE.findall(lowered):
        if unit not in FACTORS:
            raise ValueError("unknown unit: %r" % unit)
        total += float(amount) * FACTORS[unit]
    return total
