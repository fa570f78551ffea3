import re

SECONDS = {"w": 604800, "week": 604800, "weeks": 604800, "d": 86400, "day": 86400, "days": 86400,
           "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
           "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
           "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "ms": 0.001}

PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*(weeks|week|w|days|day|d|hours|hour|hrs|hr|h|"
                     r"minutes|minute|mins|min|m|seconds|second|secs|sec|s|ms)")


def parse_duration(text):
    matches = PATTERN.findall(text.lower())
    if not matches:
        raise ValueError("no duration found")
    return sum(float(n) * SECONDS[u] for n, u in matches)
