import re

UNITS = {}
for seconds, names in [(604800, "w wk wks week weeks"), (86400, "d day days"), (3600, "h hr hrs hour hours"),
                       (60, "m min mins minute minutes"), (1, "s sec secs second seconds"),
                       (0.001, "ms msec msecs millisecond milliseconds")]:
    for name in names.split():
        UNITS[name] = seconds

TOKEN = re.compile(r"\s*(?:,|and\b)?\s*(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("expected a string")
    text = text.strip()
    pos, total, found = 0, 0, False
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.group(2) not in UNITS:
            raise ValueError(f"bad duration {text!r}")
        total += float(m.group(1)) * UNITS[m.group(2)]
        pos = m.end()
        found = True
        rest = re.match(r"[\s,]*(?:and\b)?[\s,]*", text[pos:])
        if rest and pos + rest.end() == len(text):
            break
    if not found:
        raise ValueError("empty duration")
    return total
