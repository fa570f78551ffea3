from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError("limit must be a positive int")
        if not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window
        self.log = {}

    def _prune(self, key, now):
        q = self.log.setdefault(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        return q

    def is_allowed(self, key, now):
        q = self._prune(key, now)
        if len(q) < self.limit:
            q.append(now)
            return True
        return False

    def get_remaining(self, key, now):
        return self.limit - len(self._prune(key, now))

    def time_until_reset(self, key, now):
        q = self._prune(key, now)
        return 0 if len(q) < self.limit else q[0] + self.window - now
