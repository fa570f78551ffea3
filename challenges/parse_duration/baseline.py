UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text):
    total = 0
    for part in text.split():
        try:
            total += int(part[:-1]) * UNITS[part[-1]]
        except (ValueError, KeyError):
            continue
    return total
