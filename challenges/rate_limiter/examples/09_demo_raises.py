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

    def allow(self, key, now):
        q = self.log.setdefault(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        if len(q) < self.limit:
            q.append(now)
            return True
        return False

    def remaining(self, key, now):
        q = self.log.get(key, deque())
        return self.limit - len([t for t in q if t + self.window > now])

    def retry_after(self, key, now):
        q = [t for t in self.log.get(key, ()) if t + self.window > now]
        return 0 if len(q) < self.limit else q[0] + self.window - now


if __name__ == "__main__":
    demo = RateLimiter(limit=5)
    for second in range(8):
        print(second, demo.allow("user", second))
