import re
from typing import Dict

UNITS: Dict[str, float] = {}
for factor, spellings in ((604800, ("w", "wk", "wks", "week", "weeks")),
                          (86400, ("d", "day", "days")),
                          (3600, ("h", "hr", "hrs", "hour", "hours")),
                          (60, ("m", "min", "mins", "minute", "minutes")),
                          (1, ("s", "sec", "secs", "second", "seconds")),
                          (0.001, ("ms", "msec", "msecs", "millisecond", "milliseconds"))):
    for spelling in spellings:
        UNITS[spelling] = factor

TOKENS = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)|(,|and\b|\s+)|(.)", re.S)


def parse_duration(text: str) -> float:
    text = text.strip().lower()
    total, parts = 0.0, 0
    for number, unit, _sep, junk in TOKENS.findall(text):
        if junk:
            raise ValueError(f"unexpected {junk!r} in duration")
        if number:
            if unit not in UNITS:
                raise ValueError(f"unknown unit {unit!r}")
            total += float(number) * UNITS[unit]
            parts += 1
    if parts == 0:
        raise ValueError("no duration given")
    return total
