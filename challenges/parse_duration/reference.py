# A solution that earns every point; `expected` is what it returns (or raises).
import re

_SECONDS = {}
for _factor, _names in (
    (604800, "w wk wks week weeks"),
    (86400, "d day days"),
    (3600, "h hr hrs hour hours"),
    (60, "m min mins minute minutes"),
    (1, "s sec secs second seconds"),
    (0.001, "ms msec msecs millisecond milliseconds"),
):
    for _name in _names.split():
        _SECONDS[_name] = _factor

_SEPARATOR = re.compile(r"(?:\s+|,|\band\b)*")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError(f"parse_duration needs a str, not {type(text).__name__}")
    text = text.lower()
    total, parts, at = 0, 0, 0
    while True:
        at = _SEPARATOR.match(text, at).end()
        if at == len(text):
            break
        part = _PART.match(text, at)
        if part is None:
            raise ValueError(f"cannot read a duration at {text[at:at + 12]!r}")
        number, unit = part.groups()
        if unit not in _SECONDS:
            raise ValueError(f"unknown unit {unit!r}")
        total += float(number) * _SECONDS[unit]
        parts += 1
        at = part.end()
    if parts == 0:
        raise ValueError("no duration in the text")
    return total
