class RateLimiter:
    def __init__(self, limit, window):
        self.limit = limit
        self.window = window

    def allow(self, key, now):
        return True

    def remaining(self, key, now):
        return self.limit

    def retry_after(self, key, now):
        return 0
