# Inputs drawn per grading, so a table of known answers cannot win. Windows are multiples of 2
# and times move in eighths of a window (multiples of 0.25), so every sum and difference is
# exact in binary floating point: any correct implementation agrees with the reference to the
# last bit, and requests often land exactly one window after earlier ones.


def _limiter(rng):
    return rng.randint(2, 4), rng.choice([4, 6, 10, 12, 30])


def random_traffic(rng):
    """Two or three interleaved keys, each often at its limit: mostly allow(), with remaining()
    and retry_after() asked along the way."""
    limit, window = _limiter(rng)
    keys = rng.sample(["ann", "bob", "cy", "dee", 7], rng.randint(2, 3))
    tick = window / 8
    steps = [("RateLimiter", (limit, window))]
    now = rng.randint(0, 16) * tick
    for _ in range(rng.randint(60, 80)):
        now += tick * rng.choice([0, 0, 1, 1, 2])
        key = rng.choice(keys)
        kind = rng.random()
        if kind < 0.6:
            steps.append(("allow", (key, now)))
        elif kind < 0.75:
            steps.append(("remaining", (key, now)))
        else:
            steps.append(("retry_after", (key, now)))
    return steps


def bursts(rng):
    """Two keys taking turns to send more than their limit at once, asking when to retry, and
    coming back exactly at, or just before, one window after the burst began."""
    limit, window = _limiter(rng)
    keys = rng.sample(["api", "web", "cli"], 2)
    steps = [("RateLimiter", (limit, window))]
    now = 0
    for _ in range(rng.randint(6, 9)):
        key = rng.choice(keys)
        steps.append(("remaining", (key, now)))
        start = now
        for _ in range(limit + rng.randint(1, 3)):
            steps.append(("allow", (key, now)))
            now += rng.choice([0, 0.25, 0.5])
        steps.append(("retry_after", (key, now)))
        steps.append(("remaining", (key, now)))
        now = max(now, start + window + rng.choice([-0.25, 0, 0]))
        steps.append(("allow", (key, now)))
    return steps
