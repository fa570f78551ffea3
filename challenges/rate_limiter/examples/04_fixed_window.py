class RateLimiter:
    """Counts requests per key in windows [k*window, (k+1)*window)."""

    def __init__(self, limit, window):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError("limit must be a positive int")
        if not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window
        self.buckets = {}

    def _bucket(self, key, now):
        start = (now // self.window) * self.window
        current = self.buckets.get(key)
        if current is None or current[0] != start:
            current = [start, 0]
            self.buckets[key] = current
        return current

    def allow(self, key, now):
        bucket = self._bucket(key, now)
        if bucket[1] < self.limit:
            bucket[1] += 1
            return True
        return False

    def remaining(self, key, now):
        return self.limit - self._bucket(key, now)[1]

    def retry_after(self, key, now):
        bucket = self._bucket(key, now)
        if bucket[1] < self.limit:
            return 0
        return bucket[0] + self.window - now
