# A solution that earns every point; `expected` and `expected_results` are what it returns.
# Per key, a log of the allowed requests still inside the window, oldest first.
from collections import deque


class RateLimiter:
    def __init__(self, limit, window):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, not {limit!r}")
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window > 0:
            raise ValueError(f"window must be a positive number of seconds, not {window!r}")
        self.limit = limit
        self.window = window
        self._log = {}

    def _live(self, key, now):
        times = self._log.setdefault(key, deque())
        # A request made at t counts while now < t + window.
        while times and times[0] + self.window <= now:
            times.popleft()
        return times

    def allow(self, key, now):
        times = self._live(key, now)
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def remaining(self, key, now):
        return self.limit - len(self._live(key, now))

    def retry_after(self, key, now):
        times = self._live(key, now)
        if len(times) < self.limit:
            return 0
        return times[len(times) - self.limit] + self.window - now
