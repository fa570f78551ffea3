import re

UNITS = {}
for secs, names in ((604800, "w wk wks week weeks"), (86400, "d day days"), (3600, "h hr hrs hour hours"),
                    (60, "m min mins minute minutes"), (1, "s sec secs second seconds"),
                    (0.001, "ms msec msecs millisecond milliseconds")):
    for name in names.split():
        UNITS[name] = secs

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
    return int(total)  # whole seconds
