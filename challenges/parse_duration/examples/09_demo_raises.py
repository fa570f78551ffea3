import re

UNITS = {"w": 604800, "week": 604800, "weeks": 604800, "d": 86400, "day": 86400, "days": 86400,
         "h": 3600, "hour": 3600, "hours": 3600, "m": 60, "minute": 60, "minutes": 60,
         "s": 1, "second": 1, "seconds": 1, "ms": 0.001}


def parse_duration(text):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    text = text.lower().strip()
    if not re.fullmatch(r"(?:(?:\s|,|\band\b)*\d+(?:\.\d+)?\s*[a-z]+)+(?:\s|,|\band\b)*", text):
        raise ValueError("malformed duration")
    total = 0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if unit not in UNITS:
            raise ValueError("unknown unit " + unit)
        total += float(number) * UNITS[unit]
    return total


print("1 hour 30 mins =", parse_duration("1 hour 30 mins"), "seconds")
