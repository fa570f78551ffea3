from collections import deque
from typing import Dict, Deque, Hashable


class RateLimiter:
    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.requests: Dict[Hashable, Deque[float]] = {}

    def _active(self, key: Hashable, now: float) -> Deque[float]:
        q = self.requests.setdefault(key, deque())
        while q and q[0] + self.window <= now:
            q.popleft()
        return q

    def allow(self, key: Hashable, now: float) -> bool:
        q = self._active(key, now)
        if len(q) < self.limit:
            q.append(now)
            return True
        return False

    def remaining(self, key: Hashable, now: float) -> int:
        return max(0, self.limit - len(self._active(key, now)))

    def retry_after(self, key: Hashable, now: float) -> float:
        q = self._active(key, now)
        if len(q) < self.limit:
            return 0
        return q[0] + self.window - now
