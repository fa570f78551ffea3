import re

UNIT_SECONDS = {
    **dict.fromkeys(["w", "wk", "wks", "week", "weeks"], 604800),
    **dict.fromkeys(["d", "day", "days"], 86400),
    **dict.fromkeys(["h", "hr", "hrs", "hour", "hours"], 3600),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes"], 60),
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], 1),
    **dict.fromkeys(["ms", "msec", "msecs", "millisecond", "milliseconds"], 0.001),
}
SKIP = re.compile(r"(?:\s+|,|\band\b)*")
PART = re.compile(r"(\d+)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    s = text.lower()
    i, total, n = 0, 0, 0
    while True:
        i = SKIP.match(s, i).end()
        if i == len(s):
            break
        m = PART.match(s, i)
        if not m or m.group(2) not in UNIT_SECONDS:
            raise ValueError(f"cannot parse {text!r}")
        total += int(m.group(1)) * UNIT_SECONDS[m.group(2)]
        n += 1
        i = m.end()
    if n == 0:
        raise ValueError("empty")
    return total
