from collections import defaultdict


class RateLimiter:
    def __init__(self, limit, window):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError("bad limit")
        if not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("bad window")
        self.limit = limit
        self.window = window
        self.hits = defaultdict(list)

    def _recent(self, key, now):
        return [t for t in self.hits[key] if t + self.window > now]

    def allow(self, key, now):
        # Every attempt is logged, refused or not.
        self.hits[key].append(now)
        return len(self._recent(key, now)) <= self.limit

    def remaining(self, key, now):
        return max(0, self.limit - len(self._recent(key, now)))

    def retry_after(self, key, now):
        recent = self._recent(key, now)
        if len(recent) < self.limit:
            return 0
        return recent[len(recent) - self.limit] + self.window - now
