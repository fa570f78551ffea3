import re

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text):
    total = 0
    for number, unit in re.findall(r"(\d+)\s*([dhms])", text.lower()):
        total += int(number) * UNITS[unit]
    return f"{total} seconds"
