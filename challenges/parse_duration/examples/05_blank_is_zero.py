import re

_UNITS = {}
for _secs, _words in ((604800, "w wk wks week weeks"), (86400, "d day days"), (3600, "h hr hrs hour hours"),
                      (60, "m min mins minute minutes"), (1, "s sec secs second seconds"),
                      (0.001, "ms msec msecs millisecond milliseconds")):
    _UNITS.update(dict.fromkeys(_words.split(), _secs))

_GAP = re.compile(r"(?:\s+|,|\band\b)*")
_ITEM = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("parse_duration expects a string")
    if not text.strip():
        return 0  # nothing to add up
    text = text.lower()
    pos, total, count = 0, 0.0, 0
    while True:
        pos = _GAP.match(text, pos).end()
        if pos >= len(text):
            break
        item = _ITEM.match(text, pos)
        if item is None or item.group(2) not in _UNITS:
            raise ValueError("malformed duration: " + repr(text))
        total += float(item.group(1)) * _UNITS[item.group(2)]
        count += 1
        pos = item.end()
    if not count:
        raise ValueError("no duration found")
    return total
