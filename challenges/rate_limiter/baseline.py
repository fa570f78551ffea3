class RateLimiter:
    def __init__(self, limit, window):
        self.limit = limit
        self.window = window
        self.requests = {}

    def allow(self, key, now):
        times = self.requests.setdefault(key, [])
        times.append(now)
        recent = [t for t in times if now - t <= self.window]
        return len(recent) <= self.limit

    def remaining(self, key, now):
        return self.limit - len(self.requests.get(key, []))

    def retry_after(self, key, now):
        times = self.requests.get(key, [])
        if len(times) < self.limit:
            return 0
        return self.window
