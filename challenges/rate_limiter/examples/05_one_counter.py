from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError("limit must be a positive int")
        if not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window
        self.times = deque()  # shared by every key

    def _expire(self, now):
        while self.times and self.times[0] + self.window <= now:
            self.times.popleft()

    def allow(self, key, now):
        self._expire(now)
        if len(self.times) < self.limit:
            self.times.append(now)
            return True
        return False

    def remaining(self, key, now):
        self._expire(now)
        return self.limit - len(self.times)

    def retry_after(self, key, now):
        self._expire(now)
        if len(self.times) < self.limit:
            return 0
        return self.times[0] + self.window - now
