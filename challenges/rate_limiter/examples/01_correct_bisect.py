from bisect import bisect_right


class RateLimiter:
    """Sliding-window limiter keeping a sorted list of allowed request times per key."""

    def __init__(self, limit, window):
        if type(limit) is not int or limit <= 0:
            raise ValueError("limit must be a positive integer")
        if type(window) not in (int, float) or window <= 0:
            raise ValueError("window must be a positive number")
        self.limit = limit
        self.window = window
        self.history = {}

    def _counting(self, key, now):
        times = self.history.get(key, [])
        # Times t with t + window <= now have expired; drop them.
        cut = 0
        while cut < len(times) and times[cut] + self.window <= now:
            cut += 1
        del times[:cut]
        return times

    def allow(self, key, now):
        times = self._counting(key, now)
        if len(times) < self.limit:
            self.history.setdefault(key, times).append(now)
            return True
        return False

    def remaining(self, key, now):
        return self.limit - len(self._counting(key, now))

    def retry_after(self, key, now):
        times = self._counting(key, now)
        if len(times) < self.limit:
            return 0
        return times[0] + self.window - now
