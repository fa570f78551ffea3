from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if limit <= 0:
            raise ValueError("limit must be positive")
        if window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window
        self.log = {}

    def _live(self, key, now):
        q = self.log.setdefault(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        return q

    def allow(self, key, now):
        q = self._live(key, now)
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True

    def remaining(self, key, now):
        return self.limit - len(self._live(key, now))

    def retry_after(self, key, now):
        q = self._live(key, now)
        return 0 if len(q) < self.limit else q[0] + self.window - now
