from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive int")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be a positive number")
        self.limit = limit
        self.window = window
        self.seen = {}

    def allow(self, key, now):
        q = self.seen.setdefault(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        if len(q) < self.limit:
            q.append(now)
            return True
        return False

    def remaining(self, key, now):
        # Probe with a real request, then report what is left after it.
        if self.allow(key, now):
            return self.limit - len(self.seen[key]) + 1
        return 0

    def retry_after(self, key, now):
        q = self.seen.get(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        if len(q) < self.limit:
            return 0
        return q[0] + self.window - now
