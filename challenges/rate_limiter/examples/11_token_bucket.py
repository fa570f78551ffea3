class RateLimiter:
    """Token bucket: `limit` tokens, refilled at limit / window tokens per second."""

    def __init__(self, limit, window):
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise ValueError("limit must be a positive int")
        if not isinstance(window, (int, float)) or window <= 0:
            raise ValueError("window must be positive")
        self.limit = limit
        self.window = window
        self.rate = limit / window
        self.state = {}

    def _tokens(self, key, now):
        tokens, last = self.state.get(key, (float(self.limit), now))
        tokens = min(float(self.limit), tokens + (now - last) * self.rate)
        self.state[key] = (tokens, now)
        return tokens

    def allow(self, key, now):
        tokens = self._tokens(key, now)
        if tokens >= 1:
            self.state[key] = (tokens - 1, now)
            return True
        return False

    def remaining(self, key, now):
        return int(self._tokens(key, now))

    def retry_after(self, key, now):
        tokens = self._tokens(key, now)
        if tokens >= 1:
            return 0
        return (1 - tokens) / self.rate
