# Inputs drawn per grading, so a table of known answers cannot win. Every random duration uses
# all six units once, in a random order and spelling, with at least one decimal, one upper-case
# and one title-case unit, and every kind of separator: a parser that gets any one feature
# wrong fails every call, so the points do not depend on the luck of the draw.

_SPELLINGS = [
    ["w", "wk", "wks", "week", "weeks"],
    ["d", "day", "days"],
    ["h", "hr", "hrs", "hour", "hours"],
    ["m", "min", "mins", "minute", "minutes"],
    ["s", "sec", "secs", "second", "seconds"],
    ["ms", "msec", "msecs", "millisecond", "milliseconds"],
]
_SEPARATORS = [" ", ", ", " and ", ""]


def _integer(rng):
    return str(rng.randint(0, 99))


def _decimal(rng):
    return f"{rng.randint(0, 40)}.{rng.randint(0, 99):0{rng.choice([1, 2])}d}"


def _parts(rng, count):
    spellings = rng.sample(_SPELLINGS, count)
    numbers = [_integer(rng), _decimal(rng)] + [rng.choice([_integer, _decimal])(rng) for _ in range(count - 2)]
    cases = [str.upper, str.title] + [rng.choice([str.lower, str.lower, str.upper, str.title]) for _ in range(count - 2)]
    spaces = ["", " "] + [rng.choice(["", " "]) for _ in range(count - 2)]
    rng.shuffle(numbers)
    rng.shuffle(cases)
    rng.shuffle(spaces)
    return [numbers[i] + spaces[i] + cases[i](rng.choice(spellings[i])) for i in range(count)]


def _join(rng, parts):
    gaps = _SEPARATORS + [rng.choice(_SEPARATORS + [",", "  "]) for _ in range(len(parts) - 1 - len(_SEPARATORS))]
    rng.shuffle(gaps)
    return parts[0] + "".join(gap + part for gap, part in zip(gaps, parts[1:]))


def random_duration(rng):
    """All six units once each, in random order, spellings, cases, numbers and separators."""
    text = _join(rng, _parts(rng, 6))
    if rng.random() < 0.5:
        text = rng.choice([" ", "  ", "\t"]) + text + rng.choice([" ", "\n"])
    return [("parse_duration", (text,))]


def malformed_duration(rng):
    """A valid duration of five parts spoilt in one way: a bare number among the parts or at
    the end, an unknown unit, a word before it, junk after it, or a unit with no number."""
    parts = _parts(rng, 5)
    spoil = rng.randrange(6)
    if spoil == 0:
        # The trailing separator keeps it from running into the next part's number.
        parts.insert(rng.randrange(1, len(parts)), _integer(rng) + rng.choice([" ", ", "]))
    elif spoil == 1:
        at = rng.randrange(len(parts))
        number = parts[at].rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        parts[at] = number + rng.choice(["parsecs", "months", "mo", "yrs", "x", "hh", "minz", "sek", "mss"])
    text = _join(rng, parts)
    if spoil == 2:
        text = rng.choice(["about ", "roughly ", "in ", "~", "at least "]) + text
    elif spoil == 3:
        text += rng.choice(["!", "?", " ago", " or so", ";", "."])
    elif spoil == 4:
        text += " " + rng.choice(rng.choice(_SPELLINGS))
    elif spoil == 5:
        text += " " + _integer(rng)
    return [("parse_duration", (text,))]
