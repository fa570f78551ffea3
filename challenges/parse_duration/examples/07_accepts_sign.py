import re

SCALE = {}
for secs, names in ((604800, "w wk wks week weeks"), (86400, "d day days"), (3600, "h hr hrs hour hours"),
                    (60, "m min mins minute minutes"), (1, "s sec secs second seconds"),
                    (0.001, "ms msec msecs millisecond milliseconds")):
    for name in names.split():
        SCALE[name] = secs

SEPARATORS = re.compile(r"(?:\s+|,|\band\b)*")
AMOUNT = re.compile(r"(-?\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("need a str")
    text = text.lower()
    at, total, seen = 0, 0.0, 0
    while True:
        at = SEPARATORS.match(text, at).end()
        if at == len(text):
            break
        m = AMOUNT.match(text, at)
        if not m or m.group(2) not in SCALE:
            raise ValueError("bad duration")
        total += float(m.group(1)) * SCALE[m.group(2)]  # negative amounts subtract
        seen += 1
        at = m.end()
    if not seen:
        raise ValueError("empty duration")
    return total
